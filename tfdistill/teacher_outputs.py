"""What the teacher gives the student: logits (dense or top-k) and features.

Online, the `Distiller` runs the teacher on each batch. Offline, the batch
carries the teacher's cached outputs next to the student's input, as a dict
`x`: the input under `"x"`, the logits under `LOGITS_KEY`, and for a top-k
cache (`TopKLogits`) the kept classes and the cache's temperature under
`CLASSES_KEY` and `TEMPERATURE_KEY`; cached features (a dict from teacher
layer name to features) under `FEATURES_KEY`. `split_batch` reads that
protocol once into a `TeacherOutputs`; the producers (`tfdistill.offline`,
`tfdistill.pipeline_cache`) write it with these keys. The rules a top-k cache
must follow are here too, in one place.
"""

import dataclasses
from typing import Any, NamedTuple, Optional

import keras
import numpy as np
import tensorflow as tf

from tfdistill.losses.base import is_schedule

LOGITS_KEY = "teacher_logits"
CLASSES_KEY = "teacher_classes"
TEMPERATURE_KEY = "teacher_temperature"
FEATURES_KEY = "teacher_features"
INPUT_KEY = "x"


class TopKLogits(NamedTuple):
    """A teacher cached as its top-k logits (see `tfdistill.losses.top_k_kd`).

    Attributes:
        values: shape `(views, n, k + 1)`: the k largest logits of each
            example, then its remainder logit at `temperature`.
        classes: int32, shape `(views, n, k)`: the kept classes.
        temperature: the KD temperature the remainder logits were computed at;
            the KD loss trained on them must use the same one.
    """

    values: np.ndarray
    classes: np.ndarray
    temperature: float


@dataclasses.dataclass
class TeacherOutputs:
    """The teacher's outputs for one batch, computed online or read from a cache.

    Attributes:
        logits: `(batch, num_classes)` logits, or for a top-k cache the
            `(batch, k + 1)` values (the k largest logits, then the remainder).
        classes: `(batch, k)` kept class ids of a top-k cache, else `None`.
        temperature: `(batch,)` temperature a top-k cache was computed at.
        features: teacher layer name -> `(batch, ...)` features, or `None`.
        cached: whether they came with the batch (the teacher did not run).
    """

    logits: Any
    classes: Any = None
    temperature: Any = None
    features: Optional[dict] = None
    cached: bool = False

    @property
    def is_top_k(self) -> bool:
        return self.classes is not None

    def for_soft_loss(self):
        """What `DistillationLoss.call` reads: dense logits or `{"values", "classes"}`."""
        if self.is_top_k:
            return {"values": self.logits, "classes": self.classes}
        return self.logits


def carries_teacher_outputs(x) -> bool:
    """Whether a batch's `x` carries cached teacher outputs."""
    return isinstance(x, dict) and LOGITS_KEY in x


def split_batch(x, separate_inputs=False):
    """Returns `(student_input, teacher_input, cached)` for one batch's `x`.

    Args:
        x: the batch's inputs: a tensor, or a dict carrying cached teacher
            outputs (see the module docstring), or with `separate_inputs` a
            dict `{"student": ..., "teacher": ...}`.
        separate_inputs: whether each model gets its own input.

    Returns:
        `cached` is a `TeacherOutputs` (floats as float32) when the batch
        carries the teacher's outputs, else `None`.
    """
    cached = None
    if carries_teacher_outputs(x):
        x = dict(x)
        logits = x.pop(LOGITS_KEY)
        classes = x.pop(CLASSES_KEY, None)
        temperature = x.pop(TEMPERATURE_KEY, None)
        features = x.pop(FEATURES_KEY, None)
        if classes is not None and temperature is None:
            raise ValueError(
                f"Invalid input: a top-k teacher cache carries {CLASSES_KEY!r} and "
                f"{TEMPERATURE_KEY!r} together; this batch has no {TEMPERATURE_KEY!r}."
            )
        # keras.ops.cast: the pre-flight checks pass symbolic `KerasTensor`s.
        cached = TeacherOutputs(
            logits=keras.ops.cast(logits, "float32"),
            classes=classes,
            temperature=temperature,
            features=None if features is None else {k: keras.ops.cast(v, "float32") for k, v in features.items()},
            cached=True,
        )
        if set(x) == {INPUT_KEY}:
            x = x[INPUT_KEY]
    if separate_inputs:
        if not (isinstance(x, dict) and set(x) == {"student", "teacher"}):
            raise ValueError(
                "Invalid input: with `separate_inputs=True` every `x` must be a dict "
                "with exactly the keys 'student' and 'teacher'. Received: "
                f"{type(x).__name__} with keys {sorted(x) if isinstance(x, dict) else None}"
            )
        return x["student"], x["teacher"], cached
    return x, x, cached


def student_input(x, separate_inputs=False):
    """The student's part of a batch's `x`: without cached teacher outputs or the teacher's input."""
    if carries_teacher_outputs(x) or (separate_inputs and isinstance(x, dict) and set(x) >= {"student", "teacher"}):
        return split_batch(x, separate_inputs)[0]
    return x


def run_teacher(teacher, teacher_x, feature_matching=None):
    """The teacher's `TeacherOutputs` for a batch, in inference mode and out of the gradient.

    Args:
        teacher: the teacher `keras.Model`.
        teacher_x: its input.
        feature_matching: the Distiller's `FeatureMatching`, when it matches features.
    """
    if feature_matching:
        logits, features = feature_matching.teacher(teacher_x)
        features = {name: tf.stop_gradient(f) for name, f in features.items()}
    else:
        logits, features = teacher(teacher_x, training=False), None
    return TeacherOutputs(tf.stop_gradient(tf.cast(logits, "float32")), features=features)


def checked_cache(cached, soft_loss, needs_features=False):
    """A batch's cached `TeacherOutputs`, checked against the loss that reads them.

    Args:
        cached: from `split_batch`.
        soft_loss: the Distiller's soft loss.
        needs_features: whether the Distiller has feature pairs.

    Returns:
        `cached`. A top-k cache's values are checked in the graph by
        `assert_top_k_cache` once the student's number of classes is known.
    """
    if needs_features and cached.features is None:
        raise ValueError(
            "Invalid input: feature distillation needs the teacher's "
            "intermediate features, but this batch carries cached teacher "
            "logits only. Cache the features too "
            "(`tfdistill.offline.compute_teacher_outputs` and "
            "`offline_dataset(..., teacher_features=...)`), or train on the "
            "images without cached logits (the teacher then runs online)."
        )
    if cached.is_top_k:
        check_soft_loss_reads_top_k(soft_loss)
    return cached


# ---------------------------------------------------------------- top-k rules
def check_top_k_arguments(top_k, temperature, num_classes=None):
    """`top_k` (an int in `[1, num_classes]`, or None) and the cache's fixed temperature.

    Returns:
        `(top_k, temperature)`, the temperature as a float (None without `top_k`).
    """
    if top_k is None:
        return None, None
    upper = num_classes if num_classes else "num_classes"
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1 or (num_classes and top_k > num_classes):
        raise ValueError(
            f"Invalid value for argument `top_k`. Expected an int in [1, {upper}] (the "
            f"teacher's number of classes) or None. Received: top_k={top_k!r}"
        )
    if temperature is None:
        raise ValueError(
            "Invalid value for argument `temperature`: `top_k` needs the temperature of "
            "the KD loss the cache will train with, because the remainder logit depends "
            "on it. Received: temperature=None"
        )
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not temperature > 0:
        raise ValueError(
            "Invalid value for argument `temperature`. Expected a number > 0: a top-k "
            "cache holds its remainder logit at one fixed temperature, so it cannot "
            f"follow a schedule. Received: temperature={temperature!r}"
        )
    return top_k, float(temperature)


def check_top_k_shapes(values, classes, student_output):
    """A top-k teacher cache: `(batch, ..., k + 1)` values, `(batch, ..., k)` classes, `k <= num_classes`."""
    num_classes = student_output.shape[-1]
    rank = len(student_output.shape)
    k = classes.shape[-1]
    if len(values.shape) != rank or len(classes.shape) != rank or values.shape[-1] != k + 1 or k > num_classes:
        raise ValueError(
            "Invalid data: a top-k teacher cache must hold `(batch, k + 1)` values "
            f"and `(batch, k)` classes with k <= {num_classes} (the student's classes), "
            f"with the positions of the student's logits of rank {rank} before the last axis. "
            f"Received: values shape={tuple(values.shape)}, classes shape={tuple(classes.shape)}"
        )


def check_soft_loss_reads_top_k(soft_loss):
    """Raises unless `soft_loss` reads a top-k cache exactly."""
    if is_schedule(getattr(soft_loss, "temperature", None)):
        raise ValueError(
            "Invalid value for argument `soft_loss`: a top-k teacher cache holds its "
            "remainder at one temperature, so the KD temperature cannot follow a "
            "schedule. Cache every logit (`top_k=None`) to schedule the temperature."
        )
    if not getattr(soft_loss, "supports_top_k", False):
        raise ValueError(
            "Invalid value for argument `soft_loss`: the data carries the teacher "
            "as cached top-k logits, which only the KD loss (`'kd'`, "
            "`KnowledgeDistillation`) reads exactly. Cache every logit "
            f"(`top_k=None`) to use {type(soft_loss).__name__}."
        )
    if getattr(soft_loss, "standardize", False):
        raise ValueError(
            "Invalid value for argument `soft_loss`: logit standardization needs "
            "every logit, but the data carries the teacher's top-k logits only. "
            "Cache every logit (`top_k=None`)."
        )


def assert_top_k_cache(outputs, temperature, num_classes):
    """In-graph: a top-k cache's classes are in range and its temperature is the loss's.

    Returns:
        `outputs` with its tensors behind the checks.
    """
    classes = tf.cast(outputs.classes, tf.int64)
    class_message = (
        f"Invalid data: the top-k teacher cache holds class ids outside [0, "
        f"{num_classes - 1}], but the student outputs {num_classes} "
        "classes; the cache belongs to another teacher or label set."
    )
    cached_temperature = tf.cast(outputs.temperature, tf.float32)
    checks = [
        tf.debugging.assert_non_negative(classes, message=class_message),
        tf.debugging.assert_less(classes, tf.constant(num_classes, tf.int64), message=class_message),
        tf.debugging.Assert(
            tf.reduce_all(tf.abs(cached_temperature - temperature) <= 1e-5 * temperature),
            [
                f"Invalid data: the top-k teacher cache was computed for another "
                f"temperature than the soft loss's T={temperature}; compute it with "
                f"`temperature={temperature}`. The cache's temperature:",
                cached_temperature[:1],
            ],
            summarize=1,
        ),
    ]
    with tf.control_dependencies(checks):
        return dataclasses.replace(outputs, logits=tf.identity(outputs.logits), classes=tf.identity(outputs.classes))
