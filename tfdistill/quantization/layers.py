"""Keras layers whose weights are fake-quantized in every forward pass.

Each is the Keras layer it is named after, with its weights rounded by
`fake_quantize_weights` before use; its config is the Keras layer's plus
`weight_bits` (and `per_channel`, except for `Embedding`). The layer's
output is not quantized here: `quantize_model` puts an `ActivationQuantizer`
after the layer's activation, where the converter reads the output's range.
An activation fused into a TFLite kernel must be `relu`, `relu6` or none.

Per channel means per output channel: a convolution's or a dense layer's
last kernel axis; a depthwise convolution's `in · multiplier` output
channels (the kernel is reshaped to `(h, w, in · multiplier)` for the op,
the pattern TFLite's converter folds). A `Dense` kernel is rounded per
channel in plain ops (`round_weights_per_channel`): TensorFlow 2.21's
converter rejects a per-channel fake-quant op on a `MatMul` weight
("'tfl.transpose' op has mismatched quantized axes") but quantizes a float
one per channel itself, to these very values. With 4-bit weights, which
need the fake-quant op to be stored as INT4, a `Dense` kernel has one range.
`Embedding` tables have one range: TFLite's int8 `GATHER` takes one scale.
"""

import keras
from keras import ops

from tfdistill.quantization.quantizers import (
    WEIGHT_BITS,
    ActivationQuantizer,
    check_bits,
    fake_quantize_weights,
    round_weights_per_channel,
)

__all__ = [
    "QuantConv1D",
    "QuantConv2D",
    "QuantDense",
    "QuantDepthwiseConv2D",
    "QuantEmbedding",
    "QuantSeparableConv2D",
]


class _WeightBits:
    """`weight_bits` for a Keras layer with weights (one range per tensor)."""

    def __init__(self, *args, weight_bits=8, **kwargs):
        super().__init__(*args, **kwargs)
        self.weight_bits = check_bits(weight_bits, "weight_bits", WEIGHT_BITS)

    def _quantize(self, weights):
        return fake_quantize_weights(weights, None, self.weight_bits)

    def get_config(self):
        return {**super().get_config(), "weight_bits": self.weight_bits}


class _PerChannel(_WeightBits):
    """`weight_bits` and `per_channel` (a range per output channel, the last kernel axis)."""

    def __init__(self, *args, per_channel=True, **kwargs):
        super().__init__(*args, **kwargs)
        self.per_channel = bool(per_channel)

    def _quantize(self, weights):
        return fake_quantize_weights(weights, -1 if self.per_channel else None, self.weight_bits)

    def _quantize_depthwise(self, kernel):
        """A depthwise kernel `(h, w, in, multiplier)`, per output channel `in · multiplier`."""
        shape = tuple(kernel.shape)
        flat = ops.reshape(kernel, (*shape[:-2], shape[-2] * shape[-1]))
        return ops.reshape(self._quantize(flat), shape)

    def get_config(self):
        return {**super().get_config(), "per_channel": self.per_channel}


_ARGS = """Args:
        *args: the Keras layer's arguments.
        weight_bits: 8, or 4 (15 levels; TFLite INT4 tensors in the export).
        per_channel: a weight range per output channel (`False`: one for
            the whole kernel).
        **kwargs: the Keras layer's keyword arguments.

    Example:"""
_REFERENCE = """
    Reference:
        Jacob et al., "Quantization and Training of Neural Networks for
        Efficient Integer-Arithmetic-Only Inference", CVPR 2018.
"""


@keras.saving.register_keras_serializable(package="tfdistill")
class QuantConv1D(_PerChannel, keras.layers.Conv1D):
    """`keras.layers.Conv1D` with fake-quantized weights (see the module docstring).

    Example:
        >>> layer = QuantConv1D(4, 3, padding="causal", dilation_rate=2)
        >>> tuple(layer(keras.ops.zeros((1, 10, 2))).shape)
        (1, 10, 4)
    """

    def call(self, inputs):
        # Keras's `Conv1D.call` convolves `self.kernel` directly, not through `convolution_op`. The
        # convolution is written as the 2-D one TFLite runs (a height of 1), so the per-channel range
        # is on the 4-D kernel's last axis: the converter cannot carry it through the 3-D kernel's
        # reshape ("'tfl.reshape' op requires 'output' type ... cast compatible").
        channels_last = self.data_format == "channels_last"
        height_axis = 1 if channels_last else 2
        padding = self.padding
        if padding == "causal":  # pad the past, as `Conv1D` does: dilation · (kernel - 1) steps
            past = [self.dilation_rate[0] * (self.kernel_size[0] - 1), 0]
            inputs = ops.pad(inputs, [[0, 0], past, [0, 0]] if channels_last else [[0, 0], [0, 0], past])
            padding = "valid"
        outputs = ops.conv(
            ops.expand_dims(inputs, height_axis), self._quantize(ops.expand_dims(self.kernel, 0)),
            strides=(1, self.strides[0]), padding=padding, dilation_rate=(1, self.dilation_rate[0]),
            data_format=self.data_format,
        )
        outputs = ops.squeeze(outputs, height_axis)
        if self.use_bias:
            outputs = ops.add(outputs, ops.reshape(self.bias, (1, 1, -1) if channels_last else (1, -1, 1)))
        return self.activation(outputs)


@keras.saving.register_keras_serializable(package="tfdistill")
class QuantConv2D(_PerChannel, keras.layers.Conv2D):
    """`keras.layers.Conv2D` with fake-quantized weights (see the module docstring).

    Example:
        >>> layer = QuantConv2D(4, 3, weight_bits=8, per_channel=True)
        >>> tuple(layer(keras.ops.zeros((1, 5, 5, 2))).shape)
        (1, 3, 3, 4)
    """

    def convolution_op(self, inputs, kernel):
        return super().convolution_op(inputs, self._quantize(kernel))


@keras.saving.register_keras_serializable(package="tfdistill")
class QuantDepthwiseConv2D(_PerChannel, keras.layers.DepthwiseConv2D):
    """`keras.layers.DepthwiseConv2D` with fake-quantized weights, per output channel `in · multiplier`.

    Example:
        >>> layer = QuantDepthwiseConv2D(3, depth_multiplier=2, padding="same")
        >>> tuple(layer(keras.ops.zeros((1, 5, 5, 3))).shape)
        (1, 5, 5, 6)
    """

    def call(self, inputs):
        outputs = ops.depthwise_conv(
            inputs, self._quantize_depthwise(self.kernel), strides=self.strides, padding=self.padding,
            dilation_rate=self.dilation_rate, data_format=self.data_format,
        )
        if self.use_bias:
            outputs = ops.add(outputs, self.bias)
        return self.activation(outputs)


@keras.saving.register_keras_serializable(package="tfdistill")
class QuantSeparableConv2D(_PerChannel, keras.layers.SeparableConv2D):
    """`keras.layers.SeparableConv2D` as TFLite runs it: depthwise, then pointwise, each int8.

    TFLite computes a separable convolution as a depthwise and a 1x1
    convolution with an int8 tensor between them; that tensor gets its own
    `ActivationQuantizer` (`depthwise_quantizer`), calibrated and tracked
    like any activation.

    Example:
        >>> layer = QuantSeparableConv2D(4, 3)
        >>> tuple(layer(keras.ops.zeros((1, 5, 5, 2))).shape)
        (1, 3, 3, 4)
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.depthwise_quantizer = ActivationQuantizer(name="depthwise_quantizer")

    def build(self, input_shape):
        super().build(input_shape)
        self.depthwise_quantizer.build(())

    def call(self, inputs, training=None):
        depthwise = ops.depthwise_conv(
            inputs, self._quantize_depthwise(self.depthwise_kernel), strides=self.strides, padding=self.padding,
            dilation_rate=self.dilation_rate, data_format=self.data_format,
        )
        depthwise = self.depthwise_quantizer(depthwise, training=training)
        outputs = ops.conv(depthwise, self._quantize(self.pointwise_kernel), data_format=self.data_format)
        if self.use_bias:
            outputs = ops.add(outputs, self.bias)
        return self.activation(outputs)


@keras.saving.register_keras_serializable(package="tfdistill")
class QuantDense(_PerChannel, keras.layers.Dense):
    """`keras.layers.Dense` with fake-quantized weights, per output channel at 8 bits (see the module docstring).

    Args:
        *args: the Keras layer's arguments.
        weight_bits: 8, or 4 (15 levels, one range for the kernel; TFLite
            INT4 tensors in the export).
        per_channel: at 8 bits, a weight range per output unit (`False`:
            one for the whole kernel).
        **kwargs: the Keras layer's keyword arguments.

    Example:
        >>> tuple(QuantDense(3)(keras.ops.zeros((2, 5))).shape)
        (2, 3)

    Reference:
        Jacob et al., "Quantization and Training of Neural Networks for
        Efficient Integer-Arithmetic-Only Inference", CVPR 2018.
    """

    def __init__(self, *args, weight_bits=8, per_channel=True, **kwargs):
        super().__init__(*args, weight_bits=weight_bits, per_channel=per_channel, **kwargs)

    @classmethod
    def from_config(cls, config):
        # Saved before `Dense` kernels had a range per channel: they keep the one range they trained with.
        return super().from_config({"per_channel": False, **config})

    def _quantize(self, weights):
        if self.per_channel and self.weight_bits == 8:
            return round_weights_per_channel(weights, self.weight_bits)
        return fake_quantize_weights(weights, None, self.weight_bits)

    def call(self, inputs, training=None):
        outputs = ops.matmul(inputs, self._quantize(self.kernel))
        if self.use_bias:
            outputs = ops.add(outputs, self.bias)
        return self.activation(outputs)


@keras.saving.register_keras_serializable(package="tfdistill")
class QuantEmbedding(_WeightBits, keras.layers.Embedding):
    """`keras.layers.Embedding` with a fake-quantized table, one range (TFLite's int8 `GATHER`).

    The gathered rows keep the table's range, so no quantizer follows it.

    Args:
        *args: the Keras layer's arguments.
        weight_bits: 8, or 4 (15 levels).
        **kwargs: the Keras layer's keyword arguments.

    Example:
        >>> tuple(QuantEmbedding(10, 3)(keras.ops.ones((2, 4), "int32")).shape)
        (2, 4, 3)

    Reference:
        Jacob et al., "Quantization and Training of Neural Networks for
        Efficient Integer-Arithmetic-Only Inference", CVPR 2018.
    """

    def call(self, inputs):
        if inputs.dtype not in ("int32", "int64"):
            inputs = ops.cast(inputs, "int32")
        outputs = ops.take(self._quantize(self.embeddings), inputs, axis=0)
        return ops.cast(outputs, self.compute_dtype)


for _layer in (QuantConv1D, QuantConv2D, QuantDepthwiseConv2D, QuantSeparableConv2D):
    _layer.__doc__ = _layer.__doc__.replace("Example:", _ARGS) + _REFERENCE
