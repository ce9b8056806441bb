"""What a `Distiller` step logs: its loss terms, the teacher agreement and the compiled metrics.

`loss` and the unweighted `hard_loss`, `soft_loss` (and `feature_loss`) are
means over the batch's examples, the hard loss over the labeled ones only
(see `tfdistill.labels`); `teacher_agreement` is the share of examples
(positions) where the student's top class is the teacher's; the compiled
metrics count labeled examples (real positions) only. A batch without labels
logs `UNLABELED_LOG_NAMES` alone.
"""

import keras
import tensorflow as tf

from tfdistill import compat, fidelity, labels, objective

# Without labels, the label metrics and the hard loss say nothing.
UNLABELED_LOG_NAMES = frozenset({"loss", "soft_loss", "feature_loss", "teacher_agreement"})


def update_trackers(distiller, student_x, total, terms, teacher, student_logits, weights):
    """Adds one batch to `distiller`'s loss trackers and its teacher-agreement tracker.

    Args:
        distiller: the `Distiller`; its trackers are `loss` (Keras's) and
            `NAME_tracker` for each term.
        student_x: the student's input, for the batch size.
        total: the weighted loss, scaled for the replicas.
        terms: `{name: unweighted loss}`, scaled for the replicas.
        teacher: the batch's `TeacherOutputs`.
        student_logits: shape `(batch, ..., num_classes)`.
        weights: the batch's `tfdistill.labels.BatchWeights`.
    """
    batch_size = tf.cast(tf.shape(keras.tree.flatten(student_x)[0])[0], tf.float32)
    per_example = tf.cast(tf.size(weights.labeled), tf.float32) / batch_size
    trackers = [(compat.loss_tracker(distiller), total, batch_size)] + [
        (getattr(distiller, f"{name}_tracker"), value,
         tf.reduce_sum(weights.labeled) / per_example if name == "hard_loss" else batch_size)
        for name, value in terms.items()
    ]
    for tracker, value, count in trackers:
        tracker.update_state(objective.unscale_for_replicas(value), sample_weight=count)
    agreement, agreement_weight = fidelity.agreement(teacher, student_logits, weights.position)
    distiller.agreement_tracker.update_state(agreement, sample_weight=agreement_weight)


def metric_logs(distiller, student_x, y, student_logits, weights):
    """The step's logs: compiled metrics on the labeled examples (positions) only; without labels, none.

    Args:
        distiller: the `Distiller`, whose `compute_metrics` gives the logs.
        student_x: the student's input.
        y: the labels, or `None`.
        student_logits: shape `(batch, ..., num_classes)`.
        weights: the batch's `tfdistill.labels.BatchWeights`.

    Returns:
        `{name: value}`, every tracker's and metric's result.
    """
    y_true, logits, sample_weight = labels.metric_inputs(weights, student_logits)
    logs = compat.logs_for_multi_worker(distiller.compute_metrics(student_x, y_true, logits, sample_weight))
    if y is None:
        logs = {name: value for name, value in logs.items() if name in UNLABELED_LOG_NAMES}
    return logs
