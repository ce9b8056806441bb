"""Losses that match the student's softened class probabilities to the teacher's.

Every function takes logits of shape `(batch, num_classes)` and returns one
value per example, shape `(batch,)`, computed in float32.
"""

import keras
from keras import ops

from tfdistill.losses.base import DistillationLoss, check_temperature


def standardize_logits(logits, epsilon=1e-7):
    """Z-scores logits per example: `(z − mean(z)) / (std(z) + ε)`.

    The standard deviation uses the `n − 1` denominator, as the authors' code
    does. A standardized teacher and student are compared on the *shape* of
    their logits, not their scale, so a small student need not match a large
    teacher's logit range.

    Args:
        logits: shape `(batch, num_classes)`.
        epsilon: added to the standard deviation.

    Returns:
        Shape `(batch, num_classes)`, float32, zero mean and unit standard
        deviation per row.

    Example:
        >>> [round(float(v), 4) for v in standardize_logits([[1.0, 2.0, 3.0]])[0]]
        [-1.0, 0.0, 1.0]

    Reference:
        Sun et al., "Logit Standardization in Knowledge Distillation",
        CVPR 2024.
    """
    logits = ops.cast(logits, "float32")
    num_classes = ops.cast(ops.shape(logits)[-1], "float32")
    centred = logits - ops.mean(logits, axis=-1, keepdims=True)
    variance = ops.sum(ops.square(centred), axis=-1, keepdims=True) / (num_classes - 1.0)
    return centred / (ops.sqrt(variance) + epsilon)


def _softened_log_probabilities(teacher_logits, student_logits, temperature, standardize=False):
    teacher_logits = ops.cast(teacher_logits, "float32")
    student_logits = ops.cast(student_logits, "float32")
    if standardize:
        teacher_logits = standardize_logits(teacher_logits)
        student_logits = standardize_logits(student_logits)
    log_p_teacher = ops.log_softmax(teacher_logits / temperature, axis=-1)
    log_p_student = ops.log_softmax(student_logits / temperature, axis=-1)
    return log_p_teacher, log_p_student


def hinton_kd(teacher_logits, student_logits, temperature=4.0, standardize=False):
    """Hinton's knowledge-distillation loss, per example.

    `T² · KL(softmax(t/T) ‖ softmax(s/T))
      = T² · Σ_c p_t,c · (log p_t,c − log p_s,c)`.
    The `T²` factor keeps the gradient's scale independent of `T`.

    Args:
        teacher_logits: shape `(batch, num_classes)`, the teacher's logits.
        student_logits: shape `(batch, num_classes)`, the student's logits.
        temperature: softening temperature `T > 0`.
        standardize: z-score both logits first (`standardize_logits`), the
            logit standardization of Sun et al., CVPR 2024.

    Returns:
        Shape `(batch,)`, non-negative; zero where the two agree.

    Example:
        >>> float(hinton_kd([[1.0, 0.0]], [[0.0, 0.0]], temperature=1.0)[0])
        0.1109...

    Reference:
        Hinton, Vinyals and Dean, "Distilling the Knowledge in a Neural
        Network", NeurIPS Deep Learning Workshop, 2015.
    """
    log_p_teacher, log_p_student = _softened_log_probabilities(
        teacher_logits, student_logits, temperature, standardize
    )
    kl = ops.sum(ops.exp(log_p_teacher) * (log_p_teacher - log_p_student), axis=-1)
    return (temperature**2) * kl


def softened_probability_mse(teacher_logits, student_logits, temperature=4.0, standardize=False):
    """Mean squared error between softened class probabilities, per example.

    `mean_c (softmax(t/T)_c − softmax(s/T)_c)²`, with no `T²` factor.

    Args:
        teacher_logits: shape `(batch, num_classes)`, the teacher's logits.
        student_logits: shape `(batch, num_classes)`, the student's logits.
        temperature: softening temperature `T > 0`.
        standardize: z-score both logits first (`standardize_logits`).

    Returns:
        Shape `(batch,)`, in `[0, 2 / num_classes]`.

    Example:
        >>> float(softened_probability_mse([[1.0, 0.0]], [[0.0, 0.0]], 1.0)[0])
        0.0533...

    Reference:
        Ba and Caruana, "Do Deep Nets Really Need to be Deep?", NeurIPS 2014
        (regression on the teacher's outputs).
    """
    log_p_teacher, log_p_student = _softened_log_probabilities(
        teacher_logits, student_logits, temperature, standardize
    )
    return ops.mean(ops.square(ops.exp(log_p_teacher) - ops.exp(log_p_student)), axis=-1)


@keras.saving.register_keras_serializable(package="tfdistill")
class KnowledgeDistillation(DistillationLoss):
    """Hinton KD: `T² · KL(softmax(teacher/T) ‖ softmax(student/T))`.

    Registered as `"kd"`, `"hinton_kd"` and `"kl_divergence"`: every name means
    this same loss on logits, so `"kl_divergence"` never compares raw logits.

    Args:
        temperature: softening temperature `T > 0`. Defaults to 4.
        standardize: z-score both logits before the softmax (logit
            standardization, Sun et al., CVPR 2024). Registered with it as
            `"ls_kd"` for KD.
        name: name of the loss.
        reduction: Keras reduction over the batch.

    Example:
        >>> loss = KnowledgeDistillation(temperature=2.0)
        >>> value = loss(teacher_logits, student_logits)  # doctest: +SKIP

    Reference:
        Hinton, Vinyals and Dean, "Distilling the Knowledge in a Neural
        Network", 2015.
    """

    def __init__(
        self, temperature=4.0, standardize=False, name="kd", reduction="sum_over_batch_size"
    ):
        super().__init__(name=name, reduction=reduction)
        self.temperature = check_temperature(temperature)
        self.standardize = bool(standardize)

    def call(self, teacher_logits, student_logits):
        return hinton_kd(teacher_logits, student_logits, self.temperature, self.standardize)

    def get_config(self):
        return {
            **super().get_config(),
            "temperature": self.temperature,
            "standardize": self.standardize,
        }


@keras.saving.register_keras_serializable(package="tfdistill")
class SoftenedProbabilityMSE(DistillationLoss):
    """Mean squared error between softened teacher and student probabilities.

    With `hard_weight=1` and `soft_weight=λ` in `Distiller.compile` this is
    `L = L_hard + λ · mean_c (softmax(t/T)_c − softmax(s/T)_c)²`.
    Registered as `"soft_mse"`.

    Args:
        temperature: softening temperature `T > 0`. Defaults to 4.
        standardize: z-score both logits before the softmax (logit
            standardization, Sun et al., CVPR 2024).
        name: name of the loss.
        reduction: Keras reduction over the batch.

    Example:
        >>> loss = SoftenedProbabilityMSE(temperature=2.0)
        >>> value = loss(teacher_logits, student_logits)  # doctest: +SKIP

    Reference:
        Ba and Caruana, "Do Deep Nets Really Need to be Deep?", NeurIPS 2014.
    """

    def __init__(
        self, temperature=4.0, standardize=False, name="soft_mse", reduction="sum_over_batch_size"
    ):
        super().__init__(name=name, reduction=reduction)
        self.temperature = check_temperature(temperature)
        self.standardize = bool(standardize)

    def call(self, teacher_logits, student_logits):
        return softened_probability_mse(
            teacher_logits, student_logits, self.temperature, self.standardize
        )

    def get_config(self):
        return {
            **super().get_config(),
            "temperature": self.temperature,
            "standardize": self.standardize,
        }
