import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfdistill
from tfdistill import offline
from tfdistill.data import to_float_images
from helpers import image_student, image_teacher, small_images


@pytest.fixture
def images():
    return small_images()


@pytest.mark.slow
@pytest.mark.parametrize("views", [1, 3])
def test_shuffled_examples_stay_paired_with_their_teacher_outputs(images, views):
    x, y = images
    teacher = image_teacher()
    logits = offline.compute_teacher_logits(teacher, x, views=views, dtype="float32", verbose=0)
    assert logits.shape == (views, 40, 4)
    seen_views = set()
    for epoch in range(2):
        for batch_x, batch_y in offline.offline_dataset(x, y, logits, batch_size=8, seed=epoch):
            recomputed = teacher(batch_x["x"], training=False).numpy()
            np.testing.assert_allclose(batch_x["teacher_logits"].numpy(), recomputed, rtol=1e-5, atol=1e-5)
            for row in recomputed:
                seen_views.add(int(np.argmin(np.abs(logits[:, :, 0] - row[0]).min(axis=1))))
    assert len(seen_views) == views  # every view is drawn


@pytest.mark.slow
@pytest.mark.parametrize("dtype", ["uint8", "float32"])
def test_materialized_views_give_the_very_batches_of_rebuilt_views(images, dtype):
    x, y = images
    x = x if dtype == "uint8" else to_float_images(x)
    logits = offline.compute_teacher_logits(image_teacher(), x, views=3, dtype="float32", verbose=0)
    kept = offline.offline_dataset(x, y, logits, batch_size=16, seed=4, view_seed=0, materialize_views=True)
    rebuilt = offline.offline_dataset(x, y, logits, batch_size=16, seed=4, view_seed=0, materialize_views=False)
    for _ in range(2):  # two epochs: the reshuffled order and the redrawn views agree too
        batches = list(zip(kept, rebuilt))
        assert len(batches) == 3
        for (kept_x, kept_y), (rebuilt_x, rebuilt_y) in batches:
            np.testing.assert_array_equal(kept_y.numpy(), rebuilt_y.numpy())
            np.testing.assert_array_equal(kept_x["x"].numpy(), rebuilt_x["x"].numpy())
            np.testing.assert_array_equal(kept_x["teacher_logits"].numpy(), rebuilt_x["teacher_logits"].numpy())
            assert kept_x["x"].dtype == tf.float32


def test_every_view_is_kept_as_uint8_for_uint8_images(images):
    x, _ = images
    stored = offline.views.all_views(x, 3, seed=0)
    assert stored.shape == (3, 40, 6, 6, 1) and stored.dtype == np.uint8
    np.testing.assert_array_equal(stored[0, ..., 0], x)  # view 0 is the image itself
    assert not np.array_equal(stored[1], stored[0])


def test_views_are_augmented_and_view_zero_is_the_image(images):
    x, _ = images
    logits = offline.compute_teacher_logits(image_teacher(), x, views=2, dtype="float32", verbose=0)
    assert not np.allclose(logits[1], logits[0])


def test_view_zero_equals_plain_predictions(images):
    x, _ = images
    teacher = image_teacher()
    logits = offline.compute_teacher_logits(teacher, x, views=1, dtype="float32", verbose=0)
    np.testing.assert_allclose(
        logits[0], teacher.predict(x.astype("float32")[..., None] / 255.0, verbose=0), rtol=1e-5
    )


def test_cache_is_reused_and_keyed_by_teacher_and_data(images, tmp_path):
    x, _ = images
    teacher = image_teacher()
    first = offline.cached_teacher_logits(teacher, x, cache_dir=str(tmp_path), verbose=0)
    assert len(list(tmp_path.iterdir())) == 1
    again = offline.cached_teacher_logits(teacher, x, cache_dir=str(tmp_path), verbose=0)
    np.testing.assert_array_equal(first, again)
    assert len(list(tmp_path.iterdir())) == 1
    weights = teacher.get_weights()
    weights[-1][0] += 1.0
    teacher.set_weights(weights)
    changed = offline.cached_teacher_logits(teacher, x, cache_dir=str(tmp_path), verbose=0)
    assert len(list(tmp_path.iterdir())) == 2
    assert not np.array_equal(first, changed)
    offline.cached_teacher_logits(teacher, x[::-1], cache_dir=str(tmp_path), verbose=0)
    assert len(list(tmp_path.iterdir())) == 3  # a new order is new data


def test_a_wrapper_computing_something_else_from_the_same_weights_gets_its_own_cache(images, tmp_path):
    x, _ = images
    teacher = image_teacher()
    inputs = keras.Input((6, 6, 1))
    mirrored = keras.layers.Average()([teacher(inputs), teacher(keras.ops.flip(inputs, axis=2))])
    averaged = keras.Model(inputs, mirrored, name="teacher")  # same weights, same name, other outputs
    plain = offline.cached_teacher_logits(teacher, x, cache_dir=str(tmp_path), dtype="float32", verbose=0)
    both = offline.cached_teacher_logits(averaged, x, cache_dir=str(tmp_path), dtype="float32", verbose=0)
    assert len(list(tmp_path.iterdir())) == 2
    expected = averaged.predict(to_float_images(x), verbose=0)
    np.testing.assert_allclose(both[0], expected, rtol=1e-5, atol=1e-6)
    assert not np.allclose(plain, both)


@pytest.mark.slow
def test_offline_fit_never_calls_the_teacher_and_matches_online_losses(images):
    x, y = images
    teacher, student = image_teacher(), image_student()
    logits = offline.compute_teacher_logits(teacher, x, dtype="float32", verbose=0)
    distiller = tfdistill.Distiller(teacher, student)
    distiller.compile(keras.optimizers.SGD(0.0))
    offline_logs = distiller.evaluate(
        offline.offline_dataset(x, y, logits, shuffle=False), return_dict=True, verbose=0
    )
    online_logs = distiller.evaluate(x.astype("float32")[..., None] / 255.0, y, return_dict=True, verbose=0)
    assert offline_logs["soft_loss"] == pytest.approx(online_logs["soft_loss"], rel=1e-5)
    teacher.call = None  # any teacher call from here on would fail
    distiller.fit(offline.offline_dataset(x, y, logits), epochs=1, verbose=0)


@pytest.mark.slow
def test_cache_size_figures(images):
    x, _ = images
    dense = offline.compute_teacher_logits(image_teacher(), x, views=2, verbose=0)
    top = offline.compute_teacher_logits(image_teacher(), x, views=2, verbose=0, top_k=2, temperature=4.0)
    assert dense.nbytes == offline.cache_size_bytes(40, 4, views=2)
    assert top.values.nbytes + top.classes.nbytes == offline.cache_size_bytes(40, 4, views=2, top_k=2)
    assert offline.cache_size_bytes(1_281_167, 1000) == 1_281_167 * 2000
    assert offline.cache_size_bytes(1_281_167, 1000, top_k=10) == 1_281_167 * 62


def test_bad_views():
    with pytest.raises(ValueError, match="views=0"):
        offline.compute_teacher_logits(image_teacher(), np.zeros((2, 6, 6), np.uint8), views=0)


@pytest.mark.slow
def test_single_view_order_matches_make_dataset_and_online_training(images):
    from tfdistill.data import make_dataset

    x, y = images
    teacher = image_teacher()
    logits = offline.compute_teacher_logits(teacher, x, dtype="float32", verbose=0)
    cached = offline.offline_dataset(x, y, logits, batch_size=8, seed=5)
    plain = make_dataset(x, y, batch_size=8, shuffle=True, seed=5)
    for _ in range(2):  # two epochs: the reshuffles agree too
        for (a, a_y), (b, b_y) in zip(cached, plain):
            np.testing.assert_array_equal(a["x"].numpy(), b.numpy())
            np.testing.assert_array_equal(a_y.numpy(), b_y.numpy())
    # Same order, so offline and online training give the same student.
    results = []
    for data in (cached, plain):
        keras.utils.set_random_seed(0)
        distiller = tfdistill.Distiller(teacher, image_student())
        distiller.compile(keras.optimizers.SGD(0.1))
        results.append(distiller.fit(data, epochs=2, verbose=0).history["loss"])
    np.testing.assert_allclose(results[0], results[1], rtol=1e-5)


def test_predict_on_an_offline_dataset_is_the_students(images):
    x, y = images
    teacher, student = image_teacher(), image_student()
    logits = offline.compute_teacher_logits(teacher, x, verbose=0)
    distiller = tfdistill.Distiller(teacher, student)
    predictions = distiller.predict(offline.offline_dataset(x, y, logits, shuffle=False), verbose=0)
    np.testing.assert_allclose(predictions, student.predict(x.astype("float32")[..., None] / 255.0, verbose=0), rtol=1e-5)


@pytest.mark.slow
def test_nan_teacher_logits_stop_training_naming_the_term_and_step_before_the_update(images):
    x, y = images
    teacher, student = image_teacher(), image_student()
    logits = offline.compute_teacher_logits(teacher, x, dtype="float32", verbose=0)
    logits[:, 20] = np.nan  # one view, one example, in the third batch of 8
    distiller = tfdistill.Distiller(teacher, student)
    distiller.compile(keras.optimizers.SGD(0.1))
    initial = student.get_weights()
    with pytest.raises(tfdistill.NonFiniteLossError, match=r"step 2 \(0-based\): `soft_loss` is nan\. All terms") as error:
        distiller.fit(offline.offline_dataset(x, y, logits, batch_size=8, shuffle=False), epochs=1, verbose=0)
    assert error.value.step == 2 and np.isfinite(error.value.terms["hard_loss"])
    after_error = student.get_weights()
    # The same two good steps, run alone, give the same weights: the bad update never happened.
    student.set_weights(initial)
    distiller.compile(keras.optimizers.SGD(0.1))
    distiller.fit(offline.offline_dataset(x[:16], y[:16], logits[:, :16], batch_size=8, shuffle=False), epochs=1, verbose=0)
    for a, b in zip(after_error, student.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6)
        assert np.all(np.isfinite(a))


# ------------------------------------------------------------- top-k caches
@pytest.mark.slow
def test_top_k_cache_keeps_the_largest_logits_and_pairs_survive_shuffling(images):
    x, y = images
    teacher = image_teacher()
    full = offline.compute_teacher_logits(teacher, x, views=2, dtype="float32", verbose=0)
    top = offline.compute_teacher_logits(teacher, x, views=2, dtype="float32", verbose=0, top_k=2, temperature=2.0)
    assert top.values.shape == (2, 40, 3) and top.classes.shape == (2, 40, 2) and top.temperature == 2.0
    np.testing.assert_allclose(top.values[..., :2], -np.sort(-full, axis=-1)[..., :2], rtol=1e-5)
    np.testing.assert_array_equal(np.take_along_axis(full, top.classes, -1), top.values[..., :2])
    for batch_x, _ in offline.offline_dataset(x, y, top, batch_size=8, seed=3):
        recomputed = teacher(batch_x["x"], training=False).numpy()
        np.testing.assert_array_equal(batch_x["teacher_classes"].numpy(), np.argsort(-recomputed, -1)[:, :2])
        np.testing.assert_allclose(batch_x["teacher_temperature"].numpy(), 2.0)


@pytest.mark.slow
def test_top_k_with_every_class_trains_exactly_like_the_full_cache(images):
    x, y = images
    teacher = image_teacher()
    full = offline.compute_teacher_logits(teacher, x, dtype="float32", verbose=0)
    top = offline.compute_teacher_logits(teacher, x, dtype="float32", verbose=0, top_k=4, temperature=4.0)
    histories = []
    for cache in (full, top):
        keras.utils.set_random_seed(0)
        distiller = tfdistill.Distiller(teacher, image_student())
        distiller.compile(keras.optimizers.SGD(0.1), soft_loss=tfdistill.losses.KnowledgeDistillation(4.0))
        histories.append(distiller.fit(offline.offline_dataset(x, y, cache, batch_size=8), epochs=2, verbose=0).history)
    np.testing.assert_allclose(histories[0]["soft_loss"], histories[1]["soft_loss"], rtol=1e-5)
    np.testing.assert_allclose(histories[0]["loss"], histories[1]["loss"], rtol=1e-5)


@pytest.mark.slow
def test_top_k_cache_refuses_other_losses_and_another_temperature_before_any_update(images):
    x, y = images
    teacher, student = image_teacher(), image_student()
    top = offline.compute_teacher_logits(teacher, x, verbose=0, top_k=2, temperature=4.0)
    distiller = tfdistill.Distiller(teacher, student)
    distiller.compile("sgd", soft_loss="dkd")
    with pytest.raises(ValueError, match="top-k logits"):
        distiller.fit(offline.offline_dataset(x, y, top), verbose=0)
    cooling = tfdistill.schedules.LinearWarmup(1.0, 10, initial=4.0)
    distiller.compile("sgd", soft_loss=tfdistill.losses.KnowledgeDistillation(cooling))
    with pytest.raises(ValueError, match="cannot follow a schedule"):
        distiller.fit(offline.offline_dataset(x, y, top), verbose=0)
    distiller.compile(keras.optimizers.SGD(0.1), soft_loss=tfdistill.losses.KnowledgeDistillation(2.0))
    initial = student.get_weights()
    with pytest.raises(tf.errors.InvalidArgumentError, match="temperature=2.0"):
        distiller.fit(offline.offline_dataset(x, y, top), verbose=0)
    for before, after in zip(initial, student.get_weights()):
        np.testing.assert_array_equal(before, after)


def test_top_k_needs_a_temperature_and_a_valid_k(images):
    x, _ = images
    with pytest.raises(ValueError, match="temperature=None"):
        offline.compute_teacher_logits(image_teacher(), x, top_k=2)
    with pytest.raises(ValueError, match="top_k=5"):
        offline.compute_teacher_logits(image_teacher(), x, top_k=5, temperature=1.0)


def test_top_k_disk_cache_is_reused_and_keyed_by_k_and_temperature(images, tmp_path):
    x, _ = images
    teacher = image_teacher()
    first = offline.cached_teacher_logits(teacher, x, cache_dir=str(tmp_path), verbose=0, top_k=2, temperature=4.0)
    again = offline.cached_teacher_logits(teacher, x, cache_dir=str(tmp_path), verbose=0, top_k=2, temperature=4.0)
    assert isinstance(again, offline.TopKLogits) and again.temperature == 4.0
    np.testing.assert_array_equal(first.values, again.values)
    np.testing.assert_array_equal(first.classes, again.classes)
    assert len(list(tmp_path.iterdir())) == 1  # one folder: values, classes and their integrity record
    assert sorted(os.listdir(next(tmp_path.iterdir()))) == ["classes.npy", "integrity.json", "values.npy"]
    offline.cached_teacher_logits(teacher, x, cache_dir=str(tmp_path), verbose=0, top_k=2, temperature=1.0)
    offline.cached_teacher_logits(teacher, x, cache_dir=str(tmp_path), verbose=0, top_k=3, temperature=1.0)
    assert len(list(tmp_path.iterdir())) == 3


# ------------------------------------------------------------ under strategies
@pytest.mark.slow
def test_distributed_offline_dataset_under_mirrored_strategy_matches_one_device(images):
    x, y = images
    devices = [d.name for d in tf.config.list_logical_devices("CPU")]
    teacher = image_teacher()
    results = []
    # Reduction through one device: collective ops' instance keys would clash
    # with another MirroredStrategy made earlier in the same test process.
    mirrored = tf.distribute.MirroredStrategy(devices, cross_device_ops=tf.distribute.ReductionToOneDevice())
    for strategy in (tf.distribute.OneDeviceStrategy(devices[0]), mirrored):
        keras.utils.set_random_seed(0)
        with strategy.scope():
            distiller = tfdistill.Distiller(teacher, image_student())
            distiller.compile(keras.optimizers.SGD(0.1))
        data = offline.distributed_offline_dataset(
            strategy, teacher, x, y, batch_size=8, shuffle=False, dtype="float32", verbose=0
        )
        history = distiller.fit(data, epochs=2, verbose=0).history
        results.append((history, distiller.student.get_weights()))
    (single, single_weights), (mirrored, mirrored_weights) = results
    for key in ("loss", "hard_loss", "soft_loss"):
        np.testing.assert_allclose(mirrored[key], single[key], rtol=1e-5)
    for a, b in zip(single_weights, mirrored_weights):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)


def test_distributed_batch_must_split_over_replicas(images):
    x, y = images
    devices = [d.name for d in tf.config.list_logical_devices("CPU")]
    with pytest.raises(ValueError, match="batch_size=7"):
        offline.distributed_offline_dataset(tf.distribute.MirroredStrategy(devices), image_teacher(), x, y, batch_size=7)


def test_top_k_arguments_are_checked_before_the_disk_cache_is_touched(images, tmp_path):
    x, _ = images
    with pytest.raises(ValueError, match="temperature=None"):
        offline.cached_teacher_logits(image_teacher(), x, cache_dir=str(tmp_path), verbose=0, top_k=2)
    cooling = tfdistill.schedules.LinearWarmup(1.0, 10, initial=4.0)
    with pytest.raises(ValueError, match="cannot follow a schedule"):
        offline.cached_teacher_logits(image_teacher(), x, cache_dir=str(tmp_path), verbose=0, top_k=2, temperature=cooling)
    with pytest.raises(ValueError, match=r"Expected an int in \[1, 4\]"):
        offline.compute_teacher_logits(image_teacher(), x, verbose=0, top_k=0, temperature=1.0)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_top_k_cache_with_class_ids_beyond_the_student_stops_before_any_update(images):
    x, y = images
    teacher, student = image_teacher(), image_student()
    top = offline.compute_teacher_logits(teacher, x, dtype="float32", verbose=0, top_k=2, temperature=4.0)
    foreign = top._replace(classes=top.classes + 3)  # ids up to 6 for a 4-class student
    distiller = tfdistill.Distiller(teacher, student)
    distiller.compile(keras.optimizers.SGD(0.1), soft_loss=tfdistill.losses.KnowledgeDistillation(4.0))
    initial = student.get_weights()
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"class ids outside \[0, 3\]"):
        distiller.fit(offline.offline_dataset(x, y, foreign), verbose=0)
    for before, after in zip(initial, student.get_weights()):
        np.testing.assert_array_equal(before, after)


@pytest.mark.slow
def test_fit_on_a_partial_top_k_cache_reports_top_k_kd(images):
    x, y = images
    teacher = image_teacher()
    top = offline.compute_teacher_logits(teacher, x, dtype="float32", verbose=0, top_k=2, temperature=2.0)
    student = image_student()
    distiller = tfdistill.Distiller(teacher, student)
    distiller.compile(keras.optimizers.SGD(0.0), soft_loss=tfdistill.losses.KnowledgeDistillation(2.0))
    logs = distiller.evaluate(offline.offline_dataset(x, y, top, batch_size=40, shuffle=False), return_dict=True, verbose=0)
    s = student.predict(x.astype("float32")[..., None] / 255.0, verbose=0)
    expected = np.mean(tfdistill.losses.top_k_kd(top.values[0], top.classes[0], s, 2.0))
    full = np.mean(tfdistill.losses.hinton_kd(teacher.predict(x.astype("float32")[..., None] / 255.0, verbose=0), s, 2.0))
    assert logs["soft_loss"] == pytest.approx(float(expected), rel=1e-5)
    assert logs["soft_loss"] < full  # two of four classes kept: a coarser, smaller KL


def test_worker_shards_are_disjoint_and_equally_long():
    shards = [offline.shard_indices(11, worker, 3) for worker in range(3)]
    assert [list(s) for s in shards] == [[0, 3, 6], [1, 4, 7], [2, 5, 8]]  # 9 and 10 left out
    assert offline.shard_indices(40, 1, 2).tolist() == list(range(1, 40, 2))
