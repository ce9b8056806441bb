"""The run's quantization-aware distillation stage, on a tiny student and cached teacher."""

import os

import keras
import numpy as np
import pytest

from tfdistill import offline
from tfdistill.app import config, quantization_stage
from tfdistill.app.models import build_student
from tfdistill.quantization import is_fake_quantized


@pytest.fixture(scope="module")
def tiny():
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.random((256, 28, 28, 1)).astype("float32")
    teacher = build_student(width=4, name="teacher")
    y = teacher.predict(x, verbose=0).argmax(-1)  # labels the teacher fits, so the export is checkable
    student = build_student(width=4)
    student.set_weights(teacher.get_weights())
    logits = offline.compute_teacher_logits(teacher, x, verbose=0)
    train = offline.offline_dataset(x, y, logits, batch_size=64)
    return teacher, student, x, y, train


@pytest.mark.slow
@pytest.mark.parametrize("who", ["teacher", "student"])
def test_stage_distils_the_int8_student_and_exports_it_beside_the_float_one(tiny, tmp_path, who):
    teacher, student, x, y, train = tiny
    settings = {**config.DEFAULTS["qat"], "epochs": 1, "teacher": who}
    before = [w.copy() for w in student.get_weights()]
    quantized = quantization_stage.distil_quantized(student, teacher, train, x[:64], settings)
    assert is_fake_quantized(quantized) and quantized.layers[-1].top_k == 2
    assert all(np.array_equal(a, b) for a, b in zip(before, student.get_weights()))  # the float student stays
    report, refusal = quantization_stage.export_quantized(quantized, student, str(tmp_path), x[:64], y[:64], 0.9)
    assert refusal is None and report.quantization == "int8 QAD"
    assert os.path.getsize(tmp_path / quantization_stage.FILE_NAME) == report.file_bytes
    assert report.float_agreement >= 0.9 and report.top1_agreement >= 0.9


def test_refused_export_is_returned_not_raised(tiny, tmp_path):
    teacher, student, x, y, train = tiny
    settings = {**config.DEFAULTS["qat"], "epochs": 1}
    quantized = quantization_stage.distil_quantized(student, teacher, train.take(1), x[:64], settings)
    report, refusal = quantization_stage.export_quantized(quantized, student, str(tmp_path), x[:8], y[:8], 1.01)
    assert report is None and refusal["quantization"] == "int8 QAD" and "nothing was written" in refusal["reason"]
    assert not os.path.exists(tmp_path / quantization_stage.FILE_NAME)


def test_note_says_who_taught():
    note = quantization_stage.note({**config.DEFAULTS["qat"], "teacher": "student", "output_top_k": 0})
    assert "distilled from the float student itself" in note and "over every logit" in note
