"""The base class of every soft (teacher-matching) loss."""

import keras
import tensorflow as tf
from keras import ops


class DistillationLoss(keras.losses.Loss):
    """A loss between the teacher's and the student's outputs.

    Subclasses implement `call(teacher_outputs, student_outputs)` and return
    one value per example, shape `(batch,)`; Keras's `Loss.__call__` applies
    `sample_weight`, the reduction (default `"sum_over_batch_size"`) and the
    scaling across `tf.distribute` replicas, exactly as for a compiled loss.

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
        if self.uses_labels:
            if labels is None:
                raise ValueError(
                    f"Invalid call of the `{type(self).__name__}` loss: it needs the "
                    "class labels. Pass `labels=` (the Distiller does). Received: labels=None"
                )
            teacher_outputs = (teacher_outputs, keras.ops.reshape(labels, (-1,)))
        return super().__call__(teacher_outputs, student_outputs, sample_weight=sample_weight)

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
