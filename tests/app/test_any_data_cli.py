"""The command line on data and models that are not Fashion-MNIST: distil, evaluate, export, and the errors."""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfdistill.app import cli
from helpers import digits_cnn, digits_image_folder, digits_npz


def trained_teacher(x, y, input_shape):
    keras.utils.set_random_seed(0)
    teacher = digits_cnn(input_shape, filters=16, name="teacher", flatten=True)
    teacher.compile(keras.optimizers.Adam(3e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    teacher.fit(x, y, epochs=20, batch_size=64, verbose=0)
    return teacher


def write_config(path, **sections):
    base = {"distill": {"epochs": 2, "views": 2, "batch_size": 64}, "export": {"min_agreement": 0.9}}
    for section, keys in sections.items():
        base.setdefault(section, {}).update(keys)
    path.write_text(json.dumps(base))
    return str(path)


def finished(run_dir):
    with open(os.path.join(run_dir, "run.json")) as f:
        run = json.load(f)
    assert run["status"] == "finished"
    return run


@pytest.mark.slow
def test_arrays_a_keras_teacher_and_a_builder_student_end_to_end(tmp_path, capsys):
    data = digits_npz(tmp_path / "digits.npz")
    arrays = np.load(data)
    teacher = trained_teacher(arrays["x_train"][..., None] / 255.0, arrays["y_train"], (8, 8, 1))
    teacher.save(tmp_path / "teacher.keras")
    config = write_config(
        tmp_path / "run.json", data={"arrays": data, "validation_size": 0.1},
        teacher={"path": str(tmp_path / "teacher.keras")},
        student={"builder": "helpers:digits_student", "args": {"filters": 4}},
    )
    assert cli.main(["distill", "--config", config, "--output", str(tmp_path / "run"), "--progress", "none"]) == 0
    run = finished(tmp_path / "run")
    rows = {row["name"]: row for row in run["rows"]}
    assert rows["teacher"]["accuracy"] > 0.8  # the digits teacher is real, and tested on the 300 test digits
    assert {"student scratch", "student distilled"} <= set(rows) and run["peak_rss_bytes"] > 0
    assert "Data: " + data + ", 1,347 training, 150 validation and 300 test examples, 10 classes" in capsys.readouterr().out

    student = str(tmp_path / "run" / "checkpoints" / "student_distilled.keras")
    assert cli.main(["evaluate", student, "--data", data]) == 0
    out = capsys.readouterr().out
    assert f"{data} test accuracy {rows['student distilled']['accuracy']:.2%} (300 examples)" in out

    assert cli.main(["export", student, "--data", data, "--format", "saved_model", "--output", str(tmp_path / "served")]) == 0
    serve = tf.saved_model.load(str(tmp_path / "served" / "1")).signatures["serving_default"]
    raw = arrays["x_test"][:5]
    outputs = serve(image=tf.constant(raw))
    logits = keras.models.load_model(student).predict(raw[..., None] / 255.0, verbose=0)
    np.testing.assert_allclose(outputs["probabilities"].numpy(), tf.nn.softmax(logits).numpy(), atol=1e-5)
    assert [n.decode() for n in outputs["class_name"].numpy()] == [f"digit {i}" for i in logits.argmax(-1)]

    tflite = str(tmp_path / "student.tflite")
    assert cli.main(["export", student, "--data", data, "--quantization", "int8", "--min-agreement", "0.8",
                     "--output", tflite]) == 0
    assert "verified on 300 test examples of " + data in capsys.readouterr().out
    assert cli.main(["evaluate", tflite, "--data", data]) == 0
    assert "test accuracy" in capsys.readouterr().out


@pytest.mark.slow
def test_an_image_folder_a_savedmodel_teacher_and_a_keras_student_end_to_end(tmp_path, capsys):
    folder = digits_image_folder(tmp_path / "photos", per_class=30, size=16)  # 300 training and 50 test PNGs
    images = np.stack([tf.io.decode_png(tf.io.read_file(os.path.join(root, name))).numpy()
                       for root, _, names in sorted(os.walk(os.path.join(folder, "train"))) for name in sorted(names)])
    labels = np.repeat(np.arange(10), 30)
    teacher = trained_teacher(images / 255.0, labels, (16, 16, 1))
    teacher.export(str(tmp_path / "teacher_sm" / "3"), verbose=False)  # TF Serving layout, a SavedModel only
    keras.utils.set_random_seed(1)
    digits_cnn((16, 16, 1), filters=4, name="student").save(tmp_path / "student.keras")
    config = write_config(
        tmp_path / "run.json", data={"image_folder": folder, "validation_size": 50},
        teacher={"path": str(tmp_path / "teacher_sm")}, student={"path": str(tmp_path / "student.keras")},
    )
    assert cli.main(["distill", "--config", config, "--output", str(tmp_path / "run"), "--progress", "none"]) == 0
    run = finished(tmp_path / "run")
    assert "(streamed from disk)" in capsys.readouterr().out
    cache = np.load(tmp_path / "run" / "cache" / "teacher_logits.npy", mmap_mode="r")
    assert cache.shape == (2, 250, 10)  # two views of the 250 training images, on disk
    rows = {row["name"]: row for row in run["rows"]}
    assert rows["teacher"]["accuracy"] > 0.7

    served = tf.saved_model.load(str(tmp_path / "run" / "export" / "student" / "1")).signatures["serving_default"]
    spec = served.structured_input_signature[1]["image"]
    assert spec.dtype == tf.uint8 and spec.shape.as_list() == [None, 16, 16, 1]
    assert served(image=tf.constant(images[:2]))["class_name"].numpy()[0].decode().startswith("digit_")

    student = str(tmp_path / "run" / "checkpoints" / "student_distilled.keras")
    assert cli.main(["evaluate", student, "--data", folder]) == 0
    assert f"{folder} test accuracy {rows['student distilled']['accuracy']:.2%} (50 examples)" in capsys.readouterr().out


def _exit_status_and_message(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    return exit_info.value.code, capsys.readouterr().err


def test_mismatched_models_and_data_exit_2_before_anything_is_written(tmp_path, capsys):
    data = digits_npz(tmp_path / "digits.npz")
    digits_cnn(filters=4, name="teacher").save(tmp_path / "teacher.keras")
    digits_cnn(filters=2, classes=7, name="student").save(tmp_path / "seven.keras")
    digits_cnn((28, 28, 1), filters=2, name="student").save(tmp_path / "big.keras")
    cases = {
        "seven.keras": r"the teacher outputs shape \(10,\) per example and the student \(7,\)",
        "big.keras": r"the student takes inputs of shape \(28, 28, 1\), but the data",
    }
    for student, message in cases.items():
        config = write_config(tmp_path / "c.json", data={"arrays": data},
                              teacher={"path": str(tmp_path / "teacher.keras")},
                              student={"path": str(tmp_path / student)})
        status, err = _exit_status_and_message(["distill", "--config", config, "--output", str(tmp_path / "run")], capsys)
        assert status == 2 and __import__("re").search(message, err), err
        assert not os.path.exists(tmp_path / "run")
    status, err = _exit_status_and_message(
        ["distill", "--set", "data.arays=x.npz", "--output", str(tmp_path / "run")], capsys)
    assert status == 2 and "Unknown key `data.arays`. Did you mean 'arrays'?" in err



@pytest.mark.slow
def test_train_teacher_on_arrays_exports_their_raw_form_and_class_names(tmp_path, capsys):
    data = digits_npz(tmp_path / "digits.npz")
    status, err = _exit_status_and_message(["train-teacher", "--data", data, "--epochs", "1"], capsys)
    assert status == 2 and "with `--data`, give `--output`" in err
    assert cli.main(["train-teacher", "--data", data, "--epochs", "2", "--progress", "none",
                     "--output", str(tmp_path / "teacher")]) == 0
    assert f"Teacher test accuracy on {data}:" in capsys.readouterr().out
    served = tf.saved_model.load(str(tmp_path / "teacher" / "1")).signatures["serving_default"]
    out = served(image=tf.constant(np.load(data)["x_test"][:3]))
    assert out["probabilities"].shape == (3, 10) and out["class_name"].numpy()[0].decode().startswith("digit ")
    status, err = _exit_status_and_message(["train-teacher", "--data", str(tmp_path), "--output", "t"], capsys)
    assert status == 2 and "takes data held in memory" in err
