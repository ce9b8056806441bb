"""Unlabeled examples of a run: `data.unlabeled` (a pool added to the training split) and `data.labels_per_class`.

Both give the training split examples labeled `tfdistill.labels.UNLABELED`
(-1): the distilled student learns them from the teacher, the student alone
never sees them. The validation and test splits keep their labels.
"""

import os

import numpy as np

from tfdistill.app.data_forms import IMAGE_EXTENSIONS, image_files
from tfdistill.app.datasets import Split
from tfdistill.data.pipelines import check_image_files
from tfdistill.errors import ConfigError
from tfdistill.labels import UNLABELED, keep_labels_per_class

_EXPECTED = "an .npz file with an array `x`, or a folder of images without class folders"


def keep_labels(train, labels_per_class, num_classes, seed):
    """`train` with `labels_per_class` labels of each class kept (drawn from `seed`), the others -1."""
    return Split(keep_labels_per_class(train.y, labels_per_class, seed=seed, num_classes=num_classes).astype("int64"),
                 train.x, train.paths)


def read_pool(path, raw_shape, raw_dtype):
    """The examples of `data.unlabeled` as a split labeled -1, checked against the labeled data's form.

    Args:
        path: an `.npz` with `x`, or a folder of images (no class folders).
        raw_shape, raw_dtype: one labeled example's shape and dtype
            (`Data.raw_shape`, `Data.raw_dtype`).

    Raises:
        ConfigError: nothing at `path`, an unreadable file or image, examples
            of another shape or dtype, a folder of class folders, or a folder
            of images beside labeled data that are not images.
    """
    if os.path.isdir(path):
        return _folder_pool(path, raw_shape, raw_dtype)
    if not os.path.isfile(path):
        raise ConfigError(f"Invalid value for `data.unlabeled`: expected {_EXPECTED}. Received: {path!r} (no such file "
                          "or folder)")
    from tfdistill.data.arrays import load_npz

    try:
        (x,) = load_npz(path, ("x",))
    except ValueError as error:
        raise ConfigError(f"Invalid value for `data.unlabeled`: {error}") from None
    dtype_ok = x.dtype == np.uint8 if raw_dtype == "uint8" else np.issubdtype(x.dtype, np.floating)
    if tuple(x.shape[1:]) != tuple(raw_shape) or not dtype_ok:
        expected_dtype = "uint8" if raw_dtype == "uint8" else "a float dtype"
        raise ConfigError(
            f"Invalid value for `data.unlabeled`: expected examples of the labeled data's shape {tuple(raw_shape)} "
            f"and dtype {expected_dtype}. Received: shape {tuple(x.shape[1:])} and dtype {x.dtype} in {path!r}"
        )
    if raw_dtype == "float32":
        x = x.astype("float32")
    return Split(np.full(len(x), UNLABELED, "int64"), x=x)


def _folder_pool(folder, raw_shape, raw_dtype):
    if raw_dtype != "uint8" or len(raw_shape) not in (2, 3):
        raise ConfigError(
            f"Invalid value for `data.unlabeled`: expected an .npz file with an array `x` of shape {tuple(raw_shape)} "
            f"and dtype {raw_dtype}, as the labeled data's examples; a folder of images needs labeled images. "
            f"Received: the folder {folder!r}"
        )
    paths = image_files(folder)
    if not paths:
        folders = sorted(d for d in os.listdir(folder) if os.path.isdir(os.path.join(folder, d)))
        found = f"sub-folders {folders}" if folders else "no image files"
        raise ConfigError(
            f"Invalid value for `data.unlabeled`: expected a folder of {'/'.join(IMAGE_EXTENSIONS)} images "
            f"without class folders (labeled images go in `data.image_folder`). Received: {folder!r} with {found}"
        )
    try:
        check_image_files(folder)
    except ValueError as error:
        raise ConfigError(f"Invalid value for `data.unlabeled`: {error}") from None
    return Split(np.full(len(paths), UNLABELED, "int64"), paths=np.asarray(paths))
