"""Checks run before any training starts, each with an error that says what to fix."""

import keras
import numpy as np

from tfdistill.softmax import final_softmax_layer

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


def check_label_spec(shape, dtype):
    """Checks the labels' dtype (integer) and rank (`(batch,)` or `(batch, 1)`)."""
    if not np.issubdtype(np.dtype(dtype), np.integer):
        raise ValueError(
            "Invalid labels `y`. Expected integer class ids (sparse labels) of "
            f"shape (batch,). Received: dtype={np.dtype(dtype)}, shape={tuple(shape)}. "
            "One-hot labels can be turned into ids with `argmax(y, axis=-1)`."
        )
    if not (len(shape) == 1 or (len(shape) == 2 and shape[-1] == 1)):
        raise ValueError(
            "Invalid labels `y`. Expected rank 1, shape (batch,), or (batch, 1). "
            f"Received: shape={tuple(shape)}"
        )


def check_labels(y, num_classes):
    """Checks sparse labels: integer dtype, rank 1, values in `[0, num_classes)`.

    Args:
        y: labels, shape `(batch,)` or `(batch, 1)`.
        num_classes: number of classes the models predict.
    """
    y = np.asarray(y)
    check_label_spec(y.shape, y.dtype)
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(
            f"Invalid labels `y`. Expected class ids in [0, {num_classes - 1}] "
            f"(the models output {num_classes} classes). Received: values in "
            f"[{y.min()}, {y.max()}]"
        )


def check_output_shapes(teacher_output, student_output):
    """Teacher and student must both output logits of one shape."""
    for name, output in (("teacher", teacher_output), ("student", student_output)):
        if isinstance(output, (dict, list, tuple)) or not hasattr(output, "shape"):
            raise ValueError(
                f"Invalid value for argument `{name}`: expected a model with "
                "one output, logits of shape (batch, num_classes). Received "
                f"an output of type {type(output).__name__}."
            )
        if len(output.shape) != 2:
            raise ValueError(
                f"Invalid value for argument `{name}`: expected logits of "
                f"rank 2, (batch, num_classes). Received: shape={tuple(output.shape)}"
            )
    if tuple(teacher_output.shape) != tuple(student_output.shape):
        raise ValueError(
            "Invalid models: `teacher` and `student` must output logits of the "
            "same shape. Received: teacher output shape="
            f"{tuple(teacher_output.shape)}, student output shape="
            f"{tuple(student_output.shape)}"
        )


def check_sample_weight(sample_weight):
    """Sample weights must be finite and >= 0, one per example."""
    if sample_weight is None:
        return
    sw = np.asarray(sample_weight)
    if not np.issubdtype(sw.dtype, np.number) or not np.all(np.isfinite(sw)) or np.any(sw < 0):
        raise ValueError(
            "Invalid `sample_weight`. Expected finite numbers >= 0, one per "
            f"example. Received: dtype={sw.dtype}, min="
            f"{sw.min() if sw.size and np.issubdtype(sw.dtype, np.number) else sw!r}"
        )
