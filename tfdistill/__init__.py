"""tfdistill: knowledge distillation for Keras 3 on TensorFlow.

The public API, in one place.
"""

from tfdistill import data, losses, models
from tfdistill.distiller import Distiller
from tfdistill.losses import KnowledgeDistillation, SoftenedProbabilityMSE
from tfdistill.validation import strip_softmax
from tfdistill.version import __version__

__all__ = [
    "Distiller",
    "KnowledgeDistillation",
    "SoftenedProbabilityMSE",
    "data",
    "losses",
    "models",
    "strip_softmax",
    "__version__",
]
