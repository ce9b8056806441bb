"""The run's quantization-aware distillation stage, on a tiny student and cached teacher."""

import os
import types

import keras
import numpy as np
import pytest

from tfdistill import offline
from tfdistill.app import config, quantization_stage
from tfdistill.app.exports import Exports
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
    settings = config.section("qat", epochs=1, teacher=who)
    before = [w.copy() for w in student.get_weights()]
    quantized = quantization_stage.distil_quantized(student, teacher, train, x[:64], settings)
    assert is_fake_quantized(quantized) and quantized.layers[-1].top_k == 2
    assert all(np.array_equal(a, b) for a, b in zip(before, student.get_weights()))  # the float student stays
    exports = quantization_stage.export_quantized(quantized, student, str(tmp_path), x[:64], y[:64], 0.9)
    assert not exports.refused and len(exports.tflite) == 1
    report = exports.tflite[0]
    assert report.quantization == quantization_stage.QUANTIZATION == "int8 QAD"
    assert os.path.getsize(tmp_path / quantization_stage.FILE_NAME) == report.file_bytes
    assert report.float_agreement >= 0.9 and report.top1_agreement >= 0.9


@pytest.mark.slow
def test_refused_export_is_added_to_the_refusals_not_raised(tiny, tmp_path):
    teacher, student, x, y, train = tiny
    quantized = quantization_stage.distil_quantized(student, teacher, train.take(1), x[:64],
                                                    config.section("qat", epochs=1), steps_per_epoch=1)
    exports = quantization_stage.export_quantized(quantized, student, str(tmp_path), x[:8], y[:8], 1.01)
    assert not exports.tflite and [refusal["quantization"] for refusal in exports.refused] == ["int8 QAD"]
    assert "nothing was written" in exports.refused[0]["reason"] and len(exports.errors) == 1
    assert not os.path.exists(tmp_path / quantization_stage.FILE_NAME)


def test_a_student_without_an_int8_form_is_a_refusal_not_a_failed_run(tmp_path):
    inputs = keras.Input((6,))
    student = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.LayerNormalization()(inputs)))
    x = np.zeros((8, 6), "float32")
    data = types.SimpleNamespace(train=None, sample=lambda split, count, seed: x)
    run = config.run_config(None, ["qat.epochs=1"])
    exports = Exports(tflite_dir=str(tmp_path))
    quantization_stage.distil_and_export(student, None, None, data, run, exports, x, np.zeros(8, "int64"))
    assert not exports.tflite and not exports.notes and not os.listdir(tmp_path)
    refusal, = exports.refused
    assert refusal["quantization"] == "int8 QAD" and "LayerNormalization" in refusal["reason"]
    assert "qat.epochs=0" in refusal["advice"]


def test_the_stage_runs_with_qat_epochs_and_an_int8_export():
    assert not quantization_stage.applies(config.run_config())  # the defaults: 0 epochs (int8 exported)
    assert quantization_stage.applies(config.run_config(None, ["qat.epochs=2"]))
    assert not quantization_stage.applies(config.run_config(None, ['export.tflite=["float32"]']))


def test_note_says_who_taught():
    note = quantization_stage.note(config.section("qat", teacher="student", output_top_k=0))
    assert "distilled from the float student itself" in note and "over every logit" in note
    note = quantization_stage.note(config.section("qat", epochs=2, teacher="teacher", weight_bits=4,
                                                    per_channel=False))
    assert "from the teacher for 2 epochs" in note and "4-bit weights per tensor" in note
