"""The data of a run or a command: Fashion-MNIST, an `.npz` of arrays, an image folder or a TFDS dataset.

Every form becomes one `Data`: train, validation and test splits, the class
names and the raw form clients send to the exported model. Arrays stay in
memory; an image folder is never loaded whole: its splits are lists of files,
read and decoded a batch at a time.
"""

import dataclasses
import os
from typing import List, Optional

import numpy as np
import tensorflow as tf

from tfdistill.data.fashion_mnist import CLASS_NAMES as FASHION_MNIST_CLASSES
from tfdistill.data.fashion_mnist import load_fashion_mnist
from tfdistill.data.pipelines import AUTOTUNE, check_image_files
from tfdistill.errors import ConfigError
from tfdistill.offline.examples import ArrayExamples, ImageFiles
from tfdistill.offline.views import as_inputs

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".gif", ".bmp")
KINDS = ("dataset", "arrays", "image_folder", "tfds")


@dataclasses.dataclass
class Split:
    """One split: raw arrays `x` (in memory) or image `paths` (streamed), and integer labels `y`."""

    y: np.ndarray
    x: Optional[np.ndarray] = None
    paths: Optional[np.ndarray] = None

    def __len__(self):
        return len(self.y)

    def subset(self, indices):
        return Split(self.y[indices], None if self.x is None else self.x[indices],
                     None if self.paths is None else self.paths[indices])


@dataclasses.dataclass
class Data:
    """A dataset in one of the forms a config or `--data` names.

    Attributes:
        description: what it is, for messages (`"Fashion-MNIST"`, a path).
        train, validation, test: the splits.
        class_names: one name per class, in label order.
        raw_shape: one example as clients send it to the exported model
            (e.g. `(28, 28)` for grey images, `(h, w, 3)` for colour ones).
        raw_dtype: `"uint8"` (images, scaled by 1/255 inside the model) or
            `"float32"` (sent as they are).
    """

    description: str
    train: Split
    validation: Split
    test: Split
    class_names: List[str]
    raw_shape: tuple
    raw_dtype: str

    @property
    def streamed(self):
        return self.train.paths is not None

    @property
    def scale(self):
        return 1 / 255.0 if self.raw_dtype == "uint8" else None

    @property
    def input_shape(self):
        """One example's shape as the models take it (images get a channel axis)."""
        if self.streamed:
            return tuple(self.raw_shape)
        return tuple(as_inputs(self.train.x[:1]).shape[1:])

    def examples(self, split):
        """`split`'s examples read by index, as every process reads them (`tfdistill.offline.ImageFiles`, `ArrayExamples`)."""
        if not self.streamed:
            return ArrayExamples(split.x)
        height, width, channels = self.raw_shape
        return ImageFiles(split.paths, (height, width), channels)

    def load_example(self, split):
        """A TensorFlow function from an index of `split` to its model input (streamed data)."""
        return self.examples(split).load_example()

    def batches(self, split, batch_size=512, limit=None):
        """`(x, y)` batches of `split` as the models take them, in order, never all in memory."""
        count = len(split) if limit is None else min(limit, len(split))
        if not self.streamed:
            return tf.data.Dataset.from_tensor_slices((as_inputs(split.x[:count]), split.y[:count])).batch(batch_size)
        load = self.load_example(split)
        labels = tf.constant(split.y)
        return tf.data.Dataset.range(count).map(
            lambda index: (load(index), tf.gather(labels, index)), num_parallel_calls=AUTOTUNE, deterministic=True
        ).batch(batch_size).prefetch(AUTOTUNE)

    def arrays(self, split, limit=None):
        """`(x, y)` of at most `limit` examples of `split` in memory, as the models take them."""
        if not self.streamed:
            count = len(split) if limit is None else min(limit, len(split))
            return as_inputs(split.x[:count]), split.y[:count]
        parts = list(self.batches(split, limit=limit))
        return np.concatenate([p[0].numpy() for p in parts]), np.concatenate([p[1].numpy() for p in parts])

    def sample(self, split, count, seed):
        """`count` examples of `split` drawn at random (reproducibly from `seed`), as the models take them."""
        indices = np.random.default_rng(seed).permutation(len(split))[:count]
        return self.arrays(split.subset(indices))[0]


def _count(value, total, path):
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


def _hold_out(split, size, seed, path):
    """`(rest, held_out)`: `size` (a count, a fraction, or `None`: 5,000 or a tenth) examples drawn at random."""
    size = min(5000, len(split) // 10) if size is None else _count(size, len(split), path)
    if size == 0:
        return split, split.subset(np.arange(0))
    order = np.random.default_rng(seed).permutation(len(split))
    return split.subset(order[: len(split) - size]), split.subset(order[len(split) - size :])


def _labels(y, path):
    y = np.asarray(y)
    if not np.issubdtype(y.dtype, np.integer):
        raise ConfigError(f"Invalid labels in {path}: expected integer class ids. Received dtype {y.dtype}")
    return y.astype("int64")


def _from_arrays(x_train, y_train, x_test, y_test, class_names, description):
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
    return _from_arrays(*arrays, class_names, path)


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
    return _from_arrays(x_train, y_train, x_test, y_test, class_names, f"tfds:{name}")


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
        with os.scandir(os.path.join(folder, name)) as entries:
            files = sorted(e.path for e in entries if e.is_file() and e.name.lower().endswith(IMAGE_EXTENSIONS))
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
        train, test = _hold_out(Split(labels, paths=paths), test_size, seed, "data.test_size")
    return dict(description=folder, train=train, test=test, class_names=class_names,
                raw_shape=(*image_size, channels), raw_dtype="uint8")


def from_config(data_config, input_shape=None):
    """The `Data` a config's `data` section describes.

    Args:
        data_config: the resolved `data` section.
        input_shape: the teacher's input shape per example, which gives an
            image folder its image size and channels when `data.image_size`
            is not set.
    """
    chosen = [key for key in ("arrays", "image_folder", "tfds") if data_config[key] is not None]
    if len(chosen) > 1:
        raise ConfigError(f"Invalid config: give one of `data.arrays`, `data.image_folder`, `data.tfds`. Received: {chosen}")
    if chosen == ["arrays"]:
        parts = load_arrays(data_config["arrays"])
    elif chosen == ["tfds"]:
        parts = load_tfds(data_config["tfds"], data_config["tfds_train_split"], data_config["tfds_test_split"],
                          data_config["data_dir"])
    elif chosen == ["image_folder"]:
        size, channels = image_size_and_channels(data_config["image_size"], input_shape)
        parts = load_image_folder(data_config["image_folder"], size, channels, data_config["test_size"],
                                  data_config["seed"], class_names=data_config["class_names"])
    else:
        (x, y), (x_test, y_test) = load_fashion_mnist(data_config["data_dir"])
        parts = _from_arrays(x, y, x_test, y_test, FASHION_MNIST_CLASSES, "Fashion-MNIST")
    train = parts.pop("train")
    subset = data_config["train_subset"]
    if subset is not None:
        if train.paths is None:  # arrays: the first examples, as they come
            train = train.subset(np.arange(min(subset, len(train))))
        else:  # files are listed class by class: draw them at random
            train = train.subset(np.sort(np.random.default_rng(data_config["seed"]).permutation(len(train))[:subset]))
    train, validation = _hold_out(train, data_config["validation_size"], data_config["seed"], "data.validation_size")
    return Data(train=train, validation=validation, **parts)


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


def from_argument(text, input_shape, data_dir=None, streamed=True):
    """The `Data` a command's `--data` names: `NAME.npz`, an image folder, `tfds:NAME`, or `None` (Fashion-MNIST).

    `streamed=False` refuses an image folder (for commands that need the data in memory).
    """
    if text is None:
        config = {"arrays": None, "image_folder": None, "tfds": None}
    elif text.startswith("tfds:"):
        config = {"arrays": None, "image_folder": None, "tfds": text[len("tfds:"):]}
    elif text.endswith(".npz"):
        config = {"arrays": text, "image_folder": None, "tfds": None}
    elif os.path.isdir(text):
        if not streamed:
            raise ConfigError(
                f"Invalid value for argument `--data`: this command takes data held in memory (an .npz file or "
                f"tfds:NAME), not an image folder. Received: {text!r}"
            )
        config = {"arrays": None, "image_folder": text, "tfds": None}
    else:
        raise ConfigError(
            f"Invalid value for argument `--data`: expected an .npz file, an image folder or tfds:NAME. "
            f"Received: {text!r}" + ("" if os.path.exists(text) else " (no such file or folder)")
        )
    from tfdistill.app.config import DEFAULTS

    return from_config({**DEFAULTS["data"], **config, "data_dir": data_dir, "validation_size": 0}, input_shape)
