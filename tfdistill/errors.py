"""Public exceptions."""


class NonFiniteLossError(RuntimeError):
    """A loss term became NaN or Inf; training stopped before that step's update.

    Attributes:
        step: the optimizer step (0-based) whose loss was not finite.
        terms: dict of every loss term's value at that step.
    """

    def __init__(self, message, step=None, terms=None):
        super().__init__(message)
        self.step = step
        self.terms = terms or {}
