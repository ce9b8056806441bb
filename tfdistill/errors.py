"""Every exception tfdistill raises of its own, under one base class.

`except tfdistill.TfdistillError` catches them all. Each also derives from
the built-in exception its kind of failure has always raised (`ValueError`
for bad input, `RuntimeError` for a failed training step), so existing
`except ValueError` handlers keep working. Bad arguments are plain
`ValueError`s, as in Keras.
"""


class TfdistillError(Exception):
    """Base class of tfdistill's own exceptions."""


class NonFiniteLossError(TfdistillError, RuntimeError):
    """A NaN or Inf reached a training step; training stopped before that step's update.

    Raised as is when a loss term is the first non-finite value; its
    subclasses `NonFiniteDataError` and `NonFiniteUpdateError` say that the
    inputs (or the teacher's outputs) or the gradients were, so
    `except NonFiniteLossError` catches all three.

    Attributes:
        step: the optimizer step (0-based) that was stopped.
        terms: dict of every loss term's value at that step (empty when the
            step stopped before its forward pass).
        where: the first non-finite value, in the order the data flows:
            `"inputs"`, `"labels"`, `"sample_weight"`, `"cached_teacher_logits"`,
            `"cached_teacher_features"`, `"teacher_logits"`, `"teacher_features"`,
            a loss term's name, or `"gradients"`.
        checks: dict from each checked source to 0.0 (finite) or NaN.
    """

    def __init__(self, message, step=None, terms=None, where=None, checks=None):
        super().__init__(message)
        self.step = step
        self.terms = terms or {}
        self.where = where
        self.checks = checks or {}


class NonFiniteDataError(NonFiniteLossError):
    """The batch (inputs, labels, sample weights) or the teacher's outputs held a NaN or Inf."""


class NonFiniteUpdateError(NonFiniteLossError):
    """The gradients held a NaN or Inf while every loss term was finite."""


class CacheIntegrityError(TfdistillError, ValueError):
    """A cache file on disk does not hold what its integrity record says it was written with."""


class ConfigError(TfdistillError, ValueError):
    """A run config, run folder or command-line argument that cannot be used; the message says which and why."""


class ExportVerificationError(TfdistillError, ValueError):
    """An export disagrees with its Keras model more than allowed; nothing was written.

    Attributes:
        report: the verification report of the refused model.
    """

    def __init__(self, message, report=None):
        super().__init__(message)
        self.report = report
