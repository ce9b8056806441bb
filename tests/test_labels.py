"""Distilling without labels, and with some: `fit(x)`, the UNLABELED id, each term's reduction."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfdistill
from tfdistill import labels, losses, offline
from tfdistill.labels import UNLABELED
from tfdistill.teacher_outputs import TeacherOutputs
from helpers import dense_model, toy_data


def make_distiller(**compile_kwargs):
    keras.utils.set_random_seed(0)
    distiller = tfdistill.Distiller(dense_model(16, "teacher"), dense_model(4, "student"))
    compile_kwargs.setdefault("optimizer", keras.optimizers.SGD(0.1))
    distiller.compile(**compile_kwargs)
    return distiller


def log_softmax(z):
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def hand_hard(student, y):
    return -log_softmax(student)[np.arange(len(y)), y]


def hand_kd(teacher, student, temperature=1.0):
    p = np.exp(log_softmax(teacher / temperature))
    return temperature**2 * np.sum(p * (log_softmax(teacher / temperature) - log_softmax(student / temperature)), -1)


RNG = np.random.default_rng(0)
TEACHER = RNG.normal(size=(6, 3)).astype("float32")
STUDENT = RNG.normal(size=(6, 3)).astype("float32")
Y = np.array([2, UNLABELED, 0, 1, UNLABELED, UNLABELED], "int32")
W = np.array([1.0, 2.0, 0.5, 3.0, 1.0, 0.0], "float32")


def terms(distiller, y, sample_weight=None, teacher=TEACHER, student=STUDENT):
    _, values, _ = distiller._loss_terms(
        None if y is None else tf.constant(y), TeacherOutputs(tf.constant(teacher)), tf.constant(student),
        None if sample_weight is None else tf.constant(sample_weight),
    )
    return {name: float(value) for name, value in values.items()}


def test_the_hard_loss_is_the_mean_over_labeled_examples_and_the_soft_loss_over_all():
    distiller = make_distiller(hard_weight=0.5)
    labeled = Y != UNLABELED
    got = terms(distiller, Y, W)
    # Keras's `ignore_class` reduction: Σ w·m·l / Σ m.
    assert got["hard_loss"] == pytest.approx(np.sum((W * hand_hard(STUDENT, np.maximum(Y, 0)))[labeled]) / labeled.sum(), rel=1e-5)
    assert got["soft_loss"] == pytest.approx(np.mean(W * hand_kd(TEACHER, STUDENT)), rel=1e-5)


def test_masking_the_unlabeled_examples_equals_slicing_the_labeled_ones_for_the_hard_loss():
    distiller = make_distiller(hard_weight=0.5)
    labeled = Y != UNLABELED
    sliced = terms(distiller, Y[labeled], W[labeled], TEACHER[labeled], STUDENT[labeled])
    assert terms(distiller, Y, W)["hard_loss"] == pytest.approx(sliced["hard_loss"], rel=1e-6)


def test_a_batch_without_any_labeled_example_has_a_hard_loss_of_zero_not_nan():
    distiller = make_distiller(hard_weight=0.5)
    got = terms(distiller, np.full(6, UNLABELED, "int32"))
    assert got["hard_loss"] == 0.0
    assert got["soft_loss"] == pytest.approx(np.mean(hand_kd(TEACHER, STUDENT)), rel=1e-5)


def test_every_label_given_reduces_as_before():
    distiller = make_distiller(hard_weight=0.5)
    y = np.array([2, 1, 0, 1, 0, 2], "int32")
    assert terms(distiller, y, W)["hard_loss"] == pytest.approx(np.mean(W * hand_hard(STUDENT, y)), rel=1e-5)


def test_batch_weights_by_hand_with_positions():
    y = tf.constant([[1, UNLABELED, 2], [0, 0, UNLABELED]])
    logits = tf.zeros((2, 3, 4))
    weight = tf.constant([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]])  # the last position of the first example is padding
    over_tokens = labels.batch_weights(y, logits, weight, token_reduction="mean_over_tokens")
    # p·m = [[1, 0, 0], [1, 1, 0]], Σ p·m = 3, 6 positions: weights 6/3 = 2 on the labeled real positions.
    np.testing.assert_allclose(over_tokens.hard.numpy(), [[2, 0, 0], [2, 2, 0]])
    np.testing.assert_allclose(over_tokens.soft.numpy(), [[6 / 5, 6 / 5, 0], [6 / 5, 6 / 5, 6 / 5]])
    keras_way = labels.batch_weights(y, logits, weight, token_reduction="sum_over_batch_size")
    # Σ m = 4 labeled positions (padding included, as Keras counts them): 6/4 on p·m.
    np.testing.assert_allclose(keras_way.hard.numpy(), [[1.5, 0, 0], [1.5, 1.5, 0]])
    np.testing.assert_array_equal(over_tokens.labels.numpy(), [[1, 0, 2], [0, 0, 0]])


def test_keep_labels_per_class_keeps_that_many_of_each_class_and_is_reproducible():
    y = np.repeat(np.arange(4), 25)
    kept = labels.keep_labels_per_class(y, 3, seed=1)
    assert [int(np.sum(kept == c)) for c in range(4)] == [3, 3, 3, 3]
    assert np.all((kept == UNLABELED) | (kept == y))
    np.testing.assert_array_equal(kept, labels.keep_labels_per_class(y, 3, seed=1))
    assert not np.array_equal(kept, labels.keep_labels_per_class(y, 3, seed=2))
    with pytest.raises(ValueError, match="labels_per_class"):
        labels.keep_labels_per_class(y, 0)


def test_a_negative_label_other_than_unlabeled_is_refused():
    distiller = make_distiller()
    x, y = toy_data(16)
    y[3] = -2
    with pytest.raises(ValueError, match=r"or -1 for an example without a label"):
        distiller.fit(x, y, verbose=0)


@pytest.mark.parametrize("data", ["arrays", "dataset", "one_tuple", "none_label"])
def test_a_hard_weight_without_labels_is_refused_before_any_step(data):
    distiller = make_distiller(hard_weight=0.5)
    x, _ = toy_data(32)
    before = distiller.student.get_weights()
    element = {"arrays": None, "dataset": x, "one_tuple": (x,), "none_label": (x, None, np.ones(32, "float32"))}[data]
    with pytest.raises(ValueError, match=r"argument `hard_weight`.*no labels.*hard_weight=0\.5"):
        if data == "arrays":
            distiller.fit(x, verbose=0)
        else:
            distiller.fit(tf.data.Dataset.from_tensor_slices(element).batch(8), verbose=0)
    for got, want in zip(distiller.student.get_weights(), before):
        np.testing.assert_array_equal(got, want)


@pytest.mark.slow
@pytest.mark.parametrize("data", ["arrays", "dataset", "one_tuple", "none_label"])
def test_fit_without_labels_trains_the_student_on_the_teacher_alone(data):
    distiller = make_distiller(metrics=["accuracy"])
    x, _ = toy_data(32)
    before = distiller.student.get_weights()
    element = {"dataset": x, "one_tuple": (x,), "none_label": (x, None, np.ones(32, "float32"))}.get(data)
    train = x if data == "arrays" else tf.data.Dataset.from_tensor_slices(element).batch(8)
    history = distiller.fit(train, epochs=3, batch_size=8, verbose=0).history
    assert set(history) == {"loss", "soft_loss", "teacher_agreement"}
    assert history["soft_loss"][-1] < history["soft_loss"][0]
    assert any(not np.array_equal(a, b) for a, b in zip(distiller.student.get_weights(), before))


@pytest.mark.slow
def test_label_metrics_count_labeled_examples_only_and_agreement_counts_all():
    distiller = make_distiller(hard_weight=0.5, metrics=["accuracy"])
    x, y = toy_data(32)
    partial = y.copy()
    partial[::3] = UNLABELED
    logs = distiller.evaluate(x, partial, batch_size=32, verbose=0, return_dict=True)
    student = distiller.student.predict(x, verbose=0).argmax(-1)
    teacher = distiller.teacher.predict(x, verbose=0).argmax(-1)
    labeled = partial != UNLABELED
    assert logs["accuracy"] == pytest.approx(np.mean(student[labeled] == y[labeled]))
    assert logs["teacher_agreement"] == pytest.approx(np.mean(student == teacher))
    unlabeled_logs = distiller.evaluate(x, np.full(32, UNLABELED), batch_size=32, verbose=0, return_dict=True)
    assert unlabeled_logs["hard_loss"] == 0.0 and np.isfinite(unlabeled_logs["loss"])


def test_dkd_takes_the_teachers_top_class_where_a_label_is_missing():
    distiller = make_distiller(soft_loss=losses.DecoupledKD(temperature=2.0))
    teacher_top = TEACHER.argmax(-1).astype("int32")
    with_teacher_labels = terms(distiller, teacher_top)["soft_loss"]
    assert terms(distiller, None)["soft_loss"] == pytest.approx(with_teacher_labels, rel=1e-6)
    mixed = np.where(Y == UNLABELED, teacher_top, Y)
    assert terms(distiller, Y)["soft_loss"] == pytest.approx(terms(distiller, mixed)["soft_loss"], rel=1e-6)


@pytest.mark.slow
def test_an_unlabeled_offline_top_k_cache_trains():
    x, _ = toy_data(32)
    distiller = make_distiller(soft_loss=losses.KnowledgeDistillation(temperature=2.0))
    cache = offline.compute_teacher_logits(distiller.teacher, x, top_k=2, temperature=2.0, verbose=0)
    history = distiller.fit(offline.offline_dataset(x, None, cache, batch_size=8), epochs=2, verbose=0).history
    assert set(history) == {"loss", "soft_loss", "teacher_agreement"}
    assert np.all(np.isfinite(history["loss"]))


@pytest.mark.slow
def test_unlabeled_data_under_mirrored_strategy_logs_the_single_device_values():
    devices = [d.name for d in tf.config.list_logical_devices("CPU")]
    x, y = toy_data(64)
    partial = y.copy()
    partial[1::2] = UNLABELED
    results = []
    for strategy in (tf.distribute.OneDeviceStrategy(devices[0]), tf.distribute.MirroredStrategy(devices)):
        with strategy.scope():
            distiller = make_distiller(hard_weight=0.5, metrics=["accuracy"])
        # Labeled examples are spread evenly over the replicas' halves of each batch.
        ds = tf.data.Dataset.from_tensor_slices((x, partial)).batch(32)
        history = distiller.fit(ds, epochs=2, verbose=0).history
        results.append((history, distiller.student.get_weights()))
    (single, single_weights), (mirrored, mirrored_weights) = results
    for key in ("loss", "hard_loss", "soft_loss", "accuracy", "teacher_agreement"):
        np.testing.assert_allclose(mirrored[key], single[key], rtol=1e-5)
    for a, b in zip(single_weights, mirrored_weights):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_an_unlabeled_run_resumes_to_the_uninterrupted_weights(tmp_path):
    x, _ = toy_data(64)

    def pipeline():
        return tf.data.Dataset.from_tensor_slices(x).shuffle(64, seed=0, reshuffle_each_iteration=True).batch(16)

    reference = make_distiller(optimizer=keras.optimizers.Adam(0.01))
    reference.fit(pipeline(), epochs=3, verbose=0)
    backup = str(tmp_path / "backup")
    make_distiller(optimizer=keras.optimizers.Adam(0.01)).fit(
        pipeline(), epochs=2, verbose=0, callbacks=[tfdistill.callbacks.BackupAndRestore(backup, delete_checkpoint=False)]
    )
    resumed = make_distiller(optimizer=keras.optimizers.Adam(0.01))
    resumed.fit(pipeline(), epochs=3, verbose=0, callbacks=[tfdistill.callbacks.BackupAndRestore(backup)])
    for expected, got in zip(reference.student.get_weights(), resumed.student.get_weights()):
        np.testing.assert_array_equal(got, expected)
