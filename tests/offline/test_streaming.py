"""Streamed offline distillation: the teacher's outputs on disk, memory-mapped, and examples read per step."""

import numpy as np
import pytest
import tensorflow as tf

from tfdistill import offline
from tfdistill.data import to_float_images
from helpers import image_teacher, small_images


def _loader(images):
    table = tf.constant(to_float_images(images))
    return lambda index: tf.gather(table, index)


@pytest.mark.parametrize("views", [1, 3])
def test_written_logits_equal_the_in_memory_cache(tmp_path, views):
    images, _ = small_images(40)
    teacher = image_teacher()
    path = offline.write_teacher_logits(teacher, _loader(images), 40, str(tmp_path / "logits.npy"), views=views,
                                        seed=5, batch_size=16, verbose=0)
    on_disk = np.load(path, mmap_mode="r")
    assert isinstance(on_disk, np.memmap) and on_disk.shape == (views, 40, 4) and on_disk.dtype == np.float16
    in_memory = offline.compute_teacher_logits(teacher, images, views=views, seed=5, verbose=0)
    np.testing.assert_array_equal(on_disk, in_memory)
    assert [p.name for p in tmp_path.iterdir()] == ["logits.npy"]  # no temporary left


def test_an_existing_cache_is_never_overwritten(tmp_path):
    images, _ = small_images(8)
    path = tmp_path / "logits.npy"
    path.write_bytes(b"kept")
    with pytest.raises(FileExistsError, match="already exists; nothing was written"):
        offline.write_teacher_logits(image_teacher(), _loader(images), 8, str(path), verbose=0)
    assert path.read_bytes() == b"kept"


def test_each_streamed_example_keeps_its_own_view_and_logits(tmp_path):
    images, labels = small_images(40)
    teacher = image_teacher()
    path = offline.write_teacher_logits(teacher, _loader(images), 40, str(tmp_path / "l.npy"), views=3, seed=2,
                                        verbose=0)
    cache = np.load(path)
    train = offline.streaming_offline_dataset(_loader(images), labels, path, batch_size=16, seed=7, view_seed=2)
    for _ in range(2):  # two epochs: new order and views, pairs intact
        seen = []
        for x, y in train:
            # Each image must be one of the cached views of some example whose logits come with it.
            out = teacher(x["x"], training=False).numpy()
            np.testing.assert_allclose(out, x["teacher_logits"].numpy(), atol=2e-2)
            seen += list(y.numpy())
        assert sorted(seen) == sorted(labels.tolist())
        assert np.isin(x["teacher_logits"].numpy().astype(np.float16), cache).all()


def test_a_cache_of_other_examples_is_refused(tmp_path):
    images, labels = small_images(8)
    path = offline.write_teacher_logits(image_teacher(), _loader(images), 8, str(tmp_path / "l.npy"), verbose=0)
    with pytest.raises(ValueError, match=r"expected a cache of shape \(views, 9, num_classes\) for 9 labels"):
        offline.streaming_offline_dataset(_loader(images), np.zeros(9, "int64"), path)
