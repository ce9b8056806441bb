"""Paired comparisons over seeds: mean difference and its 95 % interval."""

import dataclasses
import math
from typing import Sequence

# Two-sided 95 % quantiles of Student's t for 1..30 degrees of freedom.
_T_975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)


def t_quantile_975(degrees_of_freedom: int) -> float:
    """The 97.5 % quantile of Student's t (a two-sided 95 % interval).

    Exact to three decimals up to 30 degrees of freedom; beyond, the
    Cornish-Fisher expansion `z + (z³ + z) / (4 df)`, within 0.003.
    """
    if degrees_of_freedom < 1:
        raise ValueError(
            "Invalid value for argument `degrees_of_freedom`: expected an int >= 1. "
            f"Received: degrees_of_freedom={degrees_of_freedom!r}"
        )
    if degrees_of_freedom <= len(_T_975):
        return _T_975[degrees_of_freedom - 1]
    z = 1.959964
    return z + (z**3 + z) / (4 * degrees_of_freedom)


@dataclasses.dataclass(frozen=True)
class PairedDifference:
    """The mean of paired differences (e.g. distilled - alone, per seed) and its 95 % interval.

    Attributes:
        differences: the differences, one per pair.
        mean: their mean.
        low, high: the 95 % t-interval of the mean (`nan` for one pair).
    """

    differences: tuple
    mean: float
    low: float
    high: float

    @property
    def beyond_noise(self) -> bool:
        """Whether the interval excludes zero."""
        return self.low > 0 or self.high < 0

    def __str__(self):
        if math.isnan(self.low):
            return f"{self.mean:+.2f} (one pair: no interval)"
        return f"{self.mean:+.2f} [{self.low:+.2f}, {self.high:+.2f}]"


def paired_difference(differences: Sequence[float]) -> PairedDifference:
    """Mean and 95 % t-interval of paired differences.

    Args:
        differences: one difference per pair, e.g. distilled minus alone
            accuracy for each seed (same initial weights and data order).

    Returns:
        A `PairedDifference`.

    Example:
        >>> print(paired_difference([0.2, 0.4, 0.6]))
        +0.40 [-0.10, +0.90]
    """
    values = tuple(float(d) for d in differences)
    if not values:
        raise ValueError("Invalid value for argument `differences`: expected at least one value. Received: []")
    mean = sum(values) / len(values)
    if len(values) == 1:
        return PairedDifference(values, mean, math.nan, math.nan)
    variance = sum((d - mean) ** 2 for d in values) / (len(values) - 1)
    half = t_quantile_975(len(values) - 1) * math.sqrt(variance / len(values))
    return PairedDifference(values, mean, mean - half, mean + half)
