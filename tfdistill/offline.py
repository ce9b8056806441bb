"""Offline distillation: run the teacher once, train the student on its cached outputs.

The teacher's logits for every training example are computed once, in large
inference batches, and joined to the `tf.data` pipeline under the key
`"teacher_logits"`; `Distiller` then never calls the teacher while training.
Random augmentation stays possible through a fixed number of augmented *views*
per example: view `v` of example `i` is a deterministic function of
`(seed, i, v)`, so the pipeline rebuilds exactly the image the teacher saw.
"""

import hashlib
import os

import keras
import numpy as np
import tensorflow as tf

from tfdistill.data.pipelines import AUTOTUNE, augment_image, to_float_images
from tfdistill.distiller import TEACHER_LOGITS_KEY


def _view_seed(seed, index, view):
    return tf.stack([tf.cast(seed, tf.int64) * 1_000_003 + tf.cast(view, tf.int64),
                     tf.cast(index, tf.int64)])


def _view_image(image, index, view, seed):
    """View 0 is the original image; view `v > 0` an augmented copy."""
    if view is None:
        return image
    augmented = augment_image(image, _view_seed(seed, index, view))
    return tf.cond(tf.equal(view, 0), lambda: image, lambda: augmented)


def compute_teacher_logits(teacher, x, views=1, seed=0, batch_size=1024, dtype="float16", verbose=1):
    """Runs the teacher once over `x` (and its augmented views) in inference mode.

    Args:
        teacher: a `keras.Model` that outputs logits.
        x: images, `uint8` or `float32` `[0, 1]`, shape `(n, h, w[, c])`.
        views: number of views per example: view 0 is the image itself, views
            `1 .. views-1` are augmented copies (random flip and shift),
            reproducible from `seed`.
        seed: seed of the augmented views.
        batch_size: inference batch size (large batches are fastest).
        dtype: storage dtype of the logits, `"float16"` (default) or
            `"float32"`.
        verbose: 1 shows a progress bar.

    Returns:
        A numpy array of shape `(views, n, num_classes)`.

    Example:
        >>> logits = compute_teacher_logits(teacher, x_train, views=4)  # doctest: +SKIP
    """
    x = to_float_images(x)
    if not isinstance(views, int) or views < 1:
        raise ValueError(
            "Invalid value for argument `views`. Expected an int >= 1. "
            f"Received: views={views!r}"
        )
    n = len(x)
    outputs = []
    for view in range(views):
        ds = tf.data.Dataset.from_tensor_slices((x, tf.range(n, dtype=tf.int64)))
        ds = ds.map(
            lambda image, index, v=view: _view_image(image, index, tf.constant(v, tf.int64), seed),
            num_parallel_calls=AUTOTUNE,
            deterministic=True,
        )
        ds = ds.batch(batch_size).prefetch(AUTOTUNE)
        if verbose:
            print(f"Teacher logits, view {view + 1}/{views}:")
        logits = teacher.predict(ds, verbose=verbose)
        outputs.append(logits.astype(dtype))
    return np.stack(outputs)


def cache_key(teacher, x, views, seed, dtype):
    """A hash of the teacher's weights, the data (values and order) and settings."""
    digest = hashlib.sha256()
    for weight in teacher.weights:
        digest.update(weight.path.encode())
        digest.update(np.ascontiguousarray(keras.ops.convert_to_numpy(weight)).tobytes())
    x = np.ascontiguousarray(x)
    digest.update(f"{x.shape}{x.dtype}{views}{seed}{dtype}".encode())
    digest.update(x.tobytes())
    return digest.hexdigest()[:32]


def cached_teacher_logits(teacher, x, views=1, seed=0, cache_dir=None, dtype="float16", verbose=1, **kwargs):
    """`compute_teacher_logits`, stored on disk under a key of teacher and data.

    A changed teacher (any weight), changed data or changed order gives a new
    key, so stale outputs are never reused.

    Args:
        teacher, x, views, seed, dtype, verbose: as `compute_teacher_logits`.
        cache_dir: folder of the `.npy` cache files; `None` keeps nothing on
            disk.
        **kwargs: passed to `compute_teacher_logits`.

    Returns:
        A numpy array of shape `(views, n, num_classes)` (memory-mapped when it
        was read from disk).
    """
    if cache_dir is None:
        return compute_teacher_logits(teacher, x, views, seed, dtype=dtype, verbose=verbose, **kwargs)
    path = os.path.join(cache_dir, f"teacher_logits_{cache_key(teacher, x, views, seed, dtype)}.npy")
    if os.path.exists(path):
        if verbose:
            print(f"Teacher logits: reusing {path}")
        return np.load(path, mmap_mode="r")
    logits = compute_teacher_logits(teacher, x, views, seed, dtype=dtype, verbose=verbose, **kwargs)
    os.makedirs(cache_dir, exist_ok=True)
    temporary = f"{path}.{os.getpid()}.tmp.npy"
    np.save(temporary, logits)
    os.replace(temporary, path)  # Atomic: a crash never leaves a half-written cache.
    return logits


def offline_dataset(x, y, teacher_logits, batch_size=128, shuffle=True, seed=0, view_seed=0):
    """A pipeline of `({"x": image, "teacher_logits": logits}, label)` batches.

    Each example stays paired with its own teacher output through shuffling.
    With several views, every epoch draws one view per example at random
    (reproducibly from `seed`) and rebuilds that view's image.

    Args:
        x: images, as given to `compute_teacher_logits`.
        y: labels, shape `(n,)`.
        teacher_logits: shape `(views, n, num_classes)` or `(n, num_classes)`.
        batch_size: examples per batch.
        shuffle: reshuffle every epoch.
        seed: seed of the order and of the view drawn per example.
        view_seed: the `seed` the views were computed with.

    Returns:
        A `tf.data.Dataset` for `Distiller.fit`.

    Example:
        >>> logits = compute_teacher_logits(teacher, x_train, views=4)  # doctest: +SKIP
        >>> train = offline_dataset(x_train, y_train, logits)  # doctest: +SKIP
        >>> distiller.fit(train, epochs=30)  # doctest: +SKIP
    """
    x = to_float_images(x)
    teacher_logits = np.asarray(teacher_logits)
    if teacher_logits.ndim == 2:
        teacher_logits = teacher_logits[None]
    views, n = teacher_logits.shape[:2]
    if n != len(x) or len(y) != len(x):
        raise ValueError(
            "Invalid arguments: `x`, `y` and `teacher_logits` must describe the "
            f"same examples. Received: len(x)={len(x)}, len(y)={len(y)}, "
            f"teacher_logits.shape={teacher_logits.shape}"
        )
    if views == 1:
        # No per-example work: the same shuffle as `make_dataset(x, y, seed=seed)`.
        ds = tf.data.Dataset.from_tensor_slices(({"x": x, TEACHER_LOGITS_KEY: teacher_logits[0]}, np.asarray(y)))
        if shuffle:
            ds = ds.shuffle(n, seed=seed, reshuffle_each_iteration=True)
        return ds.batch(batch_size).prefetch(AUTOTUNE)
    logits_by_example = np.ascontiguousarray(np.swapaxes(teacher_logits, 0, 1))
    ds = tf.data.Dataset.from_tensor_slices(
        (x, np.asarray(y), logits_by_example, np.arange(n, dtype=np.int64))
    )
    if shuffle:
        ds = ds.shuffle(n, seed=seed, reshuffle_each_iteration=True)
    draws = tf.data.Dataset.random(seed=seed + 1, rerandomize_each_iteration=True)
    ds = tf.data.Dataset.zip(ds, draws)

    def pick(element, draw):
        image, label, logits, index = element
        view = tf.math.floormod(draw, views)
        image = _view_image(image, index, view, view_seed)
        return {"x": image, TEACHER_LOGITS_KEY: tf.gather(logits, view)}, label

    ds = ds.map(pick, num_parallel_calls=AUTOTUNE, deterministic=True)
    return ds.batch(batch_size).prefetch(AUTOTUNE)


def cache_size_bytes(num_examples, num_classes, views=1, dtype="float16", top_k=None):
    """Bytes needed to cache teacher outputs.

    With `top_k`, each example keeps `k` values (in `dtype`) and `k` int32
    class ids instead of all `num_classes` values.

    Example:
        >>> cache_size_bytes(1_281_167, 1000)  # ImageNet, float16
        2562334000
    """
    itemsize = np.dtype(dtype).itemsize
    per_example = num_classes * itemsize if top_k is None else top_k * (itemsize + 4)
    return num_examples * views * per_example
