import math

import numpy as np
import pytest

from tfdistill import losses

RNG = np.random.default_rng(0)
TEACHER_MAPS = RNG.normal(size=(2, 3, 3, 4)).astype("float32")
STUDENT_MAPS = RNG.normal(size=(2, 3, 3, 2)).astype("float32")


def _hand_attention(features):
    energy = [sum(c**2 for c in pixel) / len(pixel) for row in features for pixel in row]
    norm = math.sqrt(sum(e**2 for e in energy))
    return [e / norm for e in energy]


def test_hint_loss_is_mean_squared_error_per_example():
    t = RNG.normal(size=(2, 3, 3, 4)).astype("float32")
    expected = ((TEACHER_MAPS - t) ** 2).reshape(2, -1).mean(axis=1)
    np.testing.assert_allclose(losses.hint_loss(TEACHER_MAPS, t), expected, rtol=1e-5)
    assert float(losses.hint_loss([[1.0, 2.0]], [[0.0, 0.0]])[0]) == pytest.approx(2.5)


def test_attention_transfer_matches_hand_computed_values():
    expected = []
    for t, s in zip(TEACHER_MAPS, STUDENT_MAPS):
        a_t, a_s = _hand_attention(t), _hand_attention(s)
        expected.append(sum((x - y) ** 2 for x, y in zip(a_s, a_t)) / len(a_t))
    np.testing.assert_allclose(losses.attention_transfer(TEACHER_MAPS, STUDENT_MAPS), expected, rtol=1e-5)


def test_attention_map_has_unit_norm_and_ignores_channel_count_and_scale():
    maps = losses.attention_map(TEACHER_MAPS).numpy()
    np.testing.assert_allclose(np.linalg.norm(maps, axis=1), 1.0, rtol=1e-6)
    doubled = np.concatenate([TEACHER_MAPS, TEACHER_MAPS], axis=-1) * 3.0
    np.testing.assert_allclose(losses.attention_map(doubled), maps, rtol=1e-5)


def test_feature_losses_by_name():
    assert isinstance(losses.get_feature_loss("fitnets"), losses.HintLoss)
    assert losses.get_feature_loss("attention").power == 2.0
    with pytest.raises(ValueError, match=r"Expected one of \['attention'"):
        losses.get_feature_loss("at")
