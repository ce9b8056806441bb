"""Losses between intermediate features of the teacher and the student.

Features are `(batch, ...)` tensors: `(batch, height, width, channels)` maps
from convolutions or `(batch, units)` vectors. Each function returns one value
per example, shape `(batch,)`, computed in float32. The `Distiller` takes them
through `tfdistill.FeaturePair`, which names the layers and adds the learned
adapter that FitNets needs when the shapes differ.
"""

import keras
from keras import ops

from tfdistill.losses.base import DistillationLoss, check_positive


def _flatten(features):
    features = ops.cast(features, "float32")
    return ops.reshape(features, (ops.shape(features)[0], -1))


def hint_loss(teacher_features, student_features):
    """FitNets' hint loss: mean squared error between features, per example.

    The student's features must already have the teacher's shape (the
    `FeaturePair` adapter, a learned 1x1 convolution or dense layer, maps them).

    Args:
        teacher_features: shape `(batch, ...)`.
        student_features: same shape.

    Returns:
        Shape `(batch,)`: `mean_j (s_j − t_j)²` over every feature `j`.

    Example:
        >>> float(hint_loss([[1.0, 2.0]], [[0.0, 0.0]])[0])
        2.5

    Reference:
        Romero et al., "FitNets: Hints for Thin Deep Nets", ICLR 2015.
    """
    difference = _flatten(student_features) - _flatten(teacher_features)
    return ops.mean(ops.square(difference), axis=-1)


def attention_map(features, power=2.0, epsilon=1e-12):
    """Spatial attention of a feature map: `normalize(mean_c |f_c|^p)`.

    Args:
        features: shape `(batch, height, width, channels)`.
        power: `p`, 2 in the paper.
        epsilon: guards the L2 normalisation of an all-zero map.

    Returns:
        Shape `(batch, height · width)`, each row of unit L2 norm.
    """
    features = ops.cast(features, "float32")
    energy = ops.mean(ops.power(ops.abs(features), power), axis=-1)
    energy = ops.reshape(energy, (ops.shape(energy)[0], -1))
    norm = ops.sqrt(ops.sum(ops.square(energy), axis=-1, keepdims=True))
    return energy / (norm + epsilon)


def attention_transfer(teacher_features, student_features, power=2.0):
    """Attention transfer: mean squared difference of attention maps, per example.

    The channel counts may differ; the spatial sizes must agree.

    Args:
        teacher_features: shape `(batch, height, width, teacher_channels)`.
        student_features: shape `(batch, height, width, student_channels)`.
        power: `p` of `attention_map`.

    Returns:
        Shape `(batch,)`: `mean_j (a_s,j − a_t,j)²` over the `height · width`
        positions, in `[0, 4 / (height · width)]`.

    Example:
        >>> t = [[[[1.0], [0.0]]]]  # a 1x2 map with one channel
        >>> float(attention_transfer(t, [[[[0.0], [1.0]]]])[0])
        1.0

    Reference:
        Zagoruyko and Komodakis, "Paying More Attention to Attention: Improving
        the Performance of Convolutional Neural Networks via Attention
        Transfer", ICLR 2017.
    """
    difference = attention_map(student_features, power) - attention_map(teacher_features, power)
    return ops.mean(ops.square(difference), axis=-1)


@keras.saving.register_keras_serializable(package="tfdistill")
class HintLoss(DistillationLoss):
    """FitNets' hint loss, see `hint_loss`. Registered as `"hint"` (features only).

    Args:
        name: name of the loss.
        reduction: Keras reduction over the batch.

    Example:
        >>> pair = FeaturePair("conv2", "conv2", loss="hint")  # doctest: +SKIP

    Reference:
        Romero et al., "FitNets: Hints for Thin Deep Nets", ICLR 2015.
    """

    per_position = False  # features, not logits

    def __init__(self, name="hint", reduction="sum_over_batch_size"):
        super().__init__(name=name, reduction=reduction)

    def call(self, teacher_features, student_features):
        return hint_loss(teacher_features, student_features)


@keras.saving.register_keras_serializable(package="tfdistill")
class AttentionTransfer(DistillationLoss):
    """Attention transfer, see `attention_transfer`. Registered as `"attention"`.

    The paper weighs it by `β / 2` with `β = 1000`; set that as the
    `FeaturePair`'s `weight`.

    Args:
        power: `p` of the attention map. Defaults to 2.
        name: name of the loss.
        reduction: Keras reduction over the batch.

    Example:
        >>> pair = FeaturePair("block2", "block2", loss="attention", weight=500.0)  # doctest: +SKIP

    Reference:
        Zagoruyko and Komodakis, "Paying More Attention to Attention", ICLR 2017.
    """

    per_position = False  # features, not logits

    def __init__(self, power=2.0, name="attention", reduction="sum_over_batch_size"):
        super().__init__(name=name, reduction=reduction)
        self.power = check_positive("power", power)

    def call(self, teacher_features, student_features):
        return attention_transfer(teacher_features, student_features, self.power)

    def get_config(self):
        return {**super().get_config(), "power": self.power}
