import numpy as np
import pytest

from tfdistill import losses
from tfdistill.losses import MultiLevelKD, multilevel_kd

TEACHER = np.array([[2.0, 1.0, 0.0], [0.0, 0.0, 3.0], [1.0, -1.0, 0.5]], dtype="float32")
STUDENT = np.array([[0.5, 0.5, 0.0], [1.0, -1.0, 0.0], [0.0, 0.2, 0.1]], dtype="float32")


def _softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _by_hand(t, s, temperature, weights=(1.0, 1.0, 1.0)):
    p, q = _softmax(t / temperature), _softmax(s / temperature)
    b, c = p.shape
    instance = np.sum(p * np.log(p / q), -1)
    batch = np.sum((p @ p.T - q @ q.T) ** 2, -1) / b
    classes = np.sum((p.T @ p - q.T @ q) ** 2) / c / b
    return temperature**2 * (weights[0] * instance + weights[1] * batch + weights[2] * classes)


def test_values_equal_hand_computed_ones():
    expected = (_by_hand(TEACHER, STUDENT, 2.0) + _by_hand(TEACHER, STUDENT, 4.0)) / 2
    np.testing.assert_allclose(multilevel_kd(TEACHER, STUDENT, (2.0, 4.0)), expected, rtol=1e-5)


def test_level_weights_and_the_instance_level_is_hinton_kd():
    instance_only = multilevel_kd(TEACHER, STUDENT, (3.0,), 1.0, 0.0, 0.0)
    np.testing.assert_allclose(instance_only, losses.hinton_kd(TEACHER, STUDENT, 3.0), rtol=1e-5)
    np.testing.assert_allclose(
        multilevel_kd(TEACHER, STUDENT, (3.0,), 0.0, 2.0, 0.5), _by_hand(TEACHER, STUDENT, 3.0, (0.0, 2.0, 0.5)),
        rtol=1e-5,
    )


def test_registered_by_name_with_checked_arguments():
    loss = losses.get("mlkd")
    assert isinstance(loss, MultiLevelKD) and loss.temperatures == (2.0, 3.0, 4.0, 5.0, 6.0)
    assert float(loss(TEACHER, STUDENT)) == pytest.approx(float(np.mean(_by_hand_mean())), rel=1e-5)
    with pytest.raises(ValueError, match="argument `temperatures`"):
        MultiLevelKD(temperatures=(2.0, 0.0))
    with pytest.raises(ValueError, match="argument `batch_weight`"):
        MultiLevelKD(batch_weight=-1.0)


def _by_hand_mean():
    return np.mean([_by_hand(TEACHER, STUDENT, t) for t in (2.0, 3.0, 4.0, 5.0, 6.0)], axis=0)
