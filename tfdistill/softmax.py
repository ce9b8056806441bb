"""Models that end in a softmax: finding that layer, and the same model with logits.

Distillation needs logits (temperature scaling, the from-logits cross-entropy
and KL divergences are wrong on probabilities); many published models end in
a softmax.
"""

import keras

from tfdistill import compat

_SOFTMAX_NAMES = ("softmax",)


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
        layers = [compat.producing_layer(o) for o in keras.tree.flatten(outputs)]
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
    layer = compat.producing_layer(output_tensor)
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
