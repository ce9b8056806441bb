"""What the benchmarks share: the shipped teacher and the Fashion-MNIST validation split.

Every benchmark makes its choices on the same 10,000 validation images held
out of the 60,000 training images (a fixed permutation, seed 1234); the test
set only reports.
"""

import os

import numpy as np

from tfdistill.data import load_fashion_mnist, to_float_images
from tfdistill.export import load_exported_model

TEACHER_NAME = "fashion_mnist_teacher"
SPLIT_SEED = 1234
VALIDATION_SIZE = 10_000


def shipped_teacher(saved_models="saved_models"):
    """The latest exported Fashion-MNIST teacher under `saved_models/`."""
    return load_exported_model(os.path.join(saved_models, TEACHER_NAME), role="teacher")


def validation_split(data_dir=None):
    """`(x_train, y_train), (x_val, y_val), (x_test, y_test)`: 50,000 uint8 training images; float validation and test images."""
    (x, y), (x_test, y_test) = load_fashion_mnist(data_dir)
    order = np.random.default_rng(SPLIT_SEED).permutation(len(x))
    train, val = order[: len(x) - VALIDATION_SIZE], order[len(x) - VALIDATION_SIZE :]
    return (x[train], y[train]), (to_float_images(x[val]), y[val]), (to_float_images(x_test), y_test)
