"""The NaN/Inf guard of `Distiller.train_step`: nothing non-finite reaches the student.

Every step checks, in the order the data flows, that everything its update
depends on is finite: the batch (inputs, labels, sample weights), the
teacher's outputs (cached or computed), every loss term and the gradients.
(A NaN pixel behind a ReLU leaves the loss finite and the gradients NaN, so
the loss alone is not enough.) When one is not, the step applies no update,
puts back the student's non-trainable variables (BatchNorm statistics, which
the forward pass moved) and records the step and every checked value in a
`GuardState`; `Distiller.fit` raises a `NonFiniteLossError` (or the sibling
`NonFiniteDataError` / `NonFiniteUpdateError`) right after that step, naming
the step and the first non-finite value.

The decision is a condition in the graph, not an assertion, so the guard
holds under XLA (`jit_compile=True` or `"auto"`, which drop assertions) and
under `tf.distribute`: one all-reduce of the checked values makes every
replica take the same decision. Once a step has failed, every later step of
the same `fit` (a `steps_per_execution` block) skips its update too.
"""

import keras
import numpy as np
import tensorflow as tf

from tfdistill import compat
from tfdistill.errors import NonFiniteDataError, NonFiniteLossError, NonFiniteUpdateError

# The most values one step checks (inputs, labels, weights, teacher outputs, loss terms, gradients).
MAX_CHECKS = 16

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
_DATA = set(DESCRIPTIONS) - {"gradients"}
_BATCH = {"inputs", "labels", "sample_weight"}  # bad before the forward pass: its loss terms say nothing
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


def step_checks(student_x, teacher_x, y, sample_weight, teacher, terms, total, gradients, optimizer):
    """Everything a step's update depends on, as `(name, float scalar or None)` in the order the data flows.

    A flag (`finite_flag`) stands for a tensor; loss terms are their own value.
    """
    inputs = student_x if teacher_x is student_x else [student_x, teacher_x]
    prefix = "cached_" if teacher.cached else ""
    logits = teacher.logits
    if teacher.is_top_k:
        # A top-k cache's remainder logit is -inf when every class is kept; NaN and +inf are not.
        logits = [logits[..., :-1], tf.maximum(logits[..., -1], logits.dtype.min)]
    checks = [
        ("inputs", finite_flag(inputs)),
        ("labels", finite_flag(y)),
        ("sample_weight", finite_flag(sample_weight)),
        (f"{prefix}teacher_logits", finite_flag(logits)),
        (f"{prefix}teacher_features", finite_flag(teacher.features)),
        *terms.items(),
        ("loss", total),
    ]
    # A LossScaleOptimizer expects non-finite gradients at times: it skips
    # those steps and lowers the scale, so they never reach the student.
    if not isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        checks.append(("gradients", finite_flag(gradients)))
    return [(name, value) for name, value in checks if value is not None]


class GuardState:
    """The step that failed (-1: none) and the values it checked, kept across steps.

    A plain object (not a Keras layer), so nothing of it is saved with the model.
    """

    def __init__(self):
        first = tf.VariableAggregation.ONLY_FIRST_REPLICA
        self.failed_step = tf.Variable(-1, dtype=tf.int64, trainable=False, aggregation=first)
        self.values = tf.Variable(tf.zeros([MAX_CHECKS]), trainable=False, aggregation=first)
        self.names = []

    def passed(self, step, checks):
        """In the graph: whether this step may update the student; records a first failure.

        Args:
            step: the optimizer's iteration counter.
            checks: from `step_checks`.

        Returns:
            A boolean scalar, the same on every replica.
        """
        if len(checks) > MAX_CHECKS:
            raise ValueError(f"The guard checks at most {MAX_CHECKS} values per step; this step has {len(checks)}.")
        self.names = [name for name, _ in checks]
        values = tf.stack([tf.cast(value, tf.float32) for _, value in checks])
        values = tf.pad(values, [[0, MAX_CHECKS - len(checks)]])
        # Summed over replicas: a NaN anywhere makes the sum NaN, and each loss
        # term (already divided by the replica count) sums to its global value.
        values = tf.distribute.get_replica_context().all_reduce("sum", values)
        passed = tf.logical_and(tf.reduce_all(tf.math.is_finite(values)), self.failed_step < 0)
        first_failure = tf.logical_and(tf.logical_not(passed), self.failed_step < 0)
        self.values.assign(tf.where(first_failure, values, self.values))
        self.failed_step.assign(tf.where(first_failure, tf.cast(step, tf.int64), self.failed_step))
        return passed

    def update(self, optimizer, gradients, variables, checks, model, saved):
        """In the graph: applies the gradients unless a check fails; then puts back `model`'s non-trainable variables.

        Args:
            optimizer: the optimizer.
            gradients: the step's gradients, one per variable.
            variables: the trainable variables.
            checks: from `step_checks`, or a false value to apply without checks.
            model: the student, whose non-trainable variables `saved` holds.
            saved: from `snapshot`, taken before the forward pass.
        """
        if not checks:
            optimizer.apply_gradients(zip(gradients, variables))
            return
        passed = self.passed(optimizer.iterations, checks)
        apply_if(passed, optimizer, gradients, variables)
        restore_unless(passed, model, saved)

    def reset(self):
        self.failed_step.assign(-1)

    def raise_if_failed(self):
        """Raises the recorded failure's `NonFiniteLossError` (and forgets it); nothing if none."""
        step = int(self.failed_step.numpy())
        if step < 0:
            return
        values = dict(zip(self.names, self.values.numpy().tolist()))
        self.reset()
        raise error_for(step, values)


def apply_if(passed, optimizer, gradients, variables):
    """`optimizer.apply_gradients` when `passed`, else nothing; under any strategy and XLA.

    A strategy that synchronises through `merge_call` cannot branch around
    it in a replica context; there the branch runs in the cross-replica
    context (as Keras's `LossScaleOptimizer` does).
    """

    def apply(gradients):
        optimizer.apply_gradients(zip(gradients, variables))
        return tf.constant(True)

    skip = lambda: tf.constant(False)  # noqa: E731
    if compat.strategy_supports_no_merge_call():
        tf.cond(passed, lambda: apply(gradients), skip)
        return

    def cross_replica(distribution, passed, gradients):
        def apply_on_each_replica():
            distribution.extended.call_for_each_replica(apply, args=(gradients,))
            return tf.constant(True)

        tf.cond(distribution.experimental_local_results(passed)[0], apply_on_each_replica, skip)

    tf.distribute.get_replica_context().merge_call(cross_replica, args=(passed, gradients))


def snapshot(model):
    """The values of `model`'s non-trainable variables (BatchNorm statistics), before a forward pass."""
    return [tf.identity(v.value) for v in model.non_trainable_variables]


def restore_unless(passed, model, saved):
    """Puts back the non-trainable variables `snapshot` saved, unless the step `passed`."""
    for variable, value in zip(model.non_trainable_variables, saved):
        variable.assign(tf.where(passed, variable.value, value))


def error_for(step, values):
    """The `NonFiniteLossError` (or sibling) for a failed step's checked values.

    Args:
        step: the optimizer step (0-based) that was stopped.
        values: name -> value, in the order the data flows: finite flags (0.0
            or NaN) for the sources in `DESCRIPTIONS`, values for the loss terms.
    """
    where = next((name for name, value in values.items() if not np.isfinite(value)), "loss")
    checks = {name: value for name, value in values.items() if name in DESCRIPTIONS}
    terms = {name: value for name, value in values.items() if name not in DESCRIPTIONS}
    if where in _BATCH:
        terms = {}
    kind = "data" if where in _DATA else "update" if where == "gradients" else "loss"
    bad_terms = [name for name, value in terms.items() if not np.isfinite(value) and name != "loss"]
    if not bad_terms and not np.isfinite(terms.get("loss", 0.0)):
        bad_terms = ["loss"]
    if bad_terms:
        headline = (
            f"Non-finite loss at optimizer step {step} (0-based): "
            + ", ".join(f"`{name}` is {terms[name]}" for name in bad_terms)
            + f". All terms: {terms}."
        )
    elif kind == "update":
        headline = (
            f"Non-finite update at optimizer step {step} (0-based): every loss term is finite "
            f"({terms}) but {DESCRIPTIONS[where]} hold NaN or Inf."
        )
    else:
        headline = f"Non-finite data at optimizer step {step} (0-based): {DESCRIPTIONS[where]} hold NaN or Inf."
    if where in DESCRIPTIONS:
        headline += f" First non-finite value: {DESCRIPTIONS[where]} (`{where}`)."
    cls = {"data": NonFiniteDataError, "update": NonFiniteUpdateError, "loss": NonFiniteLossError}[kind]
    return cls(
        f"{headline} Training stopped without this step's update, so the student keeps the "
        "weights (and BatchNorm statistics) of the last good step, and a BackupAndRestore "
        f"checkpoint the last good state. Likely cause: {_CAUSES[kind]}.",
        step=step,
        terms=terms,
        where=where,
        checks=checks,
    )


class RaiseOnNonFinite(keras.callbacks.Callback):
    """Raises the guard's error right after the step that failed (`Distiller.fit` adds it first)."""

    def __init__(self, state):
        super().__init__()
        self.state = state

    def on_train_begin(self, logs=None):
        self.state.reset()

    def on_train_batch_end(self, batch, logs=None):
        self.state.raise_if_failed()
