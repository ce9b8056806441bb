"""tfdistill: knowledge distillation for Keras 3 on TensorFlow.

The public API, in one place.
"""

from tfdistill import callbacks, data, losses, models, offline, schedules
from tfdistill.distiller import Distiller
from tfdistill.ensemble import TeacherEnsemble
from tfdistill.errors import (
    CacheIntegrityError,
    NonFiniteDataError,
    NonFiniteLossError,
    NonFiniteUpdateError,
)
from tfdistill.features import FeaturePair
from tfdistill.fidelity import Fidelity, fidelity_from_logits, measure_fidelity
from tfdistill.losses import KnowledgeDistillation, SoftenedProbabilityMSE
from tfdistill.validation import strip_softmax
from tfdistill.version import __version__

__all__ = [
    "Distiller",
    "FeaturePair",
    "CacheIntegrityError",
    "Fidelity",
    "NonFiniteDataError",
    "NonFiniteLossError",
    "NonFiniteUpdateError",
    "TeacherEnsemble",
    "callbacks",
    "schedules",
    "KnowledgeDistillation",
    "SoftenedProbabilityMSE",
    "data",
    "fidelity_from_logits",
    "losses",
    "measure_fidelity",
    "models",
    "offline",
    "strip_softmax",
    "__version__",
]
