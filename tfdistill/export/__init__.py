"""Export: SavedModel for TF Serving."""

from tfdistill.export.saved_model import (
    KERAS_COPY,
    existing_versions,
    export_saved_model,
    latest_version_dir,
)

__all__ = ["KERAS_COPY", "existing_versions", "export_saved_model", "latest_version_dir"]
