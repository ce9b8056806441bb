"""Unlabeled data on the command line: `data.unlabeled`, `data.labels_per_class`, `distill.labeled_share`."""

import json

import numpy as np
import pytest
import tensorflow as tf

from tfdistill.app import cli, config, data_sources
from tfdistill.app.teacher_pass import TrainingExamples, teacher_pass
from tfdistill.errors import ConfigError
from tfdistill.labels import UNLABELED
from helpers import digits_arrays, digits_cnn, digits_image_folder, digits_npz, flat_image_folder, pool_npz


def data_config(**keys):
    return config.section("data", **keys)


def test_an_npz_pool_joins_the_training_split_unlabeled(tmp_path):
    images, _ = digits_arrays()
    data = data_sources.from_config(data_config(arrays=digits_npz(tmp_path / "digits.npz"), validation_size=0.1,
                                                unlabeled=pool_npz(tmp_path / "pool.npz", images[:200])))
    assert (len(data.train), len(data.validation), len(data.test)) == (1347 + 200, 150, 300)
    assert np.all(data.train.y[-200:] == UNLABELED) and np.all(data.train.y[:1347] >= 0)
    assert np.all(data.validation.y >= 0)  # held out of the labeled examples, never of the pool
    np.testing.assert_array_equal(data.train.x[-200:], images[:200])


def test_a_folder_pool_beside_arrays_is_streamed_after_them(tmp_path):
    images, _ = digits_arrays()
    folder = flat_image_folder(tmp_path / "pool", images[:12], size=16)  # read back at the arrays' 8x8
    data = data_sources.from_config(data_config(arrays=digits_npz(tmp_path / "digits.npz"), validation_size=0,
                                                unlabeled=folder))
    assert data.streamed and len(data.train) == 1497 + 12 and len(data.train.paths) == 12
    assert data.input_shape == (8, 8, 1) and data.raw_shape == (8, 8)
    x, y = data.arrays(data.train)
    assert x.shape == (1509, 8, 8, 1) and list(y[-12:]) == [UNLABELED] * 12
    np.testing.assert_array_equal(x[:1497, ..., 0], images[:1497] / np.float32(255))
    np.testing.assert_array_equal(x[1497:, ..., 0], images[:12] / np.float32(255))  # nearest up and down: exact


def test_a_folder_pool_beside_an_image_folder(tmp_path):
    images, _ = digits_arrays()
    labeled = digits_image_folder(tmp_path / "digits", per_class=4, size=16)
    data = data_sources.from_config(data_config(image_folder=labeled, validation_size=0,
                                                unlabeled=flat_image_folder(tmp_path / "pool", images[:7], size=16)),
                                    input_shape=(16, 16, 1))
    assert data.train.x is None and len(data.train) == 40 + 7 and list(data.train.y[-7:]) == [UNLABELED] * 7


def test_labels_per_class_keeps_that_many_of_each_class_and_the_rest_join_the_pool(tmp_path):
    path = digits_npz(tmp_path / "digits.npz")
    data = data_sources.from_config(data_config(arrays=path, validation_size=0.1, labels_per_class=5))
    labeled = data.train.y[data.train.y != UNLABELED]
    assert len(data.train) == 1347 and np.bincount(labeled).tolist() == [5] * 10
    assert np.all(data.validation.y >= 0) and len(data.validation) == 150
    again = data_sources.from_config(data_config(arrays=path, validation_size=0.1, labels_per_class=5))
    np.testing.assert_array_equal(again.train.y, data.train.y)  # drawn from data.seed
    other = data_sources.from_config(data_config(arrays=path, validation_size=0.1, labels_per_class=5, seed=1))
    assert not np.array_equal(other.train.y != UNLABELED, data.train.y != UNLABELED)


@pytest.mark.parametrize("make_pool, message", [
    (lambda d: pool_npz(d / "p.npz", np.zeros((4, 16, 16), np.uint8)),
     r"Invalid value for `data.unlabeled`: expected examples of the labeled data's shape \(8, 8\) and dtype uint8. "
     r"Received: shape \(16, 16\) and dtype uint8 in '.*p.npz'"),
    (lambda d: pool_npz(d / "p.npz", np.zeros((4, 8, 8), np.float32)),
     r"expected examples of the labeled data's shape \(8, 8\) and dtype uint8. Received: shape \(8, 8\) and dtype float32"),
    (lambda d: (np.savez(d / "p.npz", images=np.zeros((4, 8, 8), np.uint8)), str(d / "p.npz"))[1],
     r"`data.unlabeled`: File '.*p.npz' lacks the arrays \['x'\]"),
    (lambda d: str(d / "nothing"),
     r"`data.unlabeled`: expected an .npz file with an array `x`, or a folder of images without class folders. "
     r"Received: '.*nothing' \(no such file or folder\)"),
    (lambda d: digits_image_folder(d / "classes", per_class=1, size=8, split=False),
     r"`data.unlabeled`: expected a folder of .png/.jpg/.jpeg/.gif/.bmp images without class folders \(labeled "
     r"images go in `data.image_folder`\). Received: '.*classes' with sub-folders \['digit_0', 'digit_1'"),
])
def test_a_pool_that_does_not_match_the_labeled_data_is_refused_before_any_work(tmp_path, make_pool, message):
    path = digits_npz(tmp_path / "digits.npz")
    with pytest.raises(ConfigError, match=message):
        data_sources.from_config(data_config(arrays=path, unlabeled=make_pool(tmp_path)))


def test_a_folder_pool_needs_labeled_images(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "features.npz"
    np.savez(path, x_train=rng.normal(size=(50, 5)), y_train=rng.integers(0, 3, 50),
             x_test=rng.normal(size=(10, 5)), y_test=rng.integers(0, 3, 10))
    images, _ = digits_arrays()
    with pytest.raises(ConfigError, match=r"`data.unlabeled`: expected an .npz file with an array `x` of shape \(5,\) "
                                          r"and dtype float32, as the labeled data's examples; a folder of images needs "
                                          r"labeled images. Received: the folder"):
        data_sources.from_config(data_config(arrays=str(path), unlabeled=flat_image_folder(tmp_path / "p", images[:2])))


def examples(n=40, labeled=10, seed=0):
    rng = np.random.default_rng(seed)
    y = np.full(n, UNLABELED)
    y[:labeled] = rng.integers(0, 3, labeled)
    return TrainingExamples(y, x=rng.integers(0, 256, (n, 6, 6), dtype=np.uint8))


def linear_teacher():
    import keras

    x_in = keras.Input((6, 6, 1))
    return keras.Model(x_in, keras.layers.Dense(3)(keras.layers.Flatten()(x_in)))


def labels_of(dataset):
    return [batch[1].numpy() for batch in dataset]


@pytest.mark.slow
def test_the_student_alone_takes_as_many_steps_on_the_labeled_examples_only():
    settings = config.section("distill", batch_size=8, views=2)
    passed = teacher_pass(linear_teacher(), examples(), settings)
    assert (passed.labeled, passed.unlabeled, passed.steps_per_epoch) == (10, 30, 5)
    everything = labels_of(passed.batches())
    assert len(everything) == 5 and sum(map(len, everything)) == 40 and (np.concatenate(everything) == UNLABELED).sum() == 30
    alone = labels_of(passed.batches(labeled_only=True))
    assert len(alone) == 5 and all(len(b) == 8 for b in alone)  # 40 examples, the 10 labeled ones 4 times over
    assert np.all(np.concatenate(alone) != UNLABELED)
    assert np.bincount(np.concatenate(alone), minlength=3).tolist() == (np.bincount(examples().y[:10], minlength=3) * 4).tolist()
    # A new pipeline gives the same batches: two students trained one after the other see the same data.
    np.testing.assert_array_equal(np.concatenate(labels_of(passed.batches())), np.concatenate(everything))


def test_a_labeled_share_fixes_the_labeled_examples_in_every_batch():
    settings = config.section("distill", batch_size=8, views=1, labeled_share=0.25)
    passed = teacher_pass(linear_teacher(), examples(), settings)
    batches = labels_of(passed.batches())
    assert passed.steps_per_epoch == len(batches) == 5  # one pass over the pool of 30, 6 a batch
    assert [int((b != UNLABELED).sum()) for b in batches] == [2, 2, 2, 2, 2]
    assert len(labels_of(passed.batches(labeled_only=True))) == 5


@pytest.mark.slow
def test_a_streamed_pool_caches_the_labeled_rows_for_the_student_alone(tmp_path):
    data = examples()
    table = tf.constant(data.x[..., None].astype("float32") / 255)
    streamed = TrainingExamples(data.y, load=lambda index: tf.gather(table, index))
    settings = config.section("distill", batch_size=8, views=2)
    path = str(tmp_path / "cache" / "teacher_logits.npy")
    passed = teacher_pass(linear_teacher(), streamed, settings, cache_path=path)
    alone = labels_of(passed.batches(labeled_only=True))
    assert len(alone) == 5 and np.all(np.concatenate(alone) != UNLABELED)
    rows = np.load(str(tmp_path / "cache" / "teacher_logits.labeled.npy"))
    np.testing.assert_array_equal(rows, np.load(path)[:, :10])
    assert passed.logits.shape == (40, 3)


@pytest.mark.slow
def test_a_run_with_an_npz_pool_few_labels_and_a_labeled_share(tmp_path, capsys):
    import keras

    npz = digits_npz(tmp_path / "digits.npz")
    arrays = np.load(npz)
    keras.utils.set_random_seed(0)
    teacher = digits_cnn(filters=8, name="teacher", flatten=True)
    teacher.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    teacher.fit(arrays["x_train"][..., None] / 255.0, arrays["y_train"], epochs=5, verbose=0)
    teacher.save(tmp_path / "teacher.keras")
    images, _ = digits_arrays()
    run_config = {
        "data": {"arrays": npz, "validation_size": 0.1, "labels_per_class": 3,
                 "unlabeled": pool_npz(tmp_path / "pool.npz", images[:100])},
        "teacher": {"path": str(tmp_path / "teacher.keras")},
        "student": {"builder": "helpers:digits_student", "args": {"filters": 2}},
        "distill": {"epochs": 1, "views": 1, "batch_size": 64, "labeled_share": 0.25},
        "export": {"saved_model": False, "tflite": []},
    }
    (tmp_path / "run.json").write_text(json.dumps(run_config))
    assert cli.main(["distill", "--config", str(tmp_path / "run.json"), "--output", str(tmp_path / "run"),
                     "--progress", "none"]) == 0
    run = json.load(open(tmp_path / "run" / "run.json"))
    # 1,347 training digits keep 3 labels a class: 30 labeled, 1,317 unlabeled, and the pool's 100.
    # With 16 of each 64 labeled, an epoch is 30 steps: the pool's 1,417 in 48s and the labeled ones cycled.
    assert run["students"]["scratch"] == {"labeled": 30, "unlabeled": 0, "steps_per_epoch": 30, "epochs": 1}
    assert run["students"]["distilled"] == {"labeled": 30, "unlabeled": 1417, "steps_per_epoch": 30, "epochs": 1}
    assert "Data: " + npz + ", 1,447 training, 150 validation and 300 test examples, 10 classes (30 training " \
           "examples labeled)" in capsys.readouterr().out
    report = open(tmp_path / "run" / "report.md").read()
    assert "| 30 labeled |" in report and "| 30 labeled + 1,417 unlabeled |" in report
    assert "the student alone trained on the 30 labeled examples only" in report


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:The teacher's predictions match the labels")  # an untrained teacher
def test_a_run_on_arrays_with_a_folder_pool_streams_it(tmp_path):
    npz = digits_npz(tmp_path / "digits.npz")
    digits_cnn(filters=4, name="teacher").save(tmp_path / "teacher.keras")
    images, _ = digits_arrays()
    overrides = [f"data.arrays={npz}", f"data.unlabeled={flat_image_folder(tmp_path / 'pool', images[:50])}",
                 f"teacher.path={tmp_path / 'teacher.keras'}", "student.builder=helpers:digits_student",
                 "distill.epochs=1", "distill.views=2", "distill.batch_size=128", "export.saved_model=false",
                 "export.tflite=[]", "data.validation_size=0.1"]
    assert cli.main(["distill", "--output", str(tmp_path / "run"), "--progress", "none",
                     *sum((["--set", o] for o in overrides), [])]) == 0
    run = json.load(open(tmp_path / "run" / "run.json"))
    assert run["students"]["distilled"]["unlabeled"] == 50 and run["students"]["scratch"]["unlabeled"] == 0
    assert np.load(tmp_path / "run" / "cache" / "teacher_logits.npy", mmap_mode="r").shape == (2, 1397, 10)


def test_the_labeled_arrays_of_arrays_and_files_stay_in_memory(tmp_path):
    images, _ = digits_arrays()
    data = data_sources.from_config(data_config(arrays=digits_npz(tmp_path / "digits.npz"), validation_size=0,
                                                unlabeled=flat_image_folder(tmp_path / "pool", images[:3])))
    labeled = data.train.subset(data.train.labeled)
    assert labeled.in_memory and len(labeled) == 1497
    mixed = data.train.subset([1499, 0, 1498])  # arrays first, then files
    assert list(mixed.y) == [data.train.y[0], UNLABELED, UNLABELED] and len(mixed.x) == 1 and len(mixed.paths) == 2
