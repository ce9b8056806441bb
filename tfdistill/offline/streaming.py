"""Offline distillation for data that does not fit in memory.

The examples are read one at a time by a function of their index (an image
file decoded per step, a record); the teacher's outputs for every example and
view are written once to an `.npy` file on disk and read back memory-mapped,
a batch of rows at a time. Neither the examples nor the cache are ever held
in memory whole. A cache too large for one process's pass is written in shards
on Apache Beam (`tfdistill.offline.beam`); `streaming_offline_dataset` reads
it the same way, shard by shard (`tfdistill.offline.shards`).
"""

import json
import os
import shutil

import keras
import numpy as np
import tensorflow as tf

from tfdistill.data.mixing import mixed_order
from tfdistill.data.pipelines import AUTOTUNE
from tfdistill.export.atomic import temporary_path
from tfdistill.losses.logits import top_k_logits
from tfdistill.offline.shards import (
    TOP_K_CLASSES,
    TOP_K_SETTINGS,
    TOP_K_VALUES,
    ShardedArray,
    is_sharded_cache,
    read_sharded_cache,
)
from tfdistill.offline.views import view_image
from tfdistill.teacher_outputs import (
    CLASSES_KEY,
    INPUT_KEY,
    LOGITS_KEY,
    TEMPERATURE_KEY,
    TopKLogits,
    check_top_k_arguments,
)

# What a cache on disk stores floating outputs as.
STORAGE_DTYPES = ("float16", "float32")


def _check_examples(load_example, num_examples):
    if not callable(load_example):
        raise ValueError(
            "Invalid value for argument `load_example`. Expected a function from an int64 example "
            f"index to the example's float32 tensor. Received: {load_example!r}"
        )
    if isinstance(num_examples, bool) or not isinstance(num_examples, (int, np.integer)) or num_examples < 1:
        raise ValueError(f"Invalid value for argument `num_examples`. Expected an int >= 1. Received: {num_examples!r}")


def view_loader(load_example, views, seed):
    """`load(index, view)`: the example `load_example(index)`, or with several views its view `view`."""
    def load(index, view):
        image = load_example(index)
        return image if views == 1 else view_image(image, index, view, seed)

    return load


def check_pass_arguments(teacher, views, batch_size, dtype, top_k, temperature):
    """The checks every teacher's pass to disk makes first; returns `(output_shape, top_k, temperature)`.

    Shared by `write_teacher_logits` and `write_sharded_cache`, so the same
    bad arguments get the same errors from both.
    """
    for name, value in (("views", views), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"Invalid value for argument `{name}`. Expected an int >= 1. Received: {name}={value!r}")
    if _dtype_name(dtype) not in STORAGE_DTYPES:
        raise ValueError(
            f"Invalid value for argument `dtype`. Expected one of {list(STORAGE_DTYPES)}. Received: dtype={dtype!r}"
        )
    output_shape = tuple(teacher.outputs[0].shape[1:])
    if any(size is None for size in output_shape):
        raise ValueError(
            "Invalid value for argument `teacher`: a disk cache needs outputs of a fixed shape per example. "
            f"Received: output shape {(None,) + output_shape}; give the model a fixed sequence length."
        )
    top_k, temperature = check_top_k_arguments(top_k, temperature, output_shape[-1])
    return output_shape, top_k, temperature


def _dtype_name(dtype):
    try:
        return np.dtype(dtype).name
    except TypeError:
        return None


def class_dtype(num_classes):
    """The smallest integer type a top-k cache stores class ids `0 .. num_classes - 1` in."""
    return np.dtype(np.uint16 if num_classes <= np.iinfo(np.uint16).max + 1 else np.int32)


def view_batches(load, view, batch_size, start, stop):
    """Batches of view `view` of examples `start .. stop - 1`, as the teacher's pass runs them.

    Batches start at `start`: a range that starts at a multiple of
    `batch_size` gives the batches the whole pass gives there.
    """
    return tf.data.Dataset.range(start, stop).map(
        lambda index: load(index, tf.constant(view, tf.int64)), num_parallel_calls=AUTOTUNE, deterministic=True,
    ).batch(batch_size).prefetch(AUTOTUNE)


def write_teacher_logits(teacher, load_example, num_examples, path, views=1, seed=0, batch_size=256,
                         dtype="float16", verbose=1, top_k=None, temperature=None):
    """Runs the teacher once over every view of `num_examples` streamed examples into an `.npy` file.

    Args:
        teacher: a `keras.Model` that outputs logits `(batch, num_classes)`,
            or `(batch, ..., num_classes)` with positions (a fixed length).
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
        top_k: keep only the `k` largest logits per example (per position)
            and a remainder logit (`tfdistill.losses.top_k_logits`), for
            vocabulary-sized outputs; `path` is then a directory.
        temperature: with `top_k`, the KD temperature of the remainder.

    Returns:
        `path`. Read it with `np.load(path, mmap_mode="r")`: shape
        `(views, num_examples, ..., num_classes)`. With `top_k`, a directory
        that `read_top_k_cache` opens memory-mapped: values `(views,
        num_examples, ..., k + 1)` and classes `(views, num_examples, ..., k)`,
        stored in the smallest integer type that holds the class ids.

    Example:
        >>> write_teacher_logits(teacher, read_image, len(paths), "cache/logits.npy")  # doctest: +SKIP
        >>> write_teacher_logits(lm, read_tokens, n, "cache/top8", top_k=8, temperature=1.0)  # doctest: +SKIP
    """
    _check_examples(load_example, num_examples)
    if os.path.exists(path):
        raise FileExistsError(f"Invalid value for argument `path`: {path!r} already exists; nothing was written.")
    output_shape, top_k, temperature = check_pass_arguments(teacher, views, batch_size, dtype, top_k, temperature)
    if top_k is not None:
        return _write_top_k(teacher, load_example, num_examples, path, views, seed, batch_size, dtype, verbose,
                            top_k, temperature, output_shape)
    load = view_loader(load_example, views, seed)
    staging = temporary_path(path, ".npy")
    logits = np.lib.format.open_memmap(staging, mode="w+", dtype=dtype, shape=(views, num_examples) + output_shape)
    predict = tf.function(lambda images: teacher(images, training=False))
    try:
        for view in range(views):
            ds, progress = _batches(load, num_examples, view, batch_size, verbose, views)
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


def _batches(load, num_examples, view, batch_size, verbose, views):
    ds = view_batches(load, view, batch_size, 0, num_examples)
    if verbose:
        print(f"Teacher outputs, view {view + 1}/{views}:")
    return ds, keras.utils.Progbar(len(ds)) if verbose else None


def _write_top_k(teacher, load_example, num_examples, path, views, seed, batch_size, dtype, verbose,
                 top_k, temperature, output_shape):
    """`write_teacher_logits` with `top_k`: a directory of memory-mapped values and classes."""
    positions, num_classes = output_shape[:-1], output_shape[-1]
    load = view_loader(load_example, views, seed)
    staging = temporary_path(path, "")
    os.makedirs(staging)
    shape = (views, num_examples) + positions
    try:
        values = np.lib.format.open_memmap(
            os.path.join(staging, TOP_K_VALUES), mode="w+", dtype=dtype, shape=shape + (top_k + 1,)
        )
        classes = np.lib.format.open_memmap(
            os.path.join(staging, TOP_K_CLASSES), mode="w+", dtype=class_dtype(num_classes), shape=shape + (top_k,)
        )
        compress = tf.function(lambda x: top_k_logits(teacher(x, training=False), top_k, temperature))
        for view in range(views):
            ds, progress = _batches(load, num_examples, view, batch_size, verbose, views)
            start = 0
            for batch in ds:
                batch_values, batch_classes = compress(batch)
                end = start + len(batch_values)
                values[view, start:end] = batch_values.numpy()
                classes[view, start:end] = batch_classes.numpy()
                start = end
                if progress:
                    progress.add(1)
        values.flush()
        classes.flush()
        del values, classes
        with open(os.path.join(staging, TOP_K_SETTINGS), "w") as file:
            json.dump({"temperature": temperature, "top_k": top_k, "num_classes": num_classes}, file)
        os.replace(staging, path)
    finally:
        if os.path.exists(staging):
            shutil.rmtree(staging)
    return path


def read_top_k_cache(path):
    """Opens a top-k cache directory written by `write_teacher_logits(..., top_k=k)`, memory-mapped.

    Args:
        path: the directory.

    Returns:
        A `TopKLogits` whose `values` and `classes` are read-only memory maps.

    Example:
        >>> cache = read_top_k_cache("cache/top8")  # doctest: +SKIP
        >>> cache.values.shape  # (views, examples, time, k + 1)  # doctest: +SKIP
    """
    names = (TOP_K_VALUES, TOP_K_CLASSES, TOP_K_SETTINGS)
    missing = [name for name in names if not os.path.exists(os.path.join(path, name))]
    if missing:
        raise FileNotFoundError(
            f"Invalid top-k cache {path!r}: {', '.join(missing)} missing. Expected the directory "
            "`write_teacher_logits(..., top_k=k)` writes."
        )
    with open(os.path.join(path, TOP_K_SETTINGS)) as file:
        settings = json.load(file)
    values = np.load(os.path.join(path, TOP_K_VALUES), mmap_mode="r")
    classes = np.load(os.path.join(path, TOP_K_CLASSES), mmap_mode="r")
    return TopKLogits(values, classes, float(settings["temperature"]))


def _open_cache(logits):
    """`(top_k, arrays)` of a cache: `top_k` a `TopKLogits` or `None`, `arrays` its arrays by batch key."""
    if isinstance(logits, (str, os.PathLike)):
        if is_sharded_cache(logits):
            logits = read_sharded_cache(logits)
        elif os.path.isdir(logits):
            logits = read_top_k_cache(logits)
        else:
            return None, {LOGITS_KEY: np.load(logits, mmap_mode="r")}
    if isinstance(logits, TopKLogits):
        return logits, {LOGITS_KEY: logits.values, CLASSES_KEY: logits.classes}
    if isinstance(logits, ShardedArray):
        return None, {LOGITS_KEY: logits}
    raise ValueError(
        "Invalid value for argument `logits_path`. Expected the `.npy` file `write_teacher_logits` wrote, its "
        f"top-k directory, or a sharded cache (its folder, or `read_sharded_cache`'s result). Received: {logits!r}"
    )


def streaming_offline_dataset(load_example, labels, logits_path, batch_size=128, shuffle=True, seed=0,
                              view_seed=0, sample_weight=None, labeled_share=None):
    """Batches of `({"x": example, "teacher_logits": logits}, label)` for `Distiller.fit`, streamed.

    Every epoch visits the examples in a new order (reproducible from `seed`)
    and draws one of the cached views per example; the example is loaded and
    that view rebuilt by `load_example`, and its teacher logits are read from
    the memory-mapped cache. Memory holds the labels and a few batches, never
    the data or the cache.

    Args:
        load_example: the function given to `write_teacher_logits`.
        labels: integer labels, shape `(num_examples,)`, or `(num_examples,
            ...)` one per position; -1 (`tfdistill.labels.UNLABELED`) where
            an example has none; or `None` for a pool without labels
            (batches then carry `x` alone).
        logits_path: the file `write_teacher_logits` wrote, or its top-k
            directory (`top_k=`; batches then carry the kept classes too);
            or a sharded cache's folder (`write_sharded_cache`, `tfdistill
            cache`), or what `read_sharded_cache` returned: its shards are
            verified when opened and read memory-mapped, a batch at a time.
        batch_size: examples per batch.
        shuffle: reshuffle every epoch.
        seed: seed of the order and the view drawn per example.
        view_seed: the `seed` the views were computed with.
        sample_weight: optional weights of the labels' shape (padded
            positions 0) or `(num_examples,)`; batches are then `(x, y, w)`.
        labeled_share: `None`, or the share of each batch drawn from the
            labeled examples (see `tfdistill.data.mixing`); an epoch is then
            one pass over the unlabeled ones.

    Returns:
        A `tf.data.Dataset`.

    Example:
        >>> train = streaming_offline_dataset(read_image, labels, "cache/logits.npy")  # doctest: +SKIP
        >>> distiller.fit(train, epochs=10)  # doctest: +SKIP
    """
    top_k, arrays = _open_cache(logits_path)
    cache = arrays[LOGITS_KEY]
    labels = None if labels is None else np.asarray(labels)
    label_shape = cache.shape[1:-1] if labels is None else labels.shape
    if cache.ndim < 3 or cache.shape[1] != label_shape[0] or cache.shape[2:-1] != label_shape[1:]:
        raise ValueError(
            f"Invalid value for argument `logits_path`: expected a cache of shape (views, {label_shape[0]}, "
            f"{''.join(f'{size}, ' for size in label_shape[1:])}num_classes) for {label_shape[0]} labels"
            f"{f' of shape {label_shape}' if len(label_shape) > 1 else ''}. "
            f"Received: shape {cache.shape} in {logits_path!r}"
        )
    if sample_weight is not None:
        sample_weight = np.asarray(sample_weight, np.float32)
        if sample_weight.ndim == 0 or sample_weight.shape != label_shape[: sample_weight.ndim]:
            raise ValueError(
                "Invalid value for argument `sample_weight`. Expected weights of shape "
                f"({label_shape[0]},) or {label_shape}. Received: shape {sample_weight.shape}"
            )
    if labeled_share is not None and labels is None:
        raise ValueError(
            "Invalid value for argument `labeled_share`: it mixes labeled examples with unlabeled ones, "
            "but `labels` is None. Give labels with -1 for the unlabeled examples."
        )
    _check_examples(load_example, label_shape[0])
    views, num_examples = cache.shape[:2]
    load = view_loader(load_example, views, view_seed)
    if labeled_share is not None:
        order = mixed_order(labels, batch_size, labeled_share, shuffle, seed)
    else:
        order = tf.data.Dataset.range(num_examples)
        if shuffle:
            order = order.shuffle(num_examples, seed=seed, reshuffle_each_iteration=True)
    draws = tf.data.Dataset.random(seed=seed + 1, rerandomize_each_iteration=True)
    label_table = None if labels is None else tf.constant(labels)
    weight_table = None if sample_weight is None else tf.constant(sample_weight)

    def example(index, draw):
        view = tf.math.floormod(draw, views)
        return load(index, view), index, view

    def reader(array):
        dtype = np.float32 if np.issubdtype(array.dtype, np.floating) else np.int32

        def read_rows(view, index):
            return np.asarray(array[view, index], dtype)

        return read_rows, tf.as_dtype(dtype), [None, *array.shape[2:]]

    readers = {key: reader(array) for key, array in arrays.items()}

    def with_outputs(inputs, index, view):
        batch = {INPUT_KEY: inputs}
        for key, (read_rows, dtype, shape) in readers.items():
            rows = tf.numpy_function(read_rows, [view, index], dtype, stateful=False)
            rows.set_shape(shape)
            batch[key] = rows
        if top_k is not None:
            batch[TEMPERATURE_KEY] = tf.fill([tf.shape(index)[0]], tf.constant(top_k.temperature, tf.float32))
        label = None if label_table is None else tf.gather(label_table, index)
        if weight_table is None:
            return batch if label is None else (batch, label)
        return batch, label, tf.gather(weight_table, index)

    ds = tf.data.Dataset.zip(order, draws).map(example, num_parallel_calls=AUTOTUNE, deterministic=True)
    return ds.batch(batch_size).map(with_outputs, num_parallel_calls=AUTOTUNE, deterministic=True).prefetch(AUTOTUNE)
