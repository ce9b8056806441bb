"""Outputs with positions: token-level distillation.

A sequence tagger, a frame classifier or a language model outputs logits of
shape `(batch, ..., num_classes)`, one distribution per position, with labels
of shape `(batch, ...)`. Every logit loss then applies per position: the
positions are flattened into rows of `(positions, num_classes)`, each loss
gives one value per row, and the values are weighted and reduced.

A position's weight is its sample weight (shape `(batch,)`, the same for
every position of an example, or the labels' shape `(batch, ...)`, padding
weighted 0) times the Keras mask of the student's output (`mask_zero=True`
in an `Embedding`), when there is one. Positions weighted 0 never move the
student: their terms are multiplied by 0, and for losses that relate
positions across the batch (DIST, MLKD) the student's logits there are
replaced by the teacher's, as constants.

Reductions (`TOKEN_REDUCTIONS`):

- `"mean_over_tokens"` (the `Distiller`'s default): `Σ w·l / Σ w`, the
  weighted mean over real positions. With weights of 0 and 1 it is the mean
  over real tokens, whatever the padding.
- `"sum_over_batch_size"`: Keras's reduction on the positions without a
  mask, `Σ w·l / (number of positions)`, padding counted in the divisor. (A
  Keras mask read by a loss called on its own is reduced as Keras does it,
  `Σ w·m·l / Σ m`.)

Under `tf.distribute`, each replica reduces its own share of the batch and
the replicas' values are averaged, as Keras does for a masked loss.
"""

import tensorflow as tf
from keras import ops

TOKEN_REDUCTIONS = ("mean_over_tokens", "sum_over_batch_size")


def check_token_reduction(token_reduction):
    """Returns `token_reduction` if it is one of `TOKEN_REDUCTIONS`."""
    if token_reduction not in TOKEN_REDUCTIONS:
        raise ValueError(
            "Invalid value for argument `token_reduction`. Expected one of "
            f"{list(TOKEN_REDUCTIONS)}. Received: token_reduction={token_reduction!r}"
        )
    return token_reduction


def has_positions(logits) -> bool:
    """Whether logits have positions, i.e. a rank above 2 (`(batch, ..., classes)`)."""
    return len(logits.shape) > 2


def position_weights(labels, sample_weight=None, mask=None):
    """Each position's weight: sample weight times mask, shape of `labels`.

    Args:
        labels: `(batch, ...)` class ids, one per position.
        sample_weight: `None`, `(batch,)` (one weight per example) or the
            labels' shape (one per position).
        mask: `None` or a boolean mask of the labels' shape (a Keras mask).

    Returns:
        float32, the labels' shape.

    Example:
        >>> position_weights([[3, 1, 0]], mask=[[True, True, False]]).numpy().tolist()
        [[1.0, 1.0, 0.0]]
    """
    labels = tf.convert_to_tensor(labels)
    weights = tf.ones(tf.shape(labels), tf.float32)
    if sample_weight is not None:
        sample_weight = tf.cast(sample_weight, tf.float32)
        # (batch,) -> (batch, 1, ...): every position of an example shares its weight.
        extra = len(labels.shape) - len(sample_weight.shape)
        if extra < 0:
            raise ValueError(
                "Invalid `sample_weight`: expected one weight per example, shape (batch,), or one per "
                f"position, the labels' shape {tuple(labels.shape)}. Received: shape {tuple(sample_weight.shape)}"
            )
        sample_weight = tf.reshape(sample_weight, tf.concat([tf.shape(sample_weight), tf.ones([extra], tf.int32)], 0))
        weights = weights * sample_weight
    if mask is not None:
        weights = weights * tf.cast(mask, tf.float32)
    return weights


def reduction_weights(weights, token_reduction="mean_over_tokens"):
    """Weights that make a `"sum_over_batch_size"` loss reduce as `token_reduction`.

    A `sum_over_batch_size` loss computes `Σ w'·l / N` over `N` positions;
    with `w' = w · N / Σ w` that is `Σ w·l / Σ w` (`"mean_over_tokens"`,
    0 when every weight is 0); with `w' = w` it is Keras's reduction.

    Example:
        >>> reduction_weights([[1.0, 1.0, 0.0, 0.0]]).numpy().tolist()
        [[2.0, 2.0, 0.0, 0.0]]
    """
    weights = tf.cast(weights, tf.float32)
    if check_token_reduction(token_reduction) == "sum_over_batch_size":
        return weights
    count = tf.cast(tf.size(weights), tf.float32)
    return weights * tf.math.divide_no_nan(count, tf.reduce_sum(weights))


def flatten_positions(tensor):
    """`(batch, ..., d)` -> `(positions, d)`."""
    return ops.reshape(tensor, (-1, ops.shape(tensor)[-1]))


def keep_teacher_at_padding(teacher_logits, student_logits, weights):
    """The student's logits, with the teacher's (as constants) where a position weighs 0.

    For losses that compare positions across the batch (DIST's intra-class
    correlation, MLKD's Gram matrices), a padded position would otherwise
    still move the student through the batch-level terms. At a replaced
    position the two agree and no gradient reaches the student.

    Args:
        teacher_logits: `(positions, num_classes)`.
        student_logits: `(positions, num_classes)`.
        weights: `(positions,)`.
    """
    real = ops.expand_dims(ops.cast(weights, "float32") > 0, -1)
    return ops.where(real, student_logits, ops.stop_gradient(ops.cast(teacher_logits, student_logits.dtype)))


def without_mask(tensor):
    """A copy of `tensor` that carries no Keras mask (so a loss does not apply it again)."""
    return tf.identity(tensor)


def per_example_weights(sample_weight):
    """Per-position weights to per-example ones (an example counts if any position does).

    For the feature loss, which compares whole examples.
    """
    if sample_weight is None or len(sample_weight.shape) <= 1:
        return sample_weight
    weights = tf.reshape(tf.cast(sample_weight, tf.float32), (tf.shape(sample_weight)[0], -1))
    return tf.reduce_max(weights, axis=-1)


__all__ = [
    "TOKEN_REDUCTIONS",
    "check_token_reduction",
    "flatten_positions",
    "has_positions",
    "keep_teacher_at_padding",
    "position_weights",
    "reduction_weights",
    "without_mask",
]

