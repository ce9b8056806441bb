"""The Distiller's objective: hard loss, loss weights and replica scaling, by hand."""

import numpy as np
import pytest
import tensorflow as tf

import tfdistill
from tfdistill import objective


def test_the_hard_loss_by_name_is_the_from_logits_cross_entropy():
    loss = objective.get_hard_loss("sparse_categorical_crossentropy")
    logits = np.array([[2.0, 0.0]], "float32")
    expected = -np.log(np.exp(2.0) / (np.exp(2.0) + 1.0))
    np.testing.assert_allclose(float(loss(np.array([0]), logits)), expected, rtol=1e-6)
    with pytest.raises(ValueError, match="Expected one of"):
        objective.get_hard_loss("mse")


def test_weights_must_not_both_be_zero_unless_features_add_a_loss():
    assert objective.get_weights(0.0, 1.0) == (0.0, 1.0)
    with pytest.raises(ValueError, match="at least one must be > 0"):
        objective.get_weights(0.0, 0.0)
    assert objective.get_weights(0.0, 0.0, has_features=True) == (0.0, 0.0)
    with pytest.raises(ValueError, match="loss_weights"):
        objective.get_weights(1.0, 1.0, compile_kwargs={"loss_weights": [1, 2]})


def test_a_schedule_weight_is_read_at_the_step():
    schedule = tfdistill.schedules.LinearWarmup(1.0, 10)
    assert not objective.is_zero(schedule) and objective.is_zero(0.0)
    np.testing.assert_allclose(float(objective.weight_at(schedule, tf.constant(5))), 0.5)
    assert objective.weight_at(0.25, tf.constant(5)) == 0.25


def test_replica_scaling_is_the_identity_on_one_replica_and_divides_on_two():
    value = tf.constant(3.0)
    assert float(objective.scale_for_replicas(value)) == 3.0
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    scaled = strategy.run(lambda: objective.scale_for_replicas(tf.constant(3.0)))
    restored = strategy.run(lambda: objective.unscale_for_replicas(tf.constant(1.5)))
    assert [float(v) for v in strategy.experimental_local_results(scaled)] == [1.5, 1.5]
    assert [float(v) for v in strategy.experimental_local_results(restored)] == [3.0, 3.0]
