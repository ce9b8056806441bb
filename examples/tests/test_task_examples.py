"""The three task examples end to end, on small subsets: data, teacher, both students, a verified int8 export.

Full-size runs and their figures are in the README; these check that each
command works and what it writes.
"""

import json
import os
import subprocess

import numpy as np
import pytest

from helpers import REPO
from script_server import python_command

pytestmark = pytest.mark.slow


def run_example(script, output, *args):
    command = python_command(os.path.join(REPO, "examples", script), "--output", output, *args)
    return subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=900)


def check_results(output, task_words):
    results = json.load(open(output / "results.json"))
    assert task_words in results["task"]
    for name in ("teacher", "alone", "distilled", "distilled_int8"):
        assert 0.0 <= results["accuracy"][name] <= 1.0
    assert (output / "student_int8.tflite").stat().st_size == results["int8"]["file_bytes"]
    assert results["int8"]["top1_agreement"] >= 0.95
    assert results["int8"]["keras_accuracy"] == pytest.approx(results["accuracy"]["distilled"], abs=1e-9) or (
        results["int8"]["num_examples"] < results["test_examples"]
    )
    return results


def test_language_id_example_reuses_its_teacher_and_never_overwrites_a_run(tmp_path):
    output = tmp_path / "language_id"
    tiny = ["--snippets-per-language", "60", "--epochs", "1", "--teacher-epochs", "1"]
    first = run_example("language_id.py", output, *tiny)
    assert first.returncode == 0, first.stderr[-3000:]
    results = check_results(output, "language identification")
    assert results["parameters"]["teacher"] / results["parameters"]["student"] >= 20
    assert "teacher" in results["seconds"]  # trained this time
    teacher_bytes = (output / "teacher.keras").read_bytes()

    refused = run_example("language_id.py", output, *tiny)
    assert refused.returncode != 0 and "--overwrite" in refused.stderr
    assert (output / "teacher.keras").read_bytes() == teacher_bytes

    second = run_example("language_id.py", output, *tiny, "--overwrite")
    assert second.returncode == 0, second.stderr[-3000:]
    assert "(reused)" in second.stdout
    assert "teacher" not in json.load(open(output / "results.json"))["seconds"]
    assert (output / "teacher.keras").read_bytes() == teacher_bytes
    # The same teacher, initial weights and batches: the same students.
    assert json.load(open(output / "results.json"))["accuracy"] == results["accuracy"]


def test_keyword_spotting_example_exports_a_ds_cnn_of_tens_of_kilobytes(tmp_path):
    output = tmp_path / "keyword_spotting"
    result = run_example("keyword_spotting.py", output, "--clips-per-word", "12", "--epochs", "1",
                         "--teacher-epochs", "1")
    assert result.returncode == 0, result.stderr[-3000:]
    results = check_results(output, "keyword spotting")
    assert results["int8"]["file_bytes"] < 100_000
    assert results["train_examples"] + results["test_examples"] == 120


def test_byte_language_model_example_distils_per_token_from_a_memory_mapped_top_k_cache(tmp_path):
    output = tmp_path / "byte_language_model"
    result = run_example("byte_language_model.py", output, "--sequences", "300", "--epochs", "1",
                         "--teacher-epochs", "1", "--top-k", "4")
    assert result.returncode == 0, result.stderr[-3000:]
    results = check_results(output, "byte language model")
    cache = output / "cache" / "teacher_top4_T1"
    values = np.load(cache / "values.npy", mmap_mode="r")
    assert values.shape[1:] == (results["train_examples"], 64, 5)
    assert results["cross_entropy_bits"]["teacher"] > 0
