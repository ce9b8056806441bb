"""Teacher-output caches: damaged files are never trained on; concurrent writers both end well."""

import json
import os
import subprocess
import time

import keras
import numpy as np
import pytest

import tfdistill
from tfdistill import cache_files, offline
from helpers import SCRIPTS
from script_server import python_command

WRITER = os.path.join(SCRIPTS, "cache_writer.py")


def image_teacher():
    x_in = keras.Input((6, 6, 1))
    return keras.Model(x_in, keras.layers.Dense(4)(keras.layers.Flatten()(x_in)), name="teacher")


@pytest.fixture
def cached(tmp_path):
    """A teacher, its images, a fresh computation of its logits and the cache's logits file."""
    teacher = image_teacher()
    x = np.random.default_rng(0).integers(0, 256, size=(64, 6, 6), dtype=np.uint8)
    fresh = offline.cached_teacher_logits(teacher, x, views=2, cache_dir=str(tmp_path), verbose=0)
    (folder,) = tmp_path.iterdir()
    return teacher, x, np.array(fresh), folder / "logits.npy"


def read_again(teacher, x, tmp_path, **kwargs):
    return offline.cached_teacher_logits(teacher, x, views=2, cache_dir=str(tmp_path), verbose=0, **kwargs)


def test_a_clean_cache_is_verified_and_read_back_memory_mapped(cached, tmp_path):
    teacher, x, fresh, path = cached
    record = json.loads((path.parent / "integrity.json").read_text())
    assert record["arrays"]["logits"]["shape"] == [2, 64, 4] and record["arrays"]["logits"]["dtype"] == "<f2"
    again = read_again(teacher, x, tmp_path)
    assert isinstance(again, np.memmap)
    np.testing.assert_array_equal(again, fresh)


def overwrite_in_place(path, offset, data):
    with open(path, "r+b") as f:  # what a disk fault or another program does: same file, same size
        f.seek(offset)
        f.write(data)


@pytest.mark.parametrize("where", ["data", "header"])
def test_bytes_overwritten_in_place_are_recomputed_with_a_warning_naming_the_file(cached, tmp_path, where):
    teacher, x, fresh, path = cached
    size = os.path.getsize(path)
    offset = size - 100 if where == "data" else 20
    overwrite_in_place(path, offset, b"\x7f\xff" * 8)  # float16 NaNs in the data, or a damaged header
    assert os.path.getsize(path) == size
    with pytest.warns(UserWarning, match=rf"Cache file '{path}' is damaged: its bytes changed.*Recomputing"):
        again = read_again(teacher, x, tmp_path)
    np.testing.assert_array_equal(again, fresh)  # the teacher's outputs, not the damaged bytes
    cache_files.verify(str(path.parent))  # the cache on disk was replaced by a good one
    np.testing.assert_array_equal(read_again(teacher, x, tmp_path), fresh)


def test_a_truncated_file_is_refused_with_a_clear_error_when_asked(cached, tmp_path):
    teacher, x, fresh, path = cached
    size = os.path.getsize(path)
    os.truncate(path, size // 2)  # a full disk
    with pytest.raises(tfdistill.CacheIntegrityError, match=rf"'{path}' is damaged: expected {size:,} bytes.*Received: {size // 2:,} bytes"):
        read_again(teacher, x, tmp_path, on_damaged="raise")
    with pytest.warns(UserWarning, match="truncated"):
        np.testing.assert_array_equal(read_again(teacher, x, tmp_path), fresh)


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["missing", "garbled"])
def test_a_missing_or_garbled_integrity_record_is_not_trusted(cached, tmp_path, damage):
    teacher, x, fresh, path = cached
    record = path.parent / "integrity.json"
    if damage == "missing":
        record.unlink()
    else:
        record.write_text('{"format": "tfdistill-teacher-cache-1", "arr')
    with pytest.raises(tfdistill.CacheIntegrityError, match="(?i)integrity record"):
        read_again(teacher, x, tmp_path, on_damaged="raise")
    with pytest.warns(UserWarning):
        np.testing.assert_array_equal(read_again(teacher, x, tmp_path), fresh)


def test_a_second_writer_keeps_the_first_complete_cache(tmp_path):
    first = cache_files.write_cache(str(tmp_path), "k", {"a": np.arange(10)})
    stamp = os.path.getmtime(os.path.join(first, "a.npy"))
    cache_files.write_cache(str(tmp_path), "k", {"a": np.arange(10)})
    assert os.path.getmtime(os.path.join(first, "a.npy")) == stamp
    assert os.listdir(tmp_path) == ["teacher_k"]  # no staging folder left behind


def test_bad_on_damaged_argument(tmp_path):
    with pytest.raises(ValueError, match="`on_damaged`. Expected 'recompute' or 'raise'. Received: on_damaged='ignore'"):
        offline.cached_teacher_logits(image_teacher(), np.zeros((2, 6, 6), np.uint8), cache_dir=str(tmp_path), on_damaged="ignore")


@pytest.mark.slow
def test_two_processes_writing_the_same_cache_at_once_both_end_with_a_correct_cache(tmp_path):
    cache_dir, start = tmp_path / "cache", tmp_path / "start"
    writers = []
    for index in range(2):
        out = tmp_path / f"writer{index}"
        out.mkdir()
        writers.append((out, subprocess.Popen(
            python_command(WRITER, out, cache_dir, start),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )))
    time.sleep(8)  # both processes build their teacher (new processes import TensorFlow first), then wait
    start.touch()
    for _, writer in writers:
        _, stderr = writer.communicate(timeout=240)
        assert writer.returncode == 0, stderr[-3000:]
    results = [np.load(out / "logits.npy") for out, _ in writers]
    np.testing.assert_array_equal(results[0], results[1])
    names = os.listdir(cache_dir)
    assert len(names) == 2 and "teacher_big" in names  # two complete caches, no staging folder left
    for folder in cache_dir.iterdir():
        cache_files.verify(str(folder))
    stored = cache_files.read_cache(str(cache_dir), "big")["values"]
    np.testing.assert_array_equal(stored, np.random.default_rng(1).standard_normal(8 * 2**20))
