"""Writing arrays of images as an image folder (one sub-folder of PNGs per class)."""

import os

import numpy as np
import tensorflow as tf


def folder_name(class_name):
    """`class_name` as a folder name: `/` and spaces replaced (`"T-shirt/top"` -> `"T-shirt-top"`)."""
    return str(class_name).replace("/", "-").replace(" ", "_")


def write_image_folder(images, labels, class_names, folder, start_index=0):
    """Writes `images` as PNG files `folder/CLASS/NNNNNNN.png`, the layout image-folder readers take.

    Args:
        images: `uint8` images, shape `(n, h, w)` or `(n, h, w, c)` with 1 or 3 channels.
        labels: integer class ids, shape `(n,)`.
        class_names: one name per class id; each becomes a folder (see `folder_name`).
        folder: the folder to write into (created if needed).
        start_index: the number of the first file, so several calls can add to one folder.

    Returns:
        The number of files written.

    Raises:
        ValueError: images that are not `uint8`, labels of another length or
            out of range.
        FileExistsError: a file of that name exists; nothing is overwritten.

    Example:
        >>> (x, y), _ = load_fashion_mnist()  # doctest: +SKIP
        >>> write_image_folder(x, y, CLASS_NAMES, "fashion_png/train")  # doctest: +SKIP
        60000
    """
    images, labels = np.asarray(images), np.asarray(labels)
    if images.dtype != np.uint8 or images.ndim not in (3, 4):
        raise ValueError(
            "Invalid value for argument `images`. Expected uint8 images of shape (n, h, w) or (n, h, w, c). "
            f"Received: dtype={images.dtype}, shape={images.shape}"
        )
    if len(labels) != len(images) or labels.min() < 0 or labels.max() >= len(class_names):
        raise ValueError(
            f"Invalid value for argument `labels`. Expected {len(images)} class ids in [0, {len(class_names)}). "
            f"Received: {len(labels)} labels in [{labels.min()}, {labels.max()}]"
        )
    if images.ndim == 3:
        images = images[..., None]
    names = [folder_name(name) for name in class_names]
    for name in names:
        os.makedirs(os.path.join(folder, name), exist_ok=True)
    for offset, (image, label) in enumerate(zip(images, labels)):
        path = os.path.join(folder, names[label], f"{start_index + offset:07d}.png")
        with open(path, "xb") as f:  # "x": never overwrite
            f.write(tf.io.encode_png(image).numpy())
    return len(images)
