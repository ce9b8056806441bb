"""Fault tolerance: SIGKILL mid-epoch and restart; atomic backups; multi-worker training."""

import json
import os
import socket
import subprocess

import numpy as np
import pytest
from helpers import SCRIPTS
from script_server import python_command

SCRIPT = os.path.join(SCRIPTS, "distill_run.py")


def run(out, *args, env=None, check=True):
    os.makedirs(out, exist_ok=True)
    result = subprocess.run(
        python_command(SCRIPT, out, *args),
        capture_output=True, text=True, timeout=300, env={**os.environ, **(env or {})},
    )
    if check and result.returncode != 0:
        raise AssertionError(f"run failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return result


def weights(out):
    with np.load(os.path.join(out, "weights.npz")) as f:
        return [f[k] for k in sorted(f.files, key=lambda k: int(k.split("_")[1]))]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted one-process run (3 epochs), once for every test that compares with it."""
    out = tmp_path_factory.mktemp("reference")
    run(out)
    return out


@pytest.mark.slow
def test_killed_mid_epoch_and_restarted_ends_with_the_uninterrupted_weights(tmp_path, reference):
    backup = tmp_path / "backup"
    killed = run(tmp_path / "resumed", "--backup", str(backup), "--kill-at", "1", "3", check=False)
    assert killed.returncode == -9, killed.stderr[-2000:]
    assert not os.path.exists(tmp_path / "resumed" / "weights.npz")
    pointer = json.loads((backup / "checkpoint.json").read_text())
    assert pointer["epoch"] == 1  # the backup from the end of epoch 0
    run(tmp_path / "resumed", "--backup", str(backup), "--kill-at", "1", "3")
    for expected, got in zip(weights(reference), weights(tmp_path / "resumed")):
        np.testing.assert_array_equal(got, expected)


@pytest.mark.slow
def test_a_reshuffling_augmented_pipeline_resumes_in_the_uninterrupted_order(tmp_path):
    run(tmp_path / "reference", "--shuffle")
    backup = str(tmp_path / "backup")
    killed = run(tmp_path / "resumed", "--shuffle", "--backup", backup, "--kill-at", "2", "1", check=False)
    assert killed.returncode == -9
    run(tmp_path / "resumed", "--shuffle", "--backup", backup, "--kill-at", "2", "1")
    for expected, got in zip(weights(tmp_path / "reference"), weights(tmp_path / "resumed")):
        np.testing.assert_array_equal(got, expected)


@pytest.mark.slow
def test_backup_files_are_replaced_atomically(tmp_path):
    backup = tmp_path / "backup"
    run(tmp_path / "out", "--backup", str(backup))
    files = sorted(os.listdir(backup))
    # One complete weights file, named by the pointer; no temporary files left behind.
    pointer = json.loads((backup / "checkpoint.json").read_text())
    assert set(files) == {"checkpoint.json", pointer["weights"]} and pointer["epoch"] == 3


@pytest.mark.slow
def test_a_crash_while_saving_leaves_the_previous_backup_restorable(tmp_path, reference):
    backup = tmp_path / "backup"
    run(tmp_path / "out", "--backup", str(backup), "--epochs", "1")
    pointer = json.loads((backup / "checkpoint.json").read_text())
    # What a process killed half-way through writing the next backup leaves behind.
    (backup / "tmp-999-checkpoint-9.weights.h5").write_bytes(b"\x89HDF\r\n partial")
    (backup / "checkpoint.json.999.tmp").write_text('{"index": 9, "wei')
    run(tmp_path / "out2", "--backup", str(backup), "--epochs", "3")
    assert json.loads((backup / "checkpoint.json").read_text())["index"] == pointer["index"] + 2
    for expected, got in zip(weights(reference), weights(tmp_path / "out2")):
        np.testing.assert_array_equal(got, expected)


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def start_workers(tmp_path, *args, count=2, extra=None):
    """Starts `count` worker processes of one MultiWorkerMirroredStrategy cluster.

    `extra` maps a worker index to arguments for that worker only.
    """
    cluster = {"worker": [f"localhost:{port}" for port in _free_ports(count)]}
    workers = []
    for index in range(count):
        out = tmp_path / f"worker{index}"
        os.makedirs(out, exist_ok=True)
        config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        workers.append(
            subprocess.Popen(
                python_command(SCRIPT, out, "--multi-worker", *args, *(extra or {}).get(index, [])),
                env={**os.environ, "TF_CONFIG": config}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )
        )
    return workers


def wait_for(workers):
    for worker in workers:
        _, stderr = worker.communicate(timeout=300)
        assert worker.returncode == 0, stderr[-3000:]


@pytest.mark.slow
def test_multi_worker_mirrored_strategy_matches_one_process(tmp_path, reference):
    wait_for(start_workers(tmp_path))
    single_loss = json.loads((reference / "loss.txt").read_text())
    np.testing.assert_allclose(json.loads((tmp_path / "worker0" / "loss.txt").read_text()), single_loss, rtol=1e-5)
    for expected, got in zip(weights(reference), weights(tmp_path / "worker0")):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_multi_worker_offline_each_worker_caches_only_its_shard_and_matches_one_process(tmp_path):
    run(tmp_path / "single", "--offline")
    wait_for(start_workers(tmp_path, "--offline"))
    rows = [json.loads((tmp_path / f"worker{i}" / "teacher_rows.json").read_text()) for i in range(2)]
    assert rows[0] == list(range(0, 96, 2)) and rows[1] == list(range(1, 96, 2))  # disjoint, all covered
    assert json.loads((tmp_path / "single" / "teacher_rows.json").read_text()) == list(range(96))
    # Each global batch holds the same 16 examples (8 from each shard) as the one-process batch.
    single_loss = json.loads((tmp_path / "single" / "loss.txt").read_text())
    np.testing.assert_allclose(json.loads((tmp_path / "worker0" / "loss.txt").read_text()), single_loss, rtol=1e-5)
    for expected, got in zip(weights(tmp_path / "single"), weights(tmp_path / "worker0")):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_multi_worker_run_with_one_worker_killed_resumes_from_the_chiefs_backup(tmp_path, reference):
    backup = str(tmp_path / "backup")
    kill_worker_1 = {1: ["--kill-at", "1", "3"]}  # SIGKILL in epoch 1, batch 3, once
    survivor, victim = start_workers(tmp_path, "--backup", backup, extra=kill_worker_1)
    victim.communicate(timeout=300)
    assert victim.returncode == -9
    _, stderr = survivor.communicate(timeout=300)  # the peer health check stops it: no hang
    assert survivor.returncode != 0, "the surviving worker finished without its peer"
    assert json.loads((tmp_path / "backup" / "checkpoint.json").read_text())["epoch"] == 1
    assert not os.path.exists(tmp_path / "worker0" / "weights.npz")
    # The cluster is started again (as a job scheduler would): both resume from the chief's backup.
    wait_for(start_workers(tmp_path, "--backup", backup, extra=kill_worker_1))
    for expected, got in zip(weights(reference), weights(tmp_path / "worker0")):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("known_length", [True, False])
def test_resumed_fit_sees_the_uninterrupted_order_and_augmentation(tmp_path, known_length):
    import keras
    import tensorflow as tf

    import tfdistill
    from helpers import dense_model, toy_data

    x, y = toy_data(n=64)

    def pipeline():
        noise = tf.data.Dataset.random(seed=1, rerandomize_each_iteration=True).map(
            lambda r: tf.cast(r % 100, tf.float32) / 1000.0
        )
        ds = tf.data.Dataset.zip(tf.data.Dataset.from_tensor_slices((x, y)), noise).map(lambda xy, n: (xy[0] + n, xy[1]))
        if not known_length:
            ds = ds.filter(lambda *_: True)
        return ds.shuffle(64, seed=0, reshuffle_each_iteration=True).batch(16)

    def distiller():
        keras.utils.set_random_seed(0)
        model = tfdistill.Distiller(dense_model(16, "teacher"), dense_model(4, "student"))
        model.compile(keras.optimizers.Adam(0.01))
        return model

    reference = distiller()
    reference.fit(pipeline(), epochs=3, verbose=0)
    backup = str(tmp_path / "backup")
    distiller().fit(pipeline(), epochs=2, verbose=0, callbacks=[tfdistill.callbacks.BackupAndRestore(backup, delete_checkpoint=False)])
    resumed = distiller()  # a new process would start here: fresh models and pipeline
    resumed.fit(pipeline(), epochs=3, verbose=0, callbacks=[tfdistill.callbacks.BackupAndRestore(backup)])
    for expected, got in zip(reference.student.get_weights(), resumed.student.get_weights()):
        np.testing.assert_array_equal(got, expected)


@pytest.mark.slow
def test_a_mid_epoch_backup_of_a_resumed_run_records_the_resumed_epoch(tmp_path):
    import keras

    import tfdistill
    from helpers import dense_model, toy_data

    x, y = toy_data(n=64)
    backup = str(tmp_path / "backup")

    def distiller():
        keras.utils.set_random_seed(0)
        model = tfdistill.Distiller(dense_model(16, "teacher"), dense_model(4, "student"))
        model.compile(keras.optimizers.SGD(0.01))
        return model

    distiller().fit(x, y, batch_size=16, epochs=2, verbose=0,
                    callbacks=[tfdistill.callbacks.BackupAndRestore(backup, delete_checkpoint=False)])

    class Crash(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 2:  # after the step-3 backup of the resumed epoch
                raise RuntimeError("crash")

    with pytest.raises(RuntimeError, match="crash"):
        distiller().fit(x, y, batch_size=16, epochs=4, verbose=0, callbacks=[
            tfdistill.callbacks.BackupAndRestore(backup, save_freq=3, delete_checkpoint=False), Crash()])
    pointer = json.loads(open(os.path.join(backup, "checkpoint.json")).read())
    assert (pointer["epoch"], pointer["batch"]) == (2, 2)  # epoch 2 again on restart, not epoch 0
    distiller().fit(x, y, batch_size=16, epochs=4, verbose=0, callbacks=[tfdistill.callbacks.BackupAndRestore(backup)])
    assert not os.path.exists(backup)  # deleted when training finishes
