"""The task comparison's measures, against values computed by hand, and its refusal to overwrite."""

import math

import numpy as np
import pytest

from tasks import comparison


def test_accuracy_and_cross_entropy_in_bits_count_real_positions_only():
    logits = np.log(np.array([[[0.5, 0.25, 0.25], [0.25, 0.5, 0.25], [1 / 3, 1 / 3, 1 / 3]]]))
    labels = np.array([[0, 2, 1]])
    weights = np.array([[1.0, 1.0, 0.0]])
    assert comparison._weighted_accuracy(logits, labels, weights) == 0.5
    # -log2(0.5) = 1 bit and -log2(0.25) = 2 bits; the padded third position is not counted.
    assert comparison._cross_entropy_bits(logits, labels, weights) == pytest.approx(1.5)
    assert comparison._cross_entropy_bits(logits, labels) == pytest.approx((1 + 2 + math.log2(3)) / 3)


def test_an_earlier_run_is_never_replaced_without_overwrite(tmp_path):
    (tmp_path / "results.json").write_text("{}")
    with pytest.raises(FileExistsError, match="results.json from an earlier run; nothing was changed"):
        comparison.compare_alone_and_distilled("task", {}, None, None, comparison.task_recipe(), str(tmp_path))
    assert (tmp_path / "results.json").read_text() == "{}"
