"""Several teachers as one: the mean (or weighted mean) of their predictions."""

import keras
import numpy as np
from keras import ops

from tfdistill import validation

COMBINE_MODES = ("logits", "probabilities")


@keras.saving.register_keras_serializable(package="tfdistill")
class TeacherEnsemble(keras.Model):
    """A frozen ensemble of teachers that outputs combined logits.

    Pass it to `Distiller` as the teacher: every loss in the zoo then
    distils the ensemble. Each member runs with `training=False`.

    Args:
        teachers: a list of at least two built `keras.Model`s that output
            logits of the same shape.
        weights: one weight >= 0 per teacher (normalised to sum to 1);
            default equal weights.
        combine: `"logits"` — the weighted mean of the teachers' logits — or
            `"probabilities"` — the log of the weighted mean of their
            softmax probabilities (a valid set of logits for that mixture).
        name: model name.

    Example:
        >>> teacher = TeacherEnsemble([resnet, efficientnet], weights=[2, 1])  # doctest: +SKIP
        >>> distiller = Distiller(teacher, student)  # doctest: +SKIP

    Reference:
        Hinton, Vinyals and Dean, "Distilling the Knowledge in a Neural
        Network", 2015 (distilling an ensemble); You et al., "Learning from
        Multiple Teacher Networks", KDD 2017.
    """

    def __init__(self, teachers, weights=None, combine="logits", name="teacher_ensemble", **kwargs):
        super().__init__(name=name, **kwargs)
        if not isinstance(teachers, (list, tuple)) or len(teachers) < 2:
            raise ValueError(
                "Invalid value for argument `teachers`. Expected a list of at "
                f"least two `keras.Model`s. Received: teachers={teachers!r}"
            )
        for index, teacher in enumerate(teachers):
            argument = f"teachers[{index}]"
            if not isinstance(teacher, keras.Model):
                raise ValueError(
                    f"Invalid value for argument `{argument}`. Expected a "
                    f"`keras.Model`. Received: {teacher!r}"
                )
            validation.check_logits_model(teacher, argument)
            validation.check_built(teacher, argument)
            teacher.trainable = False
        if combine not in COMBINE_MODES:
            raise ValueError(
                f"Invalid value for argument `combine`. Expected one of "
                f"{list(COMBINE_MODES)}. Received: combine={combine!r}"
            )
        if weights is None:
            weights = [1.0] * len(teachers)
        weights = [validation.check_weight("weights", float(w)) for w in weights]
        if len(weights) != len(teachers) or sum(weights) == 0:
            raise ValueError(
                "Invalid value for argument `weights`. Expected one weight >= 0 "
                f"per teacher ({len(teachers)}), not all zero. Received: weights={weights}"
            )
        self.teachers = list(teachers)
        self.weights_ = [w / sum(weights) for w in weights]
        self.combine = combine
        self.trainable = False
        self.built = True

    def call(self, inputs, training=False):
        logits = [ops.cast(t(inputs, training=False), "float32") for t in self.teachers]
        stacked = ops.stack(logits, axis=0)
        weights = ops.reshape(ops.convert_to_tensor(np.array(self.weights_, "float32")), (-1, 1, 1))
        if self.combine == "logits":
            return ops.sum(weights * stacked, axis=0)
        log_probabilities = ops.log_softmax(stacked, axis=-1)
        return ops.logsumexp(log_probabilities + ops.log(weights + 1e-30), axis=0)

    def compute_output_shape(self, input_shape):
        return self.teachers[0].compute_output_shape(input_shape)

    def get_config(self):
        return {
            "teachers": [keras.saving.serialize_keras_object(t) for t in self.teachers],
            "weights": self.weights_,
            "combine": self.combine,
            "name": self.name,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["teachers"] = [keras.saving.deserialize_keras_object(t) for t in config["teachers"]]
        return cls(**config)
