"""Data loading: Fashion-MNIST from local files, arrays, TFDS and image folders."""

from tfdistill.data.arrays import load_npz
from tfdistill.data.fashion_mnist import CLASS_NAMES, DEFAULT_DIRECTORY, load_fashion_mnist, read_idx
from tfdistill.data.image_folders import folder_name, write_image_folder
from tfdistill.data.mixup import mix_batch, mixup
from tfdistill.data.pipelines import (
    augment_image,
    check_image_files,
    load_image_folder,
    load_tfds,
    make_dataset,
    to_float_images,
)

__all__ = [
    "CLASS_NAMES",
    "DEFAULT_DIRECTORY",
    "augment_image",
    "check_image_files",
    "folder_name",
    "load_fashion_mnist",
    "load_image_folder",
    "load_npz",
    "load_tfds",
    "make_dataset",
    "mix_batch",
    "mixup",
    "read_idx",
    "to_float_images",
    "write_image_folder",
]
