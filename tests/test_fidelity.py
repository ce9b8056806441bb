import math
import os
import re

import numpy as np
import pytest

import tfdistill
from helpers import REPO, dense_model, toy_data



def kl_by_hand(teacher_row, student_row):
    p = [math.exp(v) / sum(math.exp(w) for w in teacher_row) for v in teacher_row]
    q = [math.exp(v) / sum(math.exp(w) for w in student_row) for v in student_row]
    return sum(pi * math.log(pi / qi) for pi, qi in zip(p, q))


def test_agreement_kl_and_accuracies_equal_hand_computed_values():
    teacher = [[2.0, 0.0], [0.0, 1.0]]
    student = [[1.0, 0.0], [1.0, 0.0]]
    report = tfdistill.fidelity_from_logits(teacher, student, labels=[0, 1])
    # Row 0: both pick class 0. Row 1: teacher class 1, student class 0, and
    # KL = (sigmoid(1) - sigmoid(-1)) * 1 = 0.462117 because log p/q = +-1.
    assert report.examples == 2
    assert report.top1_agreement == 0.5
    assert report.kl_divergence == pytest.approx((kl_by_hand(teacher[0], student[0]) + 0.4621172) / 2, rel=1e-6)
    assert kl_by_hand(teacher[1], student[1]) == pytest.approx(0.4621172, rel=1e-6)
    assert (report.teacher_accuracy, report.student_accuracy) == (1.0, 0.5)
    assert tfdistill.fidelity_from_logits(teacher, student, labels=[[0], [1]]) == report
    text = str(report)
    assert "top-1 agreement 50.00%" in text and "teacher 100.00% / student 50.00%" in text


def test_a_copy_of_the_teacher_has_full_fidelity_whatever_the_logit_offset():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(50, 10)) * 5
    shifted = logits + rng.normal(size=(50, 1)) * 100  # softmax ignores a per-row constant
    report = tfdistill.fidelity_from_logits(logits, shifted)
    assert report.top1_agreement == 1.0
    assert report.kl_divergence == pytest.approx(0.0, abs=1e-9)
    assert report.teacher_accuracy is None and "accuracy" not in str(report)


@pytest.mark.slow
def test_measure_fidelity_runs_both_models_on_the_data():
    teacher, student = dense_model(16, "teacher"), dense_model(4, "student")
    x, y = toy_data(n=100)
    report = tfdistill.measure_fidelity(teacher, student, x, y, batch_size=32)
    expected = tfdistill.fidelity_from_logits(teacher.predict(x, verbose=0), student.predict(x, verbose=0), y)
    assert report.examples == 100
    assert report.top1_agreement == expected.top1_agreement
    assert report.kl_divergence == pytest.approx(expected.kl_divergence, rel=1e-6)
    assert report.student_accuracy == pytest.approx(np.mean(student.predict(x, verbose=0).argmax(-1) == y))


def test_bad_input_is_refused_with_the_argument_named():
    with pytest.raises(ValueError, match="`student_logits`.*shape of `teacher_logits`, \\(2, 3\\)"):
        tfdistill.fidelity_from_logits(np.zeros((2, 3)), np.zeros((2, 4)))
    with pytest.raises(ValueError, match="`teacher_logits`.*\\(examples, classes\\)"):
        tfdistill.fidelity_from_logits(np.zeros(3), np.zeros(3))
    with pytest.raises(ValueError, match="`student_logits`.*NaN"):
        tfdistill.fidelity_from_logits(np.zeros((2, 3)), [[0, 0, np.nan], [0, 0, 0]])
    with pytest.raises(ValueError, match="class ids in \\[0, 2\\]"):
        tfdistill.fidelity_from_logits(np.zeros((2, 3)), np.zeros((2, 3)), labels=[0, 3])
    with pytest.raises(ValueError, match="`labels`.*shape \\(2,\\)"):
        tfdistill.fidelity_from_logits(np.zeros((2, 3)), np.zeros((2, 3)), labels=[0, 1, 2])
    softmax_student = dense_model(4, "student", activation="softmax")
    with pytest.raises(ValueError, match="`student`"):
        tfdistill.measure_fidelity(dense_model(16, "teacher"), softmax_student, toy_data()[0])


def agreement(line):
    return float(re.search(r"top-1 agreement ([0-9.]+)%", line).group(1))


@pytest.mark.slow
def test_evaluate_with_a_teacher_reports_the_shipped_students_fidelity(tmp_path, capsys):
    # The shipped student (the demo's export, version 2) matches its teacher on
    # only 94.46 % of the first 10,000 images it was trained on (94.31 % of all
    # 60,000): it is limited by capacity. The first 10,000 keep the teacher's
    # pass over them a sixth of the whole training set's.
    from tfdistill.app import cli
    from tfdistill.data import load_fashion_mnist

    (x_train, y_train), (x_test, y_test) = load_fashion_mnist()
    data = tmp_path / "fashion_mnist_10000.npz"
    np.savez(data, x_train=x_train[:10_000], y_train=y_train[:10_000], x_test=x_test, y_test=y_test)
    student = os.path.join(REPO, "saved_models", "fashion_mnist_student", "2", "assets.extra", "model.keras")
    teacher = os.path.join(REPO, "saved_models", "fashion_mnist_teacher", "1", "assets.extra", "model.keras")
    cli.main(["evaluate", student, "--teacher", teacher, "--data", str(data)])
    lines = capsys.readouterr().out.splitlines()
    assert "test accuracy 90.78% (10,000 examples)" in lines[0]
    train = next(line for line in lines if line.strip().startswith("train"))
    test = next(line for line in lines if line.strip().startswith("test"))
    # Within 0.05 points (5 images): other CPUs may round a near-tie differently.
    assert agreement(train) == pytest.approx(94.46, abs=0.05) and "(10,000 examples)" in train
    assert agreement(test) == pytest.approx(93.99, abs=0.05) and "teacher 94.08% / student 90.78%" in test
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["evaluate", student, "--teacher", "nope.keras"])
    assert exit_info.value.code == 2 and "`--teacher`: no file at 'nope.keras'" in capsys.readouterr().err


@pytest.mark.slow
def test_evaluate_refuses_a_softmax_teacher_before_running_anything(tmp_path, capsys):
    from tfdistill.app import cli

    teacher = tmp_path / "softmax_teacher.keras"
    dense_model(4, "teacher", activation="softmax").save(teacher)
    student = os.path.join(REPO, "saved_models", "fashion_mnist_student", "2", "assets.extra", "model.keras")
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["evaluate", student, "--teacher", str(teacher)])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert "`--teacher`: its output layer 'teacher_logits' applies a softmax" in error
    assert "tfdistill.strip_softmax" in error
