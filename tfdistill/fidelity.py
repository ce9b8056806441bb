"""How closely a student follows its teacher: top-1 agreement and KL divergence.

Measured on the training images as well as held-out ones, fidelity tells why
a distilled student is where it is: a student that does not match its teacher
even on the images it was trained on is held back by its capacity or its
optimisation (a wider student or a longer schedule may help, more transfer
data will not); one that matches it on the training images but not on
held-out ones needs more (or more varied) transfer data, such as augmented
views.
"""

import dataclasses
from typing import Optional

import keras
import numpy as np
import tensorflow as tf

from tfdistill import validation


@dataclasses.dataclass(frozen=True)
class Fidelity:
    """Agreement between a teacher and a student on one set of examples.

    For logits with positions (`(examples, ..., classes)`: tokens, frames),
    every figure is per position, over the positions of nonzero weight.

    Attributes:
        examples: number of examples measured (positions, for logits with
            positions).
        top1_agreement: share of examples on which the student's top class is
            the teacher's.
        kl_divergence: mean `KL(teacher || student)` of their softmax
            probabilities at temperature 1, in nats.
        teacher_accuracy: the teacher's accuracy on the labels, or `None`
            without labels.
        student_accuracy: the student's accuracy, or `None` without labels.
    """

    examples: int
    top1_agreement: float
    kl_divergence: float
    teacher_accuracy: Optional[float] = None
    student_accuracy: Optional[float] = None

    def __str__(self):
        text = (
            f"top-1 agreement {self.top1_agreement:.2%}, KL(teacher || student) "
            f"{self.kl_divergence:.4f} nats"
        )
        if self.teacher_accuracy is not None:
            text += f", accuracy teacher {self.teacher_accuracy:.2%} / student {self.student_accuracy:.2%}"
        return text + f" ({self.examples:,} examples)"


def _log_softmax(logits):
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def fidelity_from_logits(teacher_logits, student_logits, labels=None, sample_weight=None):
    """Fidelity of a student to its teacher from their logits.

    Args:
        teacher_logits: array `(examples, classes)` of the teacher's logits,
            or `(examples, ..., classes)` with positions (per token).
        student_logits: array of the same shape, the student's logits.
        labels: optional integer class ids, shape `(examples,)` or
            `(examples, 1)` (`(examples, ...)` with positions), for both
            models' accuracies.
        sample_weight: optional weights, `(examples,)` or one per position;
            every figure is a weighted mean, and positions of weight 0
            (padding) are not counted.

    Returns:
        A `Fidelity`.

    Example:
        >>> fidelity_from_logits([[2.0, 0.0]], [[1.0, 0.0]]).top1_agreement
        1.0

    Reference:
        Stanton et al., "Does Knowledge Distillation Really Work?",
        NeurIPS 2021 (top-1 agreement and predictive KL as fidelity).
    """
    teacher_logits = np.asarray(teacher_logits, dtype="float64")
    student_logits = np.asarray(student_logits, dtype="float64")
    if teacher_logits.ndim < 2 or teacher_logits.shape[0] == 0:
        raise ValueError(
            "Invalid value for argument `teacher_logits`. Expected an array of "
            "shape (examples, classes) or (examples, ..., classes) with at least one "
            f"example. Received: shape {teacher_logits.shape}"
        )
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(
            "Invalid value for argument `student_logits`. Expected the shape of "
            f"`teacher_logits`, {teacher_logits.shape}. Received: shape {student_logits.shape}"
        )
    for name, values in (("teacher_logits", teacher_logits), ("student_logits", student_logits)):
        if not np.all(np.isfinite(values)):
            raise ValueError(f"Invalid value for argument `{name}`: it contains NaN or Inf values.")
    positions = teacher_logits.shape[:-1]
    weights = np.ones(positions)
    if sample_weight is not None:
        sample_weight = np.asarray(sample_weight, dtype="float64")
        if sample_weight.shape != positions[: sample_weight.ndim] or not np.all(sample_weight >= 0):
            raise ValueError(
                "Invalid value for argument `sample_weight`. Expected weights >= 0 of shape "
                f"{positions[:1]} or {positions}. Received: shape {sample_weight.shape}"
            )
        weights = weights * sample_weight.reshape(sample_weight.shape + (1,) * (len(positions) - sample_weight.ndim))
    if not weights.sum() > 0:
        raise ValueError("Invalid value for argument `sample_weight`: every weight is 0, so nothing is measured.")
    teacher_log_probs = _log_softmax(teacher_logits)
    student_log_probs = _log_softmax(student_logits)
    kl = np.sum(np.exp(teacher_log_probs) * (teacher_log_probs - student_log_probs), axis=-1)
    teacher_top1 = teacher_logits.argmax(axis=-1)
    student_top1 = student_logits.argmax(axis=-1)
    accuracies = (None, None)
    if labels is not None:
        labels = np.asarray(labels)
        if labels.ndim == teacher_logits.ndim and labels.shape[-1] == 1:
            labels = labels[..., 0]
        if labels.shape != teacher_top1.shape:
            raise ValueError(
                "Invalid value for argument `labels`. Expected integer class ids "
                f"of shape {teacher_top1.shape}. Received: shape {labels.shape}"
            )
        validation.check_labels(labels, teacher_logits.shape[-1], teacher_logits.ndim)
        accuracies = (_mean(teacher_top1 == labels, weights), _mean(student_top1 == labels, weights))
    return Fidelity(
        examples=int(np.count_nonzero(weights)),
        top1_agreement=_mean(teacher_top1 == student_top1, weights),
        kl_divergence=_mean(kl, weights),
        teacher_accuracy=accuracies[0],
        student_accuracy=accuracies[1],
    )


def _mean(values, weights):
    return float(np.sum(values * weights) / np.sum(weights))


def agreement(teacher, student_logits, weights=None):
    """In the graph: the weighted share of examples (positions) where the student's top class is the teacher's.

    Args:
        teacher: a `tfdistill.teacher_outputs.TeacherOutputs` (a top-k cache's
            first class is the teacher's top one).
        student_logits: `(batch, ..., num_classes)`.
        weights: `None` or one weight per example (position).

    Returns:
        `(agreement, total weight)`, float32 scalars: what a `keras.metrics.Mean`
        takes as a batch's value and weight.
    """
    teacher_top1 = teacher.classes[..., 0] if teacher.is_top_k else tf.argmax(teacher.logits, axis=-1)
    same = tf.cast(tf.equal(tf.cast(teacher_top1, tf.int64), tf.argmax(student_logits, axis=-1)), tf.float32)
    weights = tf.ones_like(same) if weights is None else tf.reshape(tf.cast(weights, tf.float32), tf.shape(same))
    total = tf.reduce_sum(weights)
    return tf.math.divide_no_nan(tf.reduce_sum(same * weights), total), total


def measure_fidelity(
    teacher: keras.Model,
    student: keras.Model,
    x: np.ndarray,
    y: Optional[np.ndarray] = None,
    batch_size: int = 1024,
    sample_weight: Optional[np.ndarray] = None,
) -> Fidelity:
    """Runs teacher and student (inference mode) on `x` and compares them.

    Args:
        teacher: a `keras.Model` that outputs logits.
        student: a `keras.Model` that outputs logits of the same shape.
        x: the inputs, anything `Model.predict` takes (arrays, a
            `tf.data.Dataset` of inputs only).
        y: optional integer labels of `x`, for both models' accuracies.
        batch_size: batch size for arrays.
        sample_weight: optional weights per example or per position (padding
            0), see `fidelity_from_logits`.

    Returns:
        A `Fidelity`.

    Example:
        >>> train = measure_fidelity(teacher, student, x_train, y_train)  # doctest: +SKIP
        >>> test = measure_fidelity(teacher, student, x_test, y_test)  # doctest: +SKIP
        >>> print(f"train {train.top1_agreement:.1%}, test {test.top1_agreement:.1%}")  # doctest: +SKIP

    Reference:
        Stanton et al., "Does Knowledge Distillation Really Work?",
        NeurIPS 2021.
    """
    for argument, model in (("teacher", teacher), ("student", student)):
        if not isinstance(model, keras.Model):
            raise ValueError(
                f"Invalid value for argument `{argument}`. Expected a `keras.Model`. Received: {model!r}"
            )
        validation.check_logits_model(model, argument)
    teacher_logits = teacher.predict(x, batch_size=batch_size, verbose=0)
    student_logits = student.predict(x, batch_size=batch_size, verbose=0)
    return fidelity_from_logits(teacher_logits, student_logits, y, sample_weight)
