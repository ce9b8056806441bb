"""Local Beam workers forked from one server that imported TensorFlow once (`tfdistill.offline.beam.fork_server`)."""

import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from tfdistill.offline import ArrayExamples, read_sharded_cache, write_sharded_cache
from tfdistill.offline.beam.fork_server import ForkServer
from helpers import image_teacher, small_images

LOCAL_PROCESSES = ["--direct_running_mode=multi_processing", "--direct_num_workers=2"]


def _children(pid):
    """`pid`'s child processes, less any that is exiting (Linux's `PF_EXITING`: it still shows until reaped)."""
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        children = [int(child) for child in f.read().split()]
    return [child for child in children if not _exiting(child)]


def _exiting(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return True
    return fields[0] in "ZX" or int(fields[6]) & 0x4  # state, then flags (the 9th field of the whole line)


def _command(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except OSError:
        return b""


def _wait_for(condition, seconds=120):
    deadline = time.time() + seconds
    while not condition():
        assert time.time() < deadline, "timed out"
        time.sleep(0.05)


def _harness_environment(control_url=None):
    """This process's environment with Beam's worker variables: none (the harness fails at once) or a control address."""
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_SERVICE_DESCRIPTOR")}
    env["PIPELINE_OPTIONS"] = "{}"
    if control_url:
        env["CONTROL_API_SERVICE_DESCRIPTOR"] = f'url: "{control_url}"'
    return env


@pytest.mark.slow
def test_a_stand_in_exits_with_its_forked_workers_status_and_shows_its_output(tmp_path):
    with ForkServer() as server:
        with socket.socket(socket.AF_UNIX) as gone:  # a connection dropped before its request: the server serves on
            gone.connect(server.path)
        done = subprocess.run(server.worker_command(), shell=True, env=_harness_environment(),
                              capture_output=True, text=True, timeout=300)
        assert server.process.poll() is None  # the server outlives its workers
    assert done.returncode == 1
    assert "CONTROL_API_SERVICE_DESCRIPTOR" in done.stderr  # the worker's traceback, on its stand-in's stderr
    assert not os.path.exists(server.folder)
    assert server.process.returncode == 0


@pytest.mark.slow
def test_killing_a_stand_in_kills_its_worker_and_killing_a_worker_ends_its_stand_in(tmp_path):
    with ForkServer() as server:
        # A control address nobody answers: the harness waits for it until it is killed.
        env = _harness_environment(control_url="localhost:1")
        stand_in = subprocess.Popen(server.worker_command(), shell=True, env=env, start_new_session=True,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_for(lambda: _children(server.process.pid))
        (worker,) = _children(server.process.pid)
        os.killpg(stand_in.pid, signal.SIGKILL)
        stand_in.wait()
        _wait_for(lambda: worker not in _children(server.process.pid))

        stand_in = subprocess.Popen(server.worker_command(), shell=True, env=env,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_for(lambda: _children(server.process.pid))
        (worker,) = _children(server.process.pid)
        os.kill(worker, signal.SIGKILL)
        # What Beam sees: its worker was killed (`sh -c` runs the stand-in, or execs it).
        assert stand_in.wait(timeout=60) in (-signal.SIGKILL, 128 + signal.SIGKILL)
        assert server.process.poll() is None


@pytest.mark.slow
def test_a_stand_in_that_cannot_reach_the_server_runs_the_worker_itself(tmp_path):
    server = ForkServer()
    server.close()
    command = server.worker_command()  # its socket is gone
    done = subprocess.run(command, shell=True, env=_harness_environment(), capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 1 and "CONTROL_API_SERVICE_DESCRIPTOR" in done.stderr


@pytest.mark.slow
def test_a_local_multi_process_pass_equals_the_in_process_one_and_leaves_no_process_behind(tmp_path):
    x = small_images(100)[0]
    teacher = tmp_path / "teacher.keras"
    image_teacher().save(teacher)
    settings = dict(views=2, seed=3, batch_size=16, dtype="float32", examples_per_shard=32)
    cache = write_sharded_cache(str(teacher), ArrayExamples(x), str(tmp_path / "cache"),
                                pipeline_options=LOCAL_PROCESSES, verbose=0, **settings)
    reference = write_sharded_cache(str(teacher), ArrayExamples(x), str(tmp_path / "reference"), verbose=0,
                                    **settings)  # Beam's in-memory runner, in this process
    np.testing.assert_array_equal(np.asarray(read_sharded_cache(cache)), np.asarray(read_sharded_cache(reference)))
    assert not [pid for pid in _children(os.getpid()) if b"beam" in _command(pid)]  # the server and workers ended


def test_a_server_never_handed_to_beam_ends_at_once_and_bad_arguments_get_their_error(tmp_path):
    server = ForkServer()
    server.close()  # killed, not waited for: it runs no worker yet
    assert server.process.returncode == -signal.SIGKILL and not os.path.exists(server.folder)

    teacher = tmp_path / "teacher.keras"
    image_teacher().save(teacher)
    with pytest.raises(ValueError, match="`examples_per_shard`"):
        write_sharded_cache(str(teacher), ArrayExamples(small_images(40)[0]), str(tmp_path / "cache"), batch_size=16,
                            examples_per_shard=20, pipeline_options=LOCAL_PROCESSES)
    assert not [pid for pid in _children(os.getpid()) if b"beam" in _command(pid)]
    assert not os.path.exists(tmp_path / "cache")


_PROBE = """
import os, sys, time
print(sys.argv[1:], os.getcwd() == sys.argv[1], os.environ.get("PROBE"), sys.path[0] == os.path.dirname(__file__),
      flush=True)
action = sys.argv[2]
if action == "exit":
    sys.exit(3)
if action == "raise":
    raise ValueError("probe failed")
if action == "kill":
    os.kill(os.getpid(), 9)
if action == "wait":
    time.sleep(300)
"""


@pytest.mark.slow
def test_a_server_with_its_own_run_forks_scripts_as_python_would_run_them(tmp_path):
    """`serve(run=...)`, as the test suite's script server uses it: argv, folder, environment and exit status."""
    import script_server

    probe = tmp_path / "probe.py"
    probe.write_text(_PROBE)
    with script_server.ScriptServer() as server:
        def command(*args):
            return [sys.executable, script_server.STAND_IN, server.path, str(probe), *args]

        server.used = True
        env = {**os.environ, "PROBE": "here"}
        done = subprocess.run(command(str(tmp_path), "ok"), cwd=tmp_path, env=env, capture_output=True, text=True)
        assert (done.returncode, done.stdout) == (0, f"[{str(tmp_path)!r}, 'ok'] True here True\n"), done.stderr
        assert subprocess.run(command(str(tmp_path), "exit"), cwd=tmp_path).returncode == 3
        assert subprocess.run(command(str(tmp_path), "kill"), cwd=tmp_path).returncode == -signal.SIGKILL
        failed = subprocess.run(command(str(tmp_path), "raise"), cwd=tmp_path, capture_output=True, text=True)
        assert failed.returncode == 1 and "ValueError: probe failed" in failed.stderr

        waiting = subprocess.Popen(command(str(tmp_path), "wait"), cwd=tmp_path, stdout=subprocess.PIPE,
                                   process_group=0)
        waiting.stdout.readline()  # the script runs: its worker has joined the stand-in's group
        worker, = _children(server.process.pid)
        assert os.getpgid(worker) == waiting.pid
        script_server.kill(waiting)
        assert waiting.wait() == -signal.SIGKILL
        deadline = time.monotonic() + 10
        while _children(server.process.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _children(server.process.pid) == []
