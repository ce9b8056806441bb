import keras
import numpy as np
import pytest
import tensorflow as tf

import tfdistill
from tfdistill import preflight
from helpers import dense_model, toy_data


def compiled(teacher=None, student=None, **kwargs):
    teacher = teacher or dense_model(16, "teacher")
    student = student or dense_model(4, "student")
    distiller = tfdistill.Distiller(teacher, student)
    distiller.compile("sgd", **kwargs)
    return distiller


@pytest.mark.slow
def test_output_shapes_that_differ():
    distiller = compiled(student=dense_model(4, "student", classes=5))
    x, y = toy_data()
    with pytest.raises(ValueError, match=r"same shape.*teacher output shape=\(64, 3\), student output shape=\(64, 5\)"):
        distiller.fit(x, y, verbose=0)


@pytest.mark.parametrize(
    "labels, message",
    [
        (np.full(64, 3), r"class ids in \[0, 2\].*\[3, 3\]"),
        (np.full(64, -2), r"class ids in \[0, 2\].*or -1 for an example without a label.*\[-2, -2\]"),
        (np.zeros((64, 3), "int32"), r"Expected rank 1.*shape=\(64, 3\)"),
        (np.zeros(64, "float32"), r"integer class ids.*dtype=float32"),
    ],
)
def test_bad_label_arrays(labels, message):
    x, _ = toy_data()
    with pytest.raises(ValueError, match=message):
        compiled().fit(x, labels, verbose=0)


@pytest.mark.parametrize(
    "labels, message",
    [
        (np.zeros((64, 3), "int32"), r"Expected rank 1.*shape=\(None, 3\)"),
        (np.zeros(64, "float32"), r"integer class ids.*dtype=float32"),
    ],
)
def test_bad_label_dataset_spec_is_refused_before_any_batch(labels, message):
    x, _ = toy_data()
    dataset = tf.data.Dataset.from_tensor_slices((x, labels)).batch(16)
    with pytest.raises(ValueError, match=message):
        compiled().fit(dataset, verbose=0)


@pytest.mark.slow
@pytest.mark.parametrize("bad_label", [3, -2])
def test_out_of_range_dataset_labels_stop_the_first_step_before_an_update(bad_label):
    x, _ = toy_data()
    labels = np.full(64, bad_label, "int32")
    distiller = compiled()
    before = [w.copy() for w in distiller.student.get_weights()]
    dataset = tf.data.Dataset.from_tensor_slices((x, labels)).batch(16)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"Invalid labels `y`: expected class ids in \[0, 2\]"):
        distiller.fit(dataset, verbose=0)
    for b, a in zip(before, distiller.student.get_weights()):
        np.testing.assert_array_equal(b, a)


@pytest.mark.slow
def test_checking_a_dataset_does_not_change_its_order():
    x, y = toy_data()
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(64, seed=3).batch(64)
    expected = [b.numpy() for _, b in dataset.take(1)]  # first epoch's order
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(64, seed=3).batch(64)
    distiller = compiled()
    preflight.check_data(distiller, dataset)
    seen = [b.numpy() for _, b in dataset.take(1)]
    np.testing.assert_array_equal(seen[0], expected[0])


@pytest.mark.slow
def test_student_weights_untouched_when_refused():
    distiller = compiled()
    before = [w.copy() for w in distiller.student.get_weights()]
    x, _ = toy_data()
    with pytest.raises(ValueError):
        distiller.fit(x, np.full(64, 7), verbose=0)
    for b, a in zip(before, distiller.student.get_weights()):
        np.testing.assert_array_equal(b, a)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"hard_weight": -0.1}, r"`hard_weight`.*>= 0. Received: hard_weight=-0.1"),
        ({"soft_weight": float("nan")}, r"`soft_weight`"),
        ({"soft_weight": "1"}, r"`soft_weight`"),
        ({"hard_weight": 0, "soft_weight": 0}, r"at least one must be > 0"),
        ({"soft_loss": "kld"}, r"`soft_loss`. Expected one of \["),
        ({"loss": "mse"}, r"`loss`. Expected one of"),
    ],
)
def test_bad_compile_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        compiled(**kwargs)


@pytest.mark.parametrize("temperature", [0.0, -2.0])
def test_temperature_must_be_positive(temperature):
    with pytest.raises(ValueError, match=f"temperature={temperature}"):
        compiled(soft_loss=tfdistill.KnowledgeDistillation(temperature=temperature))


def test_negative_sample_weights():
    x, y = toy_data()
    with pytest.raises(ValueError, match="sample_weight"):
        compiled().fit(x, y, sample_weight=-np.ones(64), verbose=0)


def test_unbuilt_teacher_is_refused():
    teacher = keras.Sequential([keras.layers.Dense(3)])
    with pytest.raises(ValueError, match="`teacher`: the model is not built"):
        tfdistill.Distiller(teacher, dense_model(4, "student"))


def test_unbuilt_student_that_cannot_take_the_data():
    student = keras.Sequential([keras.layers.Reshape((5, 5)), keras.layers.Flatten(), keras.layers.Dense(3)])
    distiller = compiled(student=student)
    x, y = toy_data()
    with pytest.raises(ValueError, match="`student`: it could not be called"):
        distiller.fit(x, y, verbose=0)


@pytest.mark.slow
def test_unbuilt_student_is_built_from_the_data():
    distiller = compiled(student=keras.Sequential([keras.layers.Dense(3)]))
    x, y = toy_data()
    distiller.fit(x, y, verbose=0)
    assert distiller.student.built


@pytest.mark.parametrize("role", ["teacher", "student"])
def test_softmax_output_is_refused_with_the_fix(role):
    models = {"teacher": dense_model(16, "teacher"), "student": dense_model(4, "student")}
    models[role] = dense_model(4, role, activation="softmax")
    with pytest.raises(ValueError, match=rf"`{role}`: its output layer '{role}_logits' applies a softmax.*strip_softmax"):
        tfdistill.Distiller(**models)


def test_softmax_layer_output_is_refused():
    x_in = keras.Input((8,))
    student = keras.Model(x_in, keras.layers.Softmax()(keras.layers.Dense(3)(x_in)))
    with pytest.raises(ValueError, match="softmax"):
        tfdistill.Distiller(dense_model(16, "teacher"), student)


def test_dataset_of_four_part_elements_is_refused():
    x, y = toy_data()
    four = tf.data.Dataset.from_tensor_slices((x, y, np.ones(64), np.ones(64))).batch(8)
    with pytest.raises(ValueError, match=r"Invalid dataset: expected it to yield `x`, `\(x,\)`, `\(x, y\)`"):
        compiled().fit(four, verbose=0)


def test_views_require_both_keys():
    distiller = tfdistill.Distiller(dense_model(16, "teacher"), dense_model(4, "student"), separate_inputs=True)
    distiller.compile("sgd")
    x, y = toy_data()
    dataset = tf.data.Dataset.from_tensor_slices(({"student": x}, y)).batch(8)
    with pytest.raises(ValueError, match="exactly the keys 'student' and 'teacher'"):
        distiller.fit(dataset, verbose=0)


@pytest.mark.slow
def test_fit_before_compile():
    distiller = tfdistill.Distiller(dense_model(16, "teacher"), dense_model(4, "student"))
    x, y = toy_data()
    with pytest.raises(ValueError, match="must be compiled"):
        distiller.fit(x, y, verbose=0)


def test_not_a_model():
    with pytest.raises(ValueError, match="`student`. Expected a `keras.Model`"):
        tfdistill.Distiller(dense_model(16, "teacher"), "resnet")
