"""Checks run before any training starts, each with an error that says what to fix."""

import keras
import numpy as np

from tfdistill.softmax import final_softmax_layer

UNLABELED = -1  # `tfdistill.labels.UNLABELED`, which builds on this module

def check_weight(name, value):
    """Raises unless `value` is a finite number >= 0; returns it as a float."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
        raise ValueError(
            f"Invalid value for argument `{name}`. Expected a number >= 0. "
            f"Received: {name}={value!r}"
        )
    if not (np.isfinite(value) and value >= 0):
        raise ValueError(
            f"Invalid value for argument `{name}`. Expected a finite number "
            f">= 0. Received: {name}={value}"
        )
    return float(value)


def check_logits_model(model, argument, remedy=None):
    """Refuses a model whose output is a softmax: distillation needs logits.

    Args:
        model: the `keras.Model` to check.
        argument: the argument's name, for the error.
        remedy: what to do instead, for the error; default: pass
            `tfdistill.strip_softmax(argument)`.
    """
    layer_name = final_softmax_layer(model)
    if layer_name is not None:
        remedy = remedy or (
            f"Pass `tfdistill.strip_softmax({argument})`, which returns the "
            "same model with a linear output layer and the same weights."
        )
        raise ValueError(
            f"Invalid value for argument `{argument}`: its output layer "
            f"{layer_name!r} applies a softmax, so it outputs probabilities, "
            "but logits are needed (temperature scaling, the from-logits "
            "cross-entropy and KL divergences would be wrong on probabilities). "
            + remedy
        )


def check_teacher_and_student(teacher, student):
    """Both are `keras.Model`s that output logits; the teacher is built."""
    for argument, model in (("teacher", teacher), ("student", student)):
        if not isinstance(model, keras.Model):
            raise ValueError(
                f"Invalid value for argument `{argument}`. Expected a "
                f"`keras.Model`. Received: {argument}={model!r}"
            )
        check_logits_model(model, argument)
    check_built(teacher, "teacher")


def check_built(model, argument):
    """Refuses a model that has no weights yet and no known input shape."""
    if model.built:
        return
    raise ValueError(
        f"Invalid value for argument `{argument}`: the model is not built, so "
        "its input and output shapes are unknown. Build it first, e.g. with "
        f"`{argument}.build(input_shape)` or by calling it on a batch, or "
        "define it with `keras.Input`."
    )


def check_label_spec(shape, dtype, logits_rank=2):
    """Checks the labels' dtype (integer) and rank: the logits' without the class axis.

    Args:
        shape: the labels' shape.
        dtype: their dtype.
        logits_rank: the rank of the models' logits: 2 for `(batch,
            num_classes)`, whose labels are `(batch,)` or `(batch, 1)`; more
            for logits with positions, `(batch, ..., num_classes)`, whose
            labels are `(batch, ...)`.
    """
    expected = "(batch,)" if logits_rank == 2 else "(batch, ...) with one class id per position"
    if not np.issubdtype(np.dtype(dtype), np.integer):
        raise ValueError(
            "Invalid labels `y`. Expected integer class ids (sparse labels) of "
            f"shape {expected}. Received: dtype={np.dtype(dtype)}, shape={tuple(shape)}. "
            "One-hot labels can be turned into ids with `argmax(y, axis=-1)`."
        )
    if not (len(shape) == logits_rank - 1 or (len(shape) == logits_rank and shape[-1] == 1)):
        raise ValueError(
            f"Invalid labels `y`. Expected rank {logits_rank - 1}, shape {expected} "
            f"(the models output logits of rank {logits_rank}; the labels have their shape "
            f"without the class axis), or with a trailing axis of 1. Received: shape={tuple(shape)}"
        )


def check_labels(y, num_classes, logits_rank=2):
    """Checks sparse labels: integer dtype, the rank of the logits less one, values in `[0, num_classes)` or -1.

    -1 (`tfdistill.labels.UNLABELED`) marks an example without a label.

    Args:
        y: labels, shape `(batch,)` or `(batch, 1)`; `(batch, ...)` for
            logits with positions.
        num_classes: number of classes the models predict.
        logits_rank: the rank of the models' logits.
    """
    y = np.asarray(y)
    check_label_spec(y.shape, y.dtype, logits_rank)
    if y.size and (y.min() < UNLABELED or y.max() >= num_classes):
        raise ValueError(
            f"Invalid labels `y`. Expected class ids in [0, {num_classes - 1}] "
            f"(the models output {num_classes} classes), or {UNLABELED} for an example without "
            f"a label. Received: values in [{y.min()}, {y.max()}]"
            + ("; give padded positions any class id in range and weight 0" if logits_rank > 2 else "")
        )


def check_output_shapes(teacher_output, student_output):
    """Teacher and student must both output logits of one shape."""
    for name, output in (("teacher", teacher_output), ("student", student_output)):
        if isinstance(output, (dict, list, tuple)) or not hasattr(output, "shape"):
            raise ValueError(
                f"Invalid value for argument `{name}`: expected a model with "
                "one output, logits of shape (batch, num_classes) or (batch, ..., "
                f"num_classes). Received an output of type {type(output).__name__}."
            )
        if len(output.shape) < 2:
            raise ValueError(
                f"Invalid value for argument `{name}`: expected logits of "
                "rank 2 or more, (batch, num_classes) or with positions (batch, ..., "
                f"num_classes). Received: shape={tuple(output.shape)}"
            )
    if not _compatible(teacher_output.shape, student_output.shape):
        raise ValueError(
            "Invalid models: `teacher` and `student` must output logits of the "
            "same shape. Received: teacher output shape="
            f"{tuple(teacher_output.shape)}, student output shape="
            f"{tuple(student_output.shape)}"
        )


def _compatible(shape_a, shape_b):
    """Same rank, and the same size on every axis where both are known (beyond the batch)."""
    if len(shape_a) != len(shape_b):
        return False
    return all(a is None or b is None or a == b for a, b in zip(tuple(shape_a)[1:], tuple(shape_b)[1:]))


def check_sample_weight(sample_weight):
    """Sample weights must be finite and >= 0, one per example (or one per position)."""
    if sample_weight is None:
        return
    sw = np.asarray(sample_weight)
    if not np.issubdtype(sw.dtype, np.number) or not np.all(np.isfinite(sw)) or np.any(sw < 0):
        raise ValueError(
            "Invalid `sample_weight`. Expected finite numbers >= 0, one per "
            f"example. Received: dtype={sw.dtype}, min="
            f"{sw.min() if sw.size and np.issubdtype(sw.dtype, np.number) else sw!r}"
        )
