"""Multi-level logit distillation: match the teacher per example, per batch and per class.

Hinton KD matches each example's softened probabilities on its own. MLKD
(Jin et al., CVPR 2023) adds two relations that only a batch shows: how
similar the examples' predictions are to each other (batch level, the
`batch x batch` Gram matrix of probabilities) and how the classes co-occur in
the predictions (class level, the `classes x classes` Gram matrix), each at
several temperatures.
"""

from typing import Sequence

import keras
from keras import ops

from tfdistill.losses.base import DistillationLoss, check_positive


def _softmax(logits, temperature):
    return ops.softmax(ops.cast(logits, "float32") / temperature, axis=-1)


def multilevel_kd(
    teacher_logits,
    student_logits,
    temperatures: Sequence[float] = (2.0, 3.0, 4.0, 5.0, 6.0),
    instance_weight: float = 1.0,
    batch_weight: float = 1.0,
    class_weight: float = 1.0,
):
    """MLKD: instance, batch and class alignment of softened probabilities, per example.

    For each temperature `T`, with `P = softmax(z/T)` of shape `(B, C)`:

    - instance: `T² · KL(P_t[i] ‖ P_s[i])` (Hinton KD);
    - batch: `T² · Σ_j (G_t − G_s)[i, j]² / B` with `G = P Pᵀ` (`B x B`), row
      `i` belonging to example `i`;
    - class: `T² · Σ (M_t − M_s)² / C` with `M = Pᵀ P` (`C x C`), a property
      of the whole batch, divided equally among its examples (`/ B`).

    The value is the mean over temperatures of `instance_weight · instance +
    batch_weight · batch + class_weight · class`; the batch mean of it is the
    paper's loss (without its data augmentation and confidence masking).

    Args:
        teacher_logits: shape `(batch, num_classes)`.
        student_logits: shape `(batch, num_classes)`.
        temperatures: the temperatures (the paper's code uses 2 to 6).
        instance_weight, batch_weight, class_weight: weights of the levels, >= 0.

    Returns:
        Shape `(batch,)`, >= 0; zero where the student's logits equal the
        teacher's.

    Example:
        >>> t = [[2.0, 0.0], [0.0, 1.0]]
        >>> [round(float(v), 4) for v in multilevel_kd(t, t, temperatures=(1.0,))]
        [0.0, 0.0]

    Reference:
        Jin, Wang and Lin, "Multi-Level Logit Distillation", CVPR 2023.
    """
    batch = ops.cast(ops.shape(student_logits)[0], "float32")
    classes = ops.cast(ops.shape(student_logits)[-1], "float32")
    total = 0.0
    for temperature in temperatures:
        p_t, p_s = _softmax(teacher_logits, temperature), _softmax(student_logits, temperature)
        log_ratio = ops.log(ops.maximum(p_t, 1e-12)) - ops.log(ops.maximum(p_s, 1e-12))
        instance = ops.sum(p_t * log_ratio, axis=-1)
        gram_difference = ops.matmul(p_t, ops.transpose(p_t)) - ops.matmul(p_s, ops.transpose(p_s))
        batch_level = ops.sum(gram_difference**2, axis=-1) / batch
        class_difference = ops.matmul(ops.transpose(p_t), p_t) - ops.matmul(ops.transpose(p_s), p_s)
        class_level = ops.sum(class_difference**2) / classes / batch
        total += temperature**2 * (
            instance_weight * instance + batch_weight * batch_level + class_weight * class_level
        )
    return total / len(temperatures)


@keras.saving.register_keras_serializable(package="tfdistill")
class MultiLevelKD(DistillationLoss):
    """Multi-level logit distillation (MLKD), see `multilevel_kd`.

    Args:
        temperatures: the temperatures (default 2, 3, 4, 5, 6).
        instance_weight, batch_weight, class_weight: weights of the levels.
        name: name of the loss.
        reduction: Keras reduction.

    Example:
        >>> distiller.compile("adam", soft_loss=MultiLevelKD(), hard_weight=1.0, soft_weight=1.0)  # doctest: +SKIP

    Reference:
        Jin, Wang and Lin, "Multi-Level Logit Distillation", CVPR 2023.
    """

    relates_rows = True  # compares rows across the batch

    def __init__(
        self,
        temperatures=(2.0, 3.0, 4.0, 5.0, 6.0),
        instance_weight=1.0,
        batch_weight=1.0,
        class_weight=1.0,
        name="mlkd",
        reduction="sum_over_batch_size",
    ):
        super().__init__(name=name, reduction=reduction)
        if isinstance(temperatures, (int, float)):
            temperatures = (temperatures,)
        if not temperatures:
            raise ValueError(
                "Invalid value for argument `temperatures`: expected at least one number > 0. Received: ()"
            )
        self.temperatures = tuple(check_positive("temperatures", t) for t in temperatures)
        self.instance_weight = check_positive("instance_weight", instance_weight, allow_zero=True)
        self.batch_weight = check_positive("batch_weight", batch_weight, allow_zero=True)
        self.class_weight = check_positive("class_weight", class_weight, allow_zero=True)

    def call(self, teacher_logits, student_logits):
        return multilevel_kd(
            teacher_logits, student_logits, self.temperatures,
            self.instance_weight, self.batch_weight, self.class_weight,
        )

    def get_config(self):
        return {
            **super().get_config(),
            "temperatures": list(self.temperatures),
            "instance_weight": self.instance_weight,
            "batch_weight": self.batch_weight,
            "class_weight": self.class_weight,
        }
