"""Checks run before any training starts, each with an error that says what to fix."""

import keras
import numpy as np

_SOFTMAX_NAMES = ("softmax",)


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


def _is_softmax(activation):
    name = getattr(activation, "__name__", None) or str(activation)
    return name in _SOFTMAX_NAMES


def final_softmax_layer(model):
    """Returns the name of the model's last layer if it applies a softmax.

    Detects `layers.Softmax`, `layers.Activation("softmax")` and any layer
    built with `activation="softmax"` at the output of a Functional or
    Sequential model. Returns `None` otherwise.
    """
    try:
        outputs = model.outputs
    except (AttributeError, ValueError):
        outputs = None
    if outputs:
        layers = [o._keras_history.operation for o in keras.tree.flatten(outputs)]
    elif isinstance(model, keras.Sequential) and model.layers:
        layers = [model.layers[-1]]
    else:
        return None
    for layer in layers:
        if isinstance(layer, keras.layers.Softmax):
            return layer.name
        if _is_softmax(getattr(layer, "activation", None)):
            return layer.name
    return None


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


def strip_softmax(model):
    """Returns a copy of `model` whose softmax output is replaced by logits.

    Works for Functional and Sequential models whose last layer is a
    `Softmax`/`Activation("softmax")` layer (it is dropped) or has
    `activation="softmax"` (it becomes linear). Weights are shared, not copied.

    Args:
        model: a built Functional or Sequential `keras.Model`.

    Returns:
        A `keras.Model` with the same inputs whose outputs are the logits.

    Example:
        >>> teacher = strip_softmax(keras.applications.MobileNetV2())  # doctest: +SKIP
    """
    if final_softmax_layer(model) is None:
        raise ValueError(
            "Invalid value for argument `model`: its output layer applies no "
            "softmax that can be removed. Received: "
            f"model={getattr(model, 'name', model)!r}"
        )
    output_tensor = keras.tree.flatten(model.outputs)[0]
    layer = output_tensor._keras_history.operation
    if isinstance(layer, (keras.layers.Softmax, keras.layers.Activation)):
        logits = layer.input
    else:
        config = layer.get_config()
        config["activation"] = "linear"
        config["name"] = f"{layer.name}_logits"
        linear = layer.__class__.from_config(config)
        logits = linear(layer.input)
        linear.set_weights(layer.get_weights())
    return keras.Model(model.inputs, logits, name=f"{model.name}_logits")


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


def check_top_k_shapes(values, classes, student_output):
    """A top-k teacher cache: `(batch, k + 1)` values, `(batch, k)` classes, `k <= num_classes`."""
    num_classes = student_output.shape[-1]
    k = classes.shape[-1]
    if len(values.shape) != 2 or len(classes.shape) != 2 or values.shape[-1] != k + 1 or k > num_classes:
        raise ValueError(
            "Invalid data: a top-k teacher cache must hold `(batch, k + 1)` values "
            f"and `(batch, k)` classes with k <= {num_classes} (the student's classes). "
            f"Received: values shape={tuple(values.shape)}, classes shape={tuple(classes.shape)}"
        )


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
