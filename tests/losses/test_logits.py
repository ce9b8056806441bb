import math

import numpy as np
import pytest
import tensorflow as tf

import tfdistill
from tfdistill import losses
from tfdistill.losses import KnowledgeDistillation, hinton_kd, top_k_kd, top_k_logits

TEACHER = np.array([[2.0, 1.0, 0.0], [0.0, 0.0, 3.0]], dtype="float32")
STUDENT = np.array([[0.5, 0.5, 0.0], [1.0, -1.0, 0.0]], dtype="float32")


def _softmax(z):
    e = [math.exp(v) for v in z]
    return [v / sum(e) for v in e]


def _hand_kd(t, s, temperature):
    p = _softmax([v / temperature for v in t])
    q = _softmax([v / temperature for v in s])
    return temperature**2 * sum(pi * math.log(pi / qi) for pi, qi in zip(p, q))


def _hand_mse(t, s, temperature):
    p = _softmax([v / temperature for v in t])
    q = _softmax([v / temperature for v in s])
    return sum((pi - qi) ** 2 for pi, qi in zip(p, q)) / len(p)


@pytest.mark.parametrize("temperature", [1.0, 2.0, 4.0])
def test_hinton_kd_matches_hand_computed_values(temperature):
    values = losses.hinton_kd(TEACHER, STUDENT, temperature).numpy()
    expected = [_hand_kd(t, s, temperature) for t, s in zip(TEACHER, STUDENT)]
    np.testing.assert_allclose(values, expected, rtol=1e-5)


def test_hinton_kd_worked_example():
    # Two classes, teacher logits (1, 0), uniform student, T = 1:
    # p = (0.7311, 0.2689); KL = 0.7311 ln(1.4621) + 0.2689 ln(0.5379) = 0.11094.
    value = float(losses.hinton_kd([[1.0, 0.0]], [[0.0, 0.0]], 1.0)[0])
    assert value == pytest.approx(0.110944, abs=1e-5)


def test_softened_probability_mse_matches_hand_computed_values():
    values = losses.softened_probability_mse(TEACHER, STUDENT, 2.0).numpy()
    expected = [_hand_mse(t, s, 2.0) for t, s in zip(TEACHER, STUDENT)]
    np.testing.assert_allclose(values, expected, rtol=1e-5)
    # (0.7311 - 0.5)^2 twice, over two classes: 0.05339.
    assert float(losses.softened_probability_mse([[1.0, 0.0]], [[0.0, 0.0]], 1.0)[0]) == (
        pytest.approx(0.053388, abs=1e-5)
    )


def test_kd_is_zero_when_student_equals_teacher_and_shift_invariant():
    np.testing.assert_allclose(losses.hinton_kd(TEACHER, TEACHER, 3.0), 0.0, atol=1e-6)
    np.testing.assert_allclose(
        losses.hinton_kd(TEACHER, STUDENT, 3.0),
        losses.hinton_kd(TEACHER + 5.0, STUDENT - 2.0, 3.0),
        rtol=1e-5,
    )


@pytest.mark.parametrize("name", ["kd", "hinton_kd", "kl_divergence", "KD"])
def test_names_of_kd_all_mean_temperature_squared_kl(name):
    loss = losses.get(name)
    expected = np.mean([_hand_kd(t, s, 4.0) for t, s in zip(TEACHER, STUDENT)])
    assert float(loss(TEACHER, STUDENT)) == pytest.approx(expected, rel=1e-5)


def test_unknown_name_lists_valid_ones():
    with pytest.raises(ValueError, match=r"Expected one of \['dist', 'dkd', 'hinton_kd', 'kd', 'kl_divergence', 'ls_kd', 'mlkd', 'soft_mse'\]"):
        losses.get("kld")


@pytest.mark.parametrize("temperature", [0, -1.0, "4", None])
def test_bad_temperature_is_refused(temperature):
    with pytest.raises(ValueError, match="temperature"):
        losses.KnowledgeDistillation(temperature=temperature)


def test_sample_weight_is_applied_like_keras():
    loss = losses.KnowledgeDistillation(temperature=2.0)
    per_example = losses.hinton_kd(TEACHER, STUDENT, 2.0).numpy()
    weighted = float(loss(TEACHER, STUDENT, sample_weight=np.array([1.0, 0.0])))
    assert weighted == pytest.approx(per_example[0] / 2, rel=1e-5)


def test_standardize_logits_hand_computed():
    # (1, 2, 3): mean 2, sample std 1 -> (-1, 0, 1); (0, 0, 4): mean 4/3,
    # sample std sqrt(((4/3)^2 * 2 + (8/3)^2) / 2) = 2.3094.
    z = losses.standardize_logits([[1.0, 2.0, 3.0], [0.0, 0.0, 4.0]]).numpy()
    np.testing.assert_allclose(z[0], [-1.0, 0.0, 1.0], atol=1e-6)
    np.testing.assert_allclose(z[1], [-0.57735, -0.57735, 1.15470], atol=1e-5)


def test_logit_standardized_kd_is_kd_on_z_scores():
    def z(rows):
        out = []
        for row in rows:
            mean = sum(row) / len(row)
            std = math.sqrt(sum((v - mean) ** 2 for v in row) / (len(row) - 1))
            out.append([(v - mean) / std for v in row])
        return out

    expected = [_hand_kd(t, s, 2.0) for t, s in zip(z(TEACHER), z(STUDENT))]
    np.testing.assert_allclose(losses.hinton_kd(TEACHER, STUDENT, 2.0, standardize=True), expected, rtol=1e-5)
    # Invariant to the scale of either model's logits, unlike plain KD.
    np.testing.assert_allclose(
        losses.hinton_kd(TEACHER * 3.0, STUDENT * 0.5 + 1.0, 2.0, standardize=True), expected, rtol=1e-4
    )
    assert float(losses.get("ls_kd")(TEACHER, STUDENT)) == pytest.approx(np.mean(expected), rel=1e-5)


# ------------------------------------------------------------------ top-k KD
def test_top_k_logits_by_hand():
    values, classes = top_k_logits([[0.0, 2.0, 1.0, -1.0]], k=2, temperature=2.0)
    np.testing.assert_array_equal(classes, [[1, 2]])
    # Remainder logit: T * log(exp(0 / T) + exp(-1 / T)).
    np.testing.assert_allclose(values, [[2.0, 1.0, 2.0 * np.log(1.0 + np.exp(-0.5))]], rtol=1e-6)


def test_top_k_kd_by_hand():
    # Teacher [3, 1, 0] keeps class 0: bins p = softmax([3, log(e + 1)]);
    # the zero-logit student puts 1/3 on class 0 and 2/3 on the rest.
    values, classes = top_k_logits([[3.0, 1.0, 0.0]], k=1, temperature=1.0)
    p = np.array([np.exp(3.0), np.e + 1.0]) / (np.exp(3.0) + np.e + 1.0)
    q = np.array([1 / 3, 2 / 3])
    expected = np.sum(p * np.log(p / q))
    np.testing.assert_allclose(top_k_kd(values, classes, [[0.0, 0.0, 0.0]], 1.0), [expected], rtol=1e-5)


@pytest.mark.parametrize("temperature", [1.0, 4.0])
def test_top_k_kd_with_every_class_kept_is_hinton_kd_and_smaller_k_never_exceeds_it(temperature):
    rng = np.random.default_rng(0)
    teacher, student = rng.normal(0, 3, (16, 10)).astype("float32"), rng.normal(0, 1, (16, 10)).astype("float32")
    full = np.asarray(hinton_kd(teacher, student, temperature))
    values, classes = top_k_logits(teacher, k=10, temperature=temperature)
    np.testing.assert_allclose(top_k_kd(values, classes, student, temperature), full, rtol=1e-5, atol=1e-6)
    previous = np.zeros(16)
    for k in (1, 3, 6):  # coarser bins lose information: KL never grows
        values, classes = top_k_logits(teacher, k=k, temperature=temperature)
        partial = np.asarray(top_k_kd(values, classes, student, temperature))
        assert np.all(partial <= full + 1e-5) and np.all(partial >= previous - 1e-5)
        previous = partial


def test_top_k_kd_gradients_are_finite_with_every_class_kept():
    teacher = tf.constant([[2.0, 0.0, -1.0]])
    student = tf.Variable([[0.0, 1.0, 0.0]])
    values, classes = top_k_logits(teacher, k=3, temperature=2.0)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(top_k_kd(values, classes, student, 2.0))
    gradient = tape.gradient(loss, student)
    with tf.GradientTape() as tape:
        full = tf.reduce_sum(hinton_kd(teacher, student, 2.0))
    np.testing.assert_allclose(gradient, tape.gradient(full, student), rtol=1e-5, atol=1e-6)


def test_kd_class_reads_a_top_k_teacher():
    teacher, student = [[3.0, 1.0, 0.0]], [[0.5, 0.0, 0.0]]
    values, classes = top_k_logits(teacher, k=2, temperature=4.0)
    loss = KnowledgeDistillation(4.0)({"values": values, "classes": classes}, student)
    np.testing.assert_allclose(loss, top_k_kd(values, classes, student, 4.0)[0], rtol=1e-6)


def test_kd_refuses_a_top_k_teacher_when_standardized_or_scheduled():
    values, classes = top_k_logits([[3.0, 1.0, 0.0]], k=2, temperature=4.0)
    teacher = {"values": values, "classes": classes}
    with pytest.raises(ValueError, match="standardize=True"):
        KnowledgeDistillation(4.0, standardize=True)(teacher, [[0.0, 0.0, 0.0]])
    cooling = tfdistill.schedules.LinearWarmup(1.0, 10, initial=4.0)
    with pytest.raises(ValueError, match="cannot be standardized or follow a temperature schedule"):
        KnowledgeDistillation(cooling)(teacher, [[0.0, 0.0, 0.0]], step=0)


def test_top_k_kd_keeps_the_right_classes_per_row():
    # Different kept classes per row; each row checked against its own hand-made
    # (k + 1)-bin KL.
    teacher = np.array([[2.0, 0.0, 1.0, -1.0], [0.0, 3.0, -2.0, 1.0]], "float32")
    student = np.array([[0.5, 0.1, -0.3, 0.2], [1.0, -1.0, 0.0, 0.4]], "float32")
    values, classes = top_k_logits(teacher, k=2, temperature=1.0)
    got = np.asarray(top_k_kd(values, classes, student, 1.0))
    for row in range(2):
        kept = np.argsort(-teacher[row])[:2]
        rest = np.setdiff1d(np.arange(4), kept)
        p = np.exp(teacher[row]) / np.exp(teacher[row]).sum()
        q = np.exp(student[row]) / np.exp(student[row]).sum()
        p_bins = np.append(p[kept], p[rest].sum())
        q_bins = np.append(q[kept], q[rest].sum())
        np.testing.assert_allclose(got[row], np.sum(p_bins * np.log(p_bins / q_bins)), rtol=1e-5)
