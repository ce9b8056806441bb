"""Export: SavedModel for TF Serving and verified TFLite for the edge."""

from tfdistill.export import atomic
from tfdistill.export.atomic import save_keras
from tfdistill.export.saved_model import (
    KERAS_COPY,
    existing_versions,
    export_saved_model,
    latest_version_dir,
    load_exported_model,
)
from tfdistill.export.tflite import (
    QUANTIZATIONS,
    ExportVerificationError,
    TFLiteRunner,
    VerificationReport,
    convert,
    export_tflite,
    operators,
    verify,
)

__all__ = [
    "KERAS_COPY",
    "QUANTIZATIONS",
    "ExportVerificationError",
    "TFLiteRunner",
    "VerificationReport",
    "atomic",
    "convert",
    "existing_versions",
    "export_saved_model",
    "export_tflite",
    "latest_version_dir",
    "load_exported_model",
    "operators",
    "save_keras",
    "verify",
]
