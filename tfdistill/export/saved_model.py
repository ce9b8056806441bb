"""SavedModel export in TF Serving's `NAME/VERSION/` layout."""

import os
import re

from typing import Optional, Sequence

import keras
import tensorflow as tf

from tfdistill import model_files
from tfdistill.export import atomic

KERAS_COPY = os.path.join("assets.extra", "model.keras")


def existing_versions(model_dir):
    """The integer version folders under `model_dir`, sorted."""
    if not os.path.isdir(model_dir):
        return []
    return sorted(int(d) for d in os.listdir(model_dir) if re.fullmatch(r"\d+", d))


def latest_version_dir(model_dir):
    """Path of the highest version under `model_dir`, or `None`."""
    versions = existing_versions(model_dir)
    return os.path.join(model_dir, str(versions[-1])) if versions else None


def load_exported_model(path: str, role: str = "model", version: Optional[int] = None) -> keras.Model:
    """The Keras model exported with `export_saved_model`, from its `.keras` copy.

    Args:
        path: a `.keras` file, or a model folder `NAME/` in TF Serving's layout
            (its latest version is read, or `version`).
        role: what the model is for (`"teacher"`, `"student"`), for errors.
        version: an integer version to read instead of the latest.

    Returns:
        The `keras.Model` (loaded with `safe_mode=True`; see
        `tfdistill.load_model`).

    Raises:
        FileNotFoundError: no `.keras` file or exported version at `path`.

    Example:
        >>> teacher = load_exported_model("saved_models/fashion_mnist_teacher", role="teacher")  # doctest: +SKIP
    """
    if path.endswith(".keras") and os.path.isfile(path):
        return model_files.load_model(path, role=role)
    folder = os.path.join(path, str(version)) if version is not None else latest_version_dir(path)
    if folder and os.path.isfile(os.path.join(folder, KERAS_COPY)):
        return model_files.load_model(os.path.join(folder, KERAS_COPY), role=role)
    raise FileNotFoundError(
        f"Invalid value for argument `path`: no .keras file or exported model "
        f"(`{KERAS_COPY}` under a version folder) found at {path!r}"
        + (f" for version {version}." if version is not None else ".")
    )


def _serving_function(model, raw_shape, raw_dtype, scale, class_names):
    model_rank = len(model.inputs[0].shape)

    def serve(image):
        x = tf.cast(image, tf.float32)
        if scale is not None:
            x = x * scale
        if len(raw_shape) == model_rank - 1:
            x = x[..., None]
        probabilities = tf.nn.softmax(tf.cast(model(x, training=False), tf.float32), axis=-1)
        class_id = tf.argmax(probabilities, axis=-1)
        outputs = {"probabilities": probabilities, "class_id": class_id}
        if class_names:
            outputs["class_name"] = tf.gather(tf.constant(list(class_names)), class_id)
        return outputs

    return serve, tf.TensorSpec((None, *raw_shape[1:]), raw_dtype, name="image")


def export_saved_model(
    model: keras.Model,
    model_dir: str,
    version: Optional[int] = None,
    overwrite: bool = False,
    raw_shape: Optional[tuple] = None,
    raw_dtype: str = "uint8",
    scale: float = 1 / 255.0,
    class_names: Optional[Sequence[str]] = None,
) -> str:
    """Writes `model_dir/VERSION/` for TF Serving, plus a `.keras` copy.

    The `serving_default` signature takes raw images (input `image`, dynamic
    batch) and returns `probabilities` `(batch, num_classes)`, `class_id`
    `(batch,)` and, with `class_names`, `class_name`. Pixel scaling is part of
    the signature, so clients send raw data.

    Args:
        model: a Keras model with one image input that outputs logits.
        model_dir: the model's folder, `saved_models/NAME`.
        version: version number; default: one more than the highest there.
        overwrite: replace an existing `version` (otherwise refused).
        raw_shape: shape clients send, e.g. `(None, 28, 28)`; default the
            model's input shape. One axis fewer than the model adds a
            trailing channel axis.
        raw_dtype: dtype clients send (`"uint8"` or `"float32"`).
        scale: factor applied to the raw values; `None` for none.
        class_names: optional class names, in class-id order.

    Returns:
        The path of the version folder written.

    The folder is written under a temporary name that is not a number and
    renamed into place when complete (SavedModel, variables and the `.keras`
    copy), so TF Serving, polling `model_dir`, never loads a half-written
    version, and a process killed while exporting leaves no numbered folder.

    Example:
        >>> export_saved_model(student, "saved_models/fashion_mnist_student",
        ...                    raw_shape=(None, 28, 28))  # doctest: +SKIP
        'saved_models/fashion_mnist_student/1'
    """
    automatic = version is None
    if automatic:
        version = (existing_versions(model_dir) or [0])[-1] + 1
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValueError(
            "Invalid value for argument `version`. Expected an int >= 1. "
            f"Received: version={version!r}"
        )
    path = os.path.join(model_dir, str(version))
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(
            f"Version folder {path!r} already exists; nothing was written. "
            "Pass `version=None` for the next version number or "
            "`overwrite=True` to replace it."
        )
    raw_shape = tuple(raw_shape or model.inputs[0].shape)
    serve, spec = _serving_function(model, raw_shape, raw_dtype, scale, class_names)
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serving_default", serve, input_signature=[spec])
    os.makedirs(model_dir, exist_ok=True)
    atomic.remove_stale_temporaries(model_dir)
    # Staged under a name that is not a number: TF Serving loads only numbered folders.
    staging = atomic.temporary_path(path)
    try:
        archive.write_out(staging, verbose=False)
        os.makedirs(os.path.join(staging, "assets.extra"), exist_ok=True)
        model.save(os.path.join(staging, KERAS_COPY))
        while True:
            try:
                atomic.move_folder_into_place(staging, path, overwrite=overwrite)
                return path
            except FileExistsError:
                if not automatic:
                    raise
                # Another export took this version meanwhile: this one is the next.
                version = existing_versions(model_dir)[-1] + 1
                path = os.path.join(model_dir, str(version))
    finally:
        if os.path.exists(staging):
            tf.io.gfile.rmtree(staging)
