"""The NaN/Inf guard of `Distiller.train_step`: nothing non-finite reaches the student.

A batch is checked twice, each time with one in-graph assertion:

1. before the student's forward pass: the inputs, labels and sample weights
   (a forward pass in training mode already changes BatchNorm statistics);
2. before the update: the teacher's outputs (cached or computed), every loss
   term and the gradients. A NaN pixel behind a ReLU leaves the loss finite
   and the gradients NaN, so the loss alone is not enough.

Each check is a list of `(name, value)` pairs, in the order the data flows;
`value` is a float32 scalar that is finite exactly when the named tensor is
(loss terms are their own value). A failing assertion carries every pair in
its message; `Distiller.fit` turns it into a `NonFiniteLossError` (or the
sibling `NonFiniteDataError` / `NonFiniteUpdateError`) naming the step and
the first non-finite value. XLA (`jit_compile=True`) drops assertions.
"""

import contextlib
import re

import keras
import numpy as np
import tensorflow as tf

from tfdistill.errors import NonFiniteDataError, NonFiniteLossError, NonFiniteUpdateError

MARKER = "tfdistill: non-finite value at optimizer step"

# Where a value comes from, in the order the data flows through a step.
DESCRIPTIONS = {
    "inputs": "the inputs `x`",
    "labels": "the labels `y`",
    "sample_weight": "the sample weights",
    "cached_teacher_logits": "the cached teacher logits",
    "cached_teacher_features": "the cached teacher features",
    "teacher_logits": "the teacher's logits (computed online)",
    "teacher_features": "the teacher's features (computed online)",
    "gradients": "the gradients",
}
_DATA = {
    "inputs", "labels", "sample_weight", "cached_teacher_logits",
    "cached_teacher_features", "teacher_logits", "teacher_features",
}
_CAUSES = {
    "data": "a corrupted example or cache file (check the data and its preprocessing)",
    "loss": "a learning rate too high, float16 overflow, or a loss undefined for these values",
    "update": "an operation whose gradient is undefined at this point (sqrt or log at 0, "
    "a division by a value near 0) or a learning rate too high",
}


def finite_flag(values):
    """0.0 when every floating tensor in `values` is finite, NaN otherwise; `None` if none is floating."""
    tensors = [
        v.values if isinstance(v, tf.IndexedSlices) else v
        for v in keras.tree.flatten(values)
        if v is not None
    ]
    tensors = [t for t in tensors if t.dtype.is_floating]
    if not tensors:
        return None
    finite = tf.reduce_all(tf.stack([tf.reduce_all(tf.math.is_finite(t)) for t in tensors]))
    return tf.where(finite, tf.constant(0.0), tf.constant(np.nan, tf.float32))


def assert_finite(step, checks):
    """One in-graph assertion that every value of `checks` is finite.

    Args:
        step: the optimizer's iteration counter.
        checks: list of `(name, float scalar or None)`; `None` values are skipped.

    Returns:
        A list with the assertion op, for `tf.control_dependencies`.
    """
    checks = [(name, tf.cast(value, tf.float32)) for name, value in checks if value is not None]
    if not checks:
        return []
    finite = tf.reduce_all(tf.math.is_finite(tf.stack([value for _, value in checks])))
    data = [MARKER, step]
    for name, value in checks:
        data += [name, value]
    return [tf.debugging.Assert(finite, data, summarize=1, name="assert_finite")]


def data_checks(student_x, teacher_x, y, sample_weight):
    """The batch's `(name, finite flag)` pairs, checked before the forward pass."""
    inputs = student_x if teacher_x is student_x else [student_x, teacher_x]
    return [
        ("inputs", finite_flag(inputs)),
        ("labels", finite_flag(y)),
        ("sample_weight", finite_flag(sample_weight)),
    ]


def update_checks(teacher, total, terms, gradients, optimizer):
    """What must be finite before the update, in the order the data flows.

    Args:
        teacher: the step's `tfdistill.teacher_outputs.TeacherOutputs`.
        total: the weighted loss.
        terms: dict of unweighted loss terms.
        gradients: the gradients about to be applied.
        optimizer: the Distiller's optimizer.
    """
    prefix = "cached_" if teacher.cached else ""
    logits = teacher.logits
    if teacher.is_top_k:
        # A top-k cache's remainder logit is -inf when every class is kept; NaN and +inf are not.
        logits = [logits[..., :-1], tf.maximum(logits[..., -1], logits.dtype.min)]
    checks = [
        (f"{prefix}teacher_logits", finite_flag(logits)),
        (f"{prefix}teacher_features", finite_flag(teacher.features)),
        *terms.items(),
        ("loss", total),
    ]
    # A LossScaleOptimizer expects non-finite gradients at times: it skips
    # those steps and lowers the scale, so they never reach the student.
    if not isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        checks.append(("gradients", finite_flag(gradients)))
    return checks


def error_from(error):
    """The `NonFiniteLossError` (or sibling) that an assertion failure stands for, or `None`."""
    message = getattr(error, "message", str(error))
    if MARKER not in message:
        return None
    fields = re.findall(r"\[([^\[\]]*)\]", message[message.index(MARKER) - 1 :])
    step = int(fields[1])
    values = {}
    for name, value in zip(fields[2::2], fields[3::2]):
        try:
            values[name] = float(value)
        except ValueError:
            break
    checks = {name: value for name, value in values.items() if name in DESCRIPTIONS}
    terms = {name: value for name, value in values.items() if name not in DESCRIPTIONS}
    where = next((name for name, value in values.items() if not np.isfinite(value)), "loss")
    bad_terms = [name for name, value in terms.items() if not np.isfinite(value) and name != "loss"]
    if not bad_terms and not np.isfinite(terms.get("loss", 0.0)):
        bad_terms = ["loss"]
    kind = "data" if where in _DATA else "update" if where == "gradients" else "loss"
    cls = {"data": NonFiniteDataError, "update": NonFiniteUpdateError, "loss": NonFiniteLossError}[kind]
    if bad_terms:
        headline = (
            f"Non-finite loss at optimizer step {step} (0-based): "
            + ", ".join(f"`{name}` is {terms[name]}" for name in bad_terms)
            + f". All terms: {terms}."
        )
    elif terms:
        headline = (
            f"Non-finite update at optimizer step {step} (0-based): every loss term is finite "
            f"({terms}) but {DESCRIPTIONS[where]} hold NaN or Inf."
        )
    else:
        headline = f"Non-finite data at optimizer step {step} (0-based): {DESCRIPTIONS[where]} hold NaN or Inf."
    if where in DESCRIPTIONS:
        headline += f" First non-finite value: {DESCRIPTIONS[where]} (`{where}`)."
    stage = "forward pass and update" if not terms else "update"
    return cls(
        f"{headline} Training stopped before this step's {stage}, so the student keeps the "
        "weights of the last good step (and a BackupAndRestore checkpoint, the last good "
        f"state). Likely cause: {_CAUSES[kind]}.",
        step=step,
        terms=terms,
        where=where,
        checks=checks,
    )


@contextlib.contextmanager
def raising_non_finite_errors():
    """Turns the guard's failed assertions into `NonFiniteLossError` and its subclasses."""
    try:
        yield
    except tf.errors.InvalidArgumentError as error:
        non_finite = error_from(error)
        if non_finite is None:
            raise
        raise non_finite from error
