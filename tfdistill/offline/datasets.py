"""`tf.data` pipelines that carry the teacher's cached outputs with each batch, on one machine or many.
"""

from typing import Dict, Optional, Union

import keras
import numpy as np
import tensorflow as tf

from tfdistill.data.mixing import mixed_order
from tfdistill.data.pipelines import AUTOTUNE
from tfdistill.offline.disk_cache import cached_teacher_logits
from tfdistill.offline.views import all_views, as_inputs, view_image
from tfdistill.teacher_outputs import (
    CLASSES_KEY,
    FEATURES_KEY,
    INPUT_KEY,
    LOGITS_KEY,
    TEMPERATURE_KEY,
    TopKLogits,
)
from tfdistill.validation import UNLABELED

# `offline_dataset` keeps every view's image in memory up to this size (uint8 images count as stored).
MATERIALIZE_LIMIT_BYTES = 2 * 1024**3


def offline_dataset(
    x: np.ndarray,
    y: Optional[np.ndarray],
    teacher_logits: Union[np.ndarray, TopKLogits],
    batch_size: int = 128,
    shuffle: bool = True,
    seed: int = 0,
    view_seed: int = 0,
    teacher_features: Optional[Dict[str, np.ndarray]] = None,
    materialize_views: Optional[bool] = None,
    sample_weight: Optional[np.ndarray] = None,
    labeled_share: Optional[float] = None,
) -> tf.data.Dataset:
    """A pipeline of `({"x": image, "teacher_logits": logits}, label)` batches.

    Each example stays paired with its own teacher output through shuffling.
    With several views, every epoch draws one view per example at random
    (reproducibly from `seed`) and uses that view's image: computed once for
    every view and gathered a batch at a time (`materialize_views`), or
    rebuilt per example. Both give the very same batches. A `TopKLogits`
    cache adds the keys `"teacher_classes"` and `"teacher_temperature"`; the
    `Distiller` then computes KD on the kept classes and the remainder.

    Without labels (`y=None`) the batches carry `x` alone; labels of
    `tfdistill.labels.UNLABELED` (-1) mark a pool of unlabeled examples
    beside labeled ones, and `labeled_share` gives every batch the same
    share of labeled examples (see `tfdistill.data.mixing`).

    Logits with positions (a sequence's tokens) are cached as `(views, n,
    ..., num_classes)` (or a `TopKLogits` of `(views, n, ..., k + 1)`) with
    labels `(n, ...)` and, for padding, `sample_weight` of the same shape.

    Args:
        x: images, as given to `compute_teacher_logits`, or integer token ids.
        y: labels, shape `(n,)`, or `(n, ...)` one per position; -1 where
            an example has none; or `None` for data without labels.
        teacher_logits: shape `(views, n, num_classes)` or `(n, num_classes)`,
            `(views, n, ..., num_classes)` with positions, or a `TopKLogits`.
        batch_size: examples per batch.
        shuffle: reshuffle every epoch.
        seed: seed of the order and of the view drawn per example.
        view_seed: the `seed` the views were computed with.
        teacher_features: optional dict from teacher layer name to cached
            features, shape `(views, n, ...)` (see `compute_teacher_outputs`),
            for a `Distiller` with `FeaturePair`s.
        materialize_views: with several views, keep every view's image in
            memory (as `uint8` when `x` is `uint8`), which makes an epoch
            cheaper than rebuilding each image; `None` does so when they take
            at most `MATERIALIZE_LIMIT_BYTES`.
        sample_weight: optional weights, `(n,)` or the labels' shape (padded
            positions 0); batches are then `(x, y, sample_weight)`. One view
            only.
        labeled_share: `None`, or the share of each batch drawn from the
            labeled examples (the rest from those labeled -1); an epoch is
            then one pass over the unlabeled ones.

    Returns:
        A `tf.data.Dataset` for `Distiller.fit`.

    Example:
        >>> logits = compute_teacher_logits(teacher, x_train, views=4)  # doctest: +SKIP
        >>> train = offline_dataset(x_train, y_train, logits)  # doctest: +SKIP
        >>> distiller.fit(train, epochs=30)  # doctest: +SKIP
        >>> few = tfdistill.labels.keep_labels_per_class(y_train, 100)  # doctest: +SKIP
        >>> train = offline_dataset(x_train, few, logits, labeled_share=0.25)  # doctest: +SKIP
    """
    if isinstance(teacher_logits, TopKLogits):
        cached = {LOGITS_KEY: teacher_logits.values, CLASSES_KEY: teacher_logits.classes}
        temperature = teacher_logits.temperature
    else:
        cached, temperature = {LOGITS_KEY: teacher_logits}, None
    cached = {key: np.asarray(value) for key, value in cached.items()}
    if cached[LOGITS_KEY].ndim == 2:
        cached = {key: value[None] for key, value in cached.items()}
    views, n = cached[LOGITS_KEY].shape[:2]
    raw_x = np.asarray(x)
    x = as_inputs(x, views)
    if teacher_features:
        cached[FEATURES_KEY] = {name: np.asarray(value) for name, value in teacher_features.items()}
        for name, value in cached[FEATURES_KEY].items():
            if value.shape[:2] != (views, n):
                raise ValueError(
                    "Invalid value for argument `teacher_features`. Expected every feature array "
                    f"to have shape (views, n, ...) = ({views}, {n}, ...) like the logits. "
                    f"Received: {name!r} with shape {value.shape}"
                )
    if n != len(x) or (y is not None and len(y) != len(x)):
        raise ValueError(
            "Invalid arguments: `x`, `y` and `teacher_logits` must describe the "
            f"same examples. Received: len(x)={len(x)}, len(y)={None if y is None else len(y)}, "
            f"teacher_logits.shape={cached[LOGITS_KEY].shape}"
        )
    if labeled_share is not None and y is None:
        raise ValueError(
            "Invalid value for argument `labeled_share`: it mixes labeled examples with unlabeled ones, "
            f"but `y` is None. Give labels with {UNLABELED} for the unlabeled examples. "
            f"Received: labeled_share={labeled_share!r}, y=None"
        )
    labels = () if y is None else (np.asarray(y),)
    if sample_weight is not None:
        sample_weight = np.asarray(sample_weight, dtype="float32")
        label_shape = np.shape(y) if y is not None else (n,) + cached[LOGITS_KEY].shape[2:-1]
        if views != 1 or sample_weight.shape != label_shape[: sample_weight.ndim] or sample_weight.ndim == 0:
            raise ValueError(
                "Invalid value for argument `sample_weight`. Expected weights of shape (n,) or the labels' "
                f"shape {label_shape}, with one view. Received: shape {sample_weight.shape}, views={views}"
            )
        labels = (labels[0] if labels else None, sample_weight)

    def batched(ds, batch=True):
        if batch:
            ds = ds.batch(batch_size)
        if temperature is not None:
            ds = ds.map(
                lambda inputs, *rest: _element(
                    {**inputs, TEMPERATURE_KEY: tf.fill([tf.shape(inputs[LOGITS_KEY])[0]], tf.constant(temperature, tf.float32))},
                    rest,
                )
            )
        return ds.prefetch(AUTOTUNE)

    if labeled_share is None and views == 1:
        # No per-example work: the same shuffle as `make_dataset(x, y, seed=seed)`.
        ds = tf.data.Dataset.from_tensor_slices(
            _element({INPUT_KEY: x, **keras.tree.map_structure(lambda value: value[0], cached)}, labels)
        )
        if shuffle:
            ds = ds.shuffle(n, seed=seed, reshuffle_each_iteration=True)
        return batched(ds)
    if labeled_share is not None:
        order = mixed_order(y, batch_size, labeled_share, shuffle, seed)
    else:
        order = tf.data.Dataset.range(n)
        if shuffle:  # shuffling indices permutes like shuffling the examples: the order depends on the seed only
            order = order.shuffle(n, seed=seed, reshuffle_each_iteration=True)
    if materialize_views is None:
        materialize_views = views * x.nbytes // (4 if raw_x.dtype == np.uint8 else 1) <= MATERIALIZE_LIMIT_BYTES
    if views == 1 or materialize_views:
        images = x[None] if views == 1 else all_views(raw_x, views, view_seed)
        return batched(_gathered(images, labels, cached, order, batch_size, seed + 1), batch=False)
    by_example = keras.tree.map_structure(lambda value: np.ascontiguousarray(np.swapaxes(value, 0, 1)), cached)
    images, outputs_table, rest_tables = tf.constant(x), keras.tree.map_structure(tf.constant, by_example), _constants(labels)
    draws = tf.data.Dataset.random(seed=seed + 1, rerandomize_each_iteration=True)

    def pick(index, draw):
        view = tf.math.floormod(draw, views)
        outputs = keras.tree.map_structure(lambda table: tf.gather(table, index), outputs_table)
        rest = [None if table is None else tf.gather(table, index) for table in rest_tables]
        image = view_image(tf.gather(images, index), index, view, view_seed)
        return _element({INPUT_KEY: image, **keras.tree.map_structure(lambda value: tf.gather(value, view), outputs)}, rest)

    ds = tf.data.Dataset.zip(order, draws).map(pick, num_parallel_calls=AUTOTUNE, deterministic=True)
    return batched(ds)


def _element(inputs, rest):
    """`inputs` alone for data without labels, else `(inputs, y[, sample_weight])`."""
    return (inputs, *rest) if len(rest) else inputs


def _constants(labels):
    return tuple(None if value is None else tf.constant(value) for value in labels)


def _gathered(images, labels, cached, order, batch_size, draw_seed):
    """Batches gathered from every view's image (`(views, n, ...)`), in `order`, with one view drawn per example."""
    views = images.shape[0]
    draws = tf.data.Dataset.random(seed=draw_seed, rerandomize_each_iteration=True) if views > 1 else None
    images, tables = tf.constant(images), (keras.tree.map_structure(tf.constant, cached), *_constants(labels))

    def gather(index, draw=None):
        view = tf.zeros_like(index) if draw is None else tf.math.floormod(draw, views)
        where = tf.stack([view, index], axis=-1)
        image = tf.gather_nd(images, where)
        if image.dtype == tf.uint8:
            image = tf.cast(image, tf.float32) / 255.0
        outputs, *rest = tables
        rest = [None if table is None else tf.gather(table, index) for table in rest]
        return _element({INPUT_KEY: image, **keras.tree.map_structure(lambda v: tf.gather_nd(v, where), outputs)}, rest)

    ds = order if draws is None else tf.data.Dataset.zip(order, draws)
    return ds.batch(batch_size).map(gather, num_parallel_calls=AUTOTUNE, deterministic=True)


def shard_indices(num_examples, shard_id, num_shards):
    """Every `num_shards`-th example from `shard_id`, all shards equally long.

    The last `num_examples mod num_shards` examples are left out: a worker
    with one step more than the others would wait for them for ever.

    Example:
        >>> shard_indices(7, 1, 3)
        array([1, 4])
    """
    usable = num_examples - num_examples % num_shards
    return np.arange(shard_id, usable, num_shards)


def distributed_offline_dataset(
    strategy, teacher, x, y, batch_size=128, views=1, seed=0, shuffle=True, cache_dir=None, verbose=1, **kwargs
):
    """Offline distillation under a `tf.distribute` strategy, one shard per worker.

    Each input pipeline (one per worker under `MultiWorkerMirroredStrategy`)
    takes every `num_input_pipelines`-th example starting at its own id,
    runs the teacher over that shard only, and trains on it: no worker
    computes another's outputs. Each global batch of `batch_size` examples is
    made of equal per-replica parts from every worker's shard. When `n` is
    not a multiple of the number of workers, the last `n mod workers`
    examples are left out, so every worker runs the same number of steps; the
    last batch of an epoch may be smaller (equally on every worker).

    Args:
        strategy: a `tf.distribute.Strategy` (the one the `Distiller` was
            built under).
        teacher: a `keras.Model` that outputs logits.
        x: images; `y`: labels, shape `(n,)`; every worker holds the same
            arrays (or at least the same `n` and order).
        batch_size: the global batch size.
        views, seed: as `compute_teacher_logits`.
        shuffle: reshuffle each shard every epoch.
        cache_dir: each worker's shard is cached there under its own key
            (see `cached_teacher_logits`).
        verbose: 1 shows a progress bar.
        **kwargs: passed to `compute_teacher_logits` (e.g. `top_k`,
            `temperature`, `dtype`).

    Returns:
        A `tf.distribute.DistributedDataset` for `Distiller.fit`.

    Example:
        >>> strategy = tf.distribute.MultiWorkerMirroredStrategy()  # doctest: +SKIP
        >>> with strategy.scope():  # doctest: +SKIP
        ...     distiller = tfdistill.Distiller(teacher, student)
        ...     distiller.compile("adam")
        >>> train = distributed_offline_dataset(strategy, teacher, x_train, y_train)  # doctest: +SKIP
        >>> distiller.fit(train, epochs=30)  # doctest: +SKIP
    """
    if batch_size % strategy.num_replicas_in_sync:
        raise ValueError(
            "Invalid value for argument `batch_size`: the global batch must split evenly "
            f"over the strategy's {strategy.num_replicas_in_sync} replicas. Received: batch_size={batch_size}"
        )
    x, y = np.asarray(x), np.asarray(y)

    def dataset_fn(context):
        shard = shard_indices(len(x), context.input_pipeline_id, context.num_input_pipelines)
        logits = cached_teacher_logits(teacher, x[shard], views, seed, cache_dir=cache_dir, verbose=verbose, **kwargs)
        dataset = offline_dataset(
            x[shard], y[shard], logits, context.get_per_replica_batch_size(batch_size),
            shuffle=shuffle, seed=seed, view_seed=seed,
        )
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
        return dataset.with_options(options)

    return strategy.distribute_datasets_from_function(dataset_fn)
