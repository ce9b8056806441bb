"""`tf.data` pipelines: arrays, TFDS datasets and image folders."""

import os

import numpy as np
import tensorflow as tf

AUTOTUNE = tf.data.AUTOTUNE


def to_float_images(images):
    """Scales `uint8` images to `float32` in `[0, 1]` with a channel axis.

    Args:
        images: array of shape `(n, h, w)` or `(n, h, w, c)`, any numeric
            dtype; `uint8` input is divided by 255.

    Returns:
        A `float32` numpy array of shape `(n, h, w, c)`.
    """
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4:
        raise ValueError(
            "Invalid value for argument `images`. Expected an array of rank 3 "
            f"(n, h, w) or 4 (n, h, w, c). Received: shape={images.shape}"
        )
    if images.dtype == np.uint8:
        return images.astype("float32") / 255.0
    return images.astype("float32")


def augment_image(image, seed, flip=True, max_shift=2):
    """Random horizontal flip and shift of one image, reproducible from `seed`.

    Args:
        image: `float32` tensor of shape `(h, w, c)`.
        seed: int tensor of shape `(2,)`, the stateless random seed.
        flip: whether to flip left-right with probability 1/2.
        max_shift: largest shift in pixels, in each direction; the border is
            filled with zeros.

    Returns:
        A tensor of the same shape as `image`.
    """
    seeds = tf.random.experimental.stateless_split(seed, 2)
    if flip:
        image = tf.image.stateless_random_flip_left_right(image, seeds[0])
    if max_shift:
        shape = tf.shape(image)
        padded = tf.pad(
            image, [[max_shift, max_shift], [max_shift, max_shift], [0, 0]]
        )
        image = tf.image.stateless_random_crop(padded, shape, seeds[1])
    return image


def make_dataset(
    x,
    y=None,
    batch_size=128,
    shuffle=False,
    augment=False,
    seed=0,
    cache=True,
    drop_remainder=False,
):
    """Builds a batched, prefetched `tf.data.Dataset` from in-memory arrays.

    The order and the augmentation are fully determined by `seed`: two
    pipelines built with the same arguments yield the same batches, epoch
    after epoch (each epoch reshuffles, reproducibly).

    Args:
        x: images (`uint8` are scaled to `[0, 1]`) or any array/dict of arrays.
        y: optional labels, shape `(n,)`.
        batch_size: examples per batch.
        shuffle: reshuffle the whole dataset every epoch.
        augment: random flip and 2-pixel shift of each training image (`x`
            must then be a single image array).
        seed: seed for shuffling and augmentation.
        cache: cache the decoded examples in memory before shuffling.
        drop_remainder: drop the last, smaller batch.

    Returns:
        A `tf.data.Dataset` of `x` or `(x, y)` batches.

    Example:
        >>> (x, y), _ = load_fashion_mnist()  # doctest: +SKIP
        >>> train = make_dataset(x, y, shuffle=True, augment=True)  # doctest: +SKIP
    """
    if isinstance(x, np.ndarray) and x.dtype == np.uint8:
        x = to_float_images(x)
    if not isinstance(batch_size, int) or batch_size <= 0:
        raise ValueError(
            "Invalid value for argument `batch_size`. Expected a positive int. "
            f"Received: batch_size={batch_size!r}"
        )
    elements = x if y is None else (x, np.asarray(y))
    ds = tf.data.Dataset.from_tensor_slices(elements)
    n = len(ds)
    if cache:
        ds = ds.cache()
    if shuffle:
        ds = ds.shuffle(n, seed=seed, reshuffle_each_iteration=True)
    if augment:
        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
        ds = tf.data.Dataset.zip(ds, seeds.batch(2))

        def _augment(element, element_seed):
            if y is None:
                return augment_image(element, element_seed)
            image, label = element
            return augment_image(image, element_seed), label

        ds = ds.map(_augment, num_parallel_calls=AUTOTUNE, deterministic=True)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    return ds.prefetch(AUTOTUNE)


def load_tfds(name, split="train", batch_size=128, shuffle=False, seed=0, **kwargs):
    """Loads a TFDS dataset by name as an `(image, label)` pipeline.

    Needs `tensorflow-datasets` and, the first time, internet access to
    download the data.

    Args:
        name: TFDS name, e.g. `"fashion_mnist"` or `"cifar10"`.
        split: TFDS split string.
        batch_size: examples per batch.
        shuffle: reshuffle every epoch.
        seed: shuffle seed.
        **kwargs: passed to `tfds.load`.

    Returns:
        A batched `tf.data.Dataset` of `(float32 image in [0, 1], label)`.
    """
    import tensorflow_datasets as tfds

    ds = tfds.load(name, split=split, as_supervised=True, **kwargs)
    ds = ds.map(
        lambda image, label: (tf.cast(image, tf.float32) / 255.0, label),
        num_parallel_calls=AUTOTUNE,
    ).cache()
    if shuffle:
        ds = ds.shuffle(10_000, seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).prefetch(AUTOTUNE)


_IMAGE_SIGNATURES = {
    ".png": (b"\x89PNG\r\n\x1a\n",),
    ".jpg": (b"\xff\xd8\xff",),
    ".jpeg": (b"\xff\xd8\xff",),
    ".gif": (b"GIF87a", b"GIF89a"),
    ".bmp": (b"BM",),
}


def check_image_files(directory, decode=False):
    """Raises `ValueError` naming the first image under `directory` that cannot be read.

    Looks at the files Keras's `image_dataset_from_directory` would read (one
    sub-folder per class; `.png`, `.jpg`, `.jpeg`, `.gif`, `.bmp`). Each
    file's first bytes must be its format's signature (cheap: an empty file,
    a text file named `.jpg` and most damage to a header are caught); with
    `decode=True` every image is also decoded once, which catches a file cut
    short too.

    Returns:
        The number of image files checked.
    """
    checked = 0
    for folder, _, names in sorted(os.walk(directory)):
        for name in sorted(names):
            extension = os.path.splitext(name)[1].lower()
            if extension not in _IMAGE_SIGNATURES:
                continue
            path = os.path.join(folder, name)
            with open(path, "rb") as f:
                head = f.read(8)
            if not head.startswith(_IMAGE_SIGNATURES[extension]):
                raise ValueError(
                    f"Unreadable image {path!r}: its first bytes are not those of a "
                    f"{extension} file. Expected {_IMAGE_SIGNATURES[extension][0]!r}. Received: {head!r}. "
                    "Remove or replace the file."
                )
            if decode:
                try:
                    tf.io.decode_image(tf.io.read_file(path), expand_animations=False)
                except tf.errors.InvalidArgumentError as error:
                    raise ValueError(f"Unreadable image {path!r}: it cannot be decoded ({error.message}).") from error
            checked += 1
    return checked


def load_image_folder(
    directory, image_size=(224, 224), batch_size=32, shuffle=False, seed=0, check_images="header", **kwargs
):
    """Loads an image folder (one sub-folder per class) as a pipeline.

    Args:
        directory: folder with one sub-folder of images per class.
        image_size: `(height, width)` every image is resized to.
        batch_size: examples per batch.
        shuffle: shuffle the files.
        seed: shuffle seed.
        check_images: `"header"` (default) checks every file's signature
            before the pipeline is built, `"decode"` decodes every image once,
            `None` checks nothing (a bad file then stops training with
            TensorFlow's error, which does not name it). See `check_image_files`.
        **kwargs: passed to `keras.utils.image_dataset_from_directory`.

    Returns:
        A batched `tf.data.Dataset` of `(float32 image in [0, 1], int label)`;
        its `class_names` attribute is kept on the returned dataset.
    """
    import keras

    if check_images not in ("header", "decode", None):
        raise ValueError(
            "Invalid value for argument `check_images`. Expected 'header', 'decode' or None. "
            f"Received: check_images={check_images!r}"
        )
    if check_images:
        check_image_files(directory, decode=check_images == "decode")
    ds = keras.utils.image_dataset_from_directory(
        directory,
        image_size=image_size,
        batch_size=batch_size,
        shuffle=shuffle,
        seed=seed,
        **kwargs,
    )
    class_names = ds.class_names
    ds = ds.map(
        lambda image, label: (image / 255.0, label), num_parallel_calls=AUTOTUNE
    ).prefetch(AUTOTUNE)
    ds.class_names = class_names
    return ds
