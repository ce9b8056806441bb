"""Data forms of the command line: arrays, image folders (streamed), TFDS, Fashion-MNIST."""

import sys
import types

import numpy as np
import pytest
import tensorflow as tf

from tfdistill.app import commands, config, data_sources
from tfdistill.errors import ConfigError
from helpers import digits_arrays, digits_image_folder, digits_npz


def data_config(**keys):
    return config.section("data", **keys)


def test_arrays_keep_their_raw_form_names_and_a_validation_fraction(tmp_path):
    path = digits_npz(tmp_path / "digits.npz")
    data = data_sources.from_config(data_config(arrays=path, validation_size=0.1))
    assert (len(data.train), len(data.validation), len(data.test)) == (1347, 150, 300)
    assert data.class_names[3] == "digit 3" and data.raw_shape == (8, 8) and data.raw_dtype == "uint8"
    assert data.input_shape == (8, 8, 1) and data.scale == pytest.approx(1 / 255)
    images, labels = digits_arrays()
    # The splits partition the training arrays; examples keep their labels.
    together = np.concatenate([data.train.x, data.validation.x])
    assert sorted(map(bytes, together)) == sorted(map(bytes, images[:1497]))
    x, y = data.arrays(data.test)
    np.testing.assert_array_equal(x[..., 0], images[1497:] / np.float32(255))
    np.testing.assert_array_equal(y, labels[1497:])


def test_arrays_without_class_names_are_numbered_and_float_features_stay_float(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "features.npz"
    np.savez(path, x_train=rng.normal(size=(50, 5)), y_train=rng.integers(0, 3, 50),
             x_test=rng.normal(size=(10, 5)), y_test=np.array([2] * 10))
    data = data_sources.from_config(data_config(arrays=str(path), validation_size=10))
    assert data.class_names == ["0", "1", "2"] and data.raw_dtype == "float32" and data.scale is None
    assert data.input_shape == (5,) and len(data.validation) == 10


def test_a_missing_array_is_named_with_the_ones_present(tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(path, x_train=np.zeros((4, 2)), y_train=np.zeros(4, "int64"), x_test=np.zeros((2, 2)))
    with pytest.raises(ConfigError, match=r"`data.arrays`.*lacks the arrays \['y_test'\].*Received arrays: \['x_test', 'x_train', 'y_train'\]"):
        data_sources.from_config(data_config(arrays=str(path)))


def test_float_labels_are_refused(tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(path, x_train=np.zeros((4, 2)), y_train=np.zeros(4), x_test=np.zeros((2, 2)), y_test=np.zeros(2))
    with pytest.raises(ConfigError, match="expected integer class ids. Received dtype float64"):
        data_sources.from_config(data_config(arrays=str(path), validation_size=0))


def test_an_image_folder_is_listed_not_loaded_and_streams_the_same_pixels(tmp_path):
    folder = digits_image_folder(tmp_path / "digits", per_class=6, size=16)
    data = data_sources.from_config(data_config(image_folder=folder, validation_size=10), input_shape=(16, 16, 1))
    assert data.streamed and data.train.x is None
    assert (len(data.train), len(data.validation), len(data.test)) == (50, 10, 50)
    assert data.class_names == [f"digit_{i}" for i in range(10)] and data.raw_shape == (16, 16, 1)
    path, label = data.test.paths[7], data.test.y[7]
    assert f"digit_{label}" in path and "/test/" in path
    expected = tf.io.decode_png(tf.io.read_file(path)).numpy() / np.float32(255)
    x, y = data.arrays(data.test)
    np.testing.assert_array_equal(x[7], expected)
    assert list(y) == list(data.test.y)


def test_an_image_folder_without_train_and_test_is_split_and_resized(tmp_path):
    folder = digits_image_folder(tmp_path / "flat", per_class=10, size=16, split=False)
    data = data_sources.from_config(data_config(image_folder=folder, image_size=[8, 8], test_size=0.2,
                                                validation_size=0), input_shape=(None, None, 1))
    assert (len(data.train), len(data.test)) == (80, 20)
    assert not set(data.train.paths) & set(data.test.paths)
    x, _ = data.arrays(data.train, limit=3)
    assert x.shape == (3, 8, 8, 1)


def test_an_image_folder_needs_a_size_when_the_teacher_takes_any(tmp_path):
    folder = digits_image_folder(tmp_path / "d", per_class=2)
    with pytest.raises(ConfigError, match=r"`data.image_size`: the teacher takes images of any size.*e.g. \[96, 96\]"):
        data_sources.from_config(data_config(image_folder=folder, validation_size=0), input_shape=(None, None, 3))


def test_validation_size_counts_and_fractions_are_checked():
    with pytest.raises(ConfigError, match=r"`data.validation_size`: expected a count \(an integer >= 0\) or a fraction"):
        config.resolve({"data": {"validation_size": "ten"}})
    with pytest.raises(ConfigError, match=r"`data.validation_size`: expected a fraction in \[0, 1\) or a count. Received: 1.5"):
        config.resolve({"data": {"validation_size": 1.5}})
    assert config.resolve({"data": {"validation_size": 0.25}})["data"]["validation_size"] == 0.25


def test_two_data_forms_at_once_are_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"give one of `data.arrays`, `data.image_folder`, `data.tfds`"):
        data_sources.from_config(data_config(arrays="a.npz", tfds="mnist"))


def test_tfds_data_goes_through_tfds_load(monkeypatch):
    # The real `tfds.load` needs the dataset on disk; this stands in for it with the same return types.
    calls = {}
    images, labels = digits_arrays()

    def load(name, split, as_supervised, batch_size, with_info, data_dir):
        calls.update(name=name, split=split, as_supervised=as_supervised, batch_size=batch_size)
        label = types.SimpleNamespace(names=[f"n{i}" for i in range(10)])
        info = types.SimpleNamespace(features={"label": label})
        return ((images[:100, ..., None], labels[:100]), (images[100:120, ..., None], labels[100:120])), info

    fake = types.SimpleNamespace(load=load, as_numpy=lambda split: split)
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", fake)
    data = commands.data_from_argument("tfds:digits_like", None)
    assert calls == {"name": "digits_like", "split": ["train", "test"], "as_supervised": True, "batch_size": -1}
    assert data.description == "tfds:digits_like" and data.class_names[9] == "n9" and data.raw_shape == (8, 8, 1)
    assert (len(data.train), len(data.test)) == (100, 20)


def test_an_unknown_data_argument_says_what_is_accepted(tmp_path):
    with pytest.raises(ConfigError, match=r"`--data`: expected an .npz file, an image folder or tfds:NAME.*no such file"):
        commands.data_from_argument(str(tmp_path / "nothing.csv"), None)


def test_the_default_validation_split_is_5000_or_a_tenth(tmp_path):
    path = digits_npz(tmp_path / "digits.npz")
    assert len(data_sources.from_config(data_config(arrays=path)).validation) == 149  # a tenth of 1,497
    assert len(data_sources.from_config(data_config()).validation) == 5000  # Fashion-MNIST's 60,000


def test_class_names_put_an_image_folders_classes_in_the_teachers_order(tmp_path):
    folder = digits_image_folder(tmp_path / "d", per_class=3, size=8)
    order = [f"digit_{i}" for i in (3, 1, 4, 0, 5, 9, 2, 6, 8, 7)]
    data = data_sources.from_config(data_config(image_folder=folder, class_names=order, validation_size=0),
                                    input_shape=(8, 8, 1))
    assert data.class_names == order
    assert all(order[label] in path for label, path in zip(data.train.y, data.train.paths))
    with pytest.raises(ConfigError, match=r"its class folders \[.*\] differ from the classes \['digit_3'"):
        data_sources.from_config(data_config(image_folder=folder, class_names=order[:9], validation_size=0),
                                 input_shape=(8, 8, 1))


def test_a_test_subset_of_arrays_is_their_first_examples_and_the_training_split_is_untouched(tmp_path):
    path = digits_npz(tmp_path / "digits.npz")
    data = data_sources.from_config(data_config(arrays=path, validation_size=0.1, test_subset=120))
    assert (len(data.train), len(data.validation), len(data.test)) == (1347, 150, 120)
    images, labels = digits_arrays()
    x, y = data.arrays(data.test)
    np.testing.assert_array_equal(x[..., 0], images[1497:1617] / np.float32(255))
    np.testing.assert_array_equal(y, labels[1497:1617])
    # More than the test split holds: all of it.
    assert len(data_sources.from_config(data_config(arrays=path, test_subset=10_000)).test) == 300


def test_a_test_subset_of_an_image_folder_draws_from_every_class(tmp_path):
    folder = digits_image_folder(tmp_path / "d", per_class=2, size=8)  # 5 test images per class
    data = data_sources.from_config(data_config(image_folder=folder, validation_size=0, test_subset=15),
                                    input_shape=(8, 8, 1))
    assert len(data.test) == 15 and len(set(data.test.y)) >= 6  # the first 15 files would be 3 classes
    again = data_sources.from_config(data_config(image_folder=folder, validation_size=0, test_subset=15),
                                     input_shape=(8, 8, 1))
    assert list(again.test.paths) == list(data.test.paths)  # drawn with data.seed


@pytest.mark.parametrize("value", [0, -5, 2.5, "100"])
def test_a_test_subset_that_is_not_a_positive_count_is_refused(value):
    with pytest.raises(ConfigError, match=r"`data.test_subset`: expected null \(the whole test split\) or an integer >= 1"):
        data_config(test_subset=value)


def test_a_training_subset_of_an_image_folder_draws_from_every_class(tmp_path):
    folder = digits_image_folder(tmp_path / "d", per_class=10, size=8)
    data = data_sources.from_config(data_config(image_folder=folder, train_subset=30, validation_size=0),
                                    input_shape=(8, 8, 1))
    assert len(data.train) == 30 and len(set(data.train.y)) >= 8  # the first 30 files would be 3 classes
