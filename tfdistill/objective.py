"""The Distiller's objective: the hard loss, the loss weights, replica scaling.

Pure functions; `Distiller.compute_distillation_losses` puts them together.
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
