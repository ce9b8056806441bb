"""Feature distillation: which teacher and student layers to match, and how.

The student's logits and features come from ONE forward pass: the student is
wrapped in a functional model that outputs its logits and the named layers'
outputs, sharing the student's layers and weights. (Running the student a
second time for its features would update BatchNorm statistics twice and draw
a second dropout mask.)
"""

import keras

from tfdistill import losses as losses_module
from tfdistill.validation import check_weight


@keras.saving.register_keras_serializable(package="tfdistill")
class FeaturePair:
    """A teacher layer, a student layer and the loss between their outputs.

    Args:
        teacher_layer: name of a layer of the teacher.
        student_layer: name of a layer of the student.
        loss: a name in `tfdistill.losses.FEATURE_LOSSES` (`"hint"` for
            FitNets, `"attention"` for attention transfer) or a
            `DistillationLoss` on features.
        weight: weight of this term in the total loss, >= 0.

    With `loss="hint"`, when the student's features have another number of
    channels (or units) than the teacher's, a learned adapter (a 1x1
    convolution, or a dense layer for vectors) maps them to the teacher's;
    it trains with the student and is not part of the exported student.

    Example:
        >>> pair = FeaturePair("teacher_conv2", "student_conv2", loss="hint", weight=1.0)
        >>> pair.loss.name
        'hint'

    Reference:
        Romero et al., "FitNets: Hints for Thin Deep Nets", ICLR 2015;
        Zagoruyko and Komodakis, "Paying More Attention to Attention", ICLR 2017.
    """

    def __init__(self, teacher_layer, student_layer, loss="hint", weight=1.0):
        for argument, value in (("teacher_layer", teacher_layer), ("student_layer", student_layer)):
            if not isinstance(value, str) or not value:
                raise ValueError(
                    f"Invalid value for argument `{argument}`. Expected a layer "
                    f"name (a non-empty string). Received: {argument}={value!r}"
                )
        self.teacher_layer = teacher_layer
        self.student_layer = student_layer
        self.loss = losses_module.get_feature_loss(loss)
        self.weight = check_weight("weight", weight)

    def get_config(self):
        return {
            "teacher_layer": self.teacher_layer,
            "student_layer": self.student_layer,
            "loss": keras.saving.serialize_keras_object(self.loss),
            "weight": self.weight,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["loss"] = keras.saving.deserialize_keras_object(config["loss"])
        return cls(**config)

    def __repr__(self):
        return (
            f"FeaturePair({self.teacher_layer!r}, {self.student_layer!r}, "
            f"loss={self.loss.name!r}, weight={self.weight})"
        )


def get_feature_pairs(features):
    """Checks `features`: a list of `FeaturePair`s (or their config dicts)."""
    if features is None:
        return []
    if isinstance(features, FeaturePair) or not isinstance(features, (list, tuple)):
        raise ValueError(
            "Invalid value for argument `features`. Expected a list of "
            f"`tfdistill.FeaturePair`. Received: features={features!r}"
        )
    pairs = []
    for pair in features:
        if isinstance(pair, dict):
            pair = keras.saving.deserialize_keras_object(pair)
        if not isinstance(pair, FeaturePair):
            raise ValueError(
                "Invalid value for argument `features`. Expected a list of "
                f"`tfdistill.FeaturePair`. Received an element: {pair!r}"
            )
        pairs.append(pair)
    return pairs


def with_features(model, layer_names, argument):
    """Returns a functional model outputting `[logits, *features]`, sharing `model`'s weights.

    Args:
        model: a Functional or Sequential `keras.Model` with known inputs.
        layer_names: names of layers of `model`.
        argument: `"teacher"` or `"student"`, for error messages.

    Returns:
        A `keras.Model` with `model`'s inputs.
    """
    try:
        inputs, outputs = model.input, model.outputs
    except (AttributeError, ValueError):
        inputs = outputs = None
    if inputs is None or not outputs:
        raise ValueError(
            f"Invalid value for argument `{argument}`: feature distillation reads "
            "intermediate layers, which needs a Functional or Sequential model "
            "built on `keras.Input`. Received a model without symbolic inputs: "
            f"{type(model).__name__} {model.name!r}"
        )
    names = [layer.name for layer in model.layers]
    features = []
    for name in layer_names:
        if name not in names:
            raise ValueError(
                f"Invalid `FeaturePair`: the {argument} has no layer {name!r}. "
                f"Its layers are: {names}"
            )
        features.append(model.get_layer(name).output)
    return keras.Model(inputs, [outputs[0], *features], name=f"{model.name}_with_features")


def make_adapter(pair, teacher_shape, student_shape, index):
    """The layer mapping the student's features to the teacher's shape, or `None`.

    Args:
        pair: the `FeaturePair`.
        teacher_shape: the teacher feature's shape, with batch dimension.
        student_shape: the student feature's shape, with batch dimension.
        index: position of the pair, for the layer's name.

    Returns:
        A built `Conv2D` (1x1) or `Dense` layer, or `None` when no adapter is
        needed.
    """
    teacher_shape, student_shape = tuple(teacher_shape[1:]), tuple(student_shape[1:])
    described = (
        f"teacher layer {pair.teacher_layer!r} outputs {teacher_shape}, student "
        f"layer {pair.student_layer!r} outputs {student_shape}"
    )
    if isinstance(pair.loss, losses_module.AttentionTransfer):
        if len(teacher_shape) != 3 or teacher_shape[:2] != student_shape[:2]:
            raise ValueError(
                "Invalid `FeaturePair` for attention transfer: expected feature "
                "maps (height, width, channels) of the same height and width. "
                f"Received: {described}"
            )
        return None
    if teacher_shape == student_shape:
        return None
    if len(teacher_shape) == 3 and len(student_shape) == 3 and teacher_shape[:2] == student_shape[:2]:
        adapter = keras.layers.Conv2D(teacher_shape[-1], 1, name=f"feature_adapter_{index}")
    elif len(teacher_shape) == 1 and len(student_shape) == 1:
        adapter = keras.layers.Dense(teacher_shape[-1], name=f"feature_adapter_{index}")
    else:
        raise ValueError(
            "Invalid `FeaturePair`: a learned adapter can map channels (feature "
            "maps of the same height and width) or units (vectors), but not "
            f"these shapes. Received: {described}"
        )
    adapter.build((None, *student_shape))
    return adapter


class FeatureMatching:
    """The feature pairs of one teacher and student: their feature models, adapters and loss.

    The feature models are functional views of the same layers (no variables
    of their own); the adapters are the only new weights, kept in
    `adapters` for the `Distiller` to train.

    Args:
        teacher: the teacher `keras.Model`.
        student: the student `keras.Model`.
        pairs: the checked list of `FeaturePair`s (non-empty).
    """

    def __init__(self, teacher, student, pairs):
        self.pairs = pairs
        self.teacher_model = with_features(teacher, [p.teacher_layer for p in pairs], "teacher")
        self.student_model = with_features(student, [p.student_layer for p in pairs], "student")
        self.adapter_of_pair = [
            make_adapter(pair, t.shape, s.shape, index)
            for index, (pair, t, s) in enumerate(
                zip(pairs, self.teacher_model.outputs[1:], self.student_model.outputs[1:])
            )
        ]
        self.adapters = [a for a in self.adapter_of_pair if a is not None]

    @property
    def teacher_layers(self):
        return [p.teacher_layer for p in self.pairs]

    def teacher_feature_shapes(self):
        """Per-example shapes of the teacher's features, in the pairs' order."""
        return [tuple(t.shape[1:]) for t in self.teacher_model.outputs[1:]]

    def teacher(self, x):
        """`(logits, {layer name: features})` of the teacher in inference mode."""
        logits, *features = self.teacher_model(x, training=False)
        return logits, dict(zip(self.teacher_layers, features))

    def student(self, x, training):
        """`(logits, [features])` of the student, from one forward pass."""
        logits, *features = self.student_model(x, training=training)
        return logits, features

    def loss(self, teacher_features, student_features, sample_weight=None):
        """The weighted sum of the pairs' losses (adapters applied).

        Args:
            teacher_features: dict from teacher layer name to features.
            student_features: the student's features, in the pairs' order.
            sample_weight: optional per-example weights.
        """
        total = 0.0
        for pair, adapter, s in zip(self.pairs, self.adapter_of_pair, student_features):
            if adapter is not None:
                s = adapter(s)
            total += pair.weight * pair.loss(teacher_features[pair.teacher_layer], s, sample_weight=sample_weight)
        return total
