"""Checks a `Distiller` runs before training starts, so a mistake costs seconds, not an epoch.

`check_data` reads a `tf.data.Dataset`'s `element_spec` only (drawing a batch
would advance a seeded reshuffle and change the data order) and checks arrays
in full; `assert_valid_labels` checks label values inside the first step,
before any weight changes.
"""

import keras
import numpy as np
import tensorflow as tf

from tfdistill import callbacks, labels, teacher_outputs, validation


def before_fit(distiller, x, y, kwargs):
    """Everything `Distiller.fit` does before `keras.Model.fit`; returns the `fit` keyword arguments.

    Checks the training and validation data (`check_data`); for a
    `tf.data.Dataset`, passes `shuffle=False` (Keras ignores `True` there, with a warning)
    and advances the pipeline to the epoch a `BackupAndRestore` resumes at.
    """
    check_data(distiller, x, y, kwargs.get("sample_weight"))
    kwargs = dict(kwargs)
    if isinstance(x, (tf.data.Dataset, tf.distribute.DistributedDataset)):
        kwargs["shuffle"] = False  # a dataset keeps its own order; Keras would warn that it ignores True
        callbacks.advance_to_resumed_epoch(
            x, kwargs.get("callbacks"), kwargs.get("initial_epoch", 0), kwargs.get("steps_per_epoch")
        )
    validation_data = kwargs.get("validation_data")
    if validation_data is not None:
        if isinstance(validation_data, tuple):
            check_data(distiller, *validation_data[:2], *validation_data[2:3])
        else:
            check_data(distiller, validation_data)
    return kwargs


def check_data(distiller, x, y=None, sample_weight=None):
    """Validates the data's structure, labels and shapes against both models.

    Data without labels (`y=None`, or a dataset that yields `x` alone or
    `(x, None, sample_weight)`) is accepted when nothing needs labels:
    `hard_weight` must be 0.

    Args:
        distiller: a compiled `tfdistill.Distiller`.
        x: a `tf.data.Dataset` of `x`, `(x,)`, `(x, y)` or `(x, y,
            sample_weight)` batches, or inputs as arrays.
        y: labels when `x` is not a dataset: class ids, `UNLABELED` (-1)
            for examples without one; or `None`.
        sample_weight: weights when `x` is not a dataset.

    Returns:
        The number of classes the models output, or `None` when `x` cannot
        be inspected without consuming it (a generator or `PyDataset`).

    Raises:
        ValueError: naming the argument, what was expected and received.
    """
    if not distiller.compiled:
        raise ValueError(
            "The Distiller must be compiled before `fit`: call "
            "`distiller.compile(optimizer, soft_loss=..., metrics=...)`."
        )
    if isinstance(x, tf.data.Dataset):
        element = x.element_spec
        if isinstance(element, tuple) and len(element) not in (1, 2, 3):
            raise ValueError(
                "Invalid dataset: expected it to yield `x`, `(x,)`, `(x, y)` or `(x, y, "
                f"sample_weight)`. Received elements with spec: {element}"
            )
        x_spec, y_spec = (element[0], element[1] if len(element) > 1 else None) if isinstance(element, tuple) else (element, None)
        if isinstance(y_spec, tf.NoneTensorSpec):
            y_spec = None
        if y_spec is None:
            labels.check_no_labels_needed(distiller.hard_weight, where="the dataset")
        elif not np.issubdtype(y_spec.dtype.as_numpy_dtype, np.integer):  # before the models run
            validation.check_label_spec(y_spec.shape, y_spec.dtype.as_numpy_dtype)
        symbolic = keras.tree.map_structure(lambda spec: keras.KerasTensor(spec.shape, spec.dtype.name), x_spec)
        num_classes, rank = check_models(distiller, symbolic)
        if y_spec is not None:
            validation.check_label_spec(y_spec.shape, y_spec.dtype.as_numpy_dtype, rank)
        return num_classes
    if isinstance(x, (np.ndarray, tf.Tensor)) or keras.tree.is_nested(x):
        if y is None:
            labels.check_no_labels_needed(distiller.hard_weight, where="`fit(x)` without `y`")
        validation.check_sample_weight(sample_weight)
        num_classes, rank = check_models(distiller, keras.tree.map_structure(lambda a: a[:64], x))
        if y is not None:
            validation.check_labels(np.asarray(y), num_classes, rank)
        return num_classes
    return None


def check_models(distiller, x):
    """Calls both models (or reads the cache) on `x`; checks their output shapes agree.

    Returns:
        `(num_classes, rank)`: the number of classes the student outputs and
        the rank of its logits (2, or more with positions).
    """
    student_x, teacher_x, cached = teacher_outputs.split_batch(x, distiller.separate_inputs)
    if cached is not None:
        teacher_outputs.checked_cache(cached, distiller.soft_loss, needs_features=bool(distiller.feature_pairs))
        if cached.features is not None:
            check_cached_features(distiller, cached.features)
    teacher_out = cached.logits if cached is not None else distiller.teacher(teacher_x, training=False)
    try:
        student_out = distiller.student(student_x, training=False)
    except Exception as error:
        raise ValueError(
            "Invalid value for argument `student`: it could not be called "
            "on the training data, so its shapes cannot be inferred. Build "
            f"it with `keras.Input` matching the data. Error: {error}"
        ) from error
    if cached is not None and cached.is_top_k:
        teacher_outputs.check_top_k_shapes(cached.logits, cached.classes, student_out)
    else:
        validation.check_output_shapes(teacher_out, student_out)
    return int(student_out.shape[-1]), len(student_out.shape)


def check_cached_features(distiller, features):
    """Cached teacher features hold every layer the feature pairs read, at its shape."""
    if not distiller.feature_pairs:
        return  # Cached features without feature pairs are simply not used.
    for pair, expected in zip(distiller.feature_pairs, distiller.feature_matching.teacher_feature_shapes()):
        if pair.teacher_layer not in features:
            raise ValueError(
                f"Invalid data: the `FeaturePair` reads the teacher layer {pair.teacher_layer!r}, "
                f"but the cached teacher features hold only {sorted(features)}. Cache it with "
                "`tfdistill.offline.compute_teacher_outputs(teacher, x, features=[...])`."
            )
        received = tuple(features[pair.teacher_layer].shape[1:])
        if received != tuple(expected):
            raise ValueError(
                f"Invalid data: cached features of teacher layer {pair.teacher_layer!r} have "
                f"shape {received} per example, but the layer outputs {tuple(expected)}."
            )


def assert_valid_labels(y, num_classes):
    """In-graph check of label values, to run before the weights change (nothing to check without labels)."""
    if y is None:
        return []
    ids = tf.cast(y, tf.int64)
    message = (
        f"Invalid labels `y`: expected class ids in [0, {num_classes - 1}] "
        f"(the models output {num_classes} classes), or {labels.UNLABELED} for an example "
        "without a label; this batch has one outside."
    )
    return [
        tf.debugging.assert_greater_equal(ids, tf.constant(labels.UNLABELED, tf.int64), message=message),
        tf.debugging.assert_less(ids, tf.constant(num_classes, tf.int64), message=message),
    ]
