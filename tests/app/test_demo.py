"""The demo end to end on a Fashion-MNIST subset, with the shipped teacher: every label, and few."""

import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

from tfdistill.app import demo
from tfdistill.data import load_fashion_mnist
from tfdistill.export import latest_version_dir
from helpers import REPO

SHIPPED_TEACHER = os.path.join(REPO, "saved_models", demo.TEACHER_NAME)


def saved_models_with_the_shipped_teacher(tmp_path):
    assert latest_version_dir(SHIPPED_TEACHER), "the teacher ships under saved_models/"
    saved_models = tmp_path / "saved_models"
    shutil.copytree(SHIPPED_TEACHER, saved_models / demo.TEACHER_NAME)
    return saved_models


@pytest.mark.slow
def test_demo_on_a_subset_distils_and_exports(tmp_path):
    saved_models = saved_models_with_the_shipped_teacher(tmp_path)
    config = demo.demo_config(str(saved_models), labels_per_class=None, epochs=3, views=2, overrides=[
        "distill.batch_size=32", "data.train_subset=3000", "export.min_agreement=0.95",  # enough steps for BatchNorm
        "qat.epochs=1", "data.test_subset=2000"])
    result = demo.run(config, run_dir=str(tmp_path / "run"), verbose=0)

    accuracy = {row["name"]: row["accuracy"] for row in result["rows"]}
    assert accuracy["teacher"] >= 0.93
    assert accuracy["student scratch"] > 0.6 and accuracy["student distilled"] > 0.6
    params = [row["parameters"] for row in result["rows"]]
    assert params[0] >= 50 * params[2]
    assert len(result["histories"]["distilled"]["soft_loss"]) == 3
    fidelity = result["fidelity"]
    # 300 of the 3,000 training images are held out for validation.
    assert (fidelity["train"]["examples"], fidelity["test"]["examples"]) == (2700, 2000)
    assert fidelity["test"]["student_accuracy"] == pytest.approx(accuracy["student distilled"])
    assert fidelity["test"]["teacher_accuracy"] == pytest.approx(accuracy["teacher"])
    # The export's serving signature gives the student's own predictions; the TFLite files go beside it,
    # the int8 student's quantization-aware one too.
    path = result["saved_model"]
    assert path == str(saved_models / demo.STUDENT_NAME / "1")
    assert sorted(os.listdir(os.path.join(path, "assets.extra"))) == [
        "model.keras", "student_float32.tflite", "student_int8.tflite", "student_int8_qad.tflite"]
    assert [report["quantization"] for report in result["tflite"]] == ["float32", "int8", "int8 QAD"]
    _, (x_test, y_test) = load_fashion_mnist()
    serve = tf.saved_model.load(path).signatures["serving_default"]
    outputs = serve(image=tf.constant(x_test[:200]))
    accuracy = np.mean(outputs["class_id"].numpy() == y_test[:200])
    assert accuracy > 0.6


@pytest.mark.slow
def test_the_few_labels_demo_trains_the_student_alone_on_its_labels_only(tmp_path, capsys):
    saved_models = saved_models_with_the_shipped_teacher(tmp_path)
    config = demo.demo_config(str(saved_models), labels_per_class=10, epochs=2, views=2, export=False, overrides=[
        "distill.batch_size=64", "data.train_subset=3000", "data.test_subset=2000"])
    result = demo.run(config, run_dir=str(tmp_path / "run"), verbose=0)

    # 300 of the 3,000 images are held out for validation; 10 labels of each class are kept of the 2,700 others.
    assert result["students"] == {
        "scratch": {"labeled": 100, "unlabeled": 0, "steps_per_epoch": 43, "epochs": 2},
        "distilled": {"labeled": 100, "unlabeled": 2600, "steps_per_epoch": 43, "epochs": 2},
    }
    assert [len(result["histories"][name]["loss"]) for name in ("scratch", "distilled")] == [2, 2]
    rows = {row["name"]: row for row in result["rows"]}
    assert rows["student scratch"]["trained_on"] == "100 labeled"
    assert rows["student distilled"]["trained_on"] == "100 labeled + 2,600 unlabeled"
    printed = capsys.readouterr().out
    assert "100 labeled + 2,600 unlabeled" in printed and "trained on the 100 labeled examples only" in printed
    report = open(tmp_path / "run" / "report.md").read()
    assert "| 100 labeled |" in report and "| 100 labeled + 2,600 unlabeled |" in report
    assert result["saved_model"] is None and not os.path.exists(saved_models / demo.STUDENT_NAME)


def test_the_demo_distils_its_int8_export_for_its_rounding_unless_it_exports_nothing():
    assert demo.demo_config().qat.epochs == demo.QAT_EPOCHS == 2
    assert demo.demo_config(overrides=["qat.epochs=0"]).qat.epochs == 0
    assert demo.demo_config(export=False).qat.epochs == 0
