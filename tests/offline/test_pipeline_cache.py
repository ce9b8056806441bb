import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfdistill
from tfdistill.data import make_dataset
from tfdistill.offline.pipeline_cache import cache_dataset, pipeline_randomness
from helpers import image_student, image_teacher, small_images


@pytest.fixture
def images():
    return small_images()


def test_deterministic_pipelines_have_no_randomness(images):
    x, y = images
    assert pipeline_randomness(make_dataset(x, y, batch_size=8)) == []
    fixed_flip = make_dataset(x, y).map(lambda a, b: (tf.image.stateless_random_flip_left_right(a, [1, 2]), b))
    assert pipeline_randomness(fixed_flip) == []
    assert pipeline_randomness(tf.data.Dataset.range(8).shuffle(8, reshuffle_each_iteration=False).batch(4)) == []


@pytest.mark.parametrize(
    "transform, reason",
    [
        (lambda ds: ds.shuffle(40, seed=0), "reshuffles every pass"),
        (lambda ds: ds.map(lambda a, b: (tf.image.random_flip_left_right(a), b)), "'RandomUniform'"),
        (lambda ds, flip=keras.layers.RandomFlip(): ds.map(lambda a, b: (flip(a), b)), "seed generator of a random layer"),
        (lambda ds: ds.map(lambda a, b: (tf.py_function(lambda v: v, [a], tf.float32), b)), "cannot be checked"),
        (lambda ds: ds.map(lambda a, b: (a, b), num_parallel_calls=2, deterministic=False), "deterministic=False"),
        (lambda ds: tf.data.Dataset.range(2).interleave(lambda _: ds.shuffle(40), cycle_length=1), "reshuffles every pass"),
    ],
)
def test_random_pipelines_are_named(images, transform, reason):
    x, y = images
    reasons = pipeline_randomness(transform(make_dataset(x, y, batch_size=8)))
    assert any(reason in r for r in reasons), reasons


def test_seeded_augmentation_that_changes_every_epoch_is_random(images):
    x, y = images
    reasons = pipeline_randomness(make_dataset(x, y, shuffle=True, augment=True, seed=3))
    assert any("reshuffles" in r for r in reasons) and any("Dataset.random" in r for r in reasons)


@pytest.mark.slow
def test_cached_outputs_stay_paired_through_the_shuffle_buffer(images):
    x, y = images
    teacher = image_teacher()
    cached = cache_dataset(teacher, make_dataset(x, y, batch_size=8), dtype="float32", shuffle_buffer=40, verbose=0)
    orders = []
    for _ in range(2):
        labels = []
        for batch_x, batch_y in cached:
            np.testing.assert_allclose(
                batch_x["teacher_logits"].numpy(), teacher(batch_x["x"], training=False).numpy(), rtol=1e-5, atol=1e-6
            )
            labels.append(batch_y.numpy())
        orders.append(np.concatenate(labels))
    assert sorted(orders[0]) == sorted(y) and not np.array_equal(orders[0], orders[1])


@pytest.mark.slow
def test_training_on_a_cached_pipeline_equals_online_training_without_calling_the_teacher(images):
    x, y = images
    teacher = image_teacher()
    plain = make_dataset(x, y, batch_size=8)
    cached = cache_dataset(teacher, plain, dtype="float32", verbose=0)
    histories = []
    for data in (plain, cached):
        keras.utils.set_random_seed(0)
        distiller = tfdistill.Distiller(teacher, image_student())
        distiller.compile(keras.optimizers.SGD(0.1))
        if data is cached:
            teacher.call = None  # any teacher call from here on would fail
        histories.append(distiller.fit(data, epochs=2, verbose=0).history)
    np.testing.assert_allclose(histories[0]["loss"], histories[1]["loss"], rtol=1e-5)
    np.testing.assert_allclose(histories[0]["soft_loss"], histories[1]["soft_loss"], rtol=1e-5)


@pytest.mark.slow
def test_a_random_pipeline_is_not_cached_and_the_warning_says_why(images):
    x, y = images
    teacher = image_teacher()
    shuffled = make_dataset(x, y, batch_size=8, shuffle=True)
    with pytest.warns(UserWarning, match="teacher will run online.*reshuffles every pass"):
        returned = cache_dataset(teacher, shuffled, verbose=0)
    assert returned is shuffled
    distiller = tfdistill.Distiller(teacher, image_student())
    distiller.compile("sgd")
    distiller.fit(returned, verbose=0)  # online distillation on the same pipeline
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        forced = cache_dataset(teacher, shuffled, verbose=0, assume_deterministic=True)
    assert "teacher_logits" in forced.element_spec[0]  # cached at the caller's word


@pytest.mark.slow
def test_top_k_cache_of_a_pipeline_trains_like_the_full_cache(images):
    x, y = images
    teacher = image_teacher()
    plain = make_dataset(x, y, batch_size=8)
    histories = []
    for kwargs in ({}, {"top_k": 4, "temperature": 4.0}):
        keras.utils.set_random_seed(0)
        distiller = tfdistill.Distiller(teacher, image_student())
        distiller.compile(keras.optimizers.SGD(0.1), soft_loss="kd", hard_weight=0.5, soft_weight=0.5)
        histories.append(distiller.fit(cache_dataset(teacher, plain, dtype="float32", verbose=0, **kwargs), epochs=1, verbose=0).history)
    np.testing.assert_allclose(histories[0]["soft_loss"], histories[1]["soft_loss"], rtol=1e-5)


def test_bad_arguments(images):
    x, y = images
    with pytest.raises(ValueError, match="argument `dataset`"):
        cache_dataset(image_teacher(), make_dataset(x, batch_size=8))
    with pytest.raises(ValueError, match="temperature=None"):
        cache_dataset(image_teacher(), make_dataset(x, y), top_k=2)


def test_a_repeated_or_empty_pipeline_is_refused(images):
    x, y = images
    with pytest.raises(ValueError, match="repeats forever"):
        cache_dataset(image_teacher(), make_dataset(x, y).repeat(), verbose=0)
    with pytest.raises(ValueError, match="yielded no batches"):
        cache_dataset(image_teacher(), make_dataset(x, y).take(0), verbose=0)
