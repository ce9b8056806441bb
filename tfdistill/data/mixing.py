"""Batches that mix a few labeled examples with a large unlabeled pool.

With 1,000 labels among 60,000 images, a batch of 128 drawn at random holds
about two labeled examples: the labels' loss then rests on a couple of
examples per step and comes and goes with the draw. Semi-supervised methods
therefore give every batch a fixed share of labeled examples (FixMatch: 1
labeled for 7 unlabeled; MixMatch: half and half), and so does this module:
each batch holds `round(labeled_share · batch_size)` labeled examples, drawn
in turn from the labeled set (reshuffled on every pass over it), and fills
the rest from the pool. An epoch is one pass over the pool; the small
labeled set is seen many times.

Pool examples carry the label `tfdistill.labels.UNLABELED` (-1): the
`Distiller` trains every example on the teacher and the labeled ones on
their labels too (see `tfdistill.labels`).
"""

import numpy as np
import tensorflow as tf

from tfdistill.validation import UNLABELED


def labeled_count(batch_size, labeled_share):
    """Labeled examples per batch: `round(labeled_share · batch_size)`, at least 1, at most `batch_size - 1`.

    Example:
        >>> labeled_count(128, 0.25)
        32
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 2:
        raise ValueError(
            "Invalid value for argument `batch_size`. Expected an int >= 2 (a batch holds labeled and "
            f"unlabeled examples). Received: batch_size={batch_size!r}"
        )
    if isinstance(labeled_share, bool) or not isinstance(labeled_share, (int, float)) or not 0 < labeled_share < 1:
        raise ValueError(
            "Invalid value for argument `labeled_share`. Expected a number in (0, 1), the share of "
            f"labeled examples in each batch. Received: labeled_share={labeled_share!r}"
        )
    return int(min(batch_size - 1, max(1, round(labeled_share * batch_size))))


def example_is_labeled(labels):
    """Whether each example has a label: `(n,)` labels, or `(n, ...)` where any position has one."""
    labels = np.asarray(labels)
    labeled = labels != UNLABELED
    return labeled.reshape(len(labels), -1).any(axis=1) if labels.ndim > 1 else labeled


def mixed_order(labels, batch_size, labeled_share, shuffle=True, seed=0):
    """The example indices of one epoch, `batch_size` at a time with a fixed labeled share.

    Args:
        labels: `(n,)` class ids with `UNLABELED` for the pool (or `(n, ...)`
            per position: an example is labeled when any position is).
        batch_size: examples per batch.
        labeled_share: share of each batch taken from the labeled examples.
        shuffle: reshuffle both sets every pass.
        seed: seed of both orders.

    Returns:
        A `tf.data.Dataset` of int64 indices, one per element: every
        consecutive `batch_size` of them is one batch; the last batch of an
        epoch may be smaller.

    Example:
        >>> order = mixed_order(np.array([0, -1, -1, -1, 1, -1]), 2, 0.5, shuffle=False)
        >>> [int(i) for i in order]
        [0, 1, 4, 2, 0, 3, 4, 5]
    """
    labeled = example_is_labeled(labels)
    k = labeled_count(batch_size, labeled_share)
    labeled_ids, pool_ids = np.flatnonzero(labeled), np.flatnonzero(~labeled)
    if not len(labeled_ids) or not len(pool_ids):
        raise ValueError(
            "Invalid value for argument `labels`: `labeled_share` mixes labeled examples with "
            f"unlabeled ones (label {UNLABELED}), but these labels have {len(labeled_ids)} labeled and "
            f"{len(pool_ids)} unlabeled examples. Leave `labeled_share=None` to batch them as they come."
        )

    def ids(values, seed_offset):
        ds = tf.data.Dataset.from_tensor_slices(values.astype(np.int64))
        return ds.shuffle(len(values), seed=seed + seed_offset, reshuffle_each_iteration=True) if shuffle else ds

    batches = tf.data.Dataset.zip(ids(labeled_ids, 0).repeat().batch(k), ids(pool_ids, 1).batch(batch_size - k))
    total = len(pool_ids) + k * -(-len(pool_ids) // (batch_size - k))
    # `unbatch` loses the length, which Keras needs to end an epoch without a warning.
    return batches.map(lambda a, b: tf.concat([a, b], 0)).unbatch().apply(tf.data.experimental.assert_cardinality(total))


def mixed_batches(labeled, unlabeled, batch_size=128, labeled_share=0.25, seed=0, shuffle_buffer=10_000):
    """Batches of a labeled dataset and an unlabeled one, with a fixed labeled share (online distillation).

    Args:
        labeled: an unbatched `tf.data.Dataset` of `(x, y)` examples.
        unlabeled: an unbatched `tf.data.Dataset` of `x` alone, of the
            structure of the labeled `x`.
        batch_size: examples per batch.
        labeled_share: share of each batch taken from `labeled`.
        seed: seed of the shuffles.
        shuffle_buffer: the shuffle buffer of the pool (the labeled set is
            shuffled whole).

    Returns:
        A `tf.data.Dataset` of `(x, y)` batches, `y` = `UNLABELED` for the
        pool's examples; an epoch is one pass over `unlabeled`.

    Example:
        >>> labeled = tf.data.Dataset.from_tensor_slices((x_few, y_few))  # doctest: +SKIP
        >>> pool = tf.data.Dataset.from_tensor_slices(x_pool)  # doctest: +SKIP
        >>> distiller.fit(mixed_batches(labeled, pool), epochs=10)  # doctest: +SKIP
    """
    k = labeled_count(batch_size, labeled_share)
    element = labeled.element_spec
    if not isinstance(element, tuple) or len(element) != 2:
        raise ValueError(
            "Invalid value for argument `labeled`. Expected an unbatched dataset of `(x, y)` examples. "
            f"Received elements with spec: {element}"
        )
    if tf.nest.map_structure(lambda s: s.shape, unlabeled.element_spec) != tf.nest.map_structure(
        lambda s: s.shape, element[0]
    ):
        raise ValueError(
            "Invalid value for argument `unlabeled`. Expected unbatched examples `x` of the labeled ones' "
            f"structure and shape, {element[0]}. Received: {unlabeled.element_spec}"
        )
    if not element[1].shape.is_fully_defined():
        raise ValueError(
            "Invalid value for argument `labeled`: the pool's labels take the labeled examples' label shape, "
            f"which must be fixed. Received: labels of shape {element[1].shape}"
        )
    size = int(labeled.cardinality())
    labeled = labeled.shuffle(size if size > 0 else shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    no_label = tf.fill(element[1].shape, tf.constant(UNLABELED, element[1].dtype))
    pool = unlabeled.shuffle(shuffle_buffer, seed=seed + 1, reshuffle_each_iteration=True).map(lambda x: (x, no_label))
    both = tf.data.Dataset.zip(labeled.repeat().batch(k), pool.batch(batch_size - k))
    return both.map(lambda a, b: tf.nest.map_structure(lambda u, v: tf.concat([u, v], 0), a, b)).prefetch(
        tf.data.AUTOTUNE
    )
