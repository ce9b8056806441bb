import keras
import numpy as np
import pytest
import tensorflow as tf

from tfdistill.tuning import recipe_compile_kwargs, tune_recipe


def _task(n=240, noise=0.6, seed=0):
    """Labels from a linear rule; a `noise` share of the training labels redrawn at random."""
    rng = np.random.default_rng(seed)
    rule = rng.normal(size=(8, 3)).astype("float32")
    x = rng.normal(size=(n + 200, 8)).astype("float32")
    y = np.argmax(x @ rule, -1).astype("int32")
    x_train, y_train = x[:n], y[:n].copy()
    noisy = rng.random(n) < noise
    y_train[noisy] = rng.integers(0, 3, noisy.sum())
    return rule, (x_train, y_train), (x[n:], y[n:])


def _linear(rule=None, shift=0):
    inputs = keras.Input((8,))
    layer = keras.layers.Dense(3)
    model = keras.Model(inputs, layer(inputs))
    if rule is not None:  # a teacher that knows the rule (shift=1: a wrong one)
        layer.set_weights([5.0 * np.roll(rule, shift, axis=1), np.zeros(3, "float32")])
    return model


def _train(x, y):
    return tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x), seed=0).batch(32)


def test_recipe_weights_and_bad_family():
    kwargs = recipe_compile_kwargs({"loss": "dist", "temperature": 4.0, "soft_share": 0.5})
    assert (kwargs["hard_weight"], kwargs["soft_weight"]) == (0.5, 0.5)
    assert recipe_compile_kwargs({"loss": "alone"})["soft_weight"] == 0.0
    with pytest.raises(ValueError, match="recipe key `loss`"):
        recipe_compile_kwargs({"loss": "kl"})


@pytest.mark.slow
def test_a_teacher_that_knows_more_than_noisy_labels_is_chosen(tmp_path):
    rule, (x, y), validation = _task()
    result = tune_recipe(
        _linear(rule), _linear, _train(x, y), validation, epochs=3, directory=str(tmp_path),
        families=("kd",), temperatures=(1.0,), soft_shares=(1.0,), seeds=(0, 1),
        learning_rates=(0.05, 0.1), verbose=0,
    )
    assert result.best["loss"] == "kd"
    assert len(result.validation_gain.differences) == 2
    assert result.validation_gain.mean > 5  # points: clean soft targets beat 60 % label noise
    assert result.distilled and "Returning the distilled student" in result.summary
    assert result.student.count_params() == 27


@pytest.mark.slow
def test_when_nothing_beats_alone_the_student_alone_is_returned(tmp_path):
    rule, (x, y), validation = _task(noise=0.0)
    result = tune_recipe(
        _linear(rule, shift=1), _linear, _train(x, y), validation, epochs=3, directory=str(tmp_path),
        families=("kd",), temperatures=(1.0,), soft_shares=(1.0,), seeds=(0,),
        learning_rates=(0.05, 0.1), verbose=0,
    )
    assert result.best["loss"] == "alone"
    assert not result.distilled
    assert "No distillation recipe beat the student alone" in result.summary
    accuracy = np.mean(np.argmax(result.student.predict(validation[0], verbose=0), -1) == validation[1])
    assert accuracy > 0.8  # the returned student learned the labels, not the wrong teacher


def test_bad_arguments_are_named(tmp_path):
    rule, (x, y), validation = _task()
    with pytest.raises(ValueError, match="argument `families`"):
        tune_recipe(_linear(rule), _linear, _train(x, y), validation, 3, str(tmp_path), families=("kl",))
    with pytest.raises(ValueError, match="argument `epochs`"):
        tune_recipe(_linear(rule), _linear, _train(x, y), validation, 0, str(tmp_path))
