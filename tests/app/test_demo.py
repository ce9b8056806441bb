"""The demo end to end on a Fashion-MNIST subset, with the shipped teacher."""

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


@pytest.mark.slow
def test_demo_on_a_subset_distils_and_exports(tmp_path):
    assert latest_version_dir(SHIPPED_TEACHER), "the teacher ships under saved_models/"
    saved_models = tmp_path / "saved_models"
    shutil.copytree(SHIPPED_TEACHER, saved_models / demo.TEACHER_NAME)
    recipe = demo.Recipe(epochs=3, views=2, batch_size=32)  # enough steps for BatchNorm statistics
    result = demo.run(str(saved_models), recipe=recipe, train_subset=6000, min_agreement=0.95, verbose=0)

    assert result["teacher_accuracy"] >= 0.93
    assert result["scratch_accuracy"] > 0.6 and result["distilled_accuracy"] > 0.6
    params = [row[1] for row in result["rows"]]
    assert params[0] >= 50 * params[2]
    assert len(result["distilled_history"]["soft_loss"]) == 3
    fidelity = result["fidelity"]
    assert (fidelity["train"].examples, fidelity["test"].examples) == (6000, 10_000)
    assert fidelity["test"].student_accuracy == pytest.approx(result["distilled_accuracy"])
    assert fidelity["test"].teacher_accuracy == pytest.approx(result["teacher_accuracy"])
    # The export's serving signature gives the student's own predictions.
    path = result["export_path"]
    assert path == str(saved_models / demo.STUDENT_NAME / "1")
    _, (x_test, y_test) = load_fashion_mnist()
    serve = tf.saved_model.load(path).signatures["serving_default"]
    outputs = serve(image=tf.constant(x_test[:200]))
    accuracy = np.mean(outputs["class_id"].numpy() == y_test[:200])
    assert accuracy > 0.6
