"""Token-level distillation: logits with positions, per-position weights, masks and reductions."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfdistill
from tfdistill import losses, tokens
from tfdistill.offline import offline_dataset, read_top_k_cache, streaming_offline_dataset, write_teacher_logits
from helpers import loss_terms

VOCABULARY, LENGTH, CLASSES = 12, 4, 3

# Two sequences of 4 positions, 3 classes; the second has two padded positions.
TEACHER = np.array(
    [
        [[2.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.0, 1.0, 3.0], [0.5, 0.0, 0.0]],
        [[0.0, 0.0, 2.0], [1.0, 0.0, 0.0], [9.0, 0.0, 0.0], [0.0, 9.0, 0.0]],
    ],
    dtype="float32",
)
STUDENT = np.array(
    [
        [[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.5, 0.0]],
        [[0.0, 1.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 9.0], [9.0, 0.0, 0.0]],
    ],
    dtype="float32",
)
LABELS = np.array([[0, 1, 2, 0], [2, 0, 0, 0]], dtype="int32")
WEIGHTS = np.array([[1, 1, 1, 1], [1, 1, 0, 0]], dtype="float32")


def kl_by_hand(teacher_row, student_row, temperature=1.0):
    """T² · KL(softmax(t/T) ‖ softmax(s/T)), from the definition."""
    p = [math.exp(v / temperature) for v in teacher_row]
    q = [math.exp(v / temperature) for v in student_row]
    p = [v / sum(p) for v in p]
    q = [v / sum(q) for v in q]
    return temperature**2 * sum(pi * math.log(pi / qi) for pi, qi in zip(p, q))


def cross_entropy_by_hand(label, row):
    return -math.log(math.exp(row[label]) / sum(math.exp(v) for v in row))


def per_position(function, *arrays):
    return np.array([[function(*(a[i][j] for a in arrays)) for j in range(LENGTH)] for i in range(2)])


KD_T2 = per_position(lambda t, s: kl_by_hand(t, s, 2.0), TEACHER.tolist(), STUDENT.tolist())
CE = per_position(cross_entropy_by_hand, LABELS.tolist(), STUDENT.tolist())


def tagger(width, mask_zero=False, name=None):
    """Token ids -> logits per token; with `mask_zero`, Dense layers carry the Embedding's mask."""
    inputs = keras.Input((LENGTH,), dtype="int32")
    hidden = keras.layers.Embedding(VOCABULARY, width, mask_zero=mask_zero)(inputs)
    hidden = keras.layers.Dense(width, activation="relu")(hidden)
    return keras.Model(inputs, keras.layers.Dense(CLASSES)(hidden), name=name)


def compiled(soft_loss, token_reduction="mean_over_tokens", hard_weight=1.0):
    distiller = tfdistill.Distiller(tagger(8), tagger(4))
    distiller.compile("sgd", soft_loss=soft_loss, hard_weight=hard_weight, soft_weight=1.0,
                      token_reduction=token_reduction)
    return distiller


# ------------------------------------------------------------ reductions by hand
def test_mean_over_tokens_is_the_weighted_mean_over_real_positions():
    distiller = compiled(losses.KnowledgeDistillation(temperature=2.0))
    _, terms = loss_terms(distiller, LABELS, TEACHER, STUDENT, sample_weight=WEIGHTS)
    assert float(terms["soft_loss"]) == pytest.approx((KD_T2 * WEIGHTS).sum() / 6, rel=1e-5)
    assert float(terms["hard_loss"]) == pytest.approx((CE * WEIGHTS).sum() / 6, rel=1e-5)


def test_labels_with_a_trailing_axis_of_one_give_the_same_losses():
    distiller = compiled(losses.KnowledgeDistillation(temperature=2.0))
    _, terms = loss_terms(distiller, LABELS[..., None], TEACHER, STUDENT, sample_weight=WEIGHTS)
    assert float(terms["hard_loss"]) == pytest.approx((CE * WEIGHTS).sum() / 6, rel=1e-5)


def test_sum_over_batch_size_divides_by_every_position_padding_included():
    distiller = compiled(losses.KnowledgeDistillation(temperature=2.0), token_reduction="sum_over_batch_size")
    _, terms = loss_terms(distiller, LABELS, TEACHER, STUDENT, sample_weight=WEIGHTS)
    assert float(terms["soft_loss"]) == pytest.approx((KD_T2 * WEIGHTS).sum() / 8, rel=1e-5)
    assert float(terms["hard_loss"]) == pytest.approx((CE * WEIGHTS).sum() / 8, rel=1e-5)


def test_per_example_weights_weigh_every_position_of_the_example():
    distiller = compiled(losses.KnowledgeDistillation(temperature=2.0))
    _, terms = loss_terms(distiller, LABELS, TEACHER, STUDENT, sample_weight=np.array([1.0, 3.0]))
    expected = (KD_T2[0].sum() + 3 * KD_T2[1].sum()) / (4 + 3 * 4)
    assert float(terms["soft_loss"]) == pytest.approx(expected, rel=1e-5)


def test_a_loss_called_alone_reduces_positions_the_keras_way():
    loss = losses.KnowledgeDistillation(temperature=2.0)
    assert float(loss(TEACHER, STUDENT)) == pytest.approx(KD_T2.mean(), rel=1e-5)
    assert float(loss(TEACHER, STUDENT, sample_weight=WEIGHTS)) == pytest.approx((KD_T2 * WEIGHTS).sum() / 8, rel=1e-5)


def test_position_weights_broadcast_example_weights_and_apply_the_mask():
    weights = tokens.position_weights(LABELS, np.array([2.0, 0.5]), mask=WEIGHTS > 0)
    np.testing.assert_allclose(weights.numpy(), [[2, 2, 2, 2], [0.5, 0.5, 0, 0]])
    with pytest.raises(ValueError, match="one weight per example, shape \\(batch,\\), or one per position"):
        tokens.position_weights(LABELS[:, 0], WEIGHTS)


def test_an_unknown_token_reduction_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="Expected one of \\['mean_over_tokens', 'sum_over_batch_size'\\]"):
        compiled("kd", token_reduction="mean")


# ------------------------------------------------------------- padding and masks
SOFT_LOSSES = ["kd", "ls_kd", "soft_mse", "dkd", "dist", "mlkd"]


@pytest.mark.parametrize("name", SOFT_LOSSES)
def test_padded_positions_never_move_the_student(name):
    """No gradient reaches the student's logits at a position of weight 0, for every logit loss."""
    distiller = compiled(name)
    student = tf.Variable(STUDENT)
    with tf.GradientTape() as tape:
        total, _ = loss_terms(distiller, LABELS, TEACHER, student, sample_weight=WEIGHTS)
    gradient = tape.gradient(total, student).numpy()
    assert np.all(gradient[1, 2:] == 0.0)
    assert np.any(gradient[0] != 0.0) and np.any(gradient[1, :2] != 0.0)


@pytest.mark.parametrize("name", ["kd", "soft_mse", "dkd"])
def test_padding_equals_slicing_for_per_position_losses(name):
    """The mean over real tokens of a padded batch is the loss on the real tokens alone."""
    distiller = compiled(name)
    _, padded = loss_terms(distiller, LABELS, TEACHER, STUDENT, sample_weight=WEIGHTS)
    real = WEIGHTS.reshape(-1) > 0
    rows = lambda a: a.reshape(-1, a.shape[-1])[real]  # noqa: E731
    _, sliced = loss_terms(distiller, LABELS.reshape(-1)[real], rows(TEACHER), rows(STUDENT))
    for term in ("hard_loss", "soft_loss"):
        assert float(padded[term]) == pytest.approx(float(sliced[term]), rel=1e-5)


def test_a_keras_mask_from_the_student_weighs_like_padding_weights():
    student = tagger(4, mask_zero=True)
    teacher = tagger(8)
    x = np.array([[3, 4, 5, 6], [7, 8, 0, 0]], dtype="int32")
    distiller = tfdistill.Distiller(teacher, student)
    distiller.compile("sgd", hard_weight=1.0, soft_weight=1.0)
    student_logits = student(x)
    assert student_logits._keras_mask is not None
    teacher_logits = teacher(x)
    _, masked = loss_terms(distiller, LABELS, teacher_logits, student_logits)
    _, weighted = loss_terms(distiller, 
        LABELS, teacher_logits, tf.identity(student_logits), sample_weight=WEIGHTS
    )
    for term in ("hard_loss", "soft_loss"):
        assert float(masked[term]) == pytest.approx(float(weighted[term]), rel=1e-6)


# ------------------------------------------------------------------------- fit
def sequences(n=96, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(1, VOCABULARY, size=(n, LENGTH)).astype("int32")
    lengths = rng.integers(2, LENGTH + 1, size=n)
    real = np.arange(LENGTH)[None] < lengths[:, None]
    x[~real] = 0
    return x, (x % CLASSES).astype("int32"), real.astype("float32")


@pytest.mark.slow
def test_fit_trains_a_tagger_per_token_and_logs_per_token_accuracy():
    x, y, w = sequences()
    teacher = tagger(16)
    teacher.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    teacher.fit(x, y, sample_weight=w, epochs=30, verbose=0)
    distiller = tfdistill.Distiller(teacher, tagger(8, mask_zero=True))
    distiller.compile(keras.optimizers.Adam(0.02), metrics=["accuracy"])
    history = distiller.fit(x, y, sample_weight=w, batch_size=32, epochs=15, verbose=0).history
    assert history["soft_loss"][-1] < history["soft_loss"][0]
    logits = distiller.predict(x, verbose=0)
    accuracy = ((logits.argmax(-1) == y) * w).sum() / w.sum()
    evaluated = distiller.evaluate(x, y, sample_weight=w, verbose=0, return_dict=True)
    assert evaluated["accuracy"] == pytest.approx(accuracy, abs=1e-6)
    report = tfdistill.measure_fidelity(teacher, distiller.student, x, y, sample_weight=w)
    assert report.examples == int(w.sum())


def test_labels_without_positions_are_refused_before_training():
    x, y, _ = sequences(8)
    distiller = compiled("kd")
    with pytest.raises(ValueError, match="Expected rank 2, shape \\(batch, ...\\) with one class id per position"):
        distiller.fit(x, y[:, 0], epochs=1, verbose=0)


# ---------------------------------------------------------------------- top-k
def test_top_k_cache_over_time_matches_full_kd_with_every_class():
    values, classes = losses.top_k_logits(TEACHER, k=CLASSES, temperature=2.0)
    assert values.shape == (2, LENGTH, CLASSES + 1) and classes.shape == (2, LENGTH, CLASSES)
    np.testing.assert_allclose(losses.top_k_kd(values, classes, STUDENT, 2.0), KD_T2, rtol=1e-5)


@pytest.mark.slow
def test_top_k_disk_cache_is_memory_mapped_and_trains_per_token(tmp_path):
    x, y, w = sequences(40)
    teacher, student = tagger(8), tagger(4)
    table = tf.constant(x)
    path = str(tmp_path / "top2")
    write_teacher_logits(teacher, lambda i: tf.gather(table, i), len(x), path, top_k=2, temperature=1.0,
                         batch_size=16, verbose=0)
    cache = read_top_k_cache(path)
    assert isinstance(cache.values, np.memmap) and cache.values.shape == (1, 40, LENGTH, 3)
    assert cache.classes.shape == (1, 40, LENGTH, 2) and cache.classes.dtype == np.uint16
    expected_values, expected_classes = losses.top_k_logits(teacher.predict(x, verbose=0), 2, 1.0)
    np.testing.assert_allclose(cache.values[0], expected_values, atol=2e-2)  # stored as float16
    np.testing.assert_array_equal(cache.classes[0], expected_classes)
    with pytest.raises(FileExistsError, match="already exists"):
        write_teacher_logits(teacher, lambda i: tf.gather(table, i), len(x), path, top_k=2, temperature=1.0)
    train = streaming_offline_dataset(lambda i: tf.gather(table, i), y, path, batch_size=16, sample_weight=w)
    distiller = tfdistill.Distiller(teacher, student)
    distiller.compile("adam", soft_loss=losses.KnowledgeDistillation(temperature=1.0), metrics=["accuracy"])
    history = distiller.fit(train, epochs=2, verbose=0).history
    assert np.isfinite(history["soft_loss"]).all()


def test_in_memory_cache_of_token_logits_with_sample_weights():
    x, y, w = sequences(32)
    teacher = tagger(8)
    logits = tfdistill.offline.compute_teacher_logits(teacher, x, verbose=0)
    assert logits.shape == (1, 32, LENGTH, CLASSES)
    x_batch, y_batch, w_batch = next(iter(offline_dataset(x, y, logits, batch_size=32, shuffle=False,
                                                          sample_weight=w)))
    np.testing.assert_array_equal(x_batch["x"], x)
    np.testing.assert_array_equal(w_batch, w)
    distiller = tfdistill.Distiller(teacher, tagger(4))
    distiller.compile("adam")
    _, cached = loss_terms(distiller, y, x_batch["teacher_logits"], distiller.student(x), w)
    _, online = loss_terms(distiller, y, teacher(x), distiller.student(x), w)
    assert float(cached["soft_loss"]) == pytest.approx(float(online["soft_loss"]), rel=1e-2)  # float16 cache


# -------------------------------------------------------------------- fidelity
def test_fidelity_per_token_counts_real_positions_only():
    report = tfdistill.fidelity_from_logits(TEACHER, STUDENT, LABELS, sample_weight=WEIGHTS)
    real = WEIGHTS > 0
    agree = TEACHER.argmax(-1) == STUDENT.argmax(-1)
    assert report.examples == 6
    assert report.top1_agreement == pytest.approx(agree[real].mean())
    assert report.kl_divergence == pytest.approx(per_position(kl_by_hand, TEACHER.tolist(), STUDENT.tolist())[real].mean(),
                                                 rel=1e-6)
    assert report.student_accuracy == pytest.approx((STUDENT.argmax(-1) == LABELS)[real].mean())


# ------------------------------------------------------------ positions without labels
def test_unlabeled_positions_leave_the_hard_loss_as_zero_weights_do_and_still_count_in_the_soft_loss():
    distiller = compiled(losses.KnowledgeDistillation(temperature=2.0))
    partial = LABELS.copy()
    partial[0, 1:3] = tfdistill.labels.UNLABELED
    _, unlabeled = loss_terms(distiller, partial, TEACHER, STUDENT, sample_weight=WEIGHTS)
    zeroed = WEIGHTS.copy()
    zeroed[0, 1:3] = 0
    _, weighted_out = loss_terms(distiller, LABELS, TEACHER, STUDENT, sample_weight=zeroed)
    assert float(unlabeled["hard_loss"]) == pytest.approx(float(weighted_out["hard_loss"]), rel=1e-6)
    assert float(unlabeled["hard_loss"]) == pytest.approx((CE * zeroed).sum() / zeroed.sum(), rel=1e-5)
    assert float(unlabeled["soft_loss"]) == pytest.approx((KD_T2 * WEIGHTS).sum() / 6, rel=1e-5)


@pytest.mark.slow
def test_sequences_without_labels_train_per_token_on_the_teacher():
    x, _, w = sequences()
    teacher = tagger(16)
    distiller = tfdistill.Distiller(teacher, tagger(8, mask_zero=True))
    distiller.compile(keras.optimizers.Adam(0.02), metrics=["accuracy"])
    history = distiller.fit(tf.data.Dataset.from_tensor_slices(x).batch(32), epochs=5, verbose=0).history
    assert set(history) == {"loss", "soft_loss", "teacher_agreement"}
    assert history["soft_loss"][-1] < history["soft_loss"][0]
    student = distiller.predict(x, verbose=0).argmax(-1)
    agreement = ((student == teacher.predict(x, verbose=0).argmax(-1)) * w).sum() / w.sum()
    evaluated = distiller.evaluate(x, verbose=0, return_dict=True)
    assert evaluated["teacher_agreement"] == pytest.approx(agreement, abs=1e-6)
