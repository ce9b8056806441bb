"""Tiny models and data shared by the tests."""

import os

import keras
import numpy as np

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(TESTS_DIR)
SCRIPTS = os.path.join(TESTS_DIR, "scripts")


def dense_model(hidden, name, inputs=8, classes=3, batch_norm=False, activation=None):
    x_in = keras.Input((inputs,), name="features")
    x = keras.layers.Dense(hidden, activation="relu", name=f"{name}_hidden")(x_in)
    if batch_norm:
        x = keras.layers.BatchNormalization(name=f"{name}_bn")(x)
    out = keras.layers.Dense(classes, activation=activation, name=f"{name}_logits")(x)
    return keras.Model(x_in, out, name=name)


def toy_data(n=64, inputs=8, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, inputs)).astype("float32")
    y = rng.integers(0, classes, size=n).astype("int32")
    return x, y


def image_teacher(name="teacher"):
    """A linear teacher on 6x6 grey images, 4 classes."""
    x_in = keras.Input((6, 6, 1))
    return keras.Model(x_in, keras.layers.Dense(4)(keras.layers.Flatten()(x_in)), name=name)


def image_student():
    """A tiny CNN student on 6x6 grey images, 4 classes."""
    x_in = keras.Input((6, 6, 1))
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(3, 3)(x_in))
    return keras.Model(x_in, keras.layers.Dense(4)(x), name="student")


def small_images(n=40, seed=0):
    """`n` random uint8 6x6 images and labels in [0, 4)."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(n, 6, 6), dtype=np.uint8), rng.integers(0, 4, n)
