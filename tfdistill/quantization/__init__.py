"""Quantization-aware training and distillation of int8 students, exported to TFLite.

`quantize_model(student, calibration_data)` clones a trained float student
into its fake-quantized int8 form (BatchNorm folded, ReLU fused, weights
rounded per channel, activation ranges calibrated, then tracked in
training). Distilled from the float teacher, or from the float student
itself, with `tfdistill.Distiller` (quantization-aware distillation), it
learns to lose nothing to rounding; `tfdistill.export.convert(quantized,
"int8")` turns it into a full-integer TFLite model with the ranges it
trained with.
"""

from tfdistill.quantization.folding import batch_norm_affine
from tfdistill.quantization.layers import (
    QuantConv1D,
    QuantConv2D,
    QuantDense,
    QuantDepthwiseConv2D,
    QuantEmbedding,
    QuantSeparableConv2D,
)
from tfdistill.quantization.quantizers import ActivationQuantizer, fake_quantize_weights, round_weights_per_channel
from tfdistill.quantization.transform import calibrate, is_fake_quantized, quantize_model

__all__ = [
    "ActivationQuantizer",
    "QuantConv1D",
    "QuantConv2D",
    "QuantDense",
    "QuantDepthwiseConv2D",
    "QuantEmbedding",
    "QuantSeparableConv2D",
    "batch_norm_affine",
    "calibrate",
    "fake_quantize_weights",
    "is_fake_quantized",
    "quantize_model",
    "round_weights_per_channel",
]
