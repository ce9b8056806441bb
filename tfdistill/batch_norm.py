"""Precise batch normalization: exact population statistics after training.

A `BatchNormalization` layer normalizes with the batch's statistics while
training and with its moving averages at inference. With the usual momentum
(0.99) the moving averages need a few hundred steps to catch up with weights
that keep changing, so a student trained briefly, or on a small dataset, can
be at chance in inference mode while it is accurate with batch statistics.
`recompute_batch_norm_statistics` replaces every moving average with the mean
and variance of the layer's inputs over a whole pass of the data, with the
final weights ("precise BN", Wu and Johnson 2021).
"""

from typing import Iterable, List, Optional

import keras
import numpy as np
import tensorflow as tf

from tfdistill import teacher_outputs

__all__ = ["PreciseBatchNorm", "batch_norm_layers", "recompute_batch_norm_statistics"]


def batch_norm_layers(model: keras.Layer) -> List[keras.layers.BatchNormalization]:
    """Every `BatchNormalization` layer of `model`, nested models included, in order."""
    found, stack = [], [model]
    while stack:
        layer = stack.pop(0)
        if isinstance(layer, keras.layers.BatchNormalization):
            if all(layer is not other for other in found):
                found.append(layer)
        stack[:0] = list(getattr(layer, "layers", []))
    return found


def _inputs_of(batch):
    """`x` of a `(x, y[, sample_weight])` batch, or the batch itself."""
    if isinstance(batch, tuple):
        return batch[0]
    return batch


def recompute_batch_norm_statistics(
    model: keras.Model,
    data: Iterable,
    steps: Optional[int] = None,
    input_fn=None,
) -> int:
    """Sets every BatchNorm layer's moving statistics to their population values over `data`.

    One pass over `data` runs `model(x, training=True)` (layers upstream of
    each BatchNorm normalize with the batch's statistics, as in training);
    each layer's moving mean becomes the mean of its inputs over every
    example, and its moving variance the variance of its inputs over every
    example (`E[x²] - E[x]²`, not the mean of per-batch variances). Only the
    moving statistics change; trainable weights and the optimizer are left
    as they are. Dropout is active in this pass, as it was in training.

    Args:
        model: a Keras model (or layer) with `BatchNormalization` layers.
        data: an iterable of batches: a `tf.data.Dataset`, a list of arrays, or
            `(x, y[, sample_weight])` tuples (only `x` is used). Use the
            training images without random augmentation for statistics that
            match the images the model will see at inference.
        steps: use at most this many batches (`None`: all of `data`).
        input_fn: maps a batch's `x` to the model's input (e.g.
            `tfdistill.teacher_outputs.student_input`, which drops cached
            teacher outputs).

    Returns:
        The number of examples the statistics were computed over (0 when the
        model has no BatchNorm layer: nothing is changed).

    Example:
        >>> train = make_dataset(x_train, y_train, batch_size=256)  # doctest: +SKIP
        >>> recompute_batch_norm_statistics(student, train)  # doctest: +SKIP
        60000

    Reference:
        Wu and Johnson, "Rethinking 'Batch' in BatchNorm", 2021 (precise BN).
    """
    layers = batch_norm_layers(model)
    if not layers:
        return 0
    if steps is not None and (not isinstance(steps, int) or steps < 1):
        raise ValueError(f"Invalid value for argument `steps`: expected an int >= 1 or None. Received: steps={steps!r}")
    saved = [(layer.momentum, layer.moving_mean.numpy(), layer.moving_variance.numpy()) for layer in layers]
    sums = [np.zeros(layer.moving_mean.shape, np.float64) for layer in layers]
    squares = [np.zeros(layer.moving_mean.shape, np.float64) for layer in layers]
    count = 0
    # With momentum 0 each training-mode call leaves the batch's mean and
    # (biased) variance in the moving statistics; they are read after every
    # batch and combined into population moments.
    for layer in layers:
        layer.momentum = 0.0
    forward = tf.function(lambda x: model(x, training=True), reduce_retracing=True)
    try:
        for step, batch in enumerate(data):
            if steps is not None and step >= steps:
                break
            x = _inputs_of(batch)
            if input_fn is not None:
                x = input_fn(x)
            forward(x)
            size = int(keras.tree.flatten(x)[0].shape[0])
            for i, layer in enumerate(layers):
                mean = layer.moving_mean.numpy().astype(np.float64)
                variance = layer.moving_variance.numpy().astype(np.float64)
                sums[i] += size * mean
                squares[i] += size * (variance + mean**2)
            count += size
    finally:
        for layer, (momentum, mean, variance) in zip(layers, saved):
            layer.momentum = momentum
            if count == 0:
                layer.moving_mean.assign(mean)
                layer.moving_variance.assign(variance)
    if count == 0:
        raise ValueError("Invalid value for argument `data`: it yielded no batch, so no statistics were computed.")
    for layer, total, square in zip(layers, sums, squares):
        mean = total / count
        layer.moving_mean.assign(mean.astype(layer.moving_mean.dtype))
        layer.moving_variance.assign(np.maximum(square / count - mean**2, 0.0).astype(layer.moving_variance.dtype))
    return count


class PreciseBatchNorm(keras.callbacks.Callback):
    """Recomputes the BatchNorm statistics over `data` when `fit` ends.

    With a `tfdistill.Distiller` the student's layers are recomputed from the
    student's part of each batch (cached teacher outputs are dropped), so the
    student evaluates as it trained.

    Args:
        data: batches of training inputs, as for
            `recompute_batch_norm_statistics` (without random augmentation).
        steps: at most this many batches (`None`: all).

    Example:
        >>> precise = PreciseBatchNorm(make_dataset(x_train, y_train, batch_size=256))  # doctest: +SKIP
        >>> distiller.fit(train, epochs=3, callbacks=[precise])  # doctest: +SKIP

    Reference:
        Wu and Johnson, "Rethinking 'Batch' in BatchNorm", 2021.
    """

    def __init__(self, data: Iterable, steps: Optional[int] = None):
        super().__init__()
        self.data = data
        self.steps = steps
        self.examples = None

    def on_train_end(self, logs=None):
        target = getattr(self.model, "student", self.model)
        input_fn = None
        if target is not self.model:  # a Distiller: batches may carry the teacher's outputs
            separate_inputs = getattr(self.model, "separate_inputs", False)
            input_fn = lambda x: teacher_outputs.student_input(x, separate_inputs)  # noqa: E731
        self.examples = recompute_batch_norm_statistics(target, self.data, self.steps, input_fn=input_fn)
