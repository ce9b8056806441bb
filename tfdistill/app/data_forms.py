"""Reading labeled data in each form a config names: an `.npz` of arrays, TFDS, an image folder, Fashion-MNIST.

Each reader returns the parts of a `tfdistill.app.datasets.Data` before the
training split is subset, split for validation and joined by unlabeled
examples (`tfdistill.app.data_sources` does that): a dict of `description`,
`train`, `test`, `class_names`, `raw_shape` and `raw_dtype`.
"""

import os

import numpy as np

from tfdistill.app.datasets import Split
from tfdistill.data.fashion_mnist import CLASS_NAMES as FASHION_MNIST_CLASSES
from tfdistill.data.fashion_mnist import load_fashion_mnist
from tfdistill.data.pipelines import check_image_files
from tfdistill.errors import ConfigError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".gif", ".bmp")


def count(value, total, path):
    """A count, or a fraction of `total`."""
    if isinstance(value, float):
        if not 0 <= value < 1:
            raise ConfigError(f"Invalid value for `{path}`: expected a fraction in [0, 1) or a count. Received: {value}")
        return int(round(value * total))
    if value < 0 or value >= total:
        raise ConfigError(
            f"Invalid value for `{path}`: expected a count below the {total:,} examples it is taken from, "
            f"or a fraction. Received: {value}"
        )
    return value


def hold_out(split, size, seed, path):
    """`(rest, held_out)`: `size` (a count, a fraction, or `None`: 5,000 or a tenth) examples drawn at random."""
    size = min(5000, len(split) // 10) if size is None else count(size, len(split), path)
    if size == 0:
        return split, split.subset(np.arange(0))
    order = np.random.default_rng(seed).permutation(len(split))
    return split.subset(order[: len(split) - size]), split.subset(order[len(split) - size :])


def _labels(y, path):
    y = np.asarray(y)
    if not np.issubdtype(y.dtype, np.integer):
        raise ConfigError(f"Invalid labels in {path}: expected integer class ids. Received dtype {y.dtype}")
    return y.astype("int64")


def from_arrays(x_train, y_train, x_test, y_test, class_names, description):
    x_train, x_test = np.asarray(x_train), np.asarray(x_test)
    if x_train.shape[1:] != x_test.shape[1:]:
        raise ConfigError(
            f"Invalid data {description}: training and test examples differ in shape: "
            f"{x_train.shape[1:]} and {x_test.shape[1:]}"
        )
    raw_dtype = "uint8" if x_train.dtype == np.uint8 else "float32"
    if raw_dtype == "float32":
        x_train, x_test = x_train.astype("float32"), x_test.astype("float32")
    y_train, y_test = _labels(y_train, description), _labels(y_test, description)
    if class_names is None:
        class_names = [str(i) for i in range(int(max(y_train.max(), y_test.max())) + 1)]
    return dict(description=description, train=Split(y_train, x=x_train), test=Split(y_test, x=x_test),
                class_names=[str(name) for name in class_names], raw_shape=tuple(x_train.shape[1:]),
                raw_dtype=raw_dtype)


def load_arrays(path):
    """`.npz` with `x_train`, `y_train`, `x_test`, `y_test` and optionally `class_names`."""
    from tfdistill.data.arrays import load_npz

    if not os.path.isfile(path):
        raise ConfigError(f"Invalid value for `data.arrays`: no file at {path!r}. Expected an .npz file.")
    try:
        arrays = load_npz(path, ("x_train", "y_train")) + load_npz(path, ("x_test", "y_test"))
    except ValueError as error:
        raise ConfigError(f"Invalid value for `data.arrays`: {error}") from None
    class_names = None
    with np.load(path, allow_pickle=False) as archive:
        if "class_names" in archive.files:
            class_names = list(archive["class_names"])
    return from_arrays(*arrays, class_names, path)


def load_tfds(name, train_split="train", test_split="test", data_dir=None):
    """A TFDS dataset with an integer `label` feature, in memory (`tfds.load`, `as_supervised`)."""
    try:
        import tensorflow_datasets as tfds
    except ImportError:
        raise ConfigError(
            "Invalid value for `data.tfds`: reading a TFDS dataset needs `tensorflow-datasets` "
            "(pip install tensorflow-datasets) and the dataset downloaded or prepared locally."
        ) from None
    try:
        (train, test), info = tfds.load(name, split=[train_split, test_split], as_supervised=True, batch_size=-1,
                                        with_info=True, data_dir=data_dir)
    except Exception as error:  # tfds raises many kinds: unknown name, missing data, no network
        raise ConfigError(f"Invalid value for `data.tfds`: TFDS could not load {name!r}: {error}") from error
    (x_train, y_train), (x_test, y_test) = tfds.as_numpy(train), tfds.as_numpy(test)
    label = info.features["label"] if "label" in info.features else None
    class_names = list(label.names) if label is not None and hasattr(label, "names") else None
    return from_arrays(x_train, y_train, x_test, y_test, class_names, f"tfds:{name}")


def image_files(folder):
    """The image files directly in `folder`, sorted."""
    with os.scandir(folder) as entries:
        return sorted(e.path for e in entries if e.is_file() and e.name.lower().endswith(IMAGE_EXTENSIONS))


def _list_images(folder, class_names=None):
    """`(paths, labels, class_names)` of a folder with one sub-folder of images per class."""
    found = sorted(d for d in os.listdir(folder) if os.path.isdir(os.path.join(folder, d)))
    if class_names is None:
        class_names = found
    elif found != sorted(class_names):
        raise ConfigError(
            f"Invalid image folder {folder!r}: its class folders {found} differ from the classes "
            f"{list(class_names)} (`data.class_names`, or the training folder's)"
        )
    if not class_names:
        raise ConfigError(f"Invalid image folder {folder!r}: expected one sub-folder of images per class; found none.")
    paths, labels = [], []
    for label, name in enumerate(class_names):
        files = image_files(os.path.join(folder, name))
        paths += files
        labels += [label] * len(files)
    if not paths:
        raise ConfigError(f"Invalid image folder {folder!r}: no {'/'.join(IMAGE_EXTENSIONS)} files in its class folders.")
    return np.asarray(paths), np.asarray(labels, "int64"), list(class_names)


def load_image_folder(folder, image_size, channels, test_size=0.2, seed=0, check_images=True, class_names=None):
    """An image folder, as lists of files: `train/` and `test/`, or one folder split by `test_size`.

    Classes are the sub-folders sorted by name, or `class_names` (the folder
    names in the teacher's class order).
    """
    if not os.path.isdir(folder):
        raise ConfigError(f"Invalid value for `data.image_folder`: no folder at {folder!r}.")
    if channels not in (1, 3):
        raise ConfigError(f"Invalid image channels for {folder!r}: the models take {channels}; images have 1 or 3.")
    if check_images:
        try:
            check_image_files(folder)
        except ValueError as error:
            raise ConfigError(str(error)) from None
    if os.path.isdir(os.path.join(folder, "train")) and os.path.isdir(os.path.join(folder, "test")):
        paths, labels, class_names = _list_images(os.path.join(folder, "train"), class_names)
        test_paths, test_labels, _ = _list_images(os.path.join(folder, "test"), class_names)
        train, test = Split(labels, paths=paths), Split(test_labels, paths=test_paths)
    else:
        paths, labels, class_names = _list_images(folder, class_names)
        train, test = hold_out(Split(labels, paths=paths), test_size, seed, "data.test_size")
    return dict(description=folder, train=train, test=test, class_names=class_names,
                raw_shape=(*image_size, channels), raw_dtype="uint8")


def image_size_and_channels(image_size, input_shape):
    """`((height, width), channels)` from `data.image_size` or the model's input shape."""
    channels = None
    if input_shape is not None and len(input_shape) == 3:
        channels = input_shape[-1]
        if image_size is None and None not in input_shape[:2]:
            image_size = input_shape[:2]
    if image_size is None:
        raise ConfigError(
            "Invalid value for `data.image_size`: the teacher takes images of any size "
            f"(input shape {input_shape}), so give the size to read images at, e.g. [96, 96]."
        )
    if (not isinstance(image_size, (list, tuple)) or len(image_size) != 2
            or not all(isinstance(v, int) and v > 0 for v in image_size)):
        raise ConfigError(f"Invalid value for `data.image_size`: expected [height, width]. Received: {image_size!r}")
    return tuple(image_size), channels or 3


def read_labeled(section, input_shape=None):
    """The parts of the labeled data a `data` section names (`tfdistill.app.sections.DataSection`)."""
    if section.form == "arrays":
        return load_arrays(section.arrays)
    if section.form == "tfds":
        return load_tfds(section.tfds, section.tfds_train_split, section.tfds_test_split, section.data_dir)
    if section.form == "image_folder":
        size, channels = image_size_and_channels(section.image_size, input_shape)
        return load_image_folder(section.image_folder, size, channels, section.test_size, section.seed,
                                 class_names=section.class_names)
    (x, y), (x_test, y_test) = load_fashion_mnist(section.data_dir)
    return from_arrays(x, y, x_test, y_test, FASHION_MNIST_CLASSES, "Fashion-MNIST")
