"""Mixup on batched pipelines, for function matching and for its baseline."""

import tensorflow as tf

from tfdistill.data.pipelines import AUTOTUNE

LABEL_MODES = ("dominant", "one_hot")


def mix_batch(images, labels, seed, alpha=1.0, num_classes=None, labels_mode="dominant"):
    """Mixes every image of a batch with another image of the same batch.

    Each example `i` draws `lam_i ~ Beta(alpha, alpha)` and a partner `j` (a
    random permutation of the batch) and becomes
    `lam_i * images[i] + (1 - lam_i) * images[j]`.

    Args:
        images: `float` tensor of shape `(batch, ...)`.
        labels: integer class ids, shape `(batch,)`.
        seed: int tensor of shape `(2,)`, the stateless random seed.
        alpha: concentration of the Beta distribution, a number > 0 (`1.0`:
            uniform; small values mix little, most shares near 0 or 1).
        num_classes: number of classes, needed for `labels_mode="one_hot"`.
        labels_mode: `"dominant"` keeps the class id of the image with the
            larger share (for a `Distiller` whose soft loss reads the teacher
            on the mixed image); `"one_hot"` returns the mixed one-hot
            distributions `lam * onehot(y_i) + (1 - lam) * onehot(y_j)` (for a
            student trained alone with `CategoricalCrossentropy`).

    Returns:
        `(mixed_images, labels)`.
    """
    batch = tf.shape(images)[0]
    seeds = tf.random.experimental.stateless_split(seed, 3)
    # Beta(a, a) = G1 / (G1 + G2) with G ~ Gamma(a). The log-space branch below
    # would serve every a; a >= 1 keeps the direct draw so seeded runs (and the
    # function-matching figures of the docs' results, at a = 1) reproduce.
    if alpha >= 1:
        gammas = tf.random.stateless_gamma([2, batch], seeds[0], alpha=alpha)
        lam = gammas[0] / (gammas[0] + gammas[1])
    else:
        # Small a: Gamma(a) draws fall below the smallest float, where both
        # would read as equal (lam = 0.5). In logs, with Gamma(a) = Gamma(a + 1)
        # * U^(1/a) (Marsaglia and Tsang), the share stays exact.
        gammas = tf.random.stateless_gamma([2, batch], seeds[0], alpha=alpha + 1.0)
        uniform = tf.random.stateless_uniform([2, batch], seeds[2], minval=1e-30, maxval=1.0)
        log_gammas = tf.math.log(gammas) + tf.math.log(uniform) / alpha
        lam = tf.sigmoid(log_gammas[0] - log_gammas[1])
    partner = tf.argsort(tf.random.stateless_uniform([batch], seeds[1]))
    shape = tf.concat([[batch], tf.ones([tf.rank(images) - 1], tf.int32)], 0)
    lam_images = tf.cast(tf.reshape(lam, shape), images.dtype)
    mixed = lam_images * images + (1.0 - lam_images) * tf.gather(images, partner)
    labels = tf.reshape(labels, [-1])
    partner_labels = tf.gather(labels, partner)
    if labels_mode == "one_hot":
        lam = lam[:, None]
        mixed_labels = lam * tf.one_hot(labels, num_classes) + (1.0 - lam) * tf.one_hot(partner_labels, num_classes)
        return mixed, mixed_labels
    return mixed, tf.where(lam >= 0.5, labels, partner_labels)


def mixup(dataset, alpha=1.0, seed=0, labels="dominant", num_classes=None):
    """Applies `mix_batch` to every batch of a `(x, y)` dataset.

    With a `Distiller`, the teacher and the student then see the same mixed
    image, which is *function matching* (Beyer et al.): the student learns the
    teacher's function on points between the training images, where the
    labels say nothing but the teacher does. Use it with a soft-only loss
    (`hard_weight=0`); the mixing is reproducible from `seed` and differs
    every epoch.

    Args:
        dataset: a batched `tf.data.Dataset` of `(images, labels)`.
        alpha: Beta concentration, > 0; `1.0` draws the share uniformly.
        seed: seed of the shares and partners.
        labels: `"dominant"` or `"one_hot"`, see `mix_batch`.
        num_classes: required with `labels="one_hot"`.

    Returns:
        A `tf.data.Dataset` of mixed `(images, labels)` batches.

    Example:
        >>> train = mixup(make_dataset(x, y, shuffle=True, augment=True))  # doctest: +SKIP
        >>> distiller.compile("adam", soft_loss=KnowledgeDistillation(1.0), hard_weight=0.0, soft_weight=1.0)  # doctest: +SKIP
        >>> distiller.fit(train, epochs=100)  # doctest: +SKIP

    Reference:
        Zhang et al., "mixup: Beyond Empirical Risk Minimization", ICLR 2018.
        Beyer et al., "Knowledge distillation: A good teacher is patient and
        consistent", CVPR 2022.
    """
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not alpha > 0:
        raise ValueError(f"Invalid value for argument `alpha`. Expected a number > 0. Received: alpha={alpha!r}")
    if labels not in LABEL_MODES:
        raise ValueError(
            f"Invalid value for argument `labels`. Expected one of {list(LABEL_MODES)}. Received: labels={labels!r}"
        )
    if labels == "one_hot" and (not isinstance(num_classes, int) or num_classes < 2):
        raise ValueError(
            "Invalid value for argument `num_classes`: `labels='one_hot'` needs the "
            f"number of classes, an int >= 2. Received: num_classes={num_classes!r}"
        )
    if not isinstance(dataset, tf.data.Dataset) or not (
        isinstance(dataset.element_spec, tuple) and len(dataset.element_spec) == 2
    ):
        raise ValueError(
            "Invalid value for argument `dataset`. Expected a batched `tf.data.Dataset` "
            f"of `(images, labels)`. Received: {dataset!r}"
        )
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
    return tf.data.Dataset.zip(dataset, seeds).map(
        lambda element, batch_seed: mix_batch(*element, batch_seed, float(alpha), num_classes, labels),
        num_parallel_calls=AUTOTUNE,
        deterministic=True,
    ).prefetch(AUTOTUNE)
