"""The Distiller's objective: the hard loss, the loss weights, replica scaling.

Pure functions; `distillation_losses` puts them together for one batch.
"""

import keras
import tensorflow as tf

from tfdistill import validation

HARD_LOSS_NAMES = ("sparse_categorical_crossentropy", "scce")


def get_hard_loss(identifier):
    """Returns the hard (label) loss for a logits student.

    Args:
        identifier: `"sparse_categorical_crossentropy"` (computed from logits,
            which is what the name means for a logits student), a
            `keras.losses.Loss` instance or its config dict.

    Returns:
        A `keras.losses.Loss`.

    Example:
        >>> get_hard_loss("scce").from_logits
        True
    """
    if isinstance(identifier, str):
        if identifier.lower() not in HARD_LOSS_NAMES:
            raise ValueError(
                "Invalid value for argument `loss`. Expected one of "
                f"{list(HARD_LOSS_NAMES)} or a `keras.losses.Loss` instance. "
                f"Received: loss={identifier!r}"
            )
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    if isinstance(identifier, dict):
        identifier = keras.saving.deserialize_keras_object(identifier)
    if not isinstance(identifier, keras.losses.Loss):
        raise ValueError(
            "Invalid value for argument `loss`. Expected a name in "
            f"{list(HARD_LOSS_NAMES)} or a `keras.losses.Loss` instance. "
            f"Received: loss={identifier!r} of type {type(identifier).__name__}"
        )
    if getattr(identifier, "from_logits", True) is False:
        raise ValueError(
            "Invalid value for argument `loss`: it was built with "
            "`from_logits=False`, but the student outputs logits. Use "
            "`from_logits=True` or pass the name "
            "'sparse_categorical_crossentropy'. "
            f"Received: loss={identifier.__class__.__name__}(from_logits=False)"
        )
    return identifier


def get_weight(name, value):
    """A loss weight: a number >= 0, or a step -> weight schedule (or its config)."""
    if isinstance(value, dict):
        value = keras.saving.deserialize_keras_object(value)
    if isinstance(value, keras.optimizers.schedules.LearningRateSchedule):
        return value
    return validation.check_weight(name, value)


def get_weights(hard_weight, soft_weight, has_features=False, compile_kwargs=None):
    """`(hard_weight, soft_weight)`, checked: not both zero (unless feature pairs add a loss).

    `compile_kwargs` must not hold `loss_weights`: the Distiller weighs its
    losses with these two.
    """
    hard_weight = get_weight("hard_weight", hard_weight)
    soft_weight = get_weight("soft_weight", soft_weight)
    if is_zero(hard_weight) and is_zero(soft_weight) and not has_features:
        raise ValueError(
            "Invalid values for arguments `hard_weight` and `soft_weight`: "
            "at least one must be > 0. Received: hard_weight=0, soft_weight=0"
        )
    if compile_kwargs and "loss_weights" in compile_kwargs:
        raise ValueError(
            "Invalid argument `loss_weights`: the Distiller weighs its two "
            "losses with `hard_weight` and `soft_weight`."
        )
    return hard_weight, soft_weight


def with_loss_scaling(optimizer, student, auto_scale_loss=True):
    """The optimizer, wrapped in a `LossScaleOptimizer` for a `mixed_float16` student.

    Keras wraps the optimizer only when the model's own policy (here the
    Distiller's) is mixed_float16; a float16 student needs loss scaling either way.
    """
    if (
        auto_scale_loss
        and student.dtype_policy.name == "mixed_float16"
        and not isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
    ):
        return keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


def is_zero(weight):
    """Whether a weight is the constant 0 (a schedule never is)."""
    return not callable(weight) and weight == 0


def weight_at(weight, step):
    """A weight's value at the optimizer's `step`."""
    return tf.cast(weight(step), "float32") if callable(weight) else weight


def scale_for_replicas(value):
    """Divides by the replica count, as Keras scales each replica's loss."""
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    return value / tf.cast(replicas, value.dtype) if replicas > 1 else value


def unscale_for_replicas(value):
    """Undoes Keras's per-replica loss scaling, for logging (as Keras does)."""
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    return value * tf.cast(replicas, value.dtype) if replicas > 1 else value


def distillation_losses(hard_loss, soft_loss, hard_weight, soft_weight, teacher, student_logits, weights, step,
                        feature_loss=None, regularization=()):
    """One batch's weighted total and its unweighted terms.

        total = hard_weight · hard_loss + soft_weight · soft_loss [+ feature_loss] [+ regularization]

    As in Keras, each term is the sum over the local batch divided by its size
    and by the number of replicas, so summing gradients across replicas gives
    the global-batch mean. Without labels (`weights.labels is None`) there is
    no hard term.

    Args:
        hard_loss: a `keras.losses.Loss` on `(labels, logits)`.
        soft_loss: a `tfdistill.losses.DistillationLoss`.
        hard_weight: the hard loss's weight at this step.
        soft_weight: the soft loss's weight at this step.
        teacher: the batch's `tfdistill.teacher_outputs.TeacherOutputs`.
        student_logits: float32 `(batch, ..., num_classes)`.
        weights: the batch's `tfdistill.labels.BatchWeights`.
        step: the optimizer step (for schedules inside the soft loss).
        feature_loss: `None`, or a function of no arguments returning the
            weighted feature loss.
        regularization: the student's regularization losses.

    Returns:
        `(total, terms)`: `terms` maps `"hard_loss"` (with labels),
        `"soft_loss"` (and `"feature_loss"`) to the unweighted terms.
    """
    terms = {}
    total = 0.0
    if weights.labels is not None:
        terms["hard_loss"] = hard_loss(weights.labels, student_logits, sample_weight=weights.hard)
        total = hard_weight * terms["hard_loss"]
    soft_labels = None
    if getattr(soft_loss, "uses_labels", False):
        # An example without a label takes the teacher's top class (DKD's target class).
        soft_labels = tf.argmax(teacher.logits, axis=-1, output_type=tf.int32)
        if weights.labels is not None:
            soft_labels = tf.where(weights.labeled > 0, tf.cast(weights.labels, tf.int32), soft_labels)
    terms["soft_loss"] = soft_loss(
        teacher.for_soft_loss(), student_logits, sample_weight=weights.soft, labels=soft_labels, step=step
    )
    total += soft_weight * terms["soft_loss"]
    if feature_loss is not None:
        terms["feature_loss"] = feature_loss()
        total += terms["feature_loss"]
    if regularization:
        total += scale_for_replicas(tf.add_n([tf.cast(r, "float32") for r in regularization]))
    return total, terms
