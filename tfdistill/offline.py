"""Offline distillation: run the teacher once, train the student on its cached outputs.

The teacher's logits for every training example are computed once, in large
inference batches, and joined to the `tf.data` pipeline under the key
`"teacher_logits"`; `Distiller` then never calls the teacher while training.
Random augmentation stays possible through a fixed number of augmented *views*
per example: view `v` of example `i` is a deterministic function of
`(seed, i, v)`, so the pipeline rebuilds exactly the image the teacher saw.
For many classes, `top_k=` keeps the k largest logits and one remainder logit
(`TopKLogits`). Any other deterministic `tf.data` pipeline is cached with
`cache_dataset`, which refuses (and says why) a pipeline that changes between
passes, leaving the teacher online.
"""

import hashlib
import json
import warnings
from typing import NamedTuple

import keras
import numpy as np
import tensorflow as tf

from tfdistill.data.pipelines import AUTOTUNE, augment_image, to_float_images
from tfdistill import cache_files
from tfdistill import features as features_module
from tfdistill.distiller import (
    TEACHER_CLASSES_KEY,
    TEACHER_FEATURES_KEY,
    TEACHER_LOGITS_KEY,
    TEACHER_TEMPERATURE_KEY,
)
from tfdistill import validation
from tfdistill.errors import CacheIntegrityError
from tfdistill.losses.logits import top_k_logits
from tfdistill.pipeline_cache import cache_dataset, pipeline_randomness  # For any tf.data pipeline.

__all__ = [
    "TopKLogits",
    "cache_dataset",
    "cache_key",
    "cache_size_bytes",
    "cached_teacher_logits",
    "compute_teacher_logits",
    "compute_teacher_outputs",
    "distributed_offline_dataset",
    "offline_dataset",
    "pipeline_randomness",
    "shard_indices",
]


class TopKLogits(NamedTuple):
    """A teacher cached as its top-k logits (see `tfdistill.losses.top_k_kd`).

    Attributes:
        values: shape `(views, n, k + 1)`: the k largest logits of each
            example, then its remainder logit at `temperature`.
        classes: int32, shape `(views, n, k)`: the kept classes.
        temperature: the KD temperature the remainder logits were computed at;
            the KD loss trained on them must use the same one.
    """

    values: np.ndarray
    classes: np.ndarray
    temperature: float


def _as_inputs(x, views=1):
    """Images (uint8 scaled to [0, 1], a channel axis added) or other float inputs."""
    x = np.asarray(x)
    if x.dtype == np.uint8 or x.ndim == 3:
        return to_float_images(x)
    if views != 1 and x.ndim != 4:
        raise ValueError(
            "Invalid value for argument `x`: augmented views (`views > 1`) need images of "
            f"shape (n, h, w[, c]). Received: shape={x.shape}"
        )
    return x.astype("float32")


def _view_seed(seed, index, view):
    return tf.stack([tf.cast(seed, tf.int64) * 1_000_003 + tf.cast(view, tf.int64),
                     tf.cast(index, tf.int64)])


def _view_image(image, index, view, seed):
    """View 0 is the original image; view `v > 0` an augmented copy."""
    if view is None:
        return image
    augmented = augment_image(image, _view_seed(seed, index, view))
    return tf.cond(tf.equal(view, 0), lambda: image, lambda: augmented)


def compute_teacher_logits(
    teacher, x, views=1, seed=0, batch_size=1024, dtype="float16", verbose=1, top_k=None, temperature=None
):
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
        top_k: keep only the `k` largest logits of each example and one
            remainder logit (for many classes: ImageNet's 1000, a
            vocabulary); `None` keeps every logit.
        temperature: with `top_k`, the temperature of the KD loss the cache
            will train with (the remainder logit depends on it).

    Returns:
        A numpy array of shape `(views, n, num_classes)`, or a `TopKLogits`
        with `top_k`.

    Example:
        >>> logits = compute_teacher_logits(teacher, x_train, views=4)  # doctest: +SKIP
        >>> top_10 = compute_teacher_logits(teacher, x_train, top_k=10, temperature=4.0)  # doctest: +SKIP
    """
    x = _as_inputs(x, views)
    if not isinstance(views, int) or views < 1:
        raise ValueError(
            "Invalid value for argument `views`. Expected an int >= 1. "
            f"Received: views={views!r}"
        )
    num_classes = int(teacher.outputs[0].shape[-1]) if getattr(teacher, "outputs", None) else None
    top_k, temperature = validation.check_top_k_arguments(top_k, temperature, num_classes)
    if top_k is None:
        outputs = _run_teacher(lambda images: {"logits": teacher(images, training=False)}, x, views, seed, batch_size, dtype, verbose)
        return outputs["logits"]

    def compress(images):
        values, classes = top_k_logits(teacher(images, training=False), top_k, temperature)
        return {"values": values, "classes": classes}

    # Batch by batch: the full logits of a large dataset never sit in memory.
    outputs = _run_teacher(compress, x, views, seed, batch_size, dtype, verbose)
    return TopKLogits(outputs["values"], outputs["classes"], temperature)


def _run_teacher(outputs_of, x, views, seed, batch_size, dtype, verbose):
    """Runs `outputs_of` (images -> dict of tensors) over every view of `x`.

    A plain loop over local batches, not `Model.predict`: under a multi-worker
    strategy each worker computes its own shard, with no collective ops.
    Floating outputs are stored in `dtype`, integer ones as they are.

    Returns:
        The dict of `outputs_of`, each value stacked to `(views, n, ...)`.
    """
    outputs_of = tf.function(outputs_of)
    n = len(x)
    per_view = []
    for view in range(views):
        ds = tf.data.Dataset.from_tensor_slices(x)
        if views > 1:
            ds = tf.data.Dataset.zip(ds, tf.data.Dataset.range(n)).map(
                lambda image, index, v=view: _view_image(image, index, tf.constant(v, tf.int64), seed),
                num_parallel_calls=AUTOTUNE,
                deterministic=True,
            )
        ds = ds.batch(batch_size).prefetch(AUTOTUNE)
        if verbose:
            print(f"Teacher outputs, view {view + 1}/{views}:")
        progress = keras.utils.Progbar(len(ds)) if verbose else None
        batches = []
        for images in ds:
            batches.append(keras.tree.map_structure(lambda t: _stored(t.numpy(), dtype), outputs_of(images)))
            if progress:
                progress.add(1)
        per_view.append(keras.tree.map_structure(lambda *parts: np.concatenate(parts), *batches))
    return keras.tree.map_structure(lambda *parts: np.stack(parts), *per_view)


def _stored(array, dtype):
    return array.astype(dtype) if np.issubdtype(array.dtype, np.floating) else array


def compute_teacher_outputs(teacher, x, features, views=1, seed=0, batch_size=1024, dtype="float16", verbose=1):
    """The teacher's logits and intermediate features, from one inference pass.

    For offline *feature* distillation (`FeaturePair`): the features of the
    named teacher layers are cached with the logits, so the `Distiller`
    never runs the teacher. Features are large (a 14x14x64 map is 25 KB per
    example in float16); `cache_size_bytes`-style arithmetic applies.

    Args:
        teacher: a Functional or Sequential `keras.Model` that outputs logits.
        x: images, as for `compute_teacher_logits`.
        features: names of the teacher's layers to keep, e.g.
            `[pair.teacher_layer for pair in pairs]`.
        views, seed, batch_size, dtype, verbose: as `compute_teacher_logits`.

    Returns:
        `(logits, features)`: logits of shape `(views, n, num_classes)` and a
        dict from layer name to an array of shape `(views, n, *feature_shape)`.

    Example:
        >>> logits, maps = compute_teacher_outputs(teacher, x_train, ["block2b_relu"])  # doctest: +SKIP
        >>> train = offline_dataset(x_train, y_train, logits, teacher_features=maps)  # doctest: +SKIP
    """
    if isinstance(features, str) or not features or not all(isinstance(f, str) for f in features):
        raise ValueError(
            "Invalid value for argument `features`. Expected a non-empty list of "
            f"the teacher's layer names. Received: features={features!r}"
        )
    if not isinstance(views, int) or views < 1:
        raise ValueError(f"Invalid value for argument `views`. Expected an int >= 1. Received: views={views!r}")
    model = features_module.with_features(teacher, list(features), "teacher")
    x = _as_inputs(x, views)

    def outputs_of(images):
        logits, *maps = model(images, training=False)
        return {"logits": logits, "features": dict(zip(features, maps))}

    outputs = _run_teacher(outputs_of, x, views, seed, batch_size, dtype, verbose)
    return outputs["logits"], outputs["features"]


def _architecture(model):
    """The model's serialized config, or its class and layers' classes where it has no config."""
    try:
        return json.dumps(keras.saving.serialize_keras_object(model), sort_keys=True, default=str)
    except Exception:  # A subclassed model without get_config.
        layers = getattr(model, "layers", [])
        return type(model).__qualname__ + ":" + ",".join(type(layer).__qualname__ for layer in layers)


def cache_key(teacher, x, views, seed, dtype, top_k=None, temperature=None):
    """A hash of the teacher's architecture and weights, the data (values and order) and settings.

    The architecture counts: a wrapper that computes something else from the
    same weights (a test-time-augmented teacher, an ensemble of one model)
    must not reuse the plain teacher's outputs.
    """
    digest = hashlib.sha256()
    digest.update(_architecture(teacher).encode())
    if top_k is not None:
        digest.update(f"top_k={top_k},temperature={float(temperature)}".encode())
    for weight in teacher.weights:
        digest.update(weight.path.encode())
        digest.update(np.ascontiguousarray(keras.ops.convert_to_numpy(weight)).tobytes())
    x = np.ascontiguousarray(x)
    digest.update(f"{x.shape}{x.dtype}{views}{seed}{dtype}".encode())
    digest.update(x.tobytes())
    return digest.hexdigest()[:32]


def cached_teacher_logits(
    teacher, x, views=1, seed=0, cache_dir=None, dtype="float16", verbose=1, on_damaged="recompute", **kwargs
):
    """`compute_teacher_logits`, stored on disk under a key of teacher and data.

    A changed teacher (any weight), changed data or changed order gives a new
    key, so stale outputs are never reused. Each cache is stored with an
    integrity record (per array: CRC-32 and size of its file, shape, dtype;
    and the key; see `tfdistill.cache_files`) and checked against it when it
    is read, so a file changed after it was written (bytes overwritten, a
    truncated file) is never trained on. The cache appears on disk only when
    complete; two processes writing it at once both end with a complete one.

    Args:
        teacher, x, views, seed, dtype, verbose: as `compute_teacher_logits`.
        cache_dir: folder of the caches (one sub-folder per key); `None`
            keeps nothing on disk.
        on_damaged: what to do with a damaged cache: `"recompute"` (warn,
            naming the file, then run the teacher again and replace it) or
            `"raise"` (a `tfdistill.CacheIntegrityError`).
        **kwargs: passed to `compute_teacher_logits`.

    Returns:
        As `compute_teacher_logits` (arrays memory-mapped when read from disk).
    """
    if on_damaged not in ("recompute", "raise"):
        raise ValueError(
            "Invalid value for argument `on_damaged`. Expected 'recompute' or 'raise'. "
            f"Received: on_damaged={on_damaged!r}"
        )
    if cache_dir is None:
        return compute_teacher_logits(teacher, x, views, seed, dtype=dtype, verbose=verbose, **kwargs)
    top_k, temperature = validation.check_top_k_arguments(kwargs.get("top_k"), kwargs.get("temperature"))
    key = cache_key(teacher, x, views, seed, dtype, top_k, temperature)

    def result(arrays):
        if top_k is None:
            return arrays["logits"]
        return TopKLogits(arrays["values"], arrays["classes"], float(temperature))

    try:
        stored = cache_files.read_cache(cache_dir, key)
    except CacheIntegrityError as error:
        if on_damaged == "raise":
            raise
        warnings.warn(f"{error} Recomputing the teacher's outputs and replacing the cache.", stacklevel=2)
        stored = None
    if stored is not None:
        if verbose:
            print(f"Teacher logits: reusing {cache_files.cache_path(cache_dir, key)} (integrity checked)")
        return result(stored)
    computed = compute_teacher_logits(teacher, x, views, seed, dtype=dtype, verbose=verbose, **kwargs)
    arrays = {"logits": computed} if top_k is None else {"values": computed.values, "classes": computed.classes}
    cache_files.write_cache(cache_dir, key, arrays)
    return computed


def offline_dataset(x, y, teacher_logits, batch_size=128, shuffle=True, seed=0, view_seed=0, teacher_features=None):
    """A pipeline of `({"x": image, "teacher_logits": logits}, label)` batches.

    Each example stays paired with its own teacher output through shuffling.
    With several views, every epoch draws one view per example at random
    (reproducibly from `seed`) and rebuilds that view's image. A `TopKLogits`
    cache adds the keys `"teacher_classes"` and `"teacher_temperature"`; the
    `Distiller` then computes KD on the kept classes and the remainder.

    Args:
        x: images, as given to `compute_teacher_logits`.
        y: labels, shape `(n,)`.
        teacher_logits: shape `(views, n, num_classes)` or `(n, num_classes)`,
            or a `TopKLogits`.
        batch_size: examples per batch.
        shuffle: reshuffle every epoch.
        seed: seed of the order and of the view drawn per example.
        view_seed: the `seed` the views were computed with.
        teacher_features: optional dict from teacher layer name to cached
            features, shape `(views, n, ...)` (see `compute_teacher_outputs`),
            for a `Distiller` with `FeaturePair`s.

    Returns:
        A `tf.data.Dataset` for `Distiller.fit`.

    Example:
        >>> logits = compute_teacher_logits(teacher, x_train, views=4)  # doctest: +SKIP
        >>> train = offline_dataset(x_train, y_train, logits)  # doctest: +SKIP
        >>> distiller.fit(train, epochs=30)  # doctest: +SKIP
    """
    if isinstance(teacher_logits, TopKLogits):
        cached = {TEACHER_LOGITS_KEY: teacher_logits.values, TEACHER_CLASSES_KEY: teacher_logits.classes}
        temperature = teacher_logits.temperature
    else:
        cached, temperature = {TEACHER_LOGITS_KEY: teacher_logits}, None
    cached = {key: np.asarray(value) for key, value in cached.items()}
    if cached[TEACHER_LOGITS_KEY].ndim == 2:
        cached = {key: value[None] for key, value in cached.items()}
    views, n = cached[TEACHER_LOGITS_KEY].shape[:2]
    x = _as_inputs(x, views)
    if teacher_features:
        cached[TEACHER_FEATURES_KEY] = {name: np.asarray(value) for name, value in teacher_features.items()}
        for name, value in cached[TEACHER_FEATURES_KEY].items():
            if value.shape[:2] != (views, n):
                raise ValueError(
                    "Invalid value for argument `teacher_features`: every feature array "
                    f"must have shape (views, n, ...) = ({views}, {n}, ...) like the logits. "
                    f"Received: {name!r} with shape {value.shape}"
                )
    if n != len(x) or len(y) != len(x):
        raise ValueError(
            "Invalid arguments: `x`, `y` and `teacher_logits` must describe the "
            f"same examples. Received: len(x)={len(x)}, len(y)={len(y)}, "
            f"teacher_logits.shape={cached[TEACHER_LOGITS_KEY].shape}"
        )

    def batched(ds):
        ds = ds.batch(batch_size)
        if temperature is not None:
            ds = ds.map(
                lambda inputs, label: (
                    {**inputs, TEACHER_TEMPERATURE_KEY: tf.fill([tf.shape(label)[0]], tf.constant(temperature, tf.float32))},
                    label,
                )
            )
        return ds.prefetch(AUTOTUNE)

    if views == 1:
        # No per-example work: the same shuffle as `make_dataset(x, y, seed=seed)`.
        ds = tf.data.Dataset.from_tensor_slices(
            ({"x": x, **keras.tree.map_structure(lambda value: value[0], cached)}, np.asarray(y))
        )
        if shuffle:
            ds = ds.shuffle(n, seed=seed, reshuffle_each_iteration=True)
        return batched(ds)
    by_example = keras.tree.map_structure(lambda value: np.ascontiguousarray(np.swapaxes(value, 0, 1)), cached)
    ds = tf.data.Dataset.from_tensor_slices((x, np.asarray(y), by_example, np.arange(n, dtype=np.int64)))
    if shuffle:
        ds = ds.shuffle(n, seed=seed, reshuffle_each_iteration=True)
    draws = tf.data.Dataset.random(seed=seed + 1, rerandomize_each_iteration=True)
    ds = tf.data.Dataset.zip(ds, draws)

    def pick(element, draw):
        image, label, outputs, index = element
        view = tf.math.floormod(draw, views)
        image = _view_image(image, index, view, view_seed)
        return {"x": image, **keras.tree.map_structure(lambda value: tf.gather(value, view), outputs)}, label

    ds = ds.map(pick, num_parallel_calls=AUTOTUNE, deterministic=True)
    return batched(ds)


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


def cache_size_bytes(num_examples, num_classes, views=1, dtype="float16", top_k=None):
    """Bytes needed to cache teacher outputs.

    With `top_k`, each example keeps `k + 1` values (in `dtype`: the top-k
    logits and the remainder logit) and `k` int32 class ids instead of all
    `num_classes` values (see `TopKLogits`).

    Example:
        >>> cache_size_bytes(1_281_167, 1000)  # ImageNet, float16
        2562334000
        >>> cache_size_bytes(1_281_167, 1000, top_k=10)  # 62 bytes per example
        79432354
    """
    itemsize = np.dtype(dtype).itemsize
    per_example = num_classes * itemsize if top_k is None else (top_k + 1) * itemsize + top_k * 4
    return num_examples * views * per_example
