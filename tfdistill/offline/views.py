"""Augmented views of images, each a fixed function of `(seed, example index, view)`.

View 0 is the image itself; view `v > 0` an augmented copy (random flip and
shift) that the teacher and the student see identically, online or offline.
"""

import numpy as np
import tensorflow as tf

from tfdistill.data.pipelines import augment_image, to_float_images


def as_inputs(x, views=1):
    """Images (uint8 scaled to [0, 1], a channel axis added), integer ids (tokens) as they are, or floats."""
    x = np.asarray(x)
    if np.issubdtype(x.dtype, np.integer) and x.dtype != np.uint8:
        if views != 1:
            raise ValueError(
                "Invalid value for argument `x`: augmented views (`views > 1`) need images; "
                f"integer ids (tokens) have none. Received: dtype={x.dtype}, views={views}"
            )
        return x
    if x.dtype == np.uint8 or x.ndim == 3:
        return to_float_images(x)
    if views != 1 and x.ndim != 4:
        raise ValueError(
            "Invalid value for argument `x`: augmented views (`views > 1`) need images of "
            f"shape (n, h, w[, c]). Received: shape={x.shape}"
        )
    return x.astype("float32")


def view_seed(seed, index, view):
    return tf.stack([tf.cast(seed, tf.int64) * 1_000_003 + tf.cast(view, tf.int64),
                     tf.cast(index, tf.int64)])


def view_image(image, index, view, seed):
    """View 0 is the original image; view `v > 0` an augmented copy."""
    if view is None:
        return image
    augmented = augment_image(image, view_seed(seed, index, view))
    return tf.cond(tf.equal(view, 0), lambda: image, lambda: augmented)


def all_views(x, views, seed, batch_size=4096):
    """Every view of every example, shape `(views, n, ...)`: `uint8` for `uint8` images, else float32.

    The same images as `view_image` gives one at a time: a flip and a shift
    move pixels without changing them, so `uint8` keeps them exactly.
    """
    x = np.asarray(x)
    images = as_inputs(x, views)
    out = []
    for view in range(views):
        ds = tf.data.Dataset.zip(tf.data.Dataset.from_tensor_slices(images), tf.data.Dataset.range(len(images)))
        ds = ds.map(lambda image, index, v=view: view_image(image, index, tf.constant(v, tf.int64), seed))
        out.append(np.concatenate([batch.numpy() for batch in ds.batch(batch_size)]))
    stacked = np.stack(out)
    if x.dtype == np.uint8:
        return np.round(stacked * 255.0).astype(np.uint8)
    return stacked
