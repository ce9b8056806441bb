"""Distillation losses and their registry.

`get(identifier)` accepts a registered name, a config dict
(`{"class_name": ..., "config": {...}}`) or a `DistillationLoss` instance.
"""

import keras

from tfdistill.losses.base import DistillationLoss
from tfdistill.losses.logits import (
    KnowledgeDistillation,
    SoftenedProbabilityMSE,
    hinton_kd,
    softened_probability_mse,
)

SOFT_LOSSES = {
    "kd": KnowledgeDistillation,
    "hinton_kd": KnowledgeDistillation,
    "kl_divergence": KnowledgeDistillation,
    "soft_mse": SoftenedProbabilityMSE,
}


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
    """
    if isinstance(identifier, DistillationLoss):
        return identifier
    if isinstance(identifier, str):
        key = identifier.lower()
        if key not in SOFT_LOSSES:
            raise ValueError(
                "Invalid value for argument `soft_loss`. Expected one of "
                f"{sorted(SOFT_LOSSES)} or a `tfdistill.losses.DistillationLoss` "
                f"instance. Received: soft_loss={identifier!r}"
            )
        return SOFT_LOSSES[key]()
    if isinstance(identifier, dict):
        loss = keras.saving.deserialize_keras_object(identifier)
        if isinstance(loss, DistillationLoss):
            return loss
        identifier = loss
    raise ValueError(
        "Invalid value for argument `soft_loss`. Expected a name in "
        f"{sorted(SOFT_LOSSES)}, a config dict or a "
        "`tfdistill.losses.DistillationLoss` instance. "
        f"Received: soft_loss={identifier!r} of type {type(identifier).__name__}"
    )


def serialize(loss):
    """Returns the config dict of a soft loss (see `get`)."""
    return keras.saving.serialize_keras_object(loss)


__all__ = [
    "DistillationLoss",
    "KnowledgeDistillation",
    "SoftenedProbabilityMSE",
    "SOFT_LOSSES",
    "get",
    "hinton_kd",
    "serialize",
    "softened_probability_mse",
]
