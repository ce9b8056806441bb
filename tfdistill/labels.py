"""Labels that may be missing: unlabeled data and partly labeled batches.

A teacher needs no labels to teach, so a `Distiller` trains on data without
any (`fit(x)`, or a dataset that yields `x` alone), and on batches where only
some examples (or, for logits with positions, some positions) have a label.
A missing label is the class id `UNLABELED` (-1), the value Keras's
`SparseCategoricalCrossentropy(ignore_class=-1)` skips.

Per batch, with `p` each example's (or position's) weight (its sample weight
times the student output's Keras mask) and `m` 1 where it has a label:

- the soft loss and the teacher agreement use every example, weighted by `p`;
- the hard loss is the mean over the labeled examples only,
  `Σ p·m·l / Σ m` (Keras's `ignore_class` reduction: sliced to the labeled
  examples, the batch would give the same value), or for logits with
  positions under `token_reduction="mean_over_tokens"` `Σ p·m·l / Σ p·m`;
  a batch without any labeled example has a hard loss of 0;
- label metrics (`compile(metrics=...)`) count labeled examples only.

Under `tf.distribute` each replica reduces its own share of the batch and
the replicas' values are averaged, as Keras does for a masked loss.
"""

import dataclasses
from typing import Any, Optional

import numpy as np
import tensorflow as tf

from tfdistill import compat, tokens
from tfdistill.objective import is_zero
from tfdistill.validation import UNLABELED


@dataclasses.dataclass
class BatchWeights:
    """What each term of a batch's loss weighs its examples (or positions) by.

    Attributes:
        labels: the labels with `UNLABELED` replaced by class 0 (weighted 0
            wherever it was replaced), or `None` for a batch without labels.
        labeled: float32 1/0 per example (or position): whether it has a label.
        soft: the soft loss's `sample_weight` (`None` when every example
            weighs 1).
        hard: the hard loss's `sample_weight`: the mean over labeled examples.
        example: one weight per example, for the feature loss.
        position: each example's (or position's) weight `p`, for the teacher
            agreement; `None` when every one weighs 1.
    """

    labels: Any
    labeled: Any
    soft: Any
    hard: Any
    example: Any
    position: Any


def batch_weights(y, student_logits, sample_weight=None, mask=None, token_reduction="mean_over_tokens"):
    """The weights of one batch's loss terms (see the module docstring).

    Args:
        y: class ids `(batch,)` / `(batch, 1)`, or `(batch, ...)` for logits
            with positions; `UNLABELED` where an example has no label; or
            `None` when no example has one.
        student_logits: `(batch, num_classes)` or `(batch, ..., num_classes)`.
        sample_weight: `None`, `(batch,)` or one weight per position.
        mask: the student output's Keras mask, or `None`.
        token_reduction: see `tfdistill.tokens`.

    Returns:
        A `BatchWeights`.

    Example:
        >>> w = batch_weights(tf.constant([3, -1, 1, -1]), tf.zeros((4, 5)))
        >>> w.labels.numpy().tolist(), w.hard.numpy().tolist()
        ([3, 0, 1, 0], [2.0, 0.0, 2.0, 0.0])
    """
    shape = tf.shape(student_logits)[:-1]
    with_positions = tokens.has_positions(student_logits)
    if y is not None:
        if len(y.shape) == len(student_logits.shape):  # a trailing axis of 1
            y = tf.squeeze(y, -1)
        labeled_bool = tf.not_equal(tf.cast(y, tf.int64), UNLABELED)
        labels = tf.where(labeled_bool, y, tf.zeros_like(y))
        labeled = tf.cast(labeled_bool, tf.float32)
    else:
        labels, labeled = None, tf.zeros(shape, tf.float32)
    if with_positions:
        position = tokens.position_weights(student_logits[..., 0], sample_weight, mask)
        soft = tokens.reduction_weights(position, token_reduction)
        example = tokens.per_example_weights(soft)
    else:
        position = None if sample_weight is None else tf.reshape(tf.cast(sample_weight, tf.float32), shape)
        soft, example = sample_weight, sample_weight
    weighted = labeled if position is None else position * labeled
    if with_positions and token_reduction == "mean_over_tokens":
        hard = tokens.reduction_weights(weighted, token_reduction)
    else:  # Keras's `ignore_class` reduction: Σ p·m·l / Σ m
        count = tf.cast(tf.size(labeled), tf.float32)
        hard = weighted * tf.math.divide_no_nan(count, tf.reduce_sum(labeled))
    return BatchWeights(labels=labels, labeled=labeled, soft=soft, hard=hard, example=example, position=position)


def metric_inputs(weights, student_logits):
    """`(y_true, logits, sample_weight)` for compiled metrics: the labeled examples (positions) only.

    Unlabeled ones are masked (a Keras mask on a copy of the logits, which
    every Keras metric reads) and weighted 0 (for `weighted_metrics`); a batch
    without labels gives class 0 everywhere, all masked.
    """
    labeled = weights.labeled > 0
    mask = compat.keras_mask(student_logits)
    if mask is not None:
        labeled = tf.logical_and(labeled, tf.cast(mask, tf.bool))
    logits = compat.with_keras_mask(tf.identity(student_logits), labeled)
    y_true = weights.labels if weights.labels is not None else tf.zeros(tf.shape(labeled), tf.int32)
    sample_weight = weights.labeled if weights.position is None else weights.position * weights.labeled
    return y_true, logits, sample_weight


def check_no_labels_needed(hard_weight, where="the data"):
    """Raises when training on data without labels would need them (a hard loss weighted above 0)."""
    if not is_zero(hard_weight):
        raise ValueError(
            f"Invalid value for argument `hard_weight`: {where} has no labels, so the hard loss "
            "cannot be computed. Compile with `hard_weight=0` to train on the teacher alone, or give "
            f"labels (`UNLABELED` = {UNLABELED} marks the examples without one). Received: "
            f"hard_weight={hard_weight!r}"
        )


def keep_labels_per_class(y, labels_per_class, seed=0, num_classes=None):
    """A copy of `y` with `labels_per_class` labels of each class kept, the rest `UNLABELED`.

    For experiments with few labels: which labels are kept is drawn at random
    from `seed`. A class with fewer examples keeps all of them.

    Args:
        y: integer labels, shape `(n,)`.
        labels_per_class: labels kept per class, an int >= 1.
        seed: seed of the draw.
        num_classes: classes to keep labels of (default: `max(y) + 1`).

    Returns:
        An int32 array of shape `(n,)`.

    Example:
        >>> keep_labels_per_class(np.array([0, 0, 0, 1, 1]), 1, seed=0).tolist().count(UNLABELED)
        3
    """
    y = np.asarray(y)
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(
            "Invalid value for argument `y`. Expected integer class ids of shape (n,). "
            f"Received: dtype={y.dtype}, shape={y.shape}"
        )
    if isinstance(labels_per_class, bool) or not isinstance(labels_per_class, (int, np.integer)) or labels_per_class < 1:
        raise ValueError(
            "Invalid value for argument `labels_per_class`. Expected an int >= 1. "
            f"Received: labels_per_class={labels_per_class!r}"
        )
    rng = np.random.default_rng(seed)
    kept = np.full(y.shape, UNLABELED, np.int32)
    for label in range(int(num_classes if num_classes is not None else y.max() + 1)):
        where = np.flatnonzero(y == label)
        chosen = rng.permutation(where)[:labels_per_class]
        kept[chosen] = label
    return kept


def labeled_indices(y) -> np.ndarray:
    """Indices of the examples of `y` (shape `(n,)`) that have a label."""
    return np.flatnonzero(np.asarray(y) != UNLABELED)


def count_labeled(y) -> Optional[int]:
    """How many examples of `y` have a label (`None` for `y=None`)."""
    return None if y is None else int(np.count_nonzero(np.asarray(y) != UNLABELED))


__all__ = ["UNLABELED", "BatchWeights", "batch_weights", "keep_labels_per_class", "labeled_indices"]
