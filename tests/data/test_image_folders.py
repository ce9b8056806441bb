"""Arrays written as an image folder read back as the same pixels, labels and classes."""

import numpy as np
import pytest

from tfdistill.app import config, data_sources
from tfdistill.data import write_image_folder
from helpers import small_images


def test_written_images_read_back_exactly(tmp_path):
    images, labels = small_images(12)
    names = ["a/b", "c", "d", "e"]
    assert write_image_folder(images, labels, names, str(tmp_path / "train")) == 12
    write_image_folder(images[:4], labels[:4], names, str(tmp_path / "test"))
    section = config.section("data", image_folder=str(tmp_path), validation_size=0, class_names=["a-b", "c", "d", "e"])
    data = data_sources.from_config(section, input_shape=(6, 6, 1))
    x, y = data.arrays(data.train)
    order = np.argsort([int(p[-11:-4]) for p in data.train.paths])  # files are numbered in the arrays' order
    np.testing.assert_array_equal(np.round(x[order, ..., 0] * 255).astype(np.uint8), images)
    np.testing.assert_array_equal(y[order], labels)


def test_nothing_is_overwritten_and_bad_input_is_named(tmp_path):
    images, labels = small_images(3)
    write_image_folder(images, labels, list("abcd"), str(tmp_path))
    with pytest.raises(FileExistsError):
        write_image_folder(images, labels, list("abcd"), str(tmp_path))
    with pytest.raises(ValueError, match=r"Expected uint8 images.*Received: dtype=float32"):
        write_image_folder(images.astype("float32"), labels, list("abcd"), str(tmp_path))
    with pytest.raises(ValueError, match=r"Expected 3 class ids in \[0, 2\)"):
        write_image_folder(images, labels, list("ab"), str(tmp_path / "x"))
