"""Loading `.keras` files with errors that name the file and what is wrong with it.

`keras.models.load_model` reports a file that is not a `.keras` archive as
"File not found", and a file whose Lambda layers need `safe_mode=False`
without naming the file. `load_model` checks the archive first and refuses
Python code in a model file unless the caller passes `safe_mode=False`.
"""

import os
import zipfile

import keras

_ZIP_MAGIC = b"PK\x03\x04"


def check_keras_file(path, role="model"):
    """Raises `ValueError` naming `path` unless it is a complete `.keras` archive.

    Args:
        path: the file.
        role: what the file is for, in the error (`"teacher"`, `"student"`).
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Invalid {role} file {path!r}: no such file.")
    with open(path, "rb") as f:
        head = f.read(4)
    if head != _ZIP_MAGIC:
        raise ValueError(
            f"Invalid {role} file {path!r}: it is not a `.keras` file (a zip archive). "
            f"Expected it to start with {_ZIP_MAGIC!r}. Received: {head!r}. "
            "A SavedModel is a folder (load it with `tf.saved_model.load`); a `.weights.h5` "
            "file holds weights only."
        )
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            damaged = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise ValueError(f"Invalid {role} file {path!r}: the archive is damaged or truncated ({error}).") from error
    if damaged is not None:
        raise ValueError(f"Invalid {role} file {path!r}: the archive member {damaged!r} is damaged (CRC mismatch).")
    missing = {"config.json", "metadata.json"} - names
    if missing:
        raise ValueError(
            f"Invalid {role} file {path!r}: a zip archive, but not a Keras model: it lacks "
            f"{sorted(missing)}. Received members: {sorted(names)[:10]}"
        )


def load_model(path, role="model", safe_mode=True, **kwargs):
    """`keras.models.load_model` after `check_keras_file`, with errors naming the file.

    Args:
        path: a `.keras` file.
        role: what the file is for, in errors.
        safe_mode: `True` (the default) refuses Python code stored in the file
            (Lambda layers): loading would run it. Pass `False` only for a
            file you trust.
        **kwargs: passed to `keras.models.load_model` (e.g. `custom_objects`).

    Returns:
        The model.
    """
    check_keras_file(path, role)
    try:
        return keras.models.load_model(path, safe_mode=safe_mode, **kwargs)
    except Exception as error:
        message = str(error)
        if "safe_mode" in message:
            raise ValueError(
                f"Invalid {role} file {path!r}: it holds Python code (a Lambda layer or "
                "similar) that would run when loaded, so it was not loaded. If you trust "
                "where the file comes from, load it with `safe_mode=False`; better, rebuild "
                f"the model without Lambda layers. Keras: {message}"
            ) from error
        raise ValueError(f"Invalid {role} file {path!r}: Keras could not load it: {type(error).__name__}: {message}") from error
