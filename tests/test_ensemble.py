import keras
import numpy as np
import pytest
import tensorflow as tf

import tfdistill
from helpers import dense_model, toy_data


def teachers():
    keras.utils.set_random_seed(0)
    return [dense_model(16, "a"), dense_model(8, "b")]


def test_logits_mode_is_the_weighted_mean_of_logits():
    a, b = teachers()
    x, _ = toy_data()
    ensemble = tfdistill.TeacherEnsemble([a, b], weights=[3, 1])
    np.testing.assert_allclose(ensemble(x), 0.75 * a(x) + 0.25 * b(x), rtol=1e-5, atol=1e-6)


def test_probabilities_mode_is_the_log_of_the_mean_probability():
    a, b = teachers()
    x, _ = toy_data()
    ensemble = tfdistill.TeacherEnsemble([a, b], combine="probabilities")
    expected = 0.5 * tf.nn.softmax(a(x)) + 0.5 * tf.nn.softmax(b(x))
    np.testing.assert_allclose(tf.nn.softmax(ensemble(x)), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_distilling_an_ensemble_freezes_every_teacher_and_round_trips(tmp_path):
    a, b = teachers()
    x, y = toy_data()
    before = [w.copy() for w in a.get_weights() + b.get_weights()]
    distiller = tfdistill.Distiller(tfdistill.TeacherEnsemble([a, b]), dense_model(4, "student"))
    distiller.compile(keras.optimizers.SGD(0.1))
    distiller.fit(x, y, batch_size=16, epochs=2, verbose=0)
    for old, new in zip(before, a.get_weights() + b.get_weights()):
        np.testing.assert_array_equal(old, new)
    distiller.save(tmp_path / "d.keras")
    restored = keras.models.load_model(tmp_path / "d.keras")
    np.testing.assert_allclose(restored.teacher(x), distiller.teacher(x), rtol=1e-5)
    assert restored.teacher.weights_ == [0.5, 0.5]


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"weights": [1.0]}, "one weight >= 0 per teacher"),
        ({"weights": [0, 0]}, "not all zero"),
        ({"combine": "votes"}, r"`combine`. Expected one of \['logits', 'probabilities'\]"),
    ],
)
def test_bad_ensemble_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        tfdistill.TeacherEnsemble(teachers(), **kwargs)


def test_a_single_teacher_is_not_an_ensemble():
    with pytest.raises(ValueError, match="at least two"):
        tfdistill.TeacherEnsemble(teachers()[:1])
