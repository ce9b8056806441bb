"""Batches with a fixed share of labeled examples, online and from offline caches."""

import numpy as np
import pytest
import tensorflow as tf

from tfdistill import offline
from tfdistill.data import mixing
from tfdistill.labels import UNLABELED
from helpers import image_teacher, small_images


def few_labels(n=40, labeled=(0, 7, 13, 22, 31)):
    y = np.full(n, UNLABELED, "int32")
    y[list(labeled)] = np.arange(len(labeled)) % 4
    return y


def batches_of(order, batch_size):
    flat = [int(i) for i in order]
    return [flat[i:i + batch_size] for i in range(0, len(flat), batch_size)]


def test_every_batch_holds_the_share_and_an_epoch_is_one_pass_over_the_pool():
    y = few_labels()
    order = mixing.mixed_order(y, batch_size=8, labeled_share=0.25, seed=3)
    for epoch in range(2):
        batches = batches_of(order, 8)
        pool = [i for batch in batches for i in batch if y[i] == UNLABELED]
        assert sorted(pool) == list(np.flatnonzero(y == UNLABELED))  # each unlabeled example once
        assert all(sum(y[i] != UNLABELED for i in batch) == 2 for batch in batches)  # round(0.25 * 8)
        assert len(batches) == 6 and len(batches[-1]) == 2 + 35 - 5 * 6
    assert int(order.cardinality()) == 35 + 2 * 6


def test_the_labeled_examples_come_in_turn_and_reshuffle_each_pass():
    y = few_labels()
    order = mixing.mixed_order(y, batch_size=8, labeled_share=0.25, seed=0)
    labeled = [i for i in (int(j) for j in order) if y[i] != UNLABELED]
    assert sorted(labeled[:5]) == sorted(labeled[5:10]) == [0, 7, 13, 22, 31]
    assert labeled[:5] != labeled[5:10] or labeled[5:10] != labeled[10:]
    again = [i for i in (int(j) for j in mixing.mixed_order(y, 8, 0.25, seed=0)) if y[i] != UNLABELED]
    assert again == labeled


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"labeled_share": 0.0}, "labeled_share"),
        ({"labeled_share": 1.5}, "labeled_share"),
        ({"batch_size": 1}, "batch_size"),
    ],
)
def test_bad_arguments_are_named(kwargs, message):
    arguments = {"batch_size": 8, "labeled_share": 0.25, **kwargs}
    with pytest.raises(ValueError, match=message):
        mixing.mixed_order(few_labels(), **arguments)


def test_labels_without_a_pool_or_without_labels_are_refused():
    with pytest.raises(ValueError, match="0 unlabeled"):
        mixing.mixed_order(np.zeros(10, "int32"), 4, 0.5)
    with pytest.raises(ValueError, match="0 labeled"):
        mixing.mixed_order(np.full(10, UNLABELED), 4, 0.5)


@pytest.mark.parametrize("views, materialize", [(1, None), (3, True), (3, False)])
def test_offline_batches_pair_each_example_with_its_label_and_logits(views, materialize):
    x, y_all = small_images()
    y = few_labels()
    y[y != UNLABELED] = y_all[y != UNLABELED]
    logits = offline.compute_teacher_logits(image_teacher(), x, views=views, dtype="float32", verbose=0)
    ds = offline.offline_dataset(x, y, logits, batch_size=8, labeled_share=0.25, materialize_views=materialize, seed=1)
    seen = []
    for inputs, labels in ds:
        assert int(np.sum(labels.numpy() != UNLABELED)) == 2
        for image, row, label in zip(inputs["x"].numpy(), inputs["teacher_logits"].numpy(), labels.numpy()):
            # The row is one of this image's views' logits: find the example by its logits.
            index = int(np.argmin(np.abs(logits - row).sum(-1).min(0)))
            assert label == y[index]
            seen.append(index)
    assert sorted(i for i in seen if y[i] == UNLABELED) == list(np.flatnonzero(y == UNLABELED))


@pytest.mark.slow
def test_materialized_and_rebuilt_views_give_the_same_mixed_batches():
    x, _ = small_images()
    y = few_labels()
    logits = offline.compute_teacher_logits(image_teacher(), x, views=3, verbose=0)
    one, other = (
        offline.offline_dataset(x, y, logits, batch_size=8, labeled_share=0.25, materialize_views=m, seed=2)
        for m in (True, False)
    )
    for (a, la), (b, lb) in zip(one, other):
        np.testing.assert_allclose(a["x"].numpy(), b["x"].numpy(), atol=1e-6)
        np.testing.assert_array_equal(a["teacher_logits"].numpy(), b["teacher_logits"].numpy())
        np.testing.assert_array_equal(la.numpy(), lb.numpy())


def test_an_offline_dataset_without_labels_yields_x_alone():
    x, _ = small_images()
    logits = offline.compute_teacher_logits(image_teacher(), x, verbose=0)
    ds = offline.offline_dataset(x, None, logits, batch_size=8)
    assert isinstance(ds.element_spec, dict) and set(ds.element_spec) == {"x", "teacher_logits"}
    with pytest.raises(ValueError, match="labeled_share"):
        offline.offline_dataset(x, None, logits, labeled_share=0.25)


def test_streaming_a_pool_mixes_like_the_in_memory_path(tmp_path):
    x, _ = small_images()
    y = few_labels()
    images = tf.constant(x.astype("float32")[..., None] / 255.0)
    path = offline.write_teacher_logits(
        image_teacher(), lambda i: tf.gather(images, i), len(x), str(tmp_path / "cache.npy"), dtype="float32", verbose=0
    )
    streamed = offline.streaming_offline_dataset(lambda i: tf.gather(images, i), y, path, batch_size=8, labeled_share=0.25, seed=4)
    in_memory = offline.offline_dataset(x, y, np.load(path), batch_size=8, labeled_share=0.25, seed=4)
    for (a, la), (b, lb) in zip(streamed, in_memory):
        np.testing.assert_allclose(a["x"].numpy(), b["x"].numpy(), atol=1e-6)
        np.testing.assert_array_equal(a["teacher_logits"].numpy(), b["teacher_logits"].numpy())
        np.testing.assert_array_equal(la.numpy(), lb.numpy())
    unlabeled = offline.streaming_offline_dataset(lambda i: tf.gather(images, i), None, path, batch_size=8)
    assert isinstance(unlabeled.element_spec, dict) and set(unlabeled.element_spec) == {"x", "teacher_logits"}


def test_online_mixed_batches_label_the_pool_unlabeled():
    x, y = small_images()
    labeled = tf.data.Dataset.from_tensor_slices((x[:4], y[:4].astype("int32")))
    pool = tf.data.Dataset.from_tensor_slices(x[4:])
    batches = list(mixing.mixed_batches(labeled, pool, batch_size=8, labeled_share=0.5))
    assert len(batches) == 9  # 36 pool examples, 4 per batch
    for images, labels in batches:
        assert images.shape[0] == labels.shape[0]
        assert int(np.sum(labels.numpy() != UNLABELED)) == 4
    with pytest.raises(ValueError, match="argument `unlabeled`"):
        mixing.mixed_batches(labeled, tf.data.Dataset.from_tensor_slices(x[4:, :3]), batch_size=8)
