"""Exports appear only complete: no half-written SavedModel version, .tflite or .keras file."""

import os
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfdistill.export import KERAS_COPY, atomic, existing_versions, export_saved_model, save_keras
from tfdistill.export.tflite import TFLiteRunner
from helpers import SCRIPTS
from script_server import kill, python_command

LOOP = os.path.join(SCRIPTS, "export_loop.py")


def small_model():
    x_in = keras.Input((6, 6, 1))
    return keras.Model(x_in, keras.layers.Dense(3)(keras.layers.Flatten()(x_in)))


def test_an_export_that_fails_half_way_leaves_no_version_folder(tmp_path, monkeypatch):
    model = small_model()
    export_saved_model(model, str(tmp_path), raw_shape=(None, 6, 6))

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(model, "save", disk_full)  # fails after the SavedModel itself is written
    with pytest.raises(OSError, match="No space left"):
        export_saved_model(model, str(tmp_path), raw_shape=(None, 6, 6))
    assert os.listdir(tmp_path) == ["1"]  # no version 2, no temporary folder


def test_overwriting_a_version_never_leaves_it_half_deleted(tmp_path, monkeypatch):
    model = small_model()
    path = export_saved_model(model, str(tmp_path), raw_shape=(None, 6, 6))
    renames = []
    real_rename = os.rename

    def recording_rename(source, destination):
        # At each step, the version folder is absent or complete, never partial.
        if os.path.exists(path):
            assert os.path.exists(os.path.join(path, KERAS_COPY))
        renames.append((os.path.basename(source), os.path.basename(destination)))
        real_rename(source, destination)

    monkeypatch.setattr(os, "rename", recording_rename)
    export_saved_model(model, str(tmp_path), version=1, overwrite=True, raw_shape=(None, 6, 6))
    assert [d for _, d in renames][-1] == "1" and len(renames) == 2  # old moved aside, new moved in
    assert os.listdir(tmp_path) == ["1"]
    tf.saved_model.load(path)


def test_a_version_taken_meanwhile_by_another_export_moves_this_one_to_the_next(tmp_path, monkeypatch):
    model = small_model()
    archive_class = type(keras.export.ExportArchive())  # the backend's class
    real_write_out = archive_class.write_out

    def racing_write_out(self, filepath, **kwargs):
        real_write_out(self, filepath, **kwargs)
        if not os.path.exists(tmp_path / "1"):
            os.makedirs(tmp_path / "1" / "assets.extra")  # another process's export of version 1
            (tmp_path / "1" / "saved_model.pb").write_bytes(b"x")

    monkeypatch.setattr(archive_class, "write_out", racing_write_out)
    path = export_saved_model(model, str(tmp_path), raw_shape=(None, 6, 6))
    assert path == str(tmp_path / "2") and existing_versions(str(tmp_path)) == [1, 2]
    assert (tmp_path / "1" / "saved_model.pb").read_bytes() == b"x"  # the other export is untouched


def test_stale_temporaries_of_dead_processes_are_removed_others_kept(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    live = atomic.temporary_path(str(tmp_path / "3"))
    stale = live.replace(f"-{os.getpid()}-", f"-{dead_pid}-")
    other_host = stale.replace(f".{atomic._HOST}-", ".another_host-")
    for folder in (live, stale, other_host):
        os.makedirs(folder)
    assert atomic.remove_stale_temporaries(str(tmp_path)) == [os.path.basename(stale)]
    assert sorted(os.listdir(tmp_path)) == sorted(os.path.basename(p) for p in (live, other_host))


def test_save_keras_replaces_the_file_atomically(tmp_path):
    model = small_model()
    path = str(tmp_path / "student.keras")
    save_keras(model, path)
    save_keras(model, path)
    assert os.listdir(tmp_path) == ["student.keras"]
    keras.models.load_model(path)
    with pytest.raises(ValueError, match="ending in '.keras'"):
        save_keras(model, str(tmp_path / "student.h5"))


def check_complete(out):
    """Everything a server or a user would load under `out` loads."""
    base = os.path.join(out, "model")
    for version in existing_versions(base):
        folder = os.path.join(base, str(version))
        assert "serving_default" in tf.saved_model.load(folder).signatures, folder
        keras.models.load_model(os.path.join(folder, KERAS_COPY))
    if os.path.exists(os.path.join(out, "student.tflite")):
        with open(os.path.join(out, "student.tflite"), "rb") as f:
            TFLiteRunner(f.read())(np.zeros((6, 6, 1)))
    if os.path.exists(os.path.join(out, "student.keras")):
        keras.models.load_model(os.path.join(out, "student.keras"))


def temporaries(out):
    return [name for folder, _, names in os.walk(out) for name in names + [folder] if ".partial" in name]


@pytest.mark.slow
def test_exports_killed_at_random_points_leave_nothing_half_written(tmp_path):
    rng = np.random.default_rng(0)
    for _ in range(3):  # at random times: tracing, writing, converting, verifying, renaming
        process = subprocess.Popen(python_command(LOOP, tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   text=True, process_group=0)
        assert process.stdout.readline().strip() == "ready", process.stderr.read()[-3000:]
        time.sleep(rng.uniform(0.2, 4.0))
        kill(process)
        process.communicate()
        check_complete(tmp_path)
    # Where it matters most: each file or folder complete under its temporary name, not yet moved.
    for rename in (0, 1, 2, 3):  # SavedModel, .tflite, .keras, the next SavedModel
        killed = subprocess.run(python_command(LOOP, tmp_path, "--kill-before-rename", rename), capture_output=True)
        assert killed.returncode == -9
        assert temporaries(tmp_path), "the kill left no temporary: it did not land inside a write"
        check_complete(tmp_path)
    versions = existing_versions(str(tmp_path / "model"))
    subprocess.run(python_command(LOOP, tmp_path, "--iterations", 1), check=True, capture_output=True)
    assert existing_versions(str(tmp_path / "model")) == versions + [(versions or [0])[-1] + 1]
    check_complete(tmp_path)
    assert temporaries(tmp_path) == []  # the dead processes' temporaries were cleaned up
