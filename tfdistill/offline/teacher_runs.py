"""Running the teacher once over a dataset and its views: logits, top-k logits, features.
"""

from typing import Dict, Optional, Sequence, Tuple, Union

import keras
import numpy as np
import tensorflow as tf

from tfdistill import feature_pairs
from tfdistill.data.pipelines import AUTOTUNE
from tfdistill.losses.logits import top_k_logits
from tfdistill.offline.views import as_inputs, view_image
from tfdistill.teacher_outputs import TopKLogits, check_top_k_arguments

def compute_teacher_logits(
    teacher: keras.Model,
    x: np.ndarray,
    views: int = 1,
    seed: int = 0,
    batch_size: int = 1024,
    dtype: str = "float16",
    verbose: int = 1,
    top_k: Optional[int] = None,
    temperature: Optional[float] = None,
) -> Union[np.ndarray, TopKLogits]:
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
    x = as_inputs(x, views)
    if not isinstance(views, int) or views < 1:
        raise ValueError(
            "Invalid value for argument `views`. Expected an int >= 1. "
            f"Received: views={views!r}"
        )
    num_classes = int(teacher.outputs[0].shape[-1]) if getattr(teacher, "outputs", None) else None
    top_k, temperature = check_top_k_arguments(top_k, temperature, num_classes)
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
                lambda image, index, v=view: view_image(image, index, tf.constant(v, tf.int64), seed),
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


def compute_teacher_outputs(
    teacher: keras.Model,
    x: np.ndarray,
    features: Sequence[str],
    views: int = 1,
    seed: int = 0,
    batch_size: int = 1024,
    dtype: str = "float16",
    verbose: int = 1,
) -> Tuple[np.ndarray, Dict[str, np.ndarray]]:
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
    model = feature_pairs.with_features(teacher, list(features), "teacher")
    x = as_inputs(x, views)

    def outputs_of(images):
        logits, *maps = model(images, training=False)
        return {"logits": logits, "features": dict(zip(features, maps))}

    outputs = _run_teacher(outputs_of, x, views, seed, batch_size, dtype, verbose)
    return outputs["logits"], outputs["features"]
