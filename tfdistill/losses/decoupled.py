"""Decoupled knowledge distillation (DKD): target and non-target parts of KD.

Every function takes logits of shape `(batch, num_classes)` and integer labels
of shape `(batch,)`, and returns one value per example, shape `(batch,)`.
"""

import keras
from keras import ops

from tfdistill.losses.base import DistillationLoss, check_positive, check_temperature, serialize_temperature
from tfdistill.losses.logits import standardize_logits

# Added to the target class's logit to drop it from a softmax (as the authors'
# code does with 1000); large enough for any float32 logits divided by T.
_MASK_OFFSET = 1e9


def _binary_log_probabilities(logits, target_mask):
    """`log p_target` and `log (1 − p_target)`, computed stably; each `(batch,)`."""
    log_all = ops.logsumexp(logits, axis=-1)
    log_target = ops.sum(logits * target_mask, axis=-1) - log_all
    log_rest = ops.logsumexp(logits - _MASK_OFFSET * target_mask, axis=-1) - log_all
    return log_target, log_rest


def decoupled_kd(
    teacher_logits, student_logits, labels, temperature=4.0, alpha=1.0, beta=8.0, standardize=False
):
    """DKD: `T² · (α · TCKD + β · NCKD)`, per example.

    With `p = softmax(z/T)` and `g` the true class:
    TCKD = `KL([p_t,g, 1 − p_t,g] ‖ [p_s,g, 1 − p_s,g])`, how the two agree on
    the target's probability; NCKD = `KL(p̂_t ‖ p̂_s)` with `p̂` the softmax over
    the non-target classes only, the "dark knowledge". Hinton KD is
    `TCKD + (1 − p_t,g) · NCKD`: DKD frees NCKD from the weight `1 − p_t,g`,
    which is small exactly when the teacher is confident.

    Args:
        teacher_logits: shape `(batch, num_classes)`.
        student_logits: shape `(batch, num_classes)`.
        labels: integer class ids, shape `(batch,)`.
        temperature: `T > 0`.
        alpha: weight of TCKD, >= 0 (1 in the paper).
        beta: weight of NCKD, >= 0 (8 in the paper for CIFAR-100).
        standardize: z-score the logits first (`standardize_logits`).

    Returns:
        Shape `(batch,)`, non-negative; zero where the two agree.

    Example:
        >>> t, s = [[2.0, 1.0, 0.0]], [[0.0, 0.0, 0.0]]
        >>> float(decoupled_kd(t, s, [0], temperature=1.0, alpha=1.0, beta=0.0)[0])
        0.2290...

    Reference:
        Zhao, Cui, Song, Qiu and Liang, "Decoupled Knowledge Distillation",
        CVPR 2022.
    """
    teacher_logits = ops.cast(teacher_logits, "float32")
    student_logits = ops.cast(student_logits, "float32")
    if standardize:
        teacher_logits = standardize_logits(teacher_logits)
        student_logits = standardize_logits(student_logits)
    teacher_logits = teacher_logits / temperature
    student_logits = student_logits / temperature
    num_classes = ops.shape(student_logits)[-1]
    target_mask = ops.one_hot(ops.cast(labels, "int32"), num_classes, dtype="float32")

    t_target, t_rest = _binary_log_probabilities(teacher_logits, target_mask)
    s_target, s_rest = _binary_log_probabilities(student_logits, target_mask)
    tckd = ops.exp(t_target) * (t_target - s_target) + ops.exp(t_rest) * (t_rest - s_rest)

    log_t_rest = ops.log_softmax(teacher_logits - _MASK_OFFSET * target_mask, axis=-1)
    log_s_rest = ops.log_softmax(student_logits - _MASK_OFFSET * target_mask, axis=-1)
    # The target's entries are exp(-1e9) = 0 times a finite difference.
    nckd = ops.sum(ops.exp(log_t_rest) * (log_t_rest - log_s_rest), axis=-1)
    return (temperature**2) * (alpha * tckd + beta * nckd)


@keras.saving.register_keras_serializable(package="tfdistill")
class DecoupledKD(DistillationLoss):
    """DKD: `T² · (α · TCKD + β · NCKD)`, see `decoupled_kd`. Registered as `"dkd"`.

    Needs the labels (the Distiller passes them). The paper warms the DKD term
    up linearly over the first 20 epochs; pass
    `soft_weight=tfdistill.schedules.LinearWarmup(1.0, 20 * steps_per_epoch)`
    to `Distiller.compile` for the same.

    Args:
        temperature: `T > 0`. Defaults to 4.
        alpha: weight of the target-class term TCKD. Defaults to 1.
        beta: weight of the non-target term NCKD. Defaults to 8.
        standardize: z-score the logits first (Sun et al., CVPR 2024).
        name: name of the loss.
        reduction: Keras reduction over the batch.

    Example:
        >>> loss = DecoupledKD(temperature=4.0, beta=8.0)
        >>> value = loss(teacher_logits, student_logits, labels=y)  # doctest: +SKIP

    Reference:
        Zhao et al., "Decoupled Knowledge Distillation", CVPR 2022.
    """

    uses_labels = True

    def __init__(
        self,
        temperature=4.0,
        alpha=1.0,
        beta=8.0,
        standardize=False,
        name="dkd",
        reduction="sum_over_batch_size",
    ):
        super().__init__(name=name, reduction=reduction)
        self.temperature = check_temperature(temperature)
        self.alpha = check_positive("alpha", alpha, allow_zero=True)
        self.beta = check_positive("beta", beta, allow_zero=True)
        self.standardize = bool(standardize)

    def call(self, teacher_and_labels, student_logits):
        teacher_logits, labels = teacher_and_labels
        return decoupled_kd(
            teacher_logits, student_logits, labels,
            self.current_temperature(), self.alpha, self.beta, self.standardize,
        )

    def get_config(self):
        return {
            **super().get_config(),
            "temperature": serialize_temperature(self.temperature),
            "alpha": self.alpha,
            "beta": self.beta,
            "standardize": self.standardize,
        }
