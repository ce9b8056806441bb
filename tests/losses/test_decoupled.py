import math

import numpy as np
import pytest

from tfdistill import losses

TEACHER = np.array([[2.0, 1.0, 0.0, -1.0], [0.0, 0.5, 3.0, 1.0]], dtype="float32")
STUDENT = np.array([[0.5, 0.5, 0.0, 0.0], [1.0, -1.0, 0.0, 2.0]], dtype="float32")
LABELS = np.array([0, 2])


def _softmax(z):
    e = [math.exp(v) for v in z]
    return [v / sum(e) for v in e]


def _kl(p, q):
    return sum(pi * math.log(pi / qi) for pi, qi in zip(p, q))


def _hand_dkd(t, s, g, temperature, alpha, beta):
    p = _softmax([v / temperature for v in t])
    q = _softmax([v / temperature for v in s])
    tckd = _kl([p[g], 1 - p[g]], [q[g], 1 - q[g]])
    rest = [c for c in range(len(t)) if c != g]
    nckd = _kl(_softmax([t[c] / temperature for c in rest]), _softmax([s[c] / temperature for c in rest]))
    return temperature**2 * (alpha * tckd + beta * nckd)


@pytest.mark.parametrize("temperature,alpha,beta", [(1.0, 1.0, 8.0), (4.0, 1.0, 8.0), (2.0, 0.5, 1.0)])
def test_dkd_matches_hand_computed_values(temperature, alpha, beta):
    values = losses.decoupled_kd(TEACHER, STUDENT, LABELS, temperature, alpha, beta).numpy()
    expected = [_hand_dkd(t, s, g, temperature, alpha, beta) for t, s, g in zip(TEACHER, STUDENT, LABELS)]
    np.testing.assert_allclose(values, expected, rtol=1e-5)


def test_dkd_worked_example():
    # Teacher (2, 1, 0) -> p = (0.6652, 0.2447, 0.0900); uniform student, target 0:
    # TCKD = 0.6652 ln(0.6652 / (1/3)) + 0.3348 ln(0.3348 / (2/3)) = 0.22908.
    value = float(losses.decoupled_kd([[2.0, 1.0, 0.0]], [[0.0, 0.0, 0.0]], [0], 1.0, 1.0, 0.0)[0])
    assert value == pytest.approx(0.229077, abs=1e-5)


@pytest.mark.parametrize("temperature", [1.0, 4.0])
def test_kd_is_tckd_plus_teacher_weighted_nckd(temperature):
    # The decomposition that motivates DKD: KD = TCKD + (1 - p_t,target) NCKD.
    tckd = losses.decoupled_kd(TEACHER, STUDENT, LABELS, temperature, 1.0, 0.0).numpy()
    nckd = losses.decoupled_kd(TEACHER, STUDENT, LABELS, temperature, 0.0, 1.0).numpy()
    p_target = np.array([_softmax(t / temperature)[g] for t, g in zip(TEACHER, LABELS)])
    np.testing.assert_allclose(
        losses.hinton_kd(TEACHER, STUDENT, temperature), tckd + (1 - p_target) * nckd, rtol=1e-5
    )


def test_dkd_stays_finite_for_confident_logits():
    teacher = np.array([[60.0, -60.0, 0.0]], dtype="float32")
    value = losses.decoupled_kd(teacher, np.zeros_like(teacher), [0], 1.0, 1.0, 8.0).numpy()
    assert np.all(np.isfinite(value))


def test_dkd_without_labels_is_an_error():
    with pytest.raises(ValueError, match="needs the class labels"):
        losses.DecoupledKD()(TEACHER, STUDENT)


def test_dkd_loss_class_applies_labels_and_weights():
    per_example = losses.decoupled_kd(TEACHER, STUDENT, LABELS, 4.0, 1.0, 8.0).numpy()
    loss = losses.get("dkd")
    assert float(loss(TEACHER, STUDENT, labels=LABELS)) == pytest.approx(per_example.mean(), rel=1e-5)
    weighted = float(loss(TEACHER, STUDENT, sample_weight=np.array([0.0, 1.0]), labels=LABELS[:, None]))
    assert weighted == pytest.approx(per_example[1] / 2, rel=1e-5)


@pytest.mark.parametrize("argument", ["alpha", "beta"])
def test_negative_weights_are_refused(argument):
    with pytest.raises(ValueError, match=f"`{argument}`"):
        losses.DecoupledKD(**{argument: -1.0})
