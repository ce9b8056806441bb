"""DIST: distillation from a stronger teacher by matching correlations.

The teacher's exact probabilities matter less than their ranking; DIST asks
the student to keep the teacher's relations, per example across classes
(inter-class) and per class across the batch (intra-class), measured by
Pearson correlation, which ignores scale and shift.
"""

import keras
from keras import ops

from tfdistill.losses.base import DistillationLoss, check_positive, check_temperature, serialize_temperature


def pearson_correlation(a, b, axis=-1, epsilon=1e-8):
    """Pearson correlation of `a` and `b` along `axis`.

    Args:
        a: a float tensor.
        b: same shape as `a`.
        axis: the axis along which to correlate.
        epsilon: added to the product of the norms.

    Returns:
        `a`'s shape without `axis`, values in `[-1, 1]`.

    Example:
        >>> float(pearson_correlation([[1.0, 2.0, 3.0]], [[2.0, 4.0, 6.5]])[0])
        0.9979...
    """
    a = a - ops.mean(a, axis=axis, keepdims=True)
    b = b - ops.mean(b, axis=axis, keepdims=True)
    norms = ops.sqrt(ops.sum(a * a, axis=axis)) * ops.sqrt(ops.sum(b * b, axis=axis))
    return ops.sum(a * b, axis=axis) / (norms + epsilon)


def dist_loss(teacher_logits, student_logits, temperature=1.0, inter_weight=1.0, intra_weight=1.0):
    """DIST: `T² · (β · (1 − inter) + γ · (1 − intra))`, per example.

    With `P = softmax(z/T)` of shape `(batch, num_classes)`, `inter_i` is the
    Pearson correlation of the teacher's and student's row `i` (one example's
    class probabilities) and `intra` the mean over classes of the correlation of
    columns (one class's probability across the batch). The intra-class term is
    a property of the whole batch: it is added to every example's value, so the
    batch mean is the paper's loss.

    Args:
        teacher_logits: shape `(batch, num_classes)`.
        student_logits: shape `(batch, num_classes)`.
        temperature: `T > 0` (1 in the paper).
        inter_weight: `β >= 0` (1 in the paper; 2 for ImageNet).
        intra_weight: `γ >= 0` (1 in the paper; 2 for ImageNet).

    Returns:
        Shape `(batch,)`, in `[0, 2 · T² · (β + γ)]`; zero where the student's
        probabilities are an affine function of the teacher's.

    Example:
        >>> t = [[2.0, 1.0, 0.0], [0.0, 0.0, 3.0]]
        >>> [round(float(v), 4) for v in dist_loss(t, t)]
        [0.0, 0.0]

    Reference:
        Huang, You, Wang, Qian and Xu, "Knowledge Distillation from A Stronger
        Teacher", NeurIPS 2022.
    """
    p_teacher = ops.softmax(ops.cast(teacher_logits, "float32") / temperature, axis=-1)
    p_student = ops.softmax(ops.cast(student_logits, "float32") / temperature, axis=-1)
    inter = 1.0 - pearson_correlation(p_student, p_teacher, axis=-1)
    intra = 1.0 - ops.mean(pearson_correlation(p_student, p_teacher, axis=0))
    return (temperature**2) * (inter_weight * inter + intra_weight * intra)


@keras.saving.register_keras_serializable(package="tfdistill")
class DIST(DistillationLoss):
    """DIST's inter- and intra-class correlation loss, see `dist_loss`. Registered as `"dist"`.

    The intra-class term compares classes across the batch, so it needs
    batches of several examples; under `tf.distribute` it is computed on each
    replica's share of the batch, as in the authors' multi-GPU code.

    Args:
        temperature: `T > 0`. Defaults to 1.
        inter_weight: `β`, weight of the per-example term. Defaults to 1.
        intra_weight: `γ`, weight of the per-class term. Defaults to 1.
        name: name of the loss.
        reduction: Keras reduction over the batch.

    Example:
        >>> loss = DIST(inter_weight=2.0, intra_weight=2.0)
        >>> value = loss(teacher_logits, student_logits)  # doctest: +SKIP

    Reference:
        Huang et al., "Knowledge Distillation from A Stronger Teacher",
        NeurIPS 2022.
    """

    relates_rows = True  # compares rows across the batch

    def __init__(
        self,
        temperature=1.0,
        inter_weight=1.0,
        intra_weight=1.0,
        name="dist",
        reduction="sum_over_batch_size",
    ):
        super().__init__(name=name, reduction=reduction)
        self.temperature = check_temperature(temperature)
        self.inter_weight = check_positive("inter_weight", inter_weight, allow_zero=True)
        self.intra_weight = check_positive("intra_weight", intra_weight, allow_zero=True)

    def call(self, teacher_logits, student_logits):
        return dist_loss(
            teacher_logits, student_logits, self.current_temperature(), self.inter_weight, self.intra_weight
        )

    def get_config(self):
        return {
            **super().get_config(),
            "temperature": serialize_temperature(self.temperature),
            "inter_weight": self.inter_weight,
            "intra_weight": self.intra_weight,
        }
