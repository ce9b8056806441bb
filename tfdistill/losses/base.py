"""The base class of every soft (teacher-matching) loss."""

import keras


class DistillationLoss(keras.losses.Loss):
    """A loss between the teacher's and the student's outputs.

    Subclasses implement `call(teacher_outputs, student_outputs)` and return
    one value per example, shape `(batch,)`; Keras's `Loss.__call__` applies
    `sample_weight`, the reduction (default `"sum_over_batch_size"`) and the
    scaling across `tf.distribute` replicas, exactly as for a compiled loss.

    A loss that needs the labels (e.g. DKD's target class) sets
    `uses_labels = True`; its `call` then receives `(teacher_outputs, labels)`
    as the first argument, and calling it without `labels=` is an error.

    Args:
        name: name of the loss.
        reduction: Keras reduction, default `"sum_over_batch_size"`.
    """

    uses_labels = False

    def __init__(self, name=None, reduction="sum_over_batch_size"):
        super().__init__(name=name, reduction=reduction, dtype="float32")

    def __call__(self, teacher_outputs, student_outputs, sample_weight=None, labels=None):
        """Returns the reduced loss.

        Args:
            teacher_outputs: the teacher's outputs (logits or features).
            student_outputs: the student's, same shape.
            sample_weight: optional per-example weights, shape `(batch,)`.
            labels: class ids, shape `(batch,)` or `(batch, 1)`; required when
                `uses_labels`, ignored otherwise.
        """
        if self.uses_labels:
            if labels is None:
                raise ValueError(
                    f"Invalid call of the `{type(self).__name__}` loss: it needs the "
                    "class labels. Pass `labels=` (the Distiller does). Received: labels=None"
                )
            teacher_outputs = (teacher_outputs, keras.ops.reshape(labels, (-1,)))
        return super().__call__(teacher_outputs, student_outputs, sample_weight=sample_weight)

    def get_config(self):
        return {"name": self.name, "reduction": self.reduction}


def check_temperature(temperature):
    """Raises a `ValueError` unless `temperature` is a positive number."""
    return check_positive("temperature", temperature)


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
