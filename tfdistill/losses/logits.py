"""Losses that match the student's softened class probabilities to the teacher's.

Every function takes logits of shape `(batch, num_classes)` and returns one
value per example, shape `(batch,)`, computed in float32.
"""

import keras
from keras import ops

from tfdistill.losses.base import DistillationLoss, check_temperature


def _softened_log_probabilities(teacher_logits, student_logits, temperature):
    teacher_logits = ops.cast(teacher_logits, "float32")
    student_logits = ops.cast(student_logits, "float32")
    log_p_teacher = ops.log_softmax(teacher_logits / temperature, axis=-1)
    log_p_student = ops.log_softmax(student_logits / temperature, axis=-1)
    return log_p_teacher, log_p_student


def hinton_kd(teacher_logits, student_logits, temperature=4.0):
    """Hinton's knowledge-distillation loss, per example.

    `T² · KL(softmax(t/T) ‖ softmax(s/T))
      = T² · Σ_c p_t,c · (log p_t,c − log p_s,c)`.
    The `T²` factor keeps the gradient's scale independent of `T`.

    Args:
        teacher_logits: shape `(batch, num_classes)`, the teacher's logits.
        student_logits: shape `(batch, num_classes)`, the student's logits.
        temperature: softening temperature `T > 0`.

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
        teacher_logits, student_logits, temperature
    )
    kl = ops.sum(ops.exp(log_p_teacher) * (log_p_teacher - log_p_student), axis=-1)
    return (temperature**2) * kl


def softened_probability_mse(teacher_logits, student_logits, temperature=4.0):
    """Mean squared error between softened class probabilities, per example.

    `mean_c (softmax(t/T)_c − softmax(s/T)_c)²`, with no `T²` factor.

    Args:
        teacher_logits: shape `(batch, num_classes)`, the teacher's logits.
        student_logits: shape `(batch, num_classes)`, the student's logits.
        temperature: softening temperature `T > 0`.

    Returns:
        Shape `(batch,)`, in `[0, 2 / num_classes]`.

    Example:
        >>> float(softened_probability_mse([[1.0, 0.0]], [[0.0, 0.0]], 1.0)[0])
        0.0534...

    Reference:
        Ba and Caruana, "Do Deep Nets Really Need to be Deep?", NeurIPS 2014
        (regression on the teacher's outputs).
    """
    log_p_teacher, log_p_student = _softened_log_probabilities(
        teacher_logits, student_logits, temperature
    )
    return ops.mean(ops.square(ops.exp(log_p_teacher) - ops.exp(log_p_student)), axis=-1)


@keras.saving.register_keras_serializable(package="tfdistill")
class KnowledgeDistillation(DistillationLoss):
    """Hinton KD: `T² · KL(softmax(teacher/T) ‖ softmax(student/T))`.

    Registered as `"kd"`, `"hinton_kd"` and `"kl_divergence"`: every name means
    this same loss on logits, so `"kl_divergence"` never compares raw logits.

    Args:
        temperature: softening temperature `T > 0`. Defaults to 4.
        name: name of the loss.
        reduction: Keras reduction over the batch.

    Example:
        >>> loss = KnowledgeDistillation(temperature=2.0)
        >>> value = loss(teacher_logits, student_logits)  # doctest: +SKIP

    Reference:
        Hinton, Vinyals and Dean, "Distilling the Knowledge in a Neural
        Network", 2015.
    """

    def __init__(self, temperature=4.0, name="kd", reduction="sum_over_batch_size"):
        super().__init__(name=name, reduction=reduction)
        self.temperature = check_temperature(temperature)

    def call(self, teacher_logits, student_logits):
        return hinton_kd(teacher_logits, student_logits, self.temperature)

    def get_config(self):
        return {**super().get_config(), "temperature": self.temperature}


@keras.saving.register_keras_serializable(package="tfdistill")
class SoftenedProbabilityMSE(DistillationLoss):
    """Mean squared error between softened teacher and student probabilities.

    With `hard_weight=1` and `soft_weight=λ` in `Distiller.compile` this is
    `L = L_hard + λ · mean_c (softmax(t/T)_c − softmax(s/T)_c)²`.
    Registered as `"soft_mse"`.

    Args:
        temperature: softening temperature `T > 0`. Defaults to 4.
        name: name of the loss.
        reduction: Keras reduction over the batch.

    Example:
        >>> loss = SoftenedProbabilityMSE(temperature=2.0)
        >>> value = loss(teacher_logits, student_logits)  # doctest: +SKIP

    Reference:
        Ba and Caruana, "Do Deep Nets Really Need to be Deep?", NeurIPS 2014.
    """

    def __init__(self, temperature=4.0, name="soft_mse", reduction="sum_over_batch_size"):
        super().__init__(name=name, reduction=reduction)
        self.temperature = check_temperature(temperature)

    def call(self, teacher_logits, student_logits):
        return softened_probability_mse(teacher_logits, student_logits, self.temperature)

    def get_config(self):
        return {**super().get_config(), "temperature": self.temperature}
