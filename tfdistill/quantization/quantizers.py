"""Fake quantization as TFLite's converter reads it: weights per channel, activations per tensor.

Both go through `keras.quantizers.fake_quant_with_min_max_vars`, which on
TensorFlow is `tf.quantization.fake_quant_with_min_max_vars(_per_channel)`:
the ops the converter turns into int8 kernels with the ranges they carry. The
op rounds in the forward pass and passes the gradient straight through
inside the range (zero outside it).

- Weights: symmetric, `[-m, m]` with `m = max |w|` (per output channel or
  for the whole tensor), narrow range (int8 values in `[-127, 127]`, zero
  point 0: what TFLite's int8 kernels require of weights). The range follows
  the weights at every step and is constant once they are.
- Activations (`ActivationQuantizer`): asymmetric, `[min, max]` per tensor,
  first the extremes over calibration data (what post-training calibration
  measures), then an exponential moving average of each training batch's
  extremes (Jacob et al., 2018, section 3.1).
"""

import keras
from keras import ops

WEIGHT_BITS = (4, 8)


def check_bits(num_bits, argument="num_bits", allowed=(2, 3, 4, 5, 6, 7, 8)):
    """Returns `num_bits` if it is one of `allowed`, else raises Keras's style of error."""
    if isinstance(num_bits, bool) or num_bits not in allowed:
        raise ValueError(
            f"Invalid value for argument `{argument}`. Expected one of {tuple(allowed)}. "
            f"Received: {argument}={num_bits!r}"
        )
    return int(num_bits)


def _weight_limit(weights, per_channel):
    """`max |w|`, per output channel (the last axis) or over the whole tensor: the symmetric range's end."""
    reduced = tuple(range(len(weights.shape) - 1)) if per_channel else None
    # A channel of zeros would give a zero range and a zero scale (NaN); any tiny range rounds it to 0.
    return ops.maximum(ops.max(ops.abs(ops.stop_gradient(weights)), axis=reduced), 1e-8)


def fake_quantize_weights(weights, channel_axis=None, num_bits=8):
    """Rounds `weights` to `num_bits` symmetric levels, per channel or per tensor.

    Args:
        weights: a float tensor, e.g. a kernel of shape `(h, w, in, out)`.
        channel_axis: the axis with one range per index (a convolution's
            output channels), or `None` for one range over the whole tensor.
            Only the last axis is accepted: the one TensorFlow's per-channel
            op quantizes.
        num_bits: 8 (int8) or 4 (15 levels; TFLite's converter stores such
            weights as INT4 tensors, two per byte).

    Returns:
        A tensor of `weights`' shape and dtype, each value on the grid
        `k · m / (2^(num_bits-1) - 1)`, `k` an integer, `m = max |w|` of its
        channel. The gradient passes straight through.

    Example:
        >>> import numpy as np
        >>> w = np.array([[0.5, -2.0], [-1.0, 1.0]], "float32")
        >>> np.asarray(fake_quantize_weights(w, channel_axis=-1), "float64").round(4).tolist()
        [[0.5039, -2.0], [-1.0, 1.0079]]

    Reference:
        Jacob et al., "Quantization and Training of Neural Networks for
        Efficient Integer-Arithmetic-Only Inference", CVPR 2018;
        Krishnamoorthi, "Quantizing deep convolutional networks for
        efficient inference: A whitepaper", 2018 (per-channel weights).
    """
    weights = ops.convert_to_tensor(weights)
    rank = len(weights.shape)
    if channel_axis is not None and channel_axis not in (-1, rank - 1):
        raise ValueError(
            f"Invalid value for argument `channel_axis`. Expected None or the last axis (-1 or {rank - 1}). "
            f"Received: channel_axis={channel_axis!r}"
        )
    limit = _weight_limit(weights, channel_axis is not None)
    return keras.quantizers.fake_quant_with_min_max_vars(
        weights, -limit, limit, num_bits=num_bits, narrow_range=True, axis=None if channel_axis is None else rank - 1
    )


def round_weights_per_channel(weights, num_bits=8):
    """`fake_quantize_weights(weights, channel_axis=-1, num_bits)` in plain ops, not TensorFlow's fake-quant op.

    The same grid; a value exactly halfway between two levels rounds to the
    even one here (TensorFlow's op rounds it up).

    For a `Dense` kernel: TensorFlow 2.21's converter rejects a per-channel
    fake-quant op on a `MatMul` weight, but quantizes a float `MatMul`
    weight per output channel itself, symmetric on `[-127, 127]`; a kernel
    already on this grid converts to these very values.

    Args:
        weights: a float kernel, output channels on the last axis.
        num_bits: bits per weight (8: int8).

    Returns:
        A tensor of `weights`' shape, each value `k · m / (2^(num_bits-1) - 1)`,
        `k` an integer, `m = max |w|` of its output channel. The gradient
        passes straight through.

    Example:
        >>> import numpy as np
        >>> w = np.array([[0.5, -2.0], [-1.0, 1.0]], "float32")
        >>> np.asarray(round_weights_per_channel(w), "float64").round(4).tolist()
        [[0.5039, -2.0], [-1.0, 1.0079]]

    Reference:
        Krishnamoorthi, "Quantizing deep convolutional networks for
        efficient inference: A whitepaper", 2018 (per-channel weights).
    """
    weights = ops.convert_to_tensor(weights)
    levels = 2 ** (num_bits - 1) - 1
    scale = _weight_limit(weights, per_channel=True) / levels
    rounded = ops.clip(ops.round(weights / scale), -levels, levels) * scale
    return weights + ops.stop_gradient(rounded - weights)  # the gradient passes straight through


@keras.saving.register_keras_serializable(package="tfdistill")
class ActivationQuantizer(keras.layers.Layer):
    """Fake-quantizes a tensor to int8 with one range, calibrated, then tracked in training.

    At inference (and in the exported model) the output is the input rounded
    to 256 levels of `[range_min, range_max]` and clipped to it. In training,
    each batch's extremes (with 0 included) move the range by an exponential
    moving average, `range ← decay · range + (1 - decay) · batch extreme`,
    before the batch is rounded with it. `tfdistill.quantization.calibrate`
    sets the range to the extremes over calibration data first.

    On logits, `top_k` narrows the range to where the top class is decided:
    from the lowest `k`-th largest value of any row to the highest value, so
    the int8 steps are finer there (with `k=2`, a pair of top logits that
    rounds to one level is rarer) and the smaller logits clip to its
    minimum. The top logits keep their values, so the argmax survives; the
    clipped classes' probabilities rise (each to `exp(min - top)` relative
    to the top class). In training such a quantizer tracks its range but
    passes the logits through: it is the model's last rounding, which no
    layer after it learns around, and a soft loss on clipped logits would
    bend the student to make up for the clipping.

    Args:
        num_bits: levels of the range, `2^num_bits` (8: int8).
        decay: the moving average's decay per training step, in `[0, 1)`
            (0 keeps the last batch's extremes).
        top_k: `None` (every value), or for logits, shape `(..., classes)`,
            the number of largest values per row the range covers.
        **kwargs: passed to `keras.layers.Layer` (`name`, ...).

    Example:
        >>> import numpy as np
        >>> from tfdistill.quantization import calibrate
        >>> quantizer = ActivationQuantizer()
        >>> calibrate(keras.Sequential([keras.Input((3,)), quantizer]), np.array([[0.0, 1.0, 2.55]]))
        1
        >>> np.asarray(quantizer(np.array([[0.004, 1.0, 9.0]], "float32")), "float64").round(3).tolist()
        [[0.0, 1.0, 2.55]]

    Reference:
        Jacob et al., "Quantization and Training of Neural Networks for
        Efficient Integer-Arithmetic-Only Inference", CVPR 2018.
    """

    def __init__(self, num_bits=8, decay=0.999, top_k=None, **kwargs):
        super().__init__(**kwargs)
        self.num_bits = check_bits(num_bits)
        if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
            raise ValueError(
                f"Invalid value for argument `top_k`. Expected None or an int >= 1. Received: top_k={top_k!r}"
            )
        self.top_k = top_k
        if isinstance(decay, bool) or not isinstance(decay, (int, float)) or not 0 <= decay < 1:
            raise ValueError(
                f"Invalid value for argument `decay`. Expected a number in [0, 1). Received: decay={decay!r}"
            )
        self.decay = float(decay)
        self.supports_masking = True
        self.calibrating = False  # set by `calibrate`, in eager calls only

    def build(self, input_shape):
        kwargs = dict(shape=(), initializer="zeros", trainable=False, autocast=False, aggregation="mean")
        self.range_min = self.add_weight(name="range_min", **kwargs)
        self.range_max = self.add_weight(name="range_max", **kwargs)

    def call(self, inputs, training=None):
        values = ops.cast(inputs, "float32")
        batch_min, batch_max = self._extremes(ops.stop_gradient(values))
        if self.calibrating:
            self.range_min.assign(ops.minimum(self.range_min, batch_min))
            self.range_max.assign(ops.maximum(self.range_max, batch_max))
            return inputs
        low, high = self.range_min.value, self.range_max.value
        if training:
            low = self.decay * low + (1.0 - self.decay) * batch_min
            high = self.decay * high + (1.0 - self.decay) * batch_max
            self.range_min.assign(low)
            self.range_max.assign(high)
            if self.top_k is not None:
                return inputs
        outputs = keras.quantizers.fake_quant_with_min_max_vars(values, low, high, num_bits=self.num_bits)
        return ops.cast(outputs, inputs.dtype)

    def _extremes(self, values):
        """The batch's `(min, max)` the range follows, with 0 inside."""
        low = values
        if self.top_k is not None and self.top_k < values.shape[-1]:
            low = ops.top_k(values, self.top_k, sorted=True)[0][..., -1]
        return ops.minimum(ops.min(low), 0.0), ops.maximum(ops.max(values), 0.0)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "num_bits": self.num_bits, "decay": self.decay, "top_k": self.top_k}
