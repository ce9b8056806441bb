"""Offline distillation for data that does not fit in memory.

The examples are read one at a time by a function of their index (an image
file decoded per step, a record); the teacher's outputs for every example and
view are written once to an `.npy` file on disk and read back memory-mapped,
a batch of rows at a time. Neither the examples nor the cache are ever held
in memory whole.
"""

import os

import keras
import numpy as np
import tensorflow as tf

from tfdistill.data.pipelines import AUTOTUNE
from tfdistill.export.atomic import temporary_path
from tfdistill.offline.views import view_image
from tfdistill.teacher_outputs import INPUT_KEY, LOGITS_KEY


def _check_examples(load_example, num_examples):
    if not callable(load_example):
        raise ValueError(
            "Invalid value for argument `load_example`. Expected a function from an int64 example "
            f"index to the example's float32 tensor. Received: {load_example!r}"
        )
    if isinstance(num_examples, bool) or not isinstance(num_examples, (int, np.integer)) or num_examples < 1:
        raise ValueError(f"Invalid value for argument `num_examples`. Expected an int >= 1. Received: {num_examples!r}")


def _view_of(load_example, views, seed):
    def load(index, view):
        image = load_example(index)
        return image if views == 1 else view_image(image, index, view, seed)

    return load


def write_teacher_logits(teacher, load_example, num_examples, path, views=1, seed=0, batch_size=256,
                         dtype="float16", verbose=1):
    """Runs the teacher once over every view of `num_examples` streamed examples into an `.npy` file.

    Args:
        teacher: a `keras.Model` that outputs logits `(batch, num_classes)`.
        load_example: a TensorFlow function from an `int64` index to one
            example as the teacher takes it (e.g. reads and decodes an image
            file); called inside `tf.data`.
        num_examples: how many examples (indices `0 .. num_examples - 1`).
        path: the `.npy` file to write. It is written under a temporary name
            and renamed when complete; an existing file is refused.
        views: views per example: view 0 is the example itself, views `1 ..`
            augmented copies (`tfdistill.offline.view_image`, images only),
            the same as `compute_teacher_logits` makes in memory.
        seed: seed of the augmented views.
        batch_size: inference batch size.
        dtype: storage dtype, `"float16"` (default) or `"float32"`.
        verbose: 1 shows a progress bar per view.

    Returns:
        `path`. Read it with `np.load(path, mmap_mode="r")`: shape
        `(views, num_examples, num_classes)`.

    Example:
        >>> write_teacher_logits(teacher, read_image, len(paths), "cache/logits.npy")  # doctest: +SKIP
    """
    _check_examples(load_example, num_examples)
    if os.path.exists(path):
        raise FileExistsError(f"Invalid value for argument `path`: {path!r} already exists; nothing was written.")
    num_classes = int(teacher.outputs[0].shape[-1])
    load = _view_of(load_example, views, seed)
    staging = temporary_path(path, ".npy")
    logits = np.lib.format.open_memmap(staging, mode="w+", dtype=dtype, shape=(views, num_examples, num_classes))
    predict = tf.function(lambda images: teacher(images, training=False))
    try:
        for view in range(views):
            ds = tf.data.Dataset.range(num_examples).map(
                lambda index, v=view: load(index, tf.constant(v, tf.int64)), num_parallel_calls=AUTOTUNE,
                deterministic=True,
            ).batch(batch_size).prefetch(AUTOTUNE)
            progress = keras.utils.Progbar(len(ds)) if verbose else None
            if verbose:
                print(f"Teacher outputs, view {view + 1}/{views}:")
            start = 0
            for images in ds:
                batch = predict(images).numpy()
                logits[view, start:start + len(batch)] = batch
                start += len(batch)
                if progress:
                    progress.add(1)
        logits.flush()
        del logits
        os.replace(staging, path)
    finally:
        if os.path.exists(staging):
            os.remove(staging)
    return path


def streaming_offline_dataset(load_example, labels, logits_path, batch_size=128, shuffle=True, seed=0,
                              view_seed=0):
    """Batches of `({"x": example, "teacher_logits": logits}, label)` for `Distiller.fit`, streamed.

    Every epoch visits the examples in a new order (reproducible from `seed`)
    and draws one of the cached views per example; the example is loaded and
    that view rebuilt by `load_example`, and its teacher logits are read from
    the memory-mapped cache. Memory holds the labels and a few batches, never
    the data or the cache.

    Args:
        load_example: the function given to `write_teacher_logits`.
        labels: integer labels, shape `(num_examples,)`.
        logits_path: the file `write_teacher_logits` wrote.
        batch_size: examples per batch.
        shuffle: reshuffle every epoch.
        seed: seed of the order and the view drawn per example.
        view_seed: the `seed` the views were computed with.

    Returns:
        A `tf.data.Dataset`.

    Example:
        >>> train = streaming_offline_dataset(read_image, labels, "cache/logits.npy")  # doctest: +SKIP
        >>> distiller.fit(train, epochs=10)  # doctest: +SKIP
    """
    labels = np.asarray(labels)
    cache = np.load(logits_path, mmap_mode="r")
    if cache.ndim != 3 or cache.shape[1] != len(labels):
        raise ValueError(
            f"Invalid value for argument `logits_path`: expected a cache of shape (views, {len(labels)}, "
            f"num_classes) for {len(labels)} labels. Received: shape {cache.shape} in {logits_path!r}"
        )
    _check_examples(load_example, len(labels))
    views, num_examples, num_classes = cache.shape
    load = _view_of(load_example, views, view_seed)
    order = tf.data.Dataset.range(num_examples)
    if shuffle:
        order = order.shuffle(num_examples, seed=seed, reshuffle_each_iteration=True)
    draws = tf.data.Dataset.random(seed=seed + 1, rerandomize_each_iteration=True)
    label_table = tf.constant(labels)

    def example(index, draw):
        view = tf.math.floormod(draw, views)
        return load(index, view), index, view, tf.gather(label_table, index)

    def read_rows(view, index):
        return np.asarray(cache[view, index], np.float32)

    def with_logits(images, index, view, label):
        rows = tf.numpy_function(read_rows, [view, index], tf.float32, stateful=False)
        rows.set_shape([None, num_classes])
        return {INPUT_KEY: images, LOGITS_KEY: rows}, label

    ds = tf.data.Dataset.zip(order, draws).map(example, num_parallel_calls=AUTOTUNE, deterministic=True)
    return ds.batch(batch_size).map(with_logits, num_parallel_calls=AUTOTUNE, deterministic=True).prefetch(AUTOTUNE)
