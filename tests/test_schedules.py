import keras
import numpy as np
import pytest

import tfdistill
from tfdistill import losses
from helpers import dense_model, toy_data


def test_linear_warmup_values():
    schedule = tfdistill.schedules.LinearWarmup(2.0, warmup_steps=4, initial=1.0)
    assert [float(schedule(s)) for s in (0, 1, 4, 9)] == pytest.approx([1.0, 1.25, 2.0, 2.0])


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
