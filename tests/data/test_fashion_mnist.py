import gzip
import os
import struct

import numpy as np
import pytest

from tfdistill.data import DEFAULT_DIRECTORY, load_fashion_mnist, make_dataset, read_idx


def write_idx(path, array, type_code=0x08):
    header = struct.pack(">BBBB", 0, 0, type_code, array.ndim) + b"".join(
        struct.pack(">I", d) for d in array.shape
    )
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(">u1" if type_code == 0x08 else ">i4").tobytes())


def test_read_idx_round_trip(tmp_path):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "x.gz", images)
    np.testing.assert_array_equal(read_idx(str(tmp_path / "x.gz")), images)
    ints = np.array([1, -2, 70000], dtype=np.int32)
    write_idx(tmp_path / "i.gz", ints, type_code=0x0C)
    np.testing.assert_array_equal(read_idx(str(tmp_path / "i.gz")), ints)


def test_truncated_and_foreign_files_are_refused(tmp_path):
    write_idx(tmp_path / "x.gz", np.zeros((2, 2), np.uint8))
    data = gzip.open(tmp_path / "x.gz").read()
    with gzip.open(tmp_path / "short.gz", "wb") as f:
        f.write(data[:-1])
    with pytest.raises(ValueError, match="truncated"):
        read_idx(str(tmp_path / "short.gz"))
    with gzip.open(tmp_path / "png.gz", "wb") as f:
        f.write(b"\x89PNG....")
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(str(tmp_path / "png.gz"))


def test_missing_directory_names_the_package(tmp_path):
    with pytest.raises(FileNotFoundError, match="apt-get install -y dataset-fashion-mnist"):
        load_fashion_mnist(str(tmp_path))


@pytest.mark.slow
def test_real_fashion_mnist():
    assert os.path.isdir(DEFAULT_DIRECTORY), "run `apt-get install -y dataset-fashion-mnist`"
    (x_train, y_train), (x_test, y_test) = load_fashion_mnist()
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert x_train.dtype == np.uint8 and y_train.dtype == np.uint8
    assert np.bincount(y_train).tolist() == [6000] * 10
    assert np.bincount(y_test).tolist() == [1000] * 10


@pytest.mark.slow
def test_pipeline_is_deterministic_given_a_seed_and_reshuffles_each_epoch():
    x = np.arange(50 * 4 * 4, dtype=np.uint8).reshape(50, 4, 4)
    y = np.arange(50)

    def epochs(seed):
        ds = make_dataset(x, y, batch_size=10, shuffle=True, augment=True, seed=seed)
        return [[(bx.numpy(), by.numpy()) for bx, by in ds] for _ in range(2)]

    first, again, other = epochs(1), epochs(1), epochs(2)
    for (a_x, a_y), (b_x, b_y) in zip(first[0] + first[1], again[0] + again[1]):
        np.testing.assert_array_equal(a_x, b_x)
        np.testing.assert_array_equal(a_y, b_y)
    order = lambda run: np.concatenate([by for _, by in run])  # noqa: E731
    assert not np.array_equal(order(first[0]), order(first[1]))
    assert not np.array_equal(order(first[0]), order(other[0]))
    assert sorted(order(first[0])) == list(range(50))
    batch_x, batch_y = first[0][0]
    assert batch_x.shape == (10, 4, 4, 1) and batch_x.dtype == np.float32
    assert batch_x.max() <= 1.0


def test_image_folder_pipeline(tmp_path):
    import tensorflow as tf

    from tfdistill.data import load_image_folder

    rng = np.random.default_rng(0)
    for label in ("cat", "dog"):
        (tmp_path / label).mkdir()
        for i in range(3):
            pixels = rng.integers(0, 256, size=(10, 12, 3), dtype=np.uint8)
            tf.io.write_file(str(tmp_path / label / f"{i}.png"), tf.io.encode_png(pixels))
    ds = load_image_folder(str(tmp_path), image_size=(8, 8), batch_size=4)
    assert ds.class_names == ["cat", "dog"]
    images, labels = zip(*[(x.numpy(), y.numpy()) for x, y in ds])
    images, labels = np.concatenate(images), np.concatenate(labels)
    assert images.shape == (6, 8, 8, 3) and 0.0 <= images.min() and images.max() <= 1.0
    assert sorted(labels.tolist()) == [0, 0, 0, 1, 1, 1]


@pytest.mark.slow
def test_tfds_by_name_with_mocked_data():
    tfds = pytest.importorskip("tensorflow_datasets")
    from tfdistill.data import load_tfds

    with tfds.testing.mock_data(num_examples=12):
        ds = load_tfds("fashion_mnist", split="train", batch_size=5)
        batches = list(ds)
    assert [int(y.shape[0]) for _, y in batches] == [5, 5, 2]
    x, _ = batches[0]
    assert x.shape[1:] == (28, 28, 1) and x.dtype.name == "float32" and float(np.max(x)) <= 1.0
