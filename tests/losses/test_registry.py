"""One conformance suite for every registered loss."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfdistill import losses

TEACHER = np.array([[2.0, 1.0, 0.0], [0.0, 0.0, 3.0], [1.0, -1.0, 0.5]], dtype="float32")
STUDENT = np.array([[0.5, 0.5, 0.0], [1.0, -1.0, 0.0], [0.0, 0.2, 0.1]], dtype="float32")
LABELS = np.array([0, 2, 1])
MAPS_T = np.random.default_rng(0).normal(size=(3, 2, 2, 4)).astype("float32")
MAPS_S = np.random.default_rng(1).normal(size=(3, 2, 2, 4)).astype("float32")


def _distinct(registry):
    seen = {}
    for name, factory in registry.items():
        seen.setdefault(repr(sorted(factory().get_config().items())), name)
    return sorted(seen.values())


CASES = [(name, losses.get, TEACHER, STUDENT) for name in _distinct(losses.SOFT_LOSSES)] + [
    (name, losses.get_feature_loss, MAPS_T, MAPS_S) for name in _distinct(losses.FEATURE_LOSSES)
]


@pytest.mark.parametrize("name,get,teacher,student", CASES, ids=[case[0] for case in CASES])
class TestEveryRegisteredLoss:
    def test_scalar_finite_positive_and_zero_at_the_teacher(self, name, get, teacher, student):
        loss = get(name)
        value = loss(teacher, student, labels=LABELS)
        assert value.shape == () and np.isfinite(float(value)) and float(value) > 0
        assert float(loss(teacher, teacher, labels=LABELS)) == pytest.approx(0.0, abs=1e-5)

    def test_same_value_under_tf_function(self, name, get, teacher, student):
        loss = get(name)
        eager = float(loss(teacher, student, labels=LABELS))
        graph = float(tf.function(lambda t, s: loss(t, s, labels=LABELS))(teacher, student))
        assert graph == pytest.approx(eager, rel=1e-6)

    def test_serialization_round_trip(self, name, get, teacher, student):
        loss = get(name)
        if hasattr(loss, "temperature"):
            loss.temperature = 3.0
        restored = get(losses.serialize(loss))
        assert type(restored) is type(loss)
        assert restored.get_config() == loss.get_config()
        assert float(restored(teacher, student, labels=LABELS)) == pytest.approx(
            float(loss(teacher, student, labels=LABELS)), rel=1e-6
        )
        restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(loss))
        assert restored.get_config() == loss.get_config()

    def test_gradient_is_finite_and_nonzero(self, name, get, teacher, student):
        variable = tf.Variable(student)
        with tf.GradientTape() as tape:
            value = get(name)(teacher, variable, labels=LABELS)
        gradient = tape.gradient(value, variable).numpy()
        assert np.all(np.isfinite(gradient)) and np.abs(gradient).sum() > 0

    def test_float16_inputs_are_computed_in_float32(self, name, get, teacher, student):
        value = get(name)(teacher.astype("float16"), student.astype("float16"), labels=LABELS)
        assert value.dtype == tf.float32

    def test_all_zero_sample_weights_give_zero(self, name, get, teacher, student):
        value = get(name)(teacher, student, sample_weight=np.zeros(3), labels=LABELS)
        assert float(value) == 0.0
