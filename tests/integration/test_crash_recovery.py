"""A distillation run killed again and again ends as if it had never been; nothing on disk is left damaged."""

import json
import os
import subprocess
import time

import h5py
import keras
import numpy as np
import pytest
import tensorflow as tf

from tfdistill import cache_files
from tfdistill.export import KERAS_COPY, existing_versions
from helpers import SCRIPTS
from script_server import kill, python_command

SCRIPT = os.path.join(SCRIPTS, "crash_run.py")
STEPS_PER_EPOCH = 6  # 96 examples, batch 16; 4 epochs


def run(out, *point):
    result = subprocess.run(
        python_command(SCRIPT, out, *(["--kill", *point] if point else [])),
        capture_output=True, text=True, timeout=300,
    )
    return result


def weights(out):
    with np.load(os.path.join(out, "weights.npz")) as f:
        return [f[k] for k in sorted(f.files, key=lambda k: int(k.split("_")[1]))]


def check_nothing_damaged(out):
    cache = os.path.join(out, "cache")
    for name in os.listdir(cache) if os.path.isdir(cache) else []:
        if not name.startswith("."):  # a dotted name is a killed writer's temporary, never read
            cache_files.verify(os.path.join(cache, name))
    pointer_path = os.path.join(out, "backup", "checkpoint.json")
    if os.path.exists(pointer_path):
        with open(pointer_path) as f:
            pointer = json.load(f)
        with h5py.File(os.path.join(out, "backup", pointer["weights"]), "r") as f:
            assert len(f.keys())
    export = os.path.join(out, "export", "student")
    for version in existing_versions(export):
        folder = os.path.join(export, str(version))
        for part in ("saved_model.pb", os.path.join("variables", "variables.index"), KERAS_COPY):
            assert os.path.exists(os.path.join(folder, part)), f"{folder} lacks {part}"
    if os.path.exists(os.path.join(out, "student.keras")):
        keras.models.load_model(os.path.join(out, "student.keras"))


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted run, once for both tests: its folder and how long it took."""
    out = tmp_path_factory.mktemp("reference")
    start = time.perf_counter()
    result = run(out)
    assert result.returncode == 0, result.stderr[-3000:]
    return out, time.perf_counter() - start


@pytest.mark.slow
def test_six_kills_at_random_points_end_with_the_uninterrupted_weights(tmp_path, reference):
    rng = np.random.default_rng(0)
    kills = [
        ("cache", 0),  # while the teacher's outputs are being written
        ("batch", int(rng.integers(1, STEPS_PER_EPOCH))),  # epoch 0: no backup yet
        ("backup", 1),  # the end-of-epoch-1 backup: its weights written, its pointer not
        ("batch", int(rng.integers(2 * STEPS_PER_EPOCH + 1, 3 * STEPS_PER_EPOCH))),  # epoch 2
        ("batch", int(rng.integers(3 * STEPS_PER_EPOCH + 1, 4 * STEPS_PER_EPOCH))),  # epoch 3
        ("export", 0),  # the SavedModel written, not yet renamed into place
    ]
    out = tmp_path / "crashing"
    for phase, target in kills:
        killed = run(out, phase, target)
        assert killed.returncode == -9, f"{phase} {target}: {killed.stderr[-3000:]}"
        assert not os.path.exists(out / "weights.npz")
        check_nothing_damaged(out)
    assert existing_versions(str(out / "export" / "student")) == []  # the killed export left no version
    final = run(out)
    assert final.returncode == 0, final.stderr[-3000:]
    check_nothing_damaged(out)
    for expected, got in zip(weights(reference[0]), weights(out)):
        np.testing.assert_array_equal(got, expected)
    served = tf.saved_model.load(str(out / "export" / "student" / "1"))
    assert "serving_default" in served.signatures
    assert not [name for name in os.listdir(out / "cache") if name.startswith(".")]  # the killed writer's temporary is gone


@pytest.mark.slow
def test_kills_at_random_times_end_with_the_uninterrupted_weights(tmp_path, reference):
    duration = reference[1]
    rng = np.random.default_rng(1)
    out = tmp_path / "crashing"
    for _ in range(3):
        process = subprocess.Popen(python_command(SCRIPT, out), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   process_group=0)
        time.sleep(rng.uniform(0.3, 1.0) * duration)  # a random point of a run as long as the reference
        kill(process)
        process.communicate()
        check_nothing_damaged(out)
    final = run(out)
    assert final.returncode == 0, final.stderr[-3000:]
    check_nothing_damaged(out)
    for expected, got in zip(weights(reference[0]), weights(out)):
        np.testing.assert_array_equal(got, expected)
