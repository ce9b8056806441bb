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


def near_chance(accuracy: float, num_classes: int, margin: float = 0.2) -> bool:
    """Whether `accuracy` is within `margin` of the way from chance (1 / classes) to 100 %.

    Example:
        >>> near_chance(0.102, 10), near_chance(0.85, 10)
        (True, False)
    """
    chance = 1.0 / num_classes
    return accuracy < chance + margin * (1.0 - chance)


def describe_gain(alone: float, distilled: float, num_classes: int) -> str:
    """One line on what distilled - alone (accuracies in [0, 1]) says, with its caveats.

    A gain between students near chance says nothing about distillation; one
    seed's difference is within the seed-to-seed noise unless it is large.

    Example:
        >>> print(describe_gain(0.0996, 0.1020, 10))
        Distillation: +0.24 points over the student alone. Both students are near chance (9.96 % and 10.20 %, chance 10.00 %): the difference says nothing about distillation; train longer or on more data.
    """
    text = f"Distillation: {100 * (distilled - alone):+.2f} points over the student alone."
    if near_chance(alone, num_classes) or near_chance(distilled, num_classes):
        which = "Both students are" if near_chance(alone, num_classes) and near_chance(distilled, num_classes) else "A student is"
        return (
            f"{text} {which} near chance ({100 * alone:.2f} % and {100 * distilled:.2f} %, chance "
            f"{100 / num_classes:.2f} %): the difference says nothing about distillation; train longer or on more data."
        )
    return text
