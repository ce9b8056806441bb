"""The example configs of `examples/configs/` are valid, and what they name can be loaded."""

import glob
import os
import subprocess
import sys

import numpy as np
import pytest

from tfdistill.app import config, model_sources
from helpers import REPO

CONFIGS = sorted(glob.glob(os.path.join(REPO, "examples", "configs", "*.yaml")))


def test_there_is_a_config_for_each_data_form():
    forms = set()
    for path in CONFIGS:
        data = config.resolve(config.load(path))["data"]
        forms.add(next((key for key in ("arrays", "image_folder", "tfds") if data[key] is not None), data["dataset"]))
    assert forms == {"arrays", "image_folder", "tfds", "fashion_mnist"}


def test_the_image_folder_examples_student_builder_loads_from_the_repository(monkeypatch):
    monkeypatch.chdir(REPO)
    student_config = config.run_config(config.load(os.path.join(REPO, "examples", "configs", "image_folder.yaml"))).student
    student = model_sources.student_factory(student_config, (28, 28, 1), 10, seed=0)()
    assert student.name == "mobile_student" and student.output_shape == (None, 10)
    assert student.count_params() < 14_618  # smaller than the demo's student


@pytest.mark.slow
def test_make_digits_npz_writes_the_arrays_and_refuses_to_overwrite(tmp_path):
    script = os.path.join(REPO, "examples", "make_digits_npz.py")
    path = str(tmp_path / "digits.npz")
    subprocess.run([sys.executable, script, path], check=True, capture_output=True)
    with np.load(path) as arrays:
        assert arrays["x_train"].shape == (1497, 8, 8) and arrays["x_test"].dtype == np.uint8
        assert list(arrays["class_names"]) == [str(i) for i in range(10)]
    again = subprocess.run([sys.executable, script, path], capture_output=True, text=True)
    assert again.returncode != 0 and "exists" in again.stderr
