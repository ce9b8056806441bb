"""Losses that match the student's softened class probabilities to the teacher's.

Every function takes logits of shape `(batch, num_classes)` and returns one
value per example, shape `(batch,)`, computed in float32. They apply along the
last axis, so logits with positions, `(batch, ..., num_classes)`, give one
value per position, `(batch, ...)`.
"""

import keras
from keras import ops

from tfdistill.losses.base import DistillationLoss, check_temperature, is_schedule, serialize_temperature


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


def _kept_mask(classes, num_classes):
    """`(batch, num_classes)` booleans, True at each row's `classes`.

    A scatter, not `one_hot`: `(batch, num_classes)` memory instead of
    `(batch, k, num_classes)`, which matters for vocabulary-sized outputs.
    """
    classes = ops.cast(classes, "int32")
    batch = ops.shape(classes)[0]
    rows = ops.broadcast_to(ops.expand_dims(ops.arange(batch, dtype="int32"), -1), ops.shape(classes))
    indices = ops.reshape(ops.stack([rows, classes], axis=-1), (-1, 2))
    ones = ops.ones_like(ops.reshape(classes, (-1,)), "float32")
    return ops.scatter(indices, ones, (batch, num_classes)) > 0


def top_k_kd(teacher_values, teacher_classes, student_logits, temperature=4.0):
    """Hinton KD against a teacher cached as its top-k logits, per example.

    The teacher is stored as its `k` largest logits, their class ids, and one
    *remainder logit* `r = T · log Σ_{c ∉ K} exp(t_c / T)`, so that
    `softmax([t_K, r] / T)` is exactly the teacher's probability of each kept
    class and the total probability of all the others. The student's
    distribution is collapsed onto the same `k + 1` bins (its kept classes and
    the sum over the rest), and the loss is `T² · KL` between the two
    `(k + 1)`-bin distributions: exact on the kept classes, with the
    remainder renormalised into one bin. With `k = num_classes` it equals
    `hinton_kd`; for smaller `k` it is never larger.

    Args:
        teacher_values: shape `(batch, k + 1)`: the top-k logits, then the
            remainder logit computed at this `temperature` (see
            `top_k_logits`); `(batch, ..., k + 1)` with positions.
        teacher_classes: shape `(batch, k)` (`(batch, ..., k)`), the class ids
            of the top-k logits.
        student_logits: shape `(batch, num_classes)` (`(batch, ..., num_classes)`).
        temperature: softening temperature `T > 0`, the one the remainder
            logit was computed at.

    Returns:
        Shape `(batch,)` (`(batch, ...)`), non-negative.

    Example:
        >>> values, classes = top_k_logits([[3.0, 1.0, 0.0]], k=1, temperature=1.0)
        >>> float(top_k_kd(values, classes, [[0.0, 0.0, 0.0]], temperature=1.0)[0])
        0.5570...

    Reference:
        Hinton, Vinyals and Dean, "Distilling the Knowledge in a Neural
        Network", 2015; the storage follows top-k logit caching for large
        vocabularies (e.g. Raman et al., "For Distillation, Tokens Are Not All
        You Need", 2023).
    """
    student_logits = ops.cast(student_logits, "float32")
    positions = ops.shape(student_logits)[:-1]
    num_classes = ops.shape(student_logits)[-1]
    # Rows of (positions, classes): the same for (batch, classes) and (batch, ..., classes).
    student_logits = ops.reshape(student_logits, (-1, num_classes))
    teacher_values = ops.reshape(ops.cast(teacher_values, "float32"), (ops.shape(student_logits)[0], -1))
    classes = ops.reshape(ops.cast(teacher_classes, "int32"), (ops.shape(student_logits)[0], -1))
    log_p_teacher = ops.log_softmax(teacher_values / temperature, axis=-1)
    scaled = student_logits / temperature
    kept = ops.take_along_axis(scaled, classes, axis=-1)
    is_kept = _kept_mask(classes, num_classes)
    # A large finite fill, not -inf: with every class kept the remainder's
    # log-mass is then finite and its gradient zero instead of NaN.
    rest = ops.logsumexp(ops.where(is_kept, -1e9, scaled), axis=-1, keepdims=True)
    log_p_student = ops.log_softmax(ops.concatenate([kept, rest], axis=-1), axis=-1)
    p_teacher = ops.exp(log_p_teacher)
    present = p_teacher > 0
    terms = ops.where(present, p_teacher * (ops.where(present, log_p_teacher, 0.0) - log_p_student), 0.0)
    return ops.reshape((temperature**2) * ops.sum(terms, axis=-1), positions)


def top_k_logits(logits, k, temperature=4.0):
    """Compresses logits to the top-k values, their classes and a remainder logit.

    Args:
        logits: shape `(batch, num_classes)`, or `(batch, ..., num_classes)`
            with positions (a `(examples, time, k + 1)` cache for a sequence).
        k: classes kept per example, `1 <= k <= num_classes`.
        temperature: the KD temperature the remainder logit is computed at.

    Returns:
        `(values, classes)`: `values` of shape `(batch, k + 1)` (the top-k
        logits, then the remainder logit `T · logsumexp(t_rest / T)` over the
        other classes, `-inf` when there are none) and int32 `classes` of shape `(batch, k)`.

    Example:
        >>> values, classes = top_k_logits([[0.0, 2.0, 1.0]], k=2, temperature=1.0)
        >>> [round(float(v), 4) for v in values[0]], [int(c) for c in classes[0]]
        ([2.0, 1.0, 0.0], [1, 2])
    """
    logits = ops.cast(logits, "float32")
    positions = tuple(ops.shape(logits)[:-1])
    logits = ops.reshape(logits, (-1, ops.shape(logits)[-1]))  # rows of (positions, classes)
    values, classes = ops.top_k(logits, k)
    is_kept = _kept_mask(classes, ops.shape(logits)[-1])
    rest = temperature * ops.logsumexp(
        ops.where(is_kept, float("-inf"), logits / temperature), axis=-1, keepdims=True
    )
    values = ops.concatenate([values, rest], axis=-1)
    return ops.reshape(values, positions + (k + 1,)), ops.reshape(ops.cast(classes, "int32"), positions + (k,))


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

    supports_top_k = True

    def call(self, teacher_logits, student_logits):
        if isinstance(teacher_logits, dict):  # Cached top-k teacher, see `tfdistill.offline`.
            if self.standardize or is_schedule(self.temperature):
                raise ValueError(
                    "Invalid teacher for the KD loss: a top-k teacher cache holds the "
                    "logits at one temperature without the rest of the classes, so it "
                    "cannot be standardized or follow a temperature schedule. Received: "
                    f"standardize={self.standardize}, temperature={self.temperature!r}. "
                    "Cache every logit (`top_k=None`)."
                )
            return top_k_kd(teacher_logits["values"], teacher_logits["classes"], student_logits, self.temperature)
        return hinton_kd(teacher_logits, student_logits, self.current_temperature(), self.standardize)

    def get_config(self):
        return {
            **super().get_config(),
            "temperature": serialize_temperature(self.temperature),
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
            teacher_logits, student_logits, self.current_temperature(), self.standardize
        )

    def get_config(self):
        return {
            **super().get_config(),
            "temperature": serialize_temperature(self.temperature),
            "standardize": self.standardize,
        }
