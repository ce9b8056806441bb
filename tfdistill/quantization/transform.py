"""`quantize_model`: a trained float Functional model, cloned into its fake-quantized int8 form.

The clone computes what the int8 TFLite model computes: each convolution,
dense and embedding layer with fake-quantized weights, BatchNorm folded into
the layer before it, a ReLU fused into it, and an `ActivationQuantizer` on
every tensor that TFLite stores with a scale of its own (the float input,
each fused layer's output, each addition, global average pooling and
normalization). Layers whose int8 kernels keep their input's scale (max and
local average pooling, flatten, reshape, padding, dropout) keep its range:
a quantizer after them would cost a requantizing op. The float model is
left as it was; the clone's layers keep its names.
"""

import dataclasses
from typing import Optional

import keras
import numpy as np
import tensorflow as tf

from tfdistill.quantization import folding
from tfdistill.quantization import layers as quant_layers
from tfdistill.quantization.quantizers import WEIGHT_BITS, ActivationQuantizer, check_bits

__all__ = ["calibrate", "is_fake_quantized", "quantize_model"]

L = keras.layers
WEIGHTED = {
    L.Conv1D: quant_layers.QuantConv1D,
    L.Conv2D: quant_layers.QuantConv2D,
    L.DepthwiseConv2D: quant_layers.QuantDepthwiseConv2D,
    L.SeparableConv2D: quant_layers.QuantSeparableConv2D,
    L.Dense: quant_layers.QuantDense,
    L.Embedding: quant_layers.QuantEmbedding,
}
# TFLite's int8 kernels of these keep the input's scale and zero point.
SAME_RANGE = (
    L.MaxPooling1D, L.MaxPooling2D, L.AveragePooling1D, L.AveragePooling2D, L.GlobalMaxPooling1D,
    L.GlobalMaxPooling2D, L.Flatten, L.Reshape,
    L.Dropout, L.SpatialDropout1D, L.SpatialDropout2D, L.ZeroPadding1D, L.ZeroPadding2D, L.Cropping1D,
    L.Cropping2D, L.Identity,
)
# These compute new values: their output gets its own range.
NEW_RANGE = (
    L.Add, L.Subtract, L.Multiply, L.GlobalAveragePooling1D, L.GlobalAveragePooling2D, L.Normalization,
    L.Rescaling, L.BatchNormalization, L.ReLU, L.Activation,
)
FUSED_ACTIVATIONS = ("linear", "relu", "relu6")


@dataclasses.dataclass
class _Step:
    """What becomes of one layer of the float model."""

    quantized: Optional[type] = None  # the Quant* class replacing a weighted layer
    config: dict = dataclasses.field(default_factory=dict)  # config entries that change
    weights: Optional[list] = None  # the new layer's weights (folded); None: the float layer's
    absorbed: bool = False  # folded or fused into the layer before it: not called
    quantizer: Optional[ActivationQuantizer] = None  # after the layer's output


def _activation_name(layer):
    """The name of a `ReLU`/`Activation` layer's (or a weighted layer's own) activation, or None."""
    if type(layer) is L.ReLU:
        if layer.negative_slope == 0 and layer.threshold == 0 and layer.max_value in (None, 6):
            return "relu" if layer.max_value is None else "relu6"
        return None
    activation = getattr(layer, "activation", None)
    name = keras.activations.serialize(activation) if activation is not None else "linear"
    return name if isinstance(name, str) else None


def _unsupported(layer, why):
    supported = sorted({cls.__name__ for cls in (*WEIGHTED, *SAME_RANGE, *NEW_RANGE)})
    return ValueError(
        f"Invalid value for argument `model`: layer {layer.name!r} ({type(layer).__name__}) {why}. "
        f"Layers with an int8 form here: {supported}; activations fused into a layer: {list(FUSED_ACTIVATIONS)}."
    )


class _Graph:
    """The float model's layers in order, each with its one node, and who reads each tensor."""

    def __init__(self, model):
        self.nodes = {}
        self.readers = {}
        for depth in sorted(model._nodes_by_depth, reverse=True):
            for node in model._nodes_by_depth[depth]:
                if node.is_input or node.operation is None:
                    continue
                layer = node.operation
                if id(layer) in self.nodes:
                    raise _unsupported(layer, "is called more than once (a shared layer)")
                if isinstance(layer, keras.Model):
                    raise _unsupported(layer, "is a nested model; quantize a flat model")
                self.nodes[id(layer)] = (layer, node)
                for tensor in node.input_tensors:
                    self.readers.setdefault(id(tensor), []).append(layer)
        self.outputs = {id(tensor) for tensor in keras.tree.flatten(model.outputs)}

    def layers(self):
        return [layer for layer, _ in self.nodes.values()]

    def sole_reader(self, layer):
        """The one layer that reads `layer`'s output, if the model does not also return it."""
        node = self.nodes[id(layer)][1]
        if len(node.outputs) != 1 or id(node.outputs[0]) in self.outputs:
            return None
        readers = self.readers.get(id(node.outputs[0]), [])
        return readers[0] if len(readers) == 1 else None

    def is_output(self, layer):
        return any(id(tensor) in self.outputs for tensor in self.nodes[id(layer)][1].outputs)

    def inputs_of(self, layer):
        return self.nodes[id(layer)][1].input_tensors


def _functional(model):
    """`model` as a Functional model (a Sequential one's layers, called on its input)."""
    if isinstance(model, keras.Sequential) and model.built and model.inputs:
        return keras.Model(model.inputs, model.outputs, name=model.name)
    if not isinstance(model, keras.Model) or not hasattr(model, "_nodes_by_depth"):
        raise ValueError(
            "Invalid value for argument `model`. Expected a built Functional (or Sequential with an Input) "
            f"keras.Model. Received: {type(model).__name__}"
        )
    return model


def _plan(model, weight_bits, per_channel, decay, output_top_k):
    graph = _Graph(model)
    steps = {id(layer): _Step() for layer in graph.layers()}
    input_scales = {}

    def quantizer(layer):  # on a model output (logits), the range may cover the top logits only
        top_k = output_top_k if graph.is_output(layer) else None
        return ActivationQuantizer(decay=decay, top_k=top_k, name=f"{layer.name}_quantizer")

    for layer in graph.layers():
        step = steps[id(layer)]
        if step.absorbed:
            continue
        if type(layer) in WEIGHTED:
            end = _plan_weighted(layer, graph, steps, weight_bits, per_channel, input_scales.get(id(layer)))
            if not isinstance(layer, L.Embedding):  # gathered rows keep the table's range
                steps[id(end)].quantizer = quantizer(end)
        elif type(layer) in NEW_RANGE:
            if isinstance(layer, (L.ReLU, L.Activation)) and _activation_name(layer) not in FUSED_ACTIVATIONS:
                raise _unsupported(layer, "computes an activation whose int8 kernel fixes its own output range")
            if type(layer) is L.Normalization:
                _plan_normalization(layer, graph, steps, input_scales)
            step.quantizer = quantizer(layer)
        elif type(layer) not in SAME_RANGE:
            raise _unsupported(layer, "has no int8 form here")
    return graph, steps


def _plan_weighted(layer, graph, steps, weight_bits, per_channel, input_scale):
    """Plans a weighted layer with the BatchNorm and ReLU after it; returns the group's last layer."""
    if getattr(layer, "data_format", "channels_last") != "channels_last":
        raise _unsupported(layer, "is channels_first; TFLite's kernels are channels_last")
    activation = _activation_name(layer)
    if activation not in FUSED_ACTIVATIONS:
        raise _unsupported(layer, f"has the activation {activation!r}, which TFLite does not fuse")
    step = steps[id(layer)]
    step.quantized = WEIGHTED[type(layer)]
    step.config = {"weight_bits": weight_bits}
    if step.quantized is not quant_layers.QuantEmbedding:
        step.config["per_channel"] = per_channel
    step.weights = layer.get_weights()
    if input_scale is not None:
        step.weights = folding.fold_input_scale(layer, step.weights, input_scale)
    end = layer
    if isinstance(layer, L.Embedding):
        return end
    follower = graph.sole_reader(end)
    if type(follower) is L.BatchNormalization and follower.axis in (-1, len(graph.inputs_of(follower)[0].shape) - 1):
        scale, shift = folding.batch_norm_affine(follower)
        step.weights = folding.fold_output_affine(layer, step.weights, scale, shift)
        step.config["use_bias"] = True
        steps[id(follower)].absorbed = True
        end = follower
        follower = graph.sole_reader(end)
    if activation == "linear" and follower is not None and (type(follower) is L.ReLU or type(follower) is L.Activation):
        fused = _activation_name(follower)
        if fused in ("relu", "relu6"):
            step.config["activation"] = fused
            steps[id(follower)].absorbed = True
            end = follower
    return end


def _plan_normalization(layer, graph, steps, input_scales):
    """Folds a `Normalization`'s division into the weighted layer after it; the subtraction stays."""
    follower = graph.sole_reader(layer)
    if layer.invert or follower is None or type(follower) not in WEIGHTED or isinstance(follower, L.Embedding):
        return
    if len(graph.inputs_of(follower)) != 1:
        return
    _, input_scales[id(follower)] = folding.normalization_affine(layer)
    step = steps[id(layer)]
    if layer.get_config().get("variance") is not None:
        step.config = {"variance": np.ones_like(np.asarray(layer.get_config()["variance"])).tolist()}
    else:
        values = zip(layer.weights, layer.get_weights())
        step.weights = [np.ones_like(w) if v.name == "variance" else w for v, w in values]


def _assign(layer, values):
    """Sets a cloned layer's own weights (not those of a `QuantSeparableConv2D`'s quantizer)."""
    nested = {id(v) for sub in layer._flatten_layers(include_self=False) for v in sub.weights}
    own = [v for v in layer.weights if id(v) not in nested]
    if len(own) != len(values):
        raise RuntimeError(f"Layer {layer.name!r}: {len(values)} weights for {len(own)} variables.")
    for variable, value in zip(own, values):
        variable.assign(np.asarray(value).reshape(variable.shape))
    if hasattr(layer, "finalize_state"):  # `Normalization` computes with tensors made from its variables
        layer.finalize_state()


def quantize_model(
    model: keras.Model,
    calibration_data,
    weight_bits: int = 8,
    per_channel: bool = True,
    decay: float = 0.999,
    output_top_k: Optional[int] = None,
    batch_size: int = 128,
) -> keras.Model:
    """Clones a trained float model into its fake-quantized int8 form, calibrated.

    The clone starts where post-training quantization ends: folded weights,
    rounded as the converter rounds them, and activation ranges set to the
    extremes over `calibration_data` (the converter's calibration). Training
    it (`Distiller(teacher, quantized).fit(...)`: quantization-aware
    distillation) moves the weights and ranges to where rounding costs least;
    `tfdistill.export.convert(quantized, "int8")` then ships those ranges.

    Args:
        model: a built Functional (or Sequential) float `keras.Model`, channels
            last, of the layers listed in `tfdistill.quantization.transform`
            (`WEIGHTED`, `SAME_RANGE`, `NEW_RANGE`).
        calibration_data: inputs (an array, or a `tf.data.Dataset` of `x` or
            `(x, y, ...)` batches), e.g. the 200 examples post-training
            calibration would use.
        weight_bits: 8, or 4: 15 levels per weight range, which the converter
            stores as TFLite INT4 tensors (two weights per byte).
        per_channel: a range per output channel for convolution and (8-bit)
            dense weights (`False`: one per tensor).
        decay: the activation ranges' moving-average decay in training.
        output_top_k: `None`, or for a model that outputs logits, the
            largest logits per row the output's range covers (see
            `ActivationQuantizer`): 2 gives the finest int8 steps around the
            top class, so the int8 model's argmax follows the float model's
            more often; the smallest logits clip.
        batch_size: calibration batch size for arrays.

    Returns:
        A new `keras.Model` with the float model's inputs and outputs, every
        layer trainable (a frozen float model, such as a teacher, included).

    Raises:
        ValueError: a layer without an int8 form here (the message lists
            those with one), or a shared layer or nested model.

    Example:
        >>> quantized = quantize_model(student, x_train[:200])  # doctest: +SKIP
        >>> Distiller(teacher, quantized).compile(keras.optimizers.Adam(1e-4)).fit(train, epochs=3)  # doctest: +SKIP
        >>> tfdistill.export.convert(quantized, "int8")  # doctest: +SKIP

    Reference:
        Jacob et al., "Quantization and Training of Neural Networks for
        Efficient Integer-Arithmetic-Only Inference", CVPR 2018 (folding,
        ranges); Mishra and Marr, "Apprentice: Using Knowledge Distillation
        Techniques To Improve Low-Precision Network Accuracy", ICLR 2018, and
        Polino, Pascanu and Alistarh, "Model compression via distillation
        and quantization", ICLR 2018 (distilling into the quantized student).
    """
    weight_bits = check_bits(weight_bits, "weight_bits", WEIGHT_BITS)
    model = _functional(model)
    graph, steps = _plan(model, weight_bits, bool(per_channel), decay, output_top_k)
    clones, step_of = {}, {}

    def clone(layer):
        step = steps[id(layer)]
        if step.absorbed:
            new = layer  # never called
        else:
            cls = step.quantized or type(layer)
            # Trainable even when the float model is frozen (as a teacher is, in self-distillation).
            new = cls.from_config({**layer.get_config(), **step.config, "trainable": True})
        clones[id(layer)] = new
        step_of[id(new)] = step
        return new

    input_quantizers = {}

    def quantized_input(tensor):
        if id(tensor) not in input_quantizers:
            return tensor
        quantizer, quantized = input_quantizers[id(tensor)]
        if quantized is None:
            quantized = quantizer(tensor)
            input_quantizers[id(tensor)] = (quantizer, quantized)
        return quantized

    def call(layer, *args, **kwargs):
        step = step_of[id(layer)]
        args, kwargs = keras.tree.map_structure(
            lambda x: quantized_input(x) if isinstance(x, keras.KerasTensor) else x, (args, kwargs)
        )
        outputs = args[0] if step.absorbed else layer(*args, **kwargs)
        return step.quantizer(outputs) if step.quantizer is not None else outputs

    inputs = keras.tree.map_structure(
        lambda t: keras.Input(batch_shape=t.shape, dtype=t.dtype, name=t.name), model.input
    )
    for tensor in keras.tree.flatten(inputs):
        if not tf.as_dtype(tensor.dtype).is_integer:
            input_quantizers[id(tensor)] = (ActivationQuantizer(decay=decay, name=f"{tensor.name}_quantizer"), None)
    quantized = keras.models.clone_model(model, input_tensors=inputs, clone_function=clone, call_function=call)
    for layer in graph.layers():
        step = steps[id(layer)]
        if not step.absorbed:
            _assign(clones[id(layer)], step.weights if step.weights is not None else layer.get_weights())
    calibrate(quantized, calibration_data, batch_size)
    return quantized


def _batches(data, batch_size):
    if isinstance(data, tf.data.Dataset):
        for batch in data:
            yield keras.utils.unpack_x_y_sample_weight(batch)[0] if isinstance(batch, tuple) else batch
        return
    data = np.asarray(data)
    for start in range(0, len(data), batch_size):
        yield data[start:start + batch_size]


def calibrate(model: keras.Model, data, batch_size: int = 128) -> int:
    """Sets every `ActivationQuantizer`'s range to the extremes of its input over `data`.

    As the converter calibrates: one pass in inference mode, each range the
    minimum and maximum seen (with 0 inside), the quantizers passing values
    through unrounded while they observe.

    Args:
        model: a model with `ActivationQuantizer` layers.
        data: inputs, an array or a `tf.data.Dataset` (see `quantize_model`).
        batch_size: batch size for arrays.

    Returns:
        The number of examples seen.

    Example:
        >>> calibrate(quantized, x_train[:200])  # doctest: +SKIP
        200

    Reference:
        Jacob et al., "Quantization and Training of Neural Networks for
        Efficient Integer-Arithmetic-Only Inference", CVPR 2018.
    """
    quantizers = [layer for layer in model._flatten_layers() if isinstance(layer, ActivationQuantizer)]
    seen = 0
    for quantizer in quantizers:
        quantizer.range_min.assign(0.0)
        quantizer.range_max.assign(0.0)
        quantizer.calibrating = True
    try:
        for batch in _batches(data, batch_size):
            model(batch, training=False)
            seen += int(keras.tree.flatten(batch)[0].shape[0])
    finally:
        for quantizer in quantizers:
            quantizer.calibrating = False
    if not seen:
        raise ValueError(
            "Invalid value for argument `data`: calibration needs at least one example. Received: no examples"
        )
    return seen


def is_fake_quantized(model: keras.Model) -> bool:
    """Whether `model` holds fake-quantized layers (from `quantize_model`): its int8 ranges are its own.

    Example:
        >>> is_fake_quantized(keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]))
        False
    """
    return any(
        isinstance(layer, (ActivationQuantizer, *WEIGHTED.values())) for layer in model._flatten_layers()
    )
