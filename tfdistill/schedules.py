"""Schedules for loss weights: a value as a function of the training step.

`Distiller.compile` takes one wherever it takes `hard_weight` or
`soft_weight`; any `keras.optimizers.schedules.LearningRateSchedule` works too
(they are all step -> value functions), e.g. `CosineDecay`.
"""

import keras
from keras import ops

from tfdistill.validation import check_weight


@keras.saving.register_keras_serializable(package="tfdistill")
class LinearWarmup(keras.optimizers.schedules.LearningRateSchedule):
    """Rises linearly from `initial` to `value` over `warmup_steps`, then stays.

    `weight(step) = initial + (value − initial) · min(step / warmup_steps, 1)`.
    DKD warms its loss up over 20 epochs: `LinearWarmup(1.0, 20 * steps_per_epoch)`.

    Args:
        value: the weight after the warm-up, >= 0.
        warmup_steps: number of optimizer steps of the ramp, >= 1.
        initial: the weight at step 0, >= 0.

    Returns:
        A callable `step -> weight` (float32 scalar).

    Example:
        >>> schedule = LinearWarmup(1.0, warmup_steps=10)
        >>> [round(float(schedule(s)), 2) for s in (0, 5, 10, 20)]
        [0.0, 0.5, 1.0, 1.0]

    Reference:
        Zhao et al., "Decoupled Knowledge Distillation", CVPR 2022 (warm-up).
    """

    def __init__(self, value, warmup_steps, initial=0.0):
        self.value = check_weight("value", value)
        self.initial = check_weight("initial", initial)
        if isinstance(warmup_steps, bool) or not isinstance(warmup_steps, int) or warmup_steps < 1:
            raise ValueError(
                "Invalid value for argument `warmup_steps`. Expected an integer "
                f">= 1. Received: warmup_steps={warmup_steps!r}"
            )
        self.warmup_steps = warmup_steps

    def __call__(self, step):
        progress = ops.minimum(ops.cast(step, "float32") / float(self.warmup_steps), 1.0)
        return self.initial + (self.value - self.initial) * progress

    def get_config(self):
        return {"value": self.value, "warmup_steps": self.warmup_steps, "initial": self.initial}
