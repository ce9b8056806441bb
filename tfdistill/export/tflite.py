"""TFLite export, verified against the Keras model it came from."""

import dataclasses
import os
import tempfile
import time
import warnings

from typing import Optional

import keras
import numpy as np
import tensorflow as tf

from tfdistill import quantization as quantization_module
from tfdistill.errors import ExportVerificationError
from tfdistill.export import atomic

QUANTIZATIONS = ("float32", "float16", "dynamic_range", "int8")


def _make_interpreter(model_content, num_threads):
    try:
        from ai_edge_litert.interpreter import Interpreter  # the maintained runtime
    except ImportError:
        Interpreter = tf.lite.Interpreter  # deprecated alias of the same runtime
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Interpreter(model_content=model_content, num_threads=num_threads)


def convert(model, quantization="float32", representative_data=None, num_calibration=200, int8_io=False,
            per_channel=True):
    """Converts a Keras model to a TFLite flatbuffer with TF's own converter.

    A fake-quantized model (`tfdistill.quantization.quantize_model`) carries
    its own int8 ranges: it converts to `"int8"` only, without calibration
    (`representative_data` is not used), each fake-quantization becoming
    the scale and zero point of an int8 tensor (quantization-aware
    training's path through the converter).

    Args:
        model: a Keras model with one input.
        quantization: one of `"float32"`, `"float16"` (float16 weights),
            `"dynamic_range"` (int8 weights, float activations) or `"int8"`
            (full integer, calibrated on `representative_data`).
        representative_data: inputs for int8 calibration, e.g. drawn from
            the training pipeline; the first `num_calibration` are used. An
            integer input (token ids) stays integer; only the weights and
            activations are quantized.
        num_calibration: calibration examples (100-500 is typical).
        int8_io: with `"int8"`, make the model's input and output int8 too
            (for integer-only accelerators); otherwise they stay float32.
        per_channel: with `"int8"` calibration, a scale per output channel
            of each weight (the converter's default); `False` gives one per
            tensor.

    Returns:
        The `.tflite` file's bytes.

    Example:
        >>> data = convert(student, "int8", representative_data=x_train[:200])  # doctest: +SKIP
    """
    if quantization not in QUANTIZATIONS:
        raise ValueError(
            f"Invalid value for argument `quantization`. Expected one of {QUANTIZATIONS}. "
            f"Received: quantization={quantization!r}"
        )
    fake_quantized = quantization_module.is_fake_quantized(model)
    if fake_quantized and quantization != "int8":
        raise ValueError(
            "Invalid value for argument `quantization`: a fake-quantized model converts to 'int8' only. "
            f"Received: quantization={quantization!r}"
        )
    with tempfile.TemporaryDirectory() as saved_model_dir:
        # Keras 3's path to the converter: ExportArchive -> SavedModel.
        archive = keras.export.ExportArchive()
        archive.track(model)
        archive.add_endpoint(
            "serve",
            lambda x: model(x, training=False),
            input_signature=[tf.TensorSpec((1, *model.inputs[0].shape[1:]), _input_dtype(model))],
        )
        archive.write_out(saved_model_dir, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir)
        if fake_quantized:
            _configure_fake_quantized(converter, int8_io, _input_dtype(model))
        else:
            _configure(converter, quantization, representative_data, num_calibration, int8_io, _input_dtype(model))
            converter._experimental_disable_per_channel = not per_channel
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return converter.convert()


def _input_dtype(model):
    """The model's input dtype: integer for token ids, else float32."""
    dtype = tf.as_dtype(model.inputs[0].dtype)
    return dtype if dtype.is_integer else tf.float32


def _configure(converter, quantization, representative_data, num_calibration, int8_io, input_dtype=tf.float32):
    if quantization != "float32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantization == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if quantization == "int8":
        if representative_data is None or len(representative_data) == 0:
            raise ValueError(
                "Invalid value for argument `representative_data`: full int8 "
                "quantization needs calibration inputs (100-500 examples from the "
                "training data). Received: None"
            )
        calibration = np.asarray(representative_data[:num_calibration], dtype=input_dtype.as_numpy_dtype)

        def representative_dataset():
            for example in calibration:
                yield [example[None]]

        converter.representative_dataset = representative_dataset
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if int8_io:
            _set_int8_io(converter, input_dtype)


def _configure_fake_quantized(converter, int8_io, input_dtype):
    """Quantization-aware training's conversion: the ranges are the graph's fake-quantizations."""
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if int8_io:
        _set_int8_io(converter, input_dtype)


def _set_int8_io(converter, input_dtype):
    """int8 input and output tensors; integer ids (token inputs) are not quantized, so they refuse it."""
    if input_dtype.is_integer:
        raise ValueError(
            "Invalid value for argument `int8_io`: the model's input is integer ids "
            f"({input_dtype.name}), which are not quantized. Received: int8_io=True"
        )
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8


def operators(model_content):
    """The TFLite model's operators in execution order, e.g. `['QUANTIZE', 'CONV_2D', ...]`.

    Example:
        >>> operators(convert(student, "int8", representative_data=x[:200]))  # doctest: +SKIP
        ['QUANTIZE', 'CONV_2D', 'MAX_POOL_2D', 'CONV_2D', 'MEAN', 'FULLY_CONNECTED', 'DEQUANTIZE']
    """
    interpreter = _make_interpreter(model_content, 1)
    return [op["op_name"] for op in interpreter._get_ops_details()]


class TFLiteRunner:
    """Runs a `.tflite` model one example at a time, (de)quantising as needed."""

    def __init__(self, model_content, num_threads=1):
        self.interpreter = _make_interpreter(model_content, num_threads)
        self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]

    def __call__(self, example):
        """Returns the float output for one example, shape `(1, ..., num_classes)`."""
        scale, zero_point = self.input["quantization"]
        quantized_input = self.input["dtype"] in (np.int8, np.uint8) and scale != 0
        x = np.asarray(example, dtype="float32" if quantized_input else self.input["dtype"])[None]
        if quantized_input:
            x = np.clip(np.round(x / scale + zero_point), -128, 127).astype(self.input["dtype"])
        self.interpreter.set_tensor(self.input["index"], x)
        self.interpreter.invoke()
        y = self.interpreter.get_tensor(self.output["index"])
        scale, zero_point = self.output["quantization"]
        if self.output["dtype"] in (np.int8, np.uint8):
            y = (y.astype("float32") - zero_point) * scale
        return y


@dataclasses.dataclass
class VerificationReport:
    """What a TFLite model does next to its Keras model on an evaluation set."""

    quantization: str
    file_bytes: int
    accuracy: float
    keras_accuracy: float
    top1_agreement: float
    max_abs_diff: float
    median_latency_ms: float
    num_threads: int
    num_examples: int
    float_agreement: Optional[float] = None

    def __str__(self):
        float_model = ""
        if self.float_agreement is not None:
            float_model = f"  agreement with the float model {self.float_agreement:.2%}"
        return (
            f"{self.quantization:<14} {self.file_bytes:>9,} B  accuracy {self.accuracy:.2%} "
            f"(Keras {self.keras_accuracy:.2%})  top-1 agreement {self.top1_agreement:.2%}{float_model}  "
            f"max |diff| {self.max_abs_diff:.4f}  {self.median_latency_ms:.3f} ms/example "
            f"(batch 1, {self.num_threads} thread{'s' * (self.num_threads > 1)})"
        )


def verify(model_content, model, x, y, quantization="float32", num_threads=1, verbose=0, sample_weight=None,
           float_model=None):
    """Runs the TFLite model on `x` and compares it with the Keras model.

    For outputs with positions (`(n, time, classes)`: tokens, frames),
    accuracy and agreement are per position, weighted by `sample_weight`.

    Args:
        model_content: `.tflite` bytes.
        model: the Keras model it was converted from.
        x: inputs of the evaluation set (floats, or integer token ids).
        y: integer labels, `(n,)` or `(n, ...)` per position.
        quantization: label of the report.
        num_threads: interpreter threads for the latency figure.
        verbose: 1 shows a progress bar over the examples.
        sample_weight: optional weights of `y`'s shape (padding 0), for
            outputs with positions.
        float_model: for a fake-quantized `model`, the float model it was
            made from; the report's `float_agreement` is the TFLite model's
            top-1 agreement with it.

    Returns:
        A `VerificationReport` (file size, accuracy, top-1 agreement, max
        absolute output difference, dequantised for int8, median latency).
    """
    runner = TFLiteRunner(model_content, num_threads)
    keras_out = np.asarray(model.predict(x, batch_size=512, verbose=0), dtype="float32")
    outputs, latencies = [], []
    progress = keras.utils.Progbar(len(x), unit_name="example") if verbose else None
    for index, example in enumerate(x):
        start = time.perf_counter()
        outputs.append(runner(example))
        latencies.append(time.perf_counter() - start)
        if progress is not None and ((index + 1) % 500 == 0 or index + 1 == len(x)):
            progress.update(index + 1)
    lite_out = np.concatenate(outputs)
    lite_top1, keras_top1 = lite_out.argmax(-1), keras_out.argmax(-1)
    y = np.asarray(y).reshape(lite_top1.shape)
    weights = np.ones(lite_top1.shape) if sample_weight is None else np.asarray(sample_weight).reshape(lite_top1.shape)

    def mean(hits):
        return float(np.sum(hits * weights) / np.sum(weights))

    real = weights > 0
    float_agreement = None
    if float_model is not None:
        float_top1 = np.asarray(float_model.predict(x, batch_size=512, verbose=0)).argmax(-1)
        float_agreement = mean(lite_top1 == float_top1)
    return VerificationReport(
        quantization=quantization,
        file_bytes=len(model_content),
        accuracy=mean(lite_top1 == y),
        keras_accuracy=mean(keras_top1 == y),
        top1_agreement=mean(lite_top1 == keras_top1),
        max_abs_diff=float(np.max(np.abs(lite_out - keras_out)[real])),
        median_latency_ms=float(np.median(latencies) * 1000),
        num_threads=num_threads,
        num_examples=len(x),
        float_agreement=float_agreement,
    )


def export_tflite(
    model: keras.Model,
    path: str,
    x_eval: np.ndarray,
    y_eval: np.ndarray,
    quantization: str = "float32",
    representative_data: Optional[np.ndarray] = None,
    min_agreement: float = 0.99,
    overwrite: bool = False,
    verbose: int = 0,
    sample_weight: Optional[np.ndarray] = None,
    float_model: Optional[keras.Model] = None,
    **convert_kwargs,
) -> "VerificationReport":
    """Converts, verifies and writes a `.tflite` file; refuses a bad export.

    Args:
        model: the Keras model.
        path: the `.tflite` file to write.
        x_eval: float inputs the export is verified on.
        y_eval: their labels.
        quantization: see `convert`.
        representative_data: calibration inputs for `"int8"`.
        min_agreement: lowest top-1 agreement with the Keras model accepted.
        overwrite: replace an existing file (otherwise refused).
        verbose: 1 shows a progress bar while verifying.
        sample_weight: weights of `y_eval` (padded positions 0), see `verify`.
        float_model: the float model a fake-quantized `model` was made from,
            see `verify`.
        **convert_kwargs: passed to `convert`.

    Returns:
        The `VerificationReport`.

    Raises:
        ExportVerificationError: agreement below `min_agreement`; nothing is
            written.
        FileExistsError: `path` exists and `overwrite` is false.
    """
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f"{path!r} already exists; pass `overwrite=True` to replace it.")
    content = convert(model, quantization, representative_data, **convert_kwargs)
    report = verify(content, model, x_eval, y_eval, quantization, verbose=verbose, sample_weight=sample_weight,
                    float_model=float_model)
    if report.top1_agreement < min_agreement:
        raise ExportVerificationError(
            f"The {quantization} TFLite model agrees with the Keras model on "
            f"{report.top1_agreement:.2%} of top-1 predictions, below "
            f"min_agreement={min_agreement:.2%}; nothing was written. Report: {report}",
            report=report,
        )
    atomic.write_bytes(path, content)  # A crash leaves the previous file or none, never half of one.
    return report
