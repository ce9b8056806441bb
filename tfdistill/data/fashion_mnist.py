"""Fashion-MNIST from the standard IDX `.gz` files, with no download."""

import gzip
import os
import zlib

import numpy as np

DEFAULT_DIRECTORY = "/usr/share/datasets/fashion-mnist"

CLASS_NAMES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4"}


def read_idx(path):
    """Reads one IDX file (optionally gzip-compressed) into a numpy array.

    Args:
        path: path of an IDX file, e.g. `train-images-idx3-ubyte.gz`.

    Returns:
        A numpy array whose shape is the one stored in the file's header.

    Example:
        >>> labels = read_idx("t10k-labels-idx1-ubyte.gz")  # doctest: +SKIP
        >>> labels.shape  # doctest: +SKIP
        (10000,)

    Reference:
        The IDX format, http://yann.lecun.com/exdb/mnist/
    """
    opener = gzip.open if str(path).endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError, zlib.error) as error:
        if isinstance(error, FileNotFoundError):
            raise
        raise ValueError(
            f"File {path!r} cannot be read as a gzip-compressed IDX file: it is damaged "
            f"or truncated ({type(error).__name__}: {error})."
        ) from error
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError(
            f"File {path!r} is not an IDX file: its header must start with "
            f"two zero bytes. Received: {data[:4]!r}"
        )
    type_code, rank = data[2], data[3]
    if type_code not in _IDX_DTYPES:
        raise ValueError(
            f"File {path!r} has an unsupported IDX type code. Expected one of "
            f"{sorted(_IDX_DTYPES)}. Received: {type_code}"
        )
    offset = 4 + 4 * rank
    if len(data) < offset:
        raise ValueError(
            f"File {path!r} is truncated: its header announces {rank} dimensions "
            f"({offset} header bytes) but the file holds {len(data)} bytes."
        )
    shape = tuple(
        int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(rank)
    )
    itemsize = np.dtype(_IDX_DTYPES[type_code]).itemsize
    expected = int(np.prod(shape)) * itemsize
    if len(data) - offset != expected:
        state = "truncated" if len(data) - offset < expected else "longer than its header says"
        raise ValueError(
            f"File {path!r} is {state}: its header promises shape {shape} "
            f"({expected:,} data bytes) but it holds {len(data) - offset:,}."
        )
    array = np.frombuffer(data, dtype=_IDX_DTYPES[type_code], offset=offset)
    return array.reshape(shape).astype(array.dtype.newbyteorder("="))


def load_fashion_mnist(directory=None):
    """Loads Fashion-MNIST from local IDX files.

    Args:
        directory: folder holding the four `*-ubyte.gz` files. Defaults to
            `/usr/share/datasets/fashion-mnist`, where Debian's package
            `dataset-fashion-mnist` puts them.

    Returns:
        `((x_train, y_train), (x_test, y_test))`: images as `uint8` arrays of
        shape `(n, 28, 28)`, labels as `uint8` arrays of shape `(n,)`, as
        `keras.datasets.fashion_mnist.load_data()` returns them.

    Example:
        >>> (x_train, y_train), _ = load_fashion_mnist()  # doctest: +SKIP
        >>> x_train.shape  # doctest: +SKIP
        (60000, 28, 28)

    Reference:
        Xiao et al., "Fashion-MNIST: a Novel Image Dataset for Benchmarking
        Machine Learning Algorithms", 2017.
    """
    directory = directory or DEFAULT_DIRECTORY
    missing = [
        name
        for names in _FILES.values()
        for name in names
        if not os.path.exists(os.path.join(directory, name))
    ]
    if missing:
        raise FileNotFoundError(
            f"Fashion-MNIST files are missing from directory={directory!r}: "
            f"{missing}. Install them with `apt-get install -y "
            f"dataset-fashion-mnist` (Debian/Ubuntu) or pass `directory=` "
            f"pointing to a folder with the four IDX .gz files."
        )
    splits = []
    for images_name, labels_name in (_FILES["train"], _FILES["test"]):
        images = read_idx(os.path.join(directory, images_name))
        labels = read_idx(os.path.join(directory, labels_name))
        for name, array, rank in ((images_name, images, 3), (labels_name, labels, 1)):
            if array.ndim != rank:
                raise ValueError(
                    f"File {os.path.join(directory, name)!r} holds an array of rank {array.ndim}, "
                    f"shape {array.shape}. Expected rank {rank}: "
                    + ("(n, 28, 28) images." if rank == 3 else "(n,) labels.")
                )
        if images.shape[0] != labels.shape[0]:
            raise ValueError(
                f"{images_name} holds {images.shape[0]} images but "
                f"{labels_name} holds {labels.shape[0]} labels."
            )
        splits.append((images, labels))
    return tuple(splits)
