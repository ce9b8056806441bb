"""The NaN/Inf guard: a real NaN in a real batch never reaches the student's weights."""

import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfdistill
from tfdistill import offline
from helpers import TESTS_DIR


def teacher():
    x_in = keras.Input((6, 6, 1))
    return keras.Model(x_in, keras.layers.Dense(4)(keras.layers.Flatten()(x_in)), name="teacher")


def max_pooling_student(batch_norm=False):
    """Conv -> ReLU -> max pooling: the pooling drops a NaN, so the loss stays finite."""
    x_in = keras.Input((6, 6, 1))
    x = keras.layers.BatchNormalization()(x_in) if batch_norm else x_in
    x = keras.layers.Conv2D(4, 3, activation="relu")(x)
    x = keras.layers.Flatten()(keras.layers.MaxPooling2D(4)(x))
    return keras.Model(x_in, keras.layers.Dense(4)(x), name="student")


@pytest.fixture
def batches():
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(40, 6, 6, 1)).astype("float32")
    y = rng.integers(0, 4, 40).astype("int32")
    return x, y


def dataset(x, y, *rest):
    return tf.data.Dataset.from_tensor_slices((x, y, *rest)).batch(8)


def weights_after_good_steps(x, y, teacher_model, student, initial, steps, **compile_kwargs):
    student.set_weights(initial)
    distiller = tfdistill.Distiller(teacher_model, student)
    distiller.compile(keras.optimizers.SGD(0.1), **compile_kwargs)
    distiller.fit(dataset(x[: 8 * steps], y[: 8 * steps]), verbose=0)
    return student.get_weights()


@pytest.mark.slow
def test_a_nan_pixel_behind_a_max_leaves_the_loss_finite_and_the_gradients_nan(batches):
    """The fault itself, without the guard: fit ends quietly with a NaN student."""
    x, y = batches
    x[36, 3, 3, 0] = np.nan  # one pixel of one image, in the last batch of 8
    student = max_pooling_student()
    student.compile(keras.optimizers.SGD(0.1), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = student.fit(dataset(x, y), verbose=0).history
    assert np.isfinite(history["loss"]).all()
    assert not all(np.isfinite(w).all() for w in student.get_weights())


@pytest.mark.slow
def test_a_nan_pixel_stops_the_step_naming_the_inputs_and_the_student_keeps_its_last_good_weights(batches):
    x, y = batches
    x[20, 3, 3, 0] = np.nan
    teacher_model, student = teacher(), max_pooling_student()
    initial = student.get_weights()
    distiller = tfdistill.Distiller(teacher_model, student)
    distiller.compile(keras.optimizers.SGD(0.1))
    with pytest.raises(tfdistill.NonFiniteDataError, match=r"step 2 \(0-based\).*the inputs `x`") as error:
        distiller.fit(dataset(x, y), verbose=0)
    assert isinstance(error.value, tfdistill.NonFiniteLossError)  # one `except` catches every kind
    assert (error.value.step, error.value.where, error.value.terms) == (2, "inputs", {})
    after_error = student.get_weights()
    expected = weights_after_good_steps(x, y, teacher_model, max_pooling_student(), initial, steps=2)
    for got, want in zip(after_error, expected):
        np.testing.assert_allclose(got, want, rtol=1e-6)
        assert np.isfinite(got).all()


@pytest.mark.slow
def test_batch_norm_statistics_stay_finite_the_check_runs_before_the_forward_pass(batches):
    x, y = batches
    x[20, 3, 3, 0] = np.inf
    student = max_pooling_student(batch_norm=True)
    distiller = tfdistill.Distiller(teacher(), student)
    distiller.compile(keras.optimizers.SGD(0.1))
    with pytest.raises(tfdistill.NonFiniteDataError, match="the inputs `x`"):
        distiller.fit(dataset(x, y), verbose=0)
    batch_norm = student.layers[1]
    assert np.isfinite(batch_norm.moving_mean.numpy()).all()
    assert np.isfinite(batch_norm.moving_variance.numpy()).all()


class SquareRootOfSquare(keras.layers.Layer):
    """|x| as sqrt(x^2): the value is fine, the gradient at 0 is 0 * inf = NaN."""

    def call(self, x):
        return keras.ops.sqrt(keras.ops.square(x))


@pytest.mark.slow
def test_gradients_that_are_nan_while_every_loss_term_is_finite_stop_the_step(batches):
    x, y = batches
    x_in = keras.Input((6, 6, 1))
    h = keras.layers.Dense(5, activation="relu")(keras.layers.Flatten()(x_in))
    student = keras.Model(x_in, keras.layers.Dense(4)(SquareRootOfSquare()(h)), name="student")
    initial = [w.copy() for w in student.get_weights()]
    distiller = tfdistill.Distiller(teacher(), student)
    distiller.compile(keras.optimizers.SGD(0.1))
    with pytest.raises(tfdistill.NonFiniteUpdateError, match=r"every loss term is finite.*the gradients") as error:
        distiller.fit(dataset(x, y), verbose=0)
    assert error.value.where == "gradients"
    assert all(np.isfinite(value) for value in error.value.terms.values()) and error.value.terms
    assert error.value.step == 0  # ReLU zeros occur in the first batch
    for got, want in zip(student.get_weights(), initial):
        np.testing.assert_array_equal(got, want)


@pytest.mark.slow
def test_a_nan_sample_weight_in_a_dataset_is_named(batches):
    x, y = batches
    weights = np.ones(40, "float32")
    weights[33] = np.nan  # the fifth batch
    distiller = tfdistill.Distiller(teacher(), max_pooling_student())
    distiller.compile(keras.optimizers.SGD(0.1))
    with pytest.raises(tfdistill.NonFiniteDataError, match="the sample weights") as error:
        distiller.fit(dataset(x, y, weights), verbose=0)
    assert (error.value.step, error.value.where) == (4, "sample_weight")


@pytest.mark.slow
def test_nan_in_cached_teacher_logits_is_named_as_the_cache(batches):
    x, y = batches
    logits = offline.compute_teacher_logits(teacher(), x, dtype="float32", verbose=0)
    logits[0, 12, 1] = np.inf
    distiller = tfdistill.Distiller(teacher(), max_pooling_student())
    distiller.compile(keras.optimizers.SGD(0.1), soft_loss=tfdistill.KnowledgeDistillation(temperature=1.0))
    with pytest.raises(tfdistill.NonFiniteDataError, match=r"the cached teacher logits \(`cached_teacher_logits`\)") as error:
        distiller.fit(offline.offline_dataset(x, y, logits, batch_size=8, shuffle=False), verbose=0)
    assert (error.value.step, error.value.where) == (1, "cached_teacher_logits")


@pytest.mark.slow
def test_a_finite_run_is_unchanged_by_the_guard(batches):
    x, y = batches
    student = max_pooling_student()
    distiller = tfdistill.Distiller(teacher(), student)
    distiller.compile(keras.optimizers.SGD(0.1))
    history = distiller.fit(dataset(x, y), epochs=2, verbose=0).history
    assert np.isfinite(history["loss"]).all()
    assert all(np.isfinite(w).all() for w in student.get_weights())


MIRRORED = """
import os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
import tfdistill_command
tfdistill_command.import_tensorflow(quiet=False)
import numpy as np, tensorflow as tf, keras
sys.path.insert(0, {tests!r})
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import tfdistill
from test_guard import dataset, max_pooling_student, teacher
keras.utils.set_random_seed(0)
rng = np.random.default_rng(0)
x = rng.uniform(size=(40, 6, 6, 1)).astype("float32")
y = rng.integers(0, 4, 40).astype("int32")
x[20, 3, 3, 0] = np.nan
with tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]).scope():
    student = max_pooling_student()
    distiller = tfdistill.Distiller(teacher(), student)
    distiller.compile(keras.optimizers.SGD(0.1))
try:
    distiller.fit(dataset(x, y), verbose=0)
except tfdistill.NonFiniteDataError as error:
    finite = all(np.isfinite(w).all() for w in student.get_weights())
    print("RESULT", error.step, error.where, finite)
"""


@pytest.mark.slow
def test_under_mirrored_strategy_the_error_is_the_same():
    # Its own process: the strategy needs two logical devices on a fresh context, and the replicas
    # must agree to skip the update through the guard's all-reduce, or they would deadlock.
    script = MIRRORED.format(tests=TESTS_DIR)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert "RESULT 2 inputs True" in result.stdout, result.stderr[-3000:]


@pytest.mark.slow
def test_train_on_batch_raises_the_same_error(batches):
    x, y = batches
    x[3, 0, 0, 0] = np.inf
    distiller = tfdistill.Distiller(teacher(), max_pooling_student())
    distiller.compile(keras.optimizers.SGD(0.1))
    distiller.train_on_batch(x[8:16], y[8:16])
    with pytest.raises(tfdistill.NonFiniteDataError, match=r"step 1 \(0-based\).*the inputs `x`"):
        distiller.train_on_batch(x[:8], y[:8])


@pytest.mark.slow
def test_under_xla_the_guard_still_stops_the_step_and_keeps_the_last_good_state(batches):
    """XLA drops assertions; the guard decides in the graph instead, so `jit_compile=True` keeps it."""
    x, y = batches
    x[20, 3, 3, 0] = np.nan
    teacher_model, student = teacher(), max_pooling_student(batch_norm=True)
    initial = student.get_weights()
    distiller = tfdistill.Distiller(teacher_model, student)
    distiller.compile(keras.optimizers.SGD(0.1), jit_compile=True)
    with pytest.raises(tfdistill.NonFiniteDataError, match=r"step 2 \(0-based\).*the inputs `x`") as error:
        distiller.fit(dataset(x, y), verbose=0)
    assert error.value.where == "inputs"
    expected = weights_after_good_steps(x, y, teacher_model, max_pooling_student(batch_norm=True), initial, steps=2)
    for got, want in zip(student.get_weights(), expected):  # BatchNorm statistics included
        assert np.isfinite(got).all()
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
