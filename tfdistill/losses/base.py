"""The base class of every soft (teacher-matching) loss."""

import keras
import tensorflow as tf
from keras import ops

from tfdistill import compat, tokens


class DistillationLoss(keras.losses.Loss):
    """A loss between the teacher's and the student's outputs.

    Subclasses implement `call(teacher_outputs, student_outputs)` and return
    one value per example, shape `(batch,)`; Keras's `Loss.__call__` applies
    `sample_weight`, the reduction (default `"sum_over_batch_size"`) and the
    scaling across `tf.distribute` replicas, exactly as for a compiled loss.

    Logit losses (`per_position = True`) also take outputs with positions,
    `(batch, ..., num_classes)`: the loss applies per position, on rows of
    `(positions, num_classes)`, with `sample_weight` of shape `(batch,)` or
    the positions' `(batch, ...)` and the student output's Keras mask, and is
    reduced over positions as Keras reduces (see `tfdistill.tokens`).

    Losses with a `temperature` accept a number or a schedule (a
    `keras.optimizers.schedules.LearningRateSchedule`, e.g.
    `tfdistill.schedules.LinearWarmup`); their `call` reads
    `current_temperature()`.

    A loss that needs the labels (e.g. DKD's target class) sets
    `uses_labels = True`; its `call` then receives `(teacher_outputs, labels)`
    as the first argument, and calling it without `labels=` is an error.

    Args:
        name: name of the loss.
        reduction: Keras reduction, default `"sum_over_batch_size"`.
    """

    uses_labels = False
    # True for a loss whose `call` reads a top-k teacher cache (a dict with
    # "values" and "classes"); see `tfdistill.offline.TopKLogits`.
    supports_top_k = False
    # True for losses on logits, which apply per position to `(batch, ..., num_classes)`.
    per_position = True
    # True for losses whose terms compare rows across the batch (DIST, MLKD): padded rows
    # then take the teacher's logits, so they cannot move the student through those terms.
    relates_rows = False

    def __init__(self, name=None, reduction="sum_over_batch_size"):
        super().__init__(name=name, reduction=reduction, dtype="float32")
        self._step = None

    def __call__(self, teacher_outputs, student_outputs, sample_weight=None, labels=None, step=None):
        """Returns the reduced loss.

        Args:
            teacher_outputs: the teacher's outputs (logits or features).
            student_outputs: the student's, same shape.
            sample_weight: optional per-example weights, shape `(batch,)`.
            labels: class ids, shape `(batch,)` or `(batch, 1)`; required when
                `uses_labels`, ignored otherwise.
            step: the optimizer step, for a temperature schedule (the
                `Distiller` passes it).
        """
        self._step = step
        if self.uses_labels and labels is None:
            raise ValueError(
                f"Invalid call of the `{type(self).__name__}` loss: it needs the "
                "class labels. Pass `labels=` (the Distiller does). Received: labels=None"
            )
        mask = compat.keras_mask(student_outputs)
        student_outputs = ops.convert_to_tensor(student_outputs)
        if self.per_position and tokens.has_positions(student_outputs):
            teacher_outputs, student_outputs, sample_weight = self._position_rows(
                teacher_outputs, student_outputs, sample_weight, mask
            )
        if self.uses_labels:
            teacher_outputs = (teacher_outputs, keras.ops.reshape(labels, (-1,)))
        return super().__call__(teacher_outputs, student_outputs, sample_weight=sample_weight)

    def _position_rows(self, teacher_outputs, student_outputs, sample_weight, mask):
        """Flattens `(batch, ..., classes)` outputs to rows, with one weight per row.

        A Keras mask is applied as Keras applies it (`Σ w·m·l / Σ m` under
        `"sum_over_batch_size"`) and stripped, so Keras does not apply it again.
        """
        weights = tokens.position_weights(student_outputs[..., 0], sample_weight, mask)
        if mask is not None and self.reduction in ("sum_over_batch_size", "mean"):
            mask = tf.cast(mask, tf.float32)
            weights = weights * tf.math.divide_no_nan(tf.cast(tf.size(mask), tf.float32), tf.reduce_sum(mask))
        weights = tf.reshape(weights, (-1,))
        student_rows = tokens.flatten_positions(tokens.without_mask(student_outputs))
        if isinstance(teacher_outputs, dict):  # a top-k cache: per-row losses only (KD)
            teacher_rows = {key: tokens.flatten_positions(value) for key, value in teacher_outputs.items()}
        else:
            teacher_rows = tokens.flatten_positions(ops.convert_to_tensor(teacher_outputs, "float32"))
            if self.relates_rows:  # per-row losses need nothing more: a weight of 0 already removes a row
                student_rows = tokens.keep_teacher_at_padding(teacher_rows, student_rows, weights)
        return teacher_rows, student_rows, weights

    def current_temperature(self):
        """`self.temperature`, evaluated at the current step when it is a schedule."""
        temperature = self.temperature
        if not is_schedule(temperature):
            return temperature
        if self._step is None:
            raise ValueError(
                f"Invalid call of the `{type(self).__name__}` loss: its temperature is a "
                "schedule, which needs the training step. Pass `step=` (the Distiller "
                "does). Received: step=None"
            )
        value = ops.cast(temperature(self._step), "float32")
        # The schedule was checked at step 0 only; check every step's value.
        check = tf.debugging.assert_positive(
            value,
            message=(
                f"Invalid temperature schedule of the `{type(self).__name__}` loss: "
                "it reached a value <= 0."
            ),
        )
        with tf.control_dependencies([check]):
            return tf.identity(value)

    def get_config(self):
        return {"name": self.name, "reduction": self.reduction}


def is_schedule(value):
    """True for a step -> value schedule (any `LearningRateSchedule`)."""
    return isinstance(value, keras.optimizers.schedules.LearningRateSchedule)


def check_temperature(temperature):
    """A positive number, or a schedule (or its config) whose value at step 0 is positive.

    Temperature schedules (e.g. `tfdistill.schedules.LinearWarmup(1.0, steps,
    initial=4.0)`, from T=4 down to T=1) are evaluated at the optimizer step.
    """
    if isinstance(temperature, dict):
        temperature = keras.saving.deserialize_keras_object(temperature)
    if is_schedule(temperature):
        first = float(temperature(0))
        if not first > 0:
            raise ValueError(
                "Invalid value for argument `temperature`: a temperature schedule must "
                f"stay > 0. Received: {type(temperature).__name__} with value {first} at step 0"
            )
        return temperature
    return check_positive("temperature", temperature)


def serialize_temperature(temperature):
    """A number as it is, a schedule as its Keras config."""
    return keras.saving.serialize_keras_object(temperature) if is_schedule(temperature) else temperature


def check_positive(name, value, allow_zero=False):
    """Raises a `ValueError` unless `value` is a number > 0 (>= 0 with `allow_zero`)."""
    bound = ">= 0" if allow_zero else "> 0"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(
            f"Invalid value for argument `{name}`. Expected a number {bound}. "
            f"Received: {name}={value!r}"
        )
    if not (value >= 0 if allow_zero else value > 0) or value != value:
        raise ValueError(
            f"Invalid value for argument `{name}`. Expected a number {bound}. "
            f"Received: {name}={value}"
        )
    return float(value)
