"""Folding BatchNorm and input normalization into the weights beside them, as TFLite's converter does.

At inference a `BatchNormalization` after a convolution is an affine map
per output channel, `y = s · conv(x) + t` with `s = γ / √(σ² + ε)` and
`t = β − s · μ` (its moving statistics), which the converter folds into the
convolution's kernel and bias before it quantizes them. Folding them here
first means the fake-quantized kernel is the kernel that ships, so the
ranges trained are the ranges exported. A `Normalization` layer before a
convolution, `(x − μ) / σ`, is split the same way: the division is folded
into the kernel's input channels (as the converter folds it) and the
subtraction stays.
"""

import keras
import numpy as np

__all__ = ["batch_norm_affine", "fold_input_scale", "fold_output_affine", "normalization_affine"]


def batch_norm_affine(layer):
    """`(scale, shift)` per channel of an inference-mode `BatchNormalization` layer.

    Example:
        >>> bn = keras.layers.BatchNormalization(epsilon=0.0)
        >>> bn.build((None, 2))
        >>> bn.set_weights([np.array([2.0, 1.0]), np.array([0.0, 1.0]), np.array([1.0, 0.0]), np.array([4.0, 1.0])])
        >>> [v.tolist() for v in batch_norm_affine(bn)]
        [[1.0, 1.0], [-1.0, 1.0]]

    Reference:
        Jacob et al., "Quantization and Training of Neural Networks for
        Efficient Integer-Arithmetic-Only Inference", CVPR 2018, section 3.2.
    """
    mean = np.asarray(layer.moving_mean, "float64")
    scale = 1.0 / np.sqrt(np.asarray(layer.moving_variance, "float64") + layer.epsilon)
    if layer.scale:
        scale = scale * np.asarray(layer.gamma, "float64")
    shift = -mean * scale
    if layer.center:
        shift = shift + np.asarray(layer.beta, "float64")
    return scale, shift


def normalization_affine(layer):
    """`(mean, 1 / std)` of an adapted `Normalization` layer, flattened to its last axis (length 1 or C)."""
    mean = np.asarray(layer.mean, "float64").reshape(-1)
    std = np.maximum(np.sqrt(np.asarray(layer.variance, "float64")), keras.backend.epsilon()).reshape(-1)
    return mean, 1.0 / std


def fold_output_affine(layer, weights, scale, shift):
    """A weighted layer's `[kernel(s)..., bias]` with `y ↦ scale · y + shift` folded in, per output channel.

    Args:
        layer: the float `Conv1D`, `Conv2D`, `DepthwiseConv2D`,
            `SeparableConv2D` or `Dense` layer (its type says which kernel
            axis holds the output channels).
        weights: its `get_weights()`.
        scale, shift: per output channel.

    Returns:
        The folded weights, always with a bias.
    """
    kernels = list(weights[:2] if isinstance(layer, keras.layers.SeparableConv2D) else weights[:1])
    bias = weights[len(kernels)] if layer.use_bias else 0.0
    last = kernels[-1]
    if isinstance(layer, keras.layers.DepthwiseConv2D):  # output channel in · multiplier, kernel (h, w, in, mult)
        last = last * scale.reshape(last.shape[-2:])
    else:
        last = last * scale
    kernels[-1] = last.astype("float32")
    return [*kernels, (bias * scale + shift).astype("float32")]


def fold_input_scale(layer, weights, input_scale):
    """A weighted layer's weights with its inputs multiplied by `input_scale` (per input channel) folded in.

    Exact for any padding: a zero padded after the scaling is a zero before it.
    """
    weights = list(weights)
    first = weights[0]
    axis = 0 if isinstance(layer, keras.layers.Dense) else first.ndim - 2
    shape = [1] * first.ndim
    shape[axis] = -1
    weights[0] = (first * input_scale.reshape(shape)).astype("float32")
    return weights
