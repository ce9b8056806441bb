import keras
import numpy as np
import pytest
import tensorflow as tf

import tfdistill
from tfdistill import offline
from tfdistill.batch_norm import PreciseBatchNorm, batch_norm_layers, recompute_batch_norm_statistics
from tfdistill.data import load_fashion_mnist, make_dataset, to_float_images
from tfdistill.app.models import build_student
from helpers import dense_model, toy_data


def _hidden(model, x):
    """The first BatchNorm layer's input, by hand: relu(x @ W + b)."""
    kernel, bias = model.get_layer("student_hidden").get_weights()
    return np.maximum(x @ kernel + bias, 0.0)


def test_statistics_are_the_population_moments_over_uneven_batches():
    model = dense_model(5, "student", batch_norm=True)
    x, _ = toy_data(n=10)
    # Batches of 4, 4 and 2: a mean of per-batch moments would weigh the last
    # two examples double and miss the spread between batch means.
    batches = [x[:4], x[4:8], x[8:]]
    assert recompute_batch_norm_statistics(model, batches) == 10
    hidden = _hidden(model, x)
    bn = model.get_layer("student_bn")
    np.testing.assert_allclose(bn.moving_mean.numpy(), hidden.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bn.moving_variance.numpy(), hidden.var(0), rtol=1e-4, atol=1e-6)
    assert bn.momentum == 0.99  # restored


def test_only_moving_statistics_change():
    model = dense_model(5, "student", batch_norm=True)
    before = {w.path: w.numpy() for w in model.trainable_weights}
    x, y = toy_data(n=32)
    recompute_batch_norm_statistics(model, tf.data.Dataset.from_tensor_slices((x, y)).batch(8))
    for w in model.trainable_weights:
        np.testing.assert_array_equal(w.numpy(), before[w.path])


def test_steps_limit_the_pass_and_bad_arguments_are_named():
    model = dense_model(5, "student", batch_norm=True)
    x, _ = toy_data(n=32)
    assert recompute_batch_norm_statistics(model, [x[:8], x[8:16], x[16:]], steps=2) == 16
    with pytest.raises(ValueError, match="argument `steps`"):
        recompute_batch_norm_statistics(model, [x], steps=0)
    with pytest.raises(ValueError, match="argument `data`"):
        recompute_batch_norm_statistics(model, [])


def test_model_without_batch_norm_is_left_alone():
    model = dense_model(5, "student")
    x, _ = toy_data(n=8)
    assert batch_norm_layers(model) == []
    assert recompute_batch_norm_statistics(model, [x]) == 0


def test_nested_models_are_found():
    inner = dense_model(5, "student", batch_norm=True)
    outer = keras.Sequential([keras.Input((8,)), inner, keras.layers.BatchNormalization(name="outer_bn")])
    assert [layer.name for layer in batch_norm_layers(outer)] == ["student_bn", "outer_bn"]


@pytest.mark.slow
def test_callback_recomputes_the_students_layers_from_cached_batches():
    keras.utils.set_random_seed(0)
    teacher = dense_model(16, "teacher")
    student = dense_model(5, "student", batch_norm=True)
    x, y = toy_data(n=48)
    logits = offline.compute_teacher_logits(teacher, x, dtype="float32", verbose=0)
    train = offline.offline_dataset(x, y, logits, batch_size=16, shuffle=False)
    distiller = tfdistill.Distiller(teacher, student)
    distiller.compile(keras.optimizers.SGD(0.05))
    precise = PreciseBatchNorm(train)
    distiller.fit(train, epochs=2, verbose=0, callbacks=[precise])
    assert precise.examples == 48
    hidden = _hidden(student, x)
    bn = student.get_layer("student_bn")
    np.testing.assert_allclose(bn.moving_mean.numpy(), hidden.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bn.moving_variance.numpy(), hidden.var(0), rtol=1e-4, atol=1e-6)


@pytest.mark.slow
def test_a_briefly_trained_student_evaluates_as_it_trained():
    """Fashion-MNIST, 40 steps: moving averages lag; precise statistics do not."""
    (x, y), (x_test, y_test) = load_fashion_mnist()
    x, y = x[:2560], y[:2560]
    keras.utils.set_random_seed(0)
    student = build_student(width=8)
    student.compile(keras.optimizers.Adam(3e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    student.fit(make_dataset(x, y, batch_size=64, shuffle=True, seed=0), epochs=1, verbose=0)
    images = to_float_images(x_test[:2000])

    def accuracy(training):
        return float(np.mean(np.argmax(student(images, training=training), -1) == y_test[:2000]))

    with_batch_statistics = accuracy(training=True)
    lagging = accuracy(training=False)
    recompute_batch_norm_statistics(student, make_dataset(x, y, batch_size=256))
    precise = accuracy(training=False)
    assert lagging < with_batch_statistics - 0.2  # the fault: near chance in inference mode
    assert precise > with_batch_statistics - 0.03
