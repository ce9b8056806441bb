"""tfdistill: knowledge distillation for Keras 3 on TensorFlow.

The public API, in one place. The library (this package's top-level
modules and `data`, `export`, `losses`, `offline`, `quantization`) never imports the
application layer, `tfdistill.app` (the command line, run configs and
folders, reports, the demo and its Fashion-MNIST models), which sits on top.
"""

from tfdistill import callbacks, data, export, losses, offline, quantization, schedules, tokens
from tfdistill.batch_norm import PreciseBatchNorm, recompute_batch_norm_statistics
from tfdistill.distiller import Distiller
from tfdistill.ensemble import TeacherEnsemble
from tfdistill.errors import (
    CacheIntegrityError,
    ConfigError,
    ExportVerificationError,
    NonFiniteDataError,
    NonFiniteLossError,
    NonFiniteUpdateError,
    TfdistillError,
)
from tfdistill.feature_pairs import FeaturePair
from tfdistill.fidelity import Fidelity, fidelity_from_logits, measure_fidelity
from tfdistill.losses import (
    DIST,
    AttentionTransfer,
    DecoupledKD,
    DistillationLoss,
    HintLoss,
    KnowledgeDistillation,
    MultiLevelKD,
    SoftenedProbabilityMSE,
)
from tfdistill.model_files import load_model
from tfdistill.softmax import strip_softmax
from tfdistill.stats import PairedDifference, paired_difference
from tfdistill.teacher_outputs import TeacherOutputs, TopKLogits
from tfdistill.tokens import TOKEN_REDUCTIONS
from tfdistill.tuning import TuningResult, tune_recipe
from tfdistill.version import __version__

__all__ = [
    # Training
    "Distiller",
    "FeaturePair",
    "TeacherEnsemble",
    "TeacherOutputs",
    "TopKLogits",
    "TOKEN_REDUCTIONS",
    "PreciseBatchNorm",
    "recompute_batch_norm_statistics",
    "tune_recipe",
    "TuningResult",
    # Losses (every class; functions and the registry are in `tfdistill.losses`)
    "AttentionTransfer",
    "DIST",
    "DecoupledKD",
    "DistillationLoss",
    "HintLoss",
    "KnowledgeDistillation",
    "MultiLevelKD",
    "SoftenedProbabilityMSE",
    # Models and measurement
    "Fidelity",
    "fidelity_from_logits",
    "load_model",
    "measure_fidelity",
    "PairedDifference",
    "paired_difference",
    "strip_softmax",
    # Errors
    "TfdistillError",
    "CacheIntegrityError",
    "ConfigError",
    "ExportVerificationError",
    "NonFiniteDataError",
    "NonFiniteLossError",
    "NonFiniteUpdateError",
    # Sub-packages
    "callbacks",
    "data",
    "export",
    "losses",
    "offline",
    "quantization",
    "schedules",
    "tokens",
    "__version__",
]
