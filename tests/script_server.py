"""The tests' helper scripts, forked from one process per test worker that imported TensorFlow once.

Some 50 of the suite's processes run a script that imports TensorFlow, Keras
and tfdistill before it does anything (crash recovery, atomic exports,
backups and multi-worker runs, cache writers, the task examples): about 5
CPU seconds each on a slow machine. `python_command(script, ...)` instead
gives a command whose process (a stand-in that imports nothing heavy) has
the script run in a process forked from this test worker's script server: a
`ForkServer` (`tfdistill.offline.beam.fork_server`) whose server imported
all of that once and runs the script as `python script ...` would, with the
stand-in's arguments, environment, folder and standard streams; the stand-in
exits with the script's status, killed by the same signal if it was. Where
the server cannot be reached, the stand-in runs the script itself.

Start a process that a test kills from outside with `process_group=0` and
kill it with `kill(process)`: the forked script joins its stand-in's group
and dies at the same moment. `TFDISTILL_TEST_FORK_SERVER=0` runs every
script as a new process.
"""

import atexit
import os
import runpy
import signal
import sys

import tfdistill_command

# Loaded without `tfdistill.offline.beam`, which imports Apache Beam.
fork_server = tfdistill_command._fork_server_module()

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
STAND_IN = os.path.join(TESTS_DIR, "scripts", "stand_in.py")
SWITCH = "TFDISTILL_TEST_FORK_SERVER"


class ScriptServer(fork_server.ForkServer):
    """A `ForkServer` whose workers run test scripts (`serve_scripts`)."""

    server_code = (f"import sys; sys.path.insert(0, {TESTS_DIR!r}); "
                   "import script_server; script_server.serve_scripts({fd})")


_server = None


def python_command(script, *args):
    """The command that runs `python SCRIPT ARGS...`, the script forked from this worker's server (started once)."""
    global _server
    if os.environ.get(SWITCH, "1") == "0" or not fork_server.fork_server_enabled():
        return [sys.executable, script, *map(str, args)]
    if _server is None:
        _server = ScriptServer()
        _server.used = True
        atexit.register(_server.close)
    return [sys.executable, STAND_IN, _server.path, script, *map(str, args)]


def kill(process):
    """SIGKILL to a process started with `process_group=0`: its group, the forked script with it, at one moment."""
    os.killpg(process.pid, signal.SIGKILL)


def serve_scripts(listener_fd):
    """The server: imports what the scripts import, then forks a worker per stand-in that runs its script."""
    sys.path.remove(TESTS_DIR)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    tfdistill_command.import_tensorflow(quiet=False)
    import h5py  # noqa: F401
    import keras  # noqa: F401
    import numpy  # noqa: F401

    import tfdistill  # noqa: F401
    from tfdistill import callbacks, offline  # noqa: F401
    from tfdistill.export import export_saved_model  # noqa: F401

    path = list(sys.path[1:])  # a new process's, without the '' of `python -c`

    def run_script(request):
        script, *_ = sys.argv = request["argv"][2:]  # the stand-in's `stand_in.py SOCKET SCRIPT ARGS...`
        sys.path[:] = [os.path.dirname(os.path.abspath(script)), *path]
        runpy.run_path(script, run_name="__main__")

    fork_server.serve(listener_fd, run=run_script)
