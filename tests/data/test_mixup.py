import numpy as np
import pytest
import tensorflow as tf

from tfdistill.data import make_dataset, mix_batch, mixup


def test_mix_batch_by_hand():
    images = tf.constant([[[[0.0]]], [[[1.0]]], [[[3.0]]]])
    labels = tf.constant([0, 1, 2])
    mixed, soft = mix_batch(images, labels, tf.constant([1, 2]), alpha=1.0, num_classes=3, labels_mode="one_hot")
    soft = soft.numpy()
    np.testing.assert_allclose(soft.sum(axis=1), 1.0, rtol=1e-6)
    # Each mixed image is lam * own + (1 - lam) * partner, with lam = soft[i, own class].
    values = np.array([0.0, 1.0, 3.0])
    for i in range(3):
        lam = soft[i, i]
        partner = [c for c in range(3) if c != i and soft[i, c] > 0]
        partner_value = values[partner[0]] if partner else values[i]
        assert mixed.numpy()[i, 0, 0, 0] == pytest.approx(lam * values[i] + (1 - lam) * partner_value, rel=1e-5)


@pytest.mark.slow
def test_dominant_labels_follow_the_larger_share():
    rng = np.random.default_rng(0)
    x, y = rng.random((64, 4, 4, 1)).astype("float32"), np.arange(64) % 10
    (mixed, dominant), = mixup(make_dataset(x, y, batch_size=64), seed=1).take(1)
    (_, soft), = mixup(make_dataset(x, y, batch_size=64), seed=1, labels="one_hot", num_classes=10).take(1)
    np.testing.assert_array_equal(dominant.numpy(), np.argmax(soft.numpy(), axis=1))


def test_mixup_is_reproducible_and_differs_between_epochs():
    rng = np.random.default_rng(0)
    x, y = rng.random((16, 4, 4, 1)).astype("float32"), np.arange(16) % 4
    first = mixup(make_dataset(x, y, batch_size=16), seed=3)
    again = mixup(make_dataset(x, y, batch_size=16), seed=3)
    epoch_1, epoch_2 = [next(iter(first))[0].numpy() for _ in range(2)]
    np.testing.assert_array_equal(epoch_1, next(iter(again))[0].numpy())
    assert not np.allclose(epoch_1, epoch_2)


@pytest.mark.parametrize(
    "kwargs, message",
    [({"alpha": 0}, "alpha=0"), ({"labels": "soft"}, "labels='soft'"), ({"labels": "one_hot"}, "num_classes=None")],
)
def test_bad_arguments(kwargs, message):
    ds = make_dataset(np.zeros((4, 4, 4, 1), "float32"), np.zeros(4, int))
    with pytest.raises(ValueError, match=message):
        mixup(ds, **kwargs)


def test_tiny_alpha_mixes_finitely_and_keeps_nearly_whole_images():
    # Beta(a, a) at tiny a is nearly a coin between 0 and 1; TensorFlow's gamma
    # draws stay >= the smallest normal float, so lam is never 0 / 0.
    images = tf.random.stateless_uniform([256, 2, 2, 1], [0, 1])
    mixed, labels = mix_batch(images, tf.range(256), tf.constant([3, 4]), alpha=1e-8)
    assert np.all(np.isfinite(mixed.numpy()))
    own = np.abs(mixed.numpy() - images.numpy()).max(axis=(1, 2, 3)) < 1e-6
    assert own.mean() > 0.3  # many examples keep their own image (lam ~ 1) ...
    assert np.all(labels.numpy()[own] == np.arange(256)[own])  # ... and their own label


@pytest.mark.parametrize("alpha", [0.2, 2.0])
def test_shares_follow_the_beta_distribution(alpha):
    # One class per example, so example i's own share is its one-hot label's entry i.
    batch = 2048
    images = tf.zeros([batch, 1, 1, 1])
    _, soft = mix_batch(images, tf.range(batch), tf.constant([5, 6]), alpha=alpha, num_classes=batch, labels_mode="one_hot")
    lam = np.diagonal(soft.numpy())
    assert np.all(np.isfinite(lam))
    # Beta(a, a): mean 1/2, variance 1 / (4 (2a + 1)).
    assert abs(lam.mean() - 0.5) < 0.03
    assert lam.var() == pytest.approx(1 / (4 * (2 * alpha + 1)), rel=0.1)
