"""Distillation losses and their registries.

Logit losses (teacher and student logits, shape `(batch, num_classes)`):
`logits.py` (Hinton KD, softened-probability MSE, logit standardization),
`decoupled.py` (DKD), `correlation.py` (DIST), `multilevel.py` (MLKD). Feature losses (intermediate
features): `features.py` (FitNets hints, attention transfer).

`get(identifier)` accepts a registered name, a config dict
(`{"class_name": ..., "config": {...}}`) or a `DistillationLoss` instance;
`get_feature_loss` does the same for feature losses.
"""

import functools

import keras

from tfdistill.losses.base import DistillationLoss
from tfdistill.losses.correlation import DIST, dist_loss, pearson_correlation
from tfdistill.losses.decoupled import DecoupledKD, decoupled_kd
from tfdistill.losses.features import (
    AttentionTransfer,
    HintLoss,
    attention_map,
    attention_transfer,
    hint_loss,
)
from tfdistill.losses.multilevel import MultiLevelKD, multilevel_kd
from tfdistill.losses.logits import (
    KnowledgeDistillation,
    SoftenedProbabilityMSE,
    hinton_kd,
    softened_probability_mse,
    standardize_logits,
    top_k_kd,
    top_k_logits,
)

# Name -> factory of a soft (logit) loss with its default settings.
SOFT_LOSSES = {
    "kd": KnowledgeDistillation,
    "hinton_kd": KnowledgeDistillation,
    "kl_divergence": KnowledgeDistillation,
    "ls_kd": functools.partial(KnowledgeDistillation, temperature=2.0, standardize=True),
    "soft_mse": SoftenedProbabilityMSE,
    "dkd": DecoupledKD,
    "dist": DIST,
    "mlkd": MultiLevelKD,
}

FEATURE_LOSSES = {
    "hint": HintLoss,
    "fitnets": HintLoss,
    "attention": AttentionTransfer,
    "attention_transfer": AttentionTransfer,
}


def _get(identifier, registry, argument):
    if isinstance(identifier, DistillationLoss):
        return identifier
    if isinstance(identifier, str):
        key = identifier.lower()
        if key not in registry:
            raise ValueError(
                f"Invalid value for argument `{argument}`. Expected one of "
                f"{sorted(registry)} or a `tfdistill.losses.DistillationLoss` "
                f"instance. Received: {argument}={identifier!r}"
            )
        return registry[key]()
    if isinstance(identifier, dict):
        loss = keras.saving.deserialize_keras_object(identifier)
        if isinstance(loss, DistillationLoss):
            return loss
        identifier = loss
    raise ValueError(
        f"Invalid value for argument `{argument}`. Expected a name in "
        f"{sorted(registry)}, a config dict or a "
        "`tfdistill.losses.DistillationLoss` instance. "
        f"Received: {argument}={identifier!r} of type {type(identifier).__name__}"
    )


def get(identifier):
    """Returns a soft-loss instance from a name, a config dict or an instance.

    Args:
        identifier: a name in `SOFT_LOSSES`, a dict from `serialize()`, or a
            `DistillationLoss` instance (returned as is).

    Returns:
        A `DistillationLoss`.

    Example:
        >>> get("kd").temperature
        4.0
        >>> get("ls_kd").standardize
        True
    """
    return _get(identifier, SOFT_LOSSES, "soft_loss")


def get_feature_loss(identifier):
    """Returns a feature-loss instance from a name (`FEATURE_LOSSES`), a config dict or an instance.

    Example:
        >>> type(get_feature_loss("attention")).__name__
        'AttentionTransfer'
    """
    return _get(identifier, FEATURE_LOSSES, "loss")


def serialize(loss):
    """Returns the config dict of a loss (see `get`)."""
    return keras.saving.serialize_keras_object(loss)


__all__ = [
    "AttentionTransfer",
    "DIST",
    "DecoupledKD",
    "DistillationLoss",
    "FEATURE_LOSSES",
    "HintLoss",
    "KnowledgeDistillation",
    "MultiLevelKD",
    "SOFT_LOSSES",
    "SoftenedProbabilityMSE",
    "attention_map",
    "attention_transfer",
    "decoupled_kd",
    "dist_loss",
    "get",
    "get_feature_loss",
    "hint_loss",
    "hinton_kd",
    "multilevel_kd",
    "pearson_correlation",
    "serialize",
    "softened_probability_mse",
    "standardize_logits",
    "top_k_kd",
    "top_k_logits",
]
