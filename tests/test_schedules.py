import keras
import numpy as np
import pytest
import tensorflow as tf

import tfdistill
from tfdistill import losses
from helpers import dense_model, toy_data


def test_linear_warmup_values():
    schedule = tfdistill.schedules.LinearWarmup(2.0, warmup_steps=4, initial=1.0)
    assert [float(schedule(s)) for s in (0, 1, 4, 9)] == pytest.approx([1.0, 1.25, 2.0, 2.0])


@pytest.mark.slow
def test_soft_weight_schedule_is_evaluated_at_the_optimizer_step(tmp_path):
    keras.utils.set_random_seed(0)
    distiller = tfdistill.Distiller(dense_model(16, "teacher"), dense_model(4, "student"))
    distiller.compile(
        keras.optimizers.SGD(0.0),  # no updates: every step sees the same models
        hard_weight=1.0,
        soft_weight=tfdistill.schedules.LinearWarmup(1.0, warmup_steps=2),
    )
    x, y = toy_data(n=16)
    losses_per_step = []
    for _ in range(3):
        logs = distiller.fit(x, y, batch_size=16, epochs=1, verbose=0).history
        losses_per_step.append((logs["loss"][0], logs["hard_loss"][0], logs["soft_loss"][0]))
    for step, (loss, hard, soft) in enumerate(losses_per_step):
        assert loss == pytest.approx(hard + min(step / 2, 1.0) * soft, rel=1e-5)
    distiller.save(tmp_path / "d.keras")
    restored = keras.models.load_model(tmp_path / "d.keras")
    assert isinstance(restored.soft_weight, tfdistill.schedules.LinearWarmup)
    assert restored.soft_weight.get_config() == distiller.soft_weight.get_config()


@pytest.mark.slow
def test_dkd_in_the_distiller_gets_the_labels():
    keras.utils.set_random_seed(0)
    distiller = tfdistill.Distiller(dense_model(16, "teacher"), dense_model(4, "student"))
    distiller.compile(keras.optimizers.SGD(0.1), soft_loss="dkd")
    x, y = toy_data()
    expected = losses.decoupled_kd(distiller.teacher(x), distiller.student(x), y, 4.0, 1.0, 8.0)
    logs = distiller.evaluate(x, y, batch_size=len(x), return_dict=True, verbose=0)
    assert logs["soft_loss"] == pytest.approx(float(np.mean(expected)), rel=1e-5)
    assert np.all(np.isfinite(distiller.fit(x, y, batch_size=16, epochs=2, verbose=0).history["loss"]))


def test_bad_warmup_steps():
    with pytest.raises(ValueError, match="`warmup_steps`. Expected an integer >= 1. Received: warmup_steps=0"):
        tfdistill.schedules.LinearWarmup(1.0, 0)


# ----------------------------------------------------------- temperature
def _cooling():
    return tfdistill.schedules.LinearWarmup(1.0, warmup_steps=10, initial=4.0)  # T: 4 -> 1


@pytest.mark.parametrize("loss_class", [losses.KnowledgeDistillation, losses.SoftenedProbabilityMSE, losses.DIST])
def test_a_temperature_schedule_is_evaluated_at_the_given_step(loss_class):
    rng = np.random.default_rng(0)
    teacher, student = rng.normal(size=(4, 5)).astype("float32"), rng.normal(size=(4, 5)).astype("float32")
    scheduled = loss_class(temperature=_cooling())
    for step, temperature in ((0, 4.0), (5, 2.5), (10, 1.0), (30, 1.0)):
        expected = loss_class(temperature=temperature)(teacher, student)
        assert float(scheduled(teacher, student, step=step)) == pytest.approx(float(expected), rel=1e-5)


def test_dkd_temperature_schedule():
    rng = np.random.default_rng(1)
    teacher, student = rng.normal(size=(4, 5)).astype("float32"), rng.normal(size=(4, 5)).astype("float32")
    labels = np.array([0, 1, 2, 3])
    value = losses.DecoupledKD(temperature=_cooling())(teacher, student, labels=labels, step=5)
    assert float(value) == pytest.approx(float(losses.DecoupledKD(temperature=2.5)(teacher, student, labels=labels)), rel=1e-5)


def test_a_temperature_schedule_without_a_step_is_an_error():
    with pytest.raises(ValueError, match="temperature is a schedule.*step=None"):
        losses.KnowledgeDistillation(temperature=_cooling())(np.zeros((1, 3)), np.zeros((1, 3)))


def test_temperature_schedules_must_start_positive_and_round_trip():
    with pytest.raises(ValueError, match="must stay > 0"):
        losses.KnowledgeDistillation(temperature=tfdistill.schedules.LinearWarmup(1.0, 10))
    loss = losses.KnowledgeDistillation(temperature=_cooling())
    restored = losses.get(losses.serialize(loss))
    assert isinstance(restored.temperature, tfdistill.schedules.LinearWarmup)
    assert float(restored.temperature(5)) == pytest.approx(2.5)


@pytest.mark.slow
def test_distiller_follows_the_temperature_schedule_and_keeps_it_when_saved(tmp_path):
    keras.utils.set_random_seed(0)
    teacher, student = dense_model(16, "teacher"), dense_model(4, "student")
    x, y = toy_data(n=16)
    distiller = tfdistill.Distiller(teacher, student)
    distiller.compile(keras.optimizers.SGD(0.0), soft_loss=losses.KnowledgeDistillation(_cooling()))
    t, s = teacher.predict(x, verbose=0), student.predict(x, verbose=0)
    for step, temperature in ((0, 4.0), (10, 1.0)):
        distiller.optimizer.iterations.assign(step)
        logs = distiller.evaluate(x, y, batch_size=16, return_dict=True, verbose=0)
        assert logs["soft_loss"] == pytest.approx(float(losses.KnowledgeDistillation(temperature)(t, s)), rel=1e-5)
    distiller.save(tmp_path / "d.keras")
    restored = keras.models.load_model(tmp_path / "d.keras")
    assert float(restored.soft_loss.temperature(5)) == pytest.approx(2.5)


def test_a_temperature_schedule_that_reaches_zero_stops_at_that_step():
    falling = keras.optimizers.schedules.PolynomialDecay(2.0, 10, end_learning_rate=0.0)
    loss = losses.KnowledgeDistillation(temperature=falling)  # T(0) = 2 passes the eager check
    assert float(loss(np.zeros((1, 3)), np.ones((1, 3)), step=5)) >= 0.0
    with pytest.raises(tf.errors.InvalidArgumentError, match="reached a value <= 0"):
        loss(np.zeros((1, 3)), np.ones((1, 3)), step=10)
