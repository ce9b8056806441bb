"""Teachers from .keras files, SavedModels and TF Serving folders; students from files or builders; the checks."""

import os
import shutil

import keras
import numpy as np
import pytest

from tfdistill.app import config, data_sources, model_sources
from tfdistill.errors import ConfigError
from tfdistill.export import export_saved_model
from helpers import digits_cnn, digits_npz

STUDENT = {"path": None, "builder": None, "args": {}, "width": 4}


def student_section(**keys):
    return config.section("student", **{**STUDENT, **keys})


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    path = digits_npz(tmp_path_factory.mktemp("data") / "digits.npz")
    return data_sources.from_config(config.section("data", arrays=path, validation_size=100))


def test_a_savedmodel_teacher_gives_the_keras_models_logits(tmp_path, digits):
    keras.utils.set_random_seed(0)
    model = digits_cnn(filters=8)
    model.export(str(tmp_path / "sm"), verbose=False)
    teacher = model_sources.load_teacher(str(tmp_path / "sm"))
    x, _ = digits.arrays(digits.test, limit=16)
    np.testing.assert_allclose(teacher.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-5)
    assert teacher.trainable_weights == []


def test_a_tf_serving_folder_is_read_at_its_highest_version(tmp_path, digits):
    x, _ = digits.arrays(digits.test, limit=4)
    models = {}
    for version in (1, 2):
        keras.utils.set_random_seed(version)
        models[version] = digits_cnn(filters=4)
        models[version].export(str(tmp_path / "teacher" / str(version)), verbose=False)
    teacher = model_sources.load_teacher(str(tmp_path / "teacher"))
    np.testing.assert_allclose(teacher.predict(x, verbose=0), models[2].predict(x, verbose=0), atol=1e-5)


def test_a_uint8_serving_signature_with_several_outputs_needs_a_key_and_gives_log_probabilities(tmp_path, digits):
    keras.utils.set_random_seed(0)
    model = digits_cnn(filters=4)
    path = export_saved_model(model, str(tmp_path / "exported"), raw_shape=(None, 8, 8), class_names=digits.class_names)
    shutil.rmtree(os.path.join(path, "assets.extra"))  # a SavedModel only, as from another tool
    with pytest.raises(ConfigError, match=r"returns several outputs \['class_id', 'class_name', 'probabilities'\]; set `teacher.output_key`"):
        model_sources.load_teacher(path)
    with pytest.raises(ConfigError, match=r"no output 'probability'. Did you mean 'probabilities'\?"):
        model_sources.load_teacher(path, output_key="probability")
    teacher = model_sources.load_teacher(path, output_key="probabilities", outputs="probabilities")
    assert tuple(teacher.inputs[0].shape[1:]) == (8, 8, 1)  # grey images get the channel axis back
    x, _ = digits.arrays(digits.test, limit=8)
    # The serving signature takes uint8: the digits are uint8, so nothing is lost on the way.
    expected = keras.ops.log_softmax(model.predict(x, verbose=0)).numpy()
    np.testing.assert_allclose(teacher.predict(x, verbose=0), expected, atol=1e-4)


def test_probabilities_read_as_logits_are_refused(tmp_path, digits):
    keras.utils.set_random_seed(0)
    model = digits_cnn(filters=4)
    path = export_saved_model(model, str(tmp_path / "exported"), raw_shape=(None, 8, 8))
    shutil.rmtree(os.path.join(path, "assets.extra"))
    teacher = model_sources.load_teacher(path, output_key="probabilities")
    student = model_sources.student_factory(student_section(), digits.input_shape, 10, seed=0)()
    with pytest.raises(ConfigError, match="look like probabilities, not logits. Set `teacher.outputs: probabilities`"):
        model_sources.check_models_and_data(teacher, student, digits)


def test_a_missing_teacher_says_what_is_expected(tmp_path):
    with pytest.raises(ConfigError, match=r"`teacher.path`: no file or folder at .*Expected a .keras file, a SavedModel folder"):
        model_sources.load_teacher(str(tmp_path / "none"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="holds no .keras file, SavedModel"):
        model_sources.load_teacher(str(tmp_path / "empty"))


def test_students_from_a_builder_or_a_file_start_from_the_same_weights_every_time(tmp_path):
    make = model_sources.student_factory(student_section(builder="helpers:digits_student", args={"filters": 3}),
                                         (8, 8, 1), 10, seed=0)
    first, second = make(), make()
    assert first is not second
    for a, b in zip(first.get_weights(), second.get_weights()):
        np.testing.assert_array_equal(a, b)
    first.save(tmp_path / "student.keras")
    from_file = model_sources.student_factory(student_section(path=str(tmp_path / "student.keras")), (8, 8, 1), 10, 0)()
    for a, b in zip(first.get_weights(), from_file.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_builder_errors_name_the_key_and_the_closest_function():
    with pytest.raises(ConfigError, match=r"`student.builder`: module 'helpers' has no function 'digit_student'. Did you mean 'digits_student'\?"):
        model_sources.student_factory(student_section(builder="helpers:digit_student"), (8, 8, 1), 10, 0)
    with pytest.raises(ConfigError, match=r"`student.builder`: cannot import 'no_such_package'"):
        model_sources.student_factory(student_section(builder="no_such_package:f"), (8, 8, 1), 10, 0)
    with pytest.raises(ConfigError, match=r"`student.args`: the builder refused them"):
        model_sources.student_factory(student_section(builder="helpers:digits_student", args={"depth": 2}), (8, 8, 1), 10, 0)
    with pytest.raises(ConfigError, match=r"expected 'package.module:function'"):
        config.resolve({"student": {"builder": "helpers.digits_student"}})


def test_models_and_data_that_do_not_fit_together_are_refused_before_training(digits):
    teacher = digits_cnn(filters=4)
    student = model_sources.student_factory(student_section(), digits.input_shape, 10, seed=0)()
    model_sources.check_models_and_data(teacher, student, digits)  # these fit
    with pytest.raises(ConfigError, match=r"the teacher outputs shape \(10,\) per example and the student \(7,\)"):
        model_sources.check_models_and_data(teacher, digits_cnn(classes=7), digits)
    with pytest.raises(ConfigError, match=r"the student takes inputs of shape \(28, 28, 1\), but the data .* gives examples of shape \(8, 8, 1\)"):
        model_sources.check_models_and_data(teacher, digits_cnn((28, 28, 1)), digits)
    with pytest.raises(ConfigError, match=r"it names 10 classes .* but the models output 12"):
        model_sources.check_models_and_data(digits_cnn(classes=12), digits_cnn(classes=12), digits)
    small = data_sources.Data(**{**digits.__dict__, "class_names": digits.class_names[:8]})
    with pytest.raises(ConfigError, match=r"training labels range over \[0, 9\], but the models output 8 classes"):
        model_sources.check_models_and_data(digits_cnn(classes=8), digits_cnn(classes=8), small)


def test_the_built_in_student_needs_images():
    with pytest.raises(ConfigError, match=r"the built-in student is a CNN for images.*shape \(5,\). Give `student.path` or `student.builder`"):
        model_sources.student_factory(student_section(), (5,), 3, seed=0)


def test_a_teacher_at_chance_on_the_training_labels_gets_a_warning_about_class_order(digits):
    x_in = keras.Input((8, 8, 1))
    favours_zero = keras.layers.Dense(10, kernel_initializer="zeros",
                                      bias_initializer=keras.initializers.Constant([5.0] + [0.0] * 9))
    teacher = keras.Model(x_in, favours_zero(keras.layers.Flatten()(x_in)))
    student = model_sources.student_factory(student_section(), digits.input_shape, 10, seed=0)()
    with pytest.warns(UserWarning, match=r"match the labels of only 1\d.\d% of 512 training examples.*set `data.class_names`"):
        model_sources.check_models_and_data(teacher, student, digits)


def test_a_search_gets_new_initial_weights_per_seed_from_a_builder():
    make = model_sources.student_factory(student_section(builder="helpers:digits_student"), (8, 8, 1), 10, seed=0,
                                         same_weights=False)
    keras.utils.set_random_seed(1)
    first = make().get_weights()
    keras.utils.set_random_seed(2)
    second = make().get_weights()
    keras.utils.set_random_seed(1)
    again = make().get_weights()
    assert not np.array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[0], again[0])
