"""The base class of every soft (teacher-matching) loss."""

import keras


class DistillationLoss(keras.losses.Loss):
    """A loss between teacher and student logits.

    Subclasses implement `call(teacher_logits, student_logits)` and return one
    value per example, shape `(batch,)`; Keras's `Loss.__call__` applies
    `sample_weight`, the reduction (default `"sum_over_batch_size"`) and the
    scaling across `tf.distribute` replicas, exactly as for a compiled loss.

    Args:
        name: name of the loss.
        reduction: Keras reduction, default `"sum_over_batch_size"`.
    """

    def __init__(self, name=None, reduction="sum_over_batch_size"):
        super().__init__(name=name, reduction=reduction, dtype="float32")

    def get_config(self):
        return {"name": self.name, "reduction": self.reduction}


def check_temperature(temperature):
    """Raises a `ValueError` unless `temperature` is a positive number."""
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)):
        raise ValueError(
            "Invalid value for argument `temperature`. Expected a positive "
            f"number. Received: temperature={temperature!r}"
        )
    if not temperature > 0:
        raise ValueError(
            "Invalid value for argument `temperature`. Expected a number > 0. "
            f"Received: temperature={temperature}"
        )
    return float(temperature)
