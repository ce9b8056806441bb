"""Bad files in: each gets an error naming the file and what is wrong; no code in a file runs unasked."""

import gzip
import os
import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfdistill import model_files
from tfdistill.app import model_sources
from tfdistill.data import DEFAULT_DIRECTORY, load_fashion_mnist, load_image_folder, load_npz, read_idx

LABELS = os.path.join(DEFAULT_DIRECTORY, "t10k-labels-idx1-ubyte.gz")
needs_data = pytest.mark.skipif(not os.path.exists(LABELS), reason="Fashion-MNIST files not installed")


# ------------------------------------------------------------------ IDX files
@needs_data
def test_a_truncated_gzip_idx_file(tmp_path):
    path = tmp_path / "labels.gz"
    path.write_bytes(open(LABELS, "rb").read()[:2000])  # a copy cut short, as by a full disk
    with pytest.raises(ValueError, match=rf"'{path}' cannot be read as a gzip-compressed IDX file: it is damaged or truncated"):
        read_idx(str(path))


@needs_data
def test_an_idx_file_whose_data_is_cut_short_or_too_long(tmp_path):
    data = gzip.open(LABELS).read()
    short, long = tmp_path / "short-idx1-ubyte", tmp_path / "long-idx1-ubyte"
    short.write_bytes(data[:-10])
    long.write_bytes(data + b"\0\0")
    with pytest.raises(ValueError, match=r"is truncated: its header promises shape \(10000,\) \(10,000 data bytes\) but it holds 9,990"):
        read_idx(str(short))
    with pytest.raises(ValueError, match="is longer than its header says"):
        read_idx(str(long))
    header_only = tmp_path / "header-idx3-ubyte"
    header_only.write_bytes(b"\0\0\x08\x03\0\0")
    with pytest.raises(ValueError, match=r"announces 3 dimensions \(16 header bytes\) but the file holds 6 bytes"):
        read_idx(str(header_only))


@pytest.mark.parametrize("name", ["garbage.gz", "garbage-idx1-ubyte"])
def test_garbage_idx_files(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(np.random.default_rng(0).bytes(300) if name.endswith(".gz") else b"<html>404</html>")
    with pytest.raises(ValueError, match=rf"'{path}' (cannot be read as a gzip|is not an IDX file)"):
        read_idx(str(path))


@needs_data
def test_swapped_fashion_mnist_files_are_named(tmp_path):
    for name in os.listdir(DEFAULT_DIRECTORY):
        shutil.copy(os.path.join(DEFAULT_DIRECTORY, name), tmp_path / name)
    shutil.copy(LABELS, tmp_path / "t10k-images-idx3-ubyte.gz")  # labels where the images belong
    with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte.gz' holds an array of rank 1.*Expected rank 3"):
        load_fashion_mnist(str(tmp_path))


# ------------------------------------------------------------------ .npz files
def test_an_npz_without_the_expected_arrays_lists_those_it_has(tmp_path):
    path = tmp_path / "train.npz"
    np.savez(path, images=np.zeros((4, 2)), labels=np.zeros(4))
    with pytest.raises(ValueError, match=r"'.*train.npz' lacks the arrays \['x', 'y'\]\. Expected arrays \['x', 'y'\]\. Received arrays: \['images', 'labels'\]"):
        load_npz(str(path))
    x, y = load_npz(str(path), keys=("images", "labels"))
    assert x.shape == (4, 2) and y.shape == (4,)


def test_npz_arrays_of_objects_are_refused_never_unpickled(tmp_path):
    path = tmp_path / "train.npz"
    np.savez(path, x=np.array([{"a": 1}, None], dtype=object), y=np.zeros(2))
    with pytest.raises(ValueError, match="array 'x' holds Python objects; loading it would unpickle"):
        load_npz(str(path))


def test_npz_that_is_not_one_or_has_arrays_of_different_lengths(tmp_path):
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(ValueError, match="'.*garbage.npz' is not a readable `.npz` file"):
        load_npz(str(garbage))
    single = tmp_path / "single.npy"
    np.save(single, np.zeros(3))
    with pytest.raises(ValueError, match="holds a single array, not an `.npz` archive"):
        load_npz(str(single))
    uneven = tmp_path / "uneven.npz"
    np.savez(uneven, x=np.zeros((4, 2)), y=np.zeros(3))
    with pytest.raises(ValueError, match=r"Received lengths: \{'x': 4, 'y': 3\}"):
        load_npz(str(uneven))


# ---------------------------------------------------------------- image folders
def image_folder(tmp_path):
    rng = np.random.default_rng(0)
    for label in ("cat", "dog"):
        os.makedirs(tmp_path / label)
        for index in range(3):
            pixels = rng.integers(0, 256, size=(8, 8, 3), dtype=np.uint8)
            (tmp_path / label / f"{index}.png").write_bytes(tf.io.encode_png(pixels).numpy())
    return tmp_path


def test_an_unreadable_image_is_named_before_the_pipeline_is_built(tmp_path):
    folder = image_folder(tmp_path)
    (folder / "dog" / "1.png").write_text("not an image")
    with pytest.raises(ValueError, match=rf"Unreadable image '{folder / 'dog' / '1.png'}': its first bytes are not those of a .png file"):
        load_image_folder(str(folder), image_size=(8, 8))


def test_a_truncated_image_is_named_when_decoding_is_asked(tmp_path):
    folder = image_folder(tmp_path)
    path = folder / "cat" / "2.png"
    path.write_bytes(path.read_bytes()[:40])  # the header survives, the pixels do not
    load_image_folder(str(folder), image_size=(8, 8))  # the header check passes
    with pytest.raises(ValueError, match=rf"Unreadable image '{path}': it cannot be decoded"):
        load_image_folder(str(folder), image_size=(8, 8), check_images="decode")


def test_a_clean_image_folder_loads(tmp_path):
    dataset = load_image_folder(str(image_folder(tmp_path)), image_size=(8, 8), check_images="decode")
    assert dataset.class_names == ["cat", "dog"] and sum(len(y) for _, y in dataset) == 6


# ------------------------------------------------------------------ .keras files
def dense():
    x_in = keras.Input((3,))
    return keras.Model(x_in, keras.layers.Dense(2)(x_in))


def test_a_file_that_is_not_a_keras_archive(tmp_path):
    path = tmp_path / "teacher.keras"
    path.write_text("<html>Not Found</html>")
    with pytest.raises(ValueError, match=rf"Invalid teacher file '{path}': it is not a `.keras` file.*Received: b'<htm'"):
        model_sources.load_teacher(str(path))


def test_a_truncated_or_foreign_zip_is_named(tmp_path):
    good = tmp_path / "good.keras"
    dense().save(good)
    truncated = tmp_path / "truncated.keras"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(ValueError, match=rf"'{truncated}': the archive is damaged or truncated"):
        model_files.load_model(str(truncated))
    foreign = tmp_path / "foreign.keras"
    shutil.make_archive(str(tmp_path / "foreign"), "zip", root_dir=str(tmp_path), base_dir="good.keras")
    os.rename(tmp_path / "foreign.zip", foreign)
    with pytest.raises(ValueError, match=r"a zip archive, but not a Keras model: it lacks \['config.json', 'metadata.json'\]"):
        model_files.load_model(str(foreign))
    assert model_files.load_model(str(good)).count_params() == 8


def test_code_in_a_model_file_never_runs_unless_asked(tmp_path):
    marker = tmp_path / "code_ran"
    x_in = keras.Input((3,))
    side_effect = eval(f"lambda t: (open({str(marker)!r}, 'w').close(), t)[1]")  # noqa: S307 (the test's payload)
    keras.Model(x_in, keras.layers.Lambda(side_effect)(x_in)).save(tmp_path / "teacher.keras")
    marker.unlink()  # building the model ran it once here
    path = str(tmp_path / "teacher.keras")
    with pytest.raises(ValueError, match=rf"Invalid teacher file '{path}': it holds Python code.*`safe_mode=False`"):
        model_sources.load_teacher(path)
    assert not marker.exists()
    model_files.load_model(path, safe_mode=False)  # the user's explicit choice
    assert marker.exists()
