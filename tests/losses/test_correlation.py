import math

import numpy as np
import pytest

from tfdistill import losses

TEACHER = np.array([[2.0, 1.0, 0.0], [0.0, 0.5, 3.0], [1.0, 1.0, -1.0]], dtype="float32")
STUDENT = np.array([[0.5, 0.5, 0.0], [1.0, -1.0, 0.0], [0.0, 2.0, 0.0]], dtype="float32")


def _softmax(z, temperature):
    e = [math.exp(v / temperature) for v in z]
    return [v / sum(e) for v in e]


def _pearson(a, b):
    ma, mb = sum(a) / len(a), sum(b) / len(b)
    cov = sum((x - ma) * (y - mb) for x, y in zip(a, b))
    return cov / math.sqrt(sum((x - ma) ** 2 for x in a) * sum((y - mb) ** 2 for y in b))


def _hand_dist(teacher, student, temperature, beta, gamma):
    pt = [_softmax(row, temperature) for row in teacher]
    ps = [_softmax(row, temperature) for row in student]
    inter = [1 - _pearson(s, t) for s, t in zip(ps, pt)]
    columns = range(len(pt[0]))
    intra = 1 - sum(_pearson([r[c] for r in ps], [r[c] for r in pt]) for c in columns) / len(columns)
    return [temperature**2 * (beta * i + gamma * intra) for i in inter]


@pytest.mark.parametrize("temperature,beta,gamma", [(1.0, 1.0, 1.0), (4.0, 2.0, 2.0), (1.0, 1.0, 0.0)])
def test_dist_matches_hand_computed_values(temperature, beta, gamma):
    values = losses.dist_loss(TEACHER, STUDENT, temperature, beta, gamma).numpy()
    np.testing.assert_allclose(values, _hand_dist(TEACHER, STUDENT, temperature, beta, gamma), rtol=1e-4)


def test_pearson_worked_example():
    # a = (1, 2, 3), b = (2, 4, 6.5): centred (-1, 0, 1) and (-2.1667, -0.1667, 2.3333);
    # r = 4.5 / (sqrt(2) * sqrt(10.1667)) = 0.99795.
    assert float(losses.pearson_correlation([[1.0, 2.0, 3.0]], [[2.0, 4.0, 6.5]])[0]) == (
        pytest.approx(0.997949, abs=1e-5)
    )


def test_dist_ignores_affine_changes_of_the_probabilities_but_not_of_their_order():
    # Zero only if the student's probabilities correlate perfectly with the teacher's.
    np.testing.assert_allclose(losses.dist_loss(TEACHER, TEACHER), 0.0, atol=1e-6)
    assert float(np.mean(losses.dist_loss(TEACHER, -TEACHER))) > 1.0


def test_dist_mean_is_the_papers_batch_loss():
    loss = losses.DIST(temperature=1.0)
    expected = np.mean(_hand_dist(TEACHER, STUDENT, 1.0, 1.0, 1.0))
    assert float(loss(TEACHER, STUDENT)) == pytest.approx(expected, rel=1e-4)
