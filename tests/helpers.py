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


def digits_arrays():
    """scikit-learn's 1,797 8x8 digit images as uint8 (0-16 scaled to 0-255) and their labels."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.round(digits.images * (255 / 16)).astype(np.uint8)
    return images, digits.target.astype("int64")


def digits_npz(path, class_names=True):
    """Writes the digits as an `.npz` for `data.arrays`: 1,497 training and 300 test images."""
    images, labels = digits_arrays()
    extra = {"class_names": np.array([f"digit {i}" for i in range(10)])} if class_names else {}
    np.savez(path, x_train=images[:1497], y_train=labels[:1497], x_test=images[1497:], y_test=labels[1497:], **extra)
    return str(path)


def digits_image_folder(path, per_class=30, size=16, split=True):
    """Writes digits as grey PNGs at `size` px: `train/` and `test/` (5 per class) of class folders, or one level."""
    import tensorflow as tf

    images, labels = digits_arrays()
    counts = {}
    for image, label in zip(images, labels):
        index = counts.get(label, 0)
        if index >= per_class + (5 if split else 0):
            continue
        counts[label] = index + 1
        part = ("test" if index >= per_class else "train") if split else ""
        folder = os.path.join(path, part, f"digit_{label}")
        os.makedirs(folder, exist_ok=True)
        resized = tf.image.resize(image[..., None].astype("float32"), (size, size), method="nearest")
        png = tf.io.encode_png(tf.cast(resized, tf.uint8)).numpy()
        with open(os.path.join(folder, f"{index:04d}.png"), "wb") as f:
            f.write(png)
    return str(path)


def pool_npz(path, images):
    """`images` as an `.npz` of unlabeled examples (`data.unlabeled`)."""
    np.savez(path, x=images)
    return str(path)


def flat_image_folder(path, images, size=None):
    """`images` as PNGs directly in `path` (no class folders), resized to `size` px."""
    import tensorflow as tf

    os.makedirs(path, exist_ok=True)
    for index, image in enumerate(images):
        pixels = image[..., None].astype("float32")
        if size:
            pixels = tf.image.resize(pixels, (size, size), method="nearest")
        with open(os.path.join(path, f"{index:04d}.png"), "wb") as f:
            f.write(tf.io.encode_png(tf.cast(pixels, tf.uint8)).numpy())
    return str(path)


def digits_cnn(input_shape=(8, 8, 1), filters=4, classes=10, name="model", flatten=False):
    """A small CNN for the digits; `filters=4` is a student, `filters=16, flatten=True` a teacher."""
    x_in = keras.Input(input_shape, name="image")
    x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu")(x_in)
    x = keras.layers.Conv2D(2 * filters, 3, padding="same", activation="relu")(x)
    x = (keras.layers.Flatten() if flatten else keras.layers.GlobalAveragePooling2D())(x)
    return keras.Model(x_in, keras.layers.Dense(classes, name="logits")(x), name=name)


def digits_student(filters=4, size=8):
    """`student.builder` target of the command-line tests."""
    return digits_cnn((size, size, 1), filters=filters, name="student")


def loss_terms(distiller, y, teacher, student_logits, sample_weight=None, **kwargs):
    """`(total, terms)` of one batch as the `Distiller`'s steps compute them (its private `_loss_terms`)."""
    total, terms, _ = distiller._loss_terms(y, teacher, student_logits, sample_weight, **kwargs)
    return total, terms
