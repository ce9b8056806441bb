"""`tfdistill cache`: a config's teacher pass on Beam into `cache.path`, which `distill` then reads."""

import json
import os

import keras
import numpy as np
import pytest

from tfdistill.app import cli, config, teacher_cache
from helpers import digits_arrays, digits_cnn, digits_image_folder, digits_npz, flat_image_folder, pool_npz


def test_the_runner_and_every_option_after_it_go_to_beam_as_given(monkeypatch):
    calls = []
    monkeypatch.setattr(teacher_cache, "write", lambda cfg, options: calls.append((cfg, options)))
    assert cli.main(["cache", "--set", "cache.path=pool", "--runner", "DirectRunner",
                     "--direct_running_mode=multi_processing", "--direct_num_workers", "2"]) == 0
    assert cli.main(["cache", "--set", "cache.path=pool"]) == 0
    assert [options for _, options in calls] == [
        ["--runner=DirectRunner", "--direct_running_mode=multi_processing", "--direct_num_workers", "2"],
        ["--runner=DirectRunner"],
    ]
    assert calls[0][0].cache.path == "pool"


def test_cache_has_its_own_help(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["cache", "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: tfdistill cache") and "[--runner ...]" in out and "DataflowRunner" in out


def test_cache_without_a_path_or_with_shards_of_part_batches_exits_2(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["cache"])
    assert exit_.value.code == 2
    assert "Invalid value for `cache.path`: null. Expected the folder the sharded teacher cache goes to" in capsys.readouterr().err
    with pytest.raises(config.ConfigError, match=r"`cache.examples_per_shard`: expected a multiple of `cache.batch_size` \(256\)"):
        config.resolve({"cache": {"examples_per_shard": 1000}})


def _config(tmp_path, form):
    """A run on the digits as arrays or as an image folder; its cache's batches are those of the run's own pass."""
    keras.utils.set_random_seed(0)
    if form == "arrays":
        data, size, batch_size = {"arrays": digits_npz(tmp_path / "digits.npz")}, 8, 1024
    else:
        data, size, batch_size = {"image_folder": digits_image_folder(tmp_path / "photos", per_class=30, size=16)}, 16, 256
    digits_cnn((size, size, 1), filters=8, name="teacher", flatten=True).save(tmp_path / "teacher.keras")
    settings = {
        "data": {**data, "validation_size": 0.1},
        "teacher": {"path": str(tmp_path / "teacher.keras")},
        "student": {"builder": "helpers:digits_student", "args": {"filters": 4, "size": size}},
        "distill": {"epochs": 1, "views": 2, "batch_size": 64, "train_scratch": False},
        "export": {"saved_model": False, "tflite": []},
        "cache": {"batch_size": batch_size, "examples_per_shard": 1024},
    }
    path = tmp_path / "run.json"
    path.write_text(json.dumps(settings))
    return str(path)


@pytest.mark.slow
@pytest.mark.parametrize("form, examples, shards", [("arrays", "1,347", 2), ("image_folder", "270", 1)])
def test_distill_on_the_cache_it_made_trains_the_student_its_own_pass_trains(tmp_path, capsys, form, examples, shards):
    run = _config(tmp_path, form)
    pool = str(tmp_path / "pool")
    assert cli.main(["cache", "--config", run, "--set", f"cache.path={pool}", "--runner", "DirectRunner"]) == 0
    assert f"{shards} of {shards} shards complete ({shards} computed now, 0 reused), {examples} examples x 2 views" in capsys.readouterr().out
    assert cli.main(["distill", "--config", run, "--set", f"cache.path={pool}", "--output", str(tmp_path / "a"),
                     "--progress", "none"]) == 0
    assert f"Teacher logits: {pool} ({examples} examples x 2 views, integrity checked)" in capsys.readouterr().out
    assert cli.main(["distill", "--config", run, "--output", str(tmp_path / "b"), "--progress", "none"]) == 0
    students = [keras.models.load_model(tmp_path / run_dir / "checkpoints" / "student_distilled.keras")
                for run_dir in ("a", "b")]
    for a, b in zip(*(student.get_weights() for student in students)):
        np.testing.assert_array_equal(a, b)

    # Another seed is another pass: refused before the run's folder is made.
    with pytest.raises(SystemExit) as exit_:
        cli.main(["distill", "--config", run, "--set", f"cache.path={pool}", "--set", "distill.seed=1",
                  "--output", str(tmp_path / "c")])
    assert exit_.value.code == 2 and not os.path.exists(tmp_path / "c")
    assert "holds the outputs of another teacher, training data or settings" in capsys.readouterr().err


def _pool_config(tmp_path, pool):
    """A run on the digits' arrays with 3 labels a class and a pool of 100 more digits (an .npz or a folder of PNGs)."""
    keras.utils.set_random_seed(0)
    images, _ = digits_arrays()
    digits_cnn((8, 8, 1), filters=8, name="teacher", flatten=True).save(tmp_path / "teacher.keras")
    make = pool_npz if pool == "npz" else flat_image_folder
    settings = {
        "data": {"arrays": digits_npz(tmp_path / "digits.npz"), "validation_size": 0.1, "labels_per_class": 3,
                 "unlabeled": make(tmp_path / f"pool.{pool}", images[:100])},
        "teacher": {"path": str(tmp_path / "teacher.keras")},
        "student": {"builder": "helpers:digits_student", "args": {"filters": 4, "size": 8}},
        "distill": {"epochs": 1, "views": 2, "batch_size": 64},
        "export": {"saved_model": False, "tflite": []},
        # The batches of the run's own pass: 1,024 for arrays in memory, 256 for examples read from files.
        "cache": {"batch_size": 1024 if pool == "npz" else 256, "examples_per_shard": 1024},
    }
    path = tmp_path / "run.json"
    path.write_text(json.dumps(settings))
    return str(path)


@pytest.mark.slow
@pytest.mark.parametrize("pool", ["npz", "folder"])
@pytest.mark.filterwarnings("ignore:The teacher's predictions match the labels")  # an untrained teacher
def test_the_cache_covers_the_labeled_examples_and_the_pool_as_the_runs_own_pass(tmp_path, capsys, pool):
    run = _pool_config(tmp_path, pool)
    cache = str(tmp_path / "cache")
    assert cli.main(["cache", "--config", run, "--set", f"cache.path={cache}", "--runner", "DirectRunner"]) == 0
    out = capsys.readouterr().out
    assert "(30 labeled, 1,417 unlabeled) x 2 views" in out  # 1,347 training digits with 3 labels a class, 100 more
    assert "2 of 2 shards complete (2 computed now, 0 reused), 1,447 examples x 2 views" in out
    assert cli.main(["distill", "--config", run, "--set", f"cache.path={cache}", "--output", str(tmp_path / "a"),
                     "--progress", "none"]) == 0
    assert f"Teacher logits: {cache} (1,447 examples x 2 views, integrity checked)" in capsys.readouterr().out
    assert cli.main(["distill", "--config", run, "--output", str(tmp_path / "b"), "--progress", "none"]) == 0
    for name in ("scratch", "distilled"):  # the student alone on the labeled rows, the distilled one on all
        students = [keras.models.load_model(tmp_path / run_dir / "checkpoints" / f"student_{name}.keras")
                    for run_dir in ("a", "b")]
        for a, b in zip(*(student.get_weights() for student in students)):
            np.testing.assert_array_equal(a, b)
    assert json.load(open(tmp_path / "a" / "run.json"))["students"] == json.load(open(tmp_path / "b" / "run.json"))["students"]

    # Without the pool the training split is other examples: the cache is refused before the run's folder is made.
    with pytest.raises(SystemExit) as exit_:
        cli.main(["distill", "--config", run, "--set", f"cache.path={cache}", "--set", "data.unlabeled=null",
                  "--output", str(tmp_path / "c")])
    assert exit_.value.code == 2 and not os.path.exists(tmp_path / "c")
    assert "holds the outputs of another teacher, training data or settings" in capsys.readouterr().err
