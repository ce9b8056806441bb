"""`tfdistill distill`: a run folder from a config, on real Fashion-MNIST with the shipped teacher."""

import csv
import json
import os
import subprocess
import sys

import pytest

from tfdistill.app import cli, config, data_sources, model_sources, runs
from tfdistill.app.sections import RunConfig
from helpers import REPO

TEACHER = os.path.join(REPO, "saved_models", "fashion_mnist_teacher")
TINY = [f"teacher.path={TEACHER}", "data.train_subset=1500", "data.validation_size=500", "data.test_subset=2000",
        "distill.epochs=2", "distill.views=2", "distill.batch_size=64", 'export.tflite=["float32"]']


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    run_dir = str(tmp_path_factory.mktemp("runs") / "tiny")
    resolved = config.resolve(None, TINY)
    results = runs.run_distillation(RunConfig.from_dict(resolved), run_dir, verbose=0)
    return run_dir, resolved, results


@pytest.mark.slow
def test_run_folder_holds_everything(finished_run):
    run_dir, resolved, results = finished_run
    with open(os.path.join(run_dir, "config.json")) as f:
        assert json.load(f) == resolved
    with open(os.path.join(run_dir, "run.json")) as f:
        assert json.load(f)["status"] == "finished"
    for name in ("scratch", "distilled"):
        with open(os.path.join(run_dir, "metrics", f"{name}.csv")) as f:
            rows = list(csv.DictReader(f))
        assert len(rows) == 2 and {"loss", "hard_loss", "soft_loss", "val_accuracy"} <= set(rows[0])
        assert os.listdir(os.path.join(run_dir, "tensorboard", name))
        assert os.path.isfile(os.path.join(run_dir, "checkpoints", f"student_{name}.keras"))
    assert os.path.isfile(os.path.join(run_dir, "export", "student", "1", "saved_model.pb"))
    assert os.path.getsize(os.path.join(run_dir, "export", "student_float32.tflite")) > 10_000
    for plot in ("learning_curves", "accuracy_vs_size", "accuracy_vs_latency", "confusion_matrix"):
        with open(os.path.join(run_dir, "plots", f"{plot}.png"), "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    report = open(os.path.join(run_dir, "report.md")).read()
    assert "| teacher | 871,978 |" in report and "plots/confusion_matrix.png" in report
    names = [row["name"] for row in results["rows"]]
    assert names == ["teacher", "student scratch", "student distilled", "student TFLite float32"]
    assert results["rows"][0]["accuracy"] > 0.93  # the shipped teacher, on the test set
    assert results["tflite"][0]["top1_agreement"] >= 0.99
    fidelity = json.load(open(os.path.join(run_dir, "run.json")))["fidelity"]
    assert (fidelity["train"]["examples"], fidelity["test"]["examples"]) == (1000, 2000)
    assert fidelity["test"]["student_accuracy"] == pytest.approx(results["rows"][2]["accuracy"])
    assert "Fidelity of the distilled student to the teacher: on its training images top-1 agreement" in report


@pytest.mark.slow
def test_run_fidelity_reuses_the_teachers_cached_outputs_on_the_plain_training_images(finished_run):
    # The run takes the teacher's side from view 0 of its float16 cache instead of running
    # the teacher again; a fresh float32 pass on the un-augmented images must agree.
    import keras

    import tfdistill
    from tfdistill.data import to_float_images

    run_dir, resolved, _ = finished_run
    data = data_sources.from_config(RunConfig.from_dict(resolved).data)
    x_train, y_train = data.train.x, data.train.y
    student = keras.models.load_model(os.path.join(run_dir, "checkpoints", "student_distilled.keras"))
    fresh = tfdistill.measure_fidelity(model_sources.load_teacher(resolved["teacher"]["path"]), student,
                                       to_float_images(x_train), y_train)
    recorded = json.load(open(os.path.join(run_dir, "run.json")))["fidelity"]["train"]
    # float16 may flip a near-tie: at most one of the 1,000 images.
    assert recorded["top1_agreement"] == pytest.approx(fresh.top1_agreement, abs=0.0011)
    assert recorded["kl_divergence"] == pytest.approx(fresh.kl_divergence, rel=1e-3)
    assert recorded["teacher_accuracy"] == pytest.approx(fresh.teacher_accuracy, abs=0.0011)


@pytest.mark.slow
def test_a_finished_run_is_never_overwritten_without_the_flag(finished_run):
    run_dir, resolved, _ = finished_run
    before = os.path.getmtime(os.path.join(run_dir, "report.md"))
    with pytest.raises(config.ConfigError, match="already holds a finished run.*--overwrite"):
        runs.run_distillation(RunConfig.from_dict(resolved), run_dir, verbose=0)
    assert os.path.getmtime(os.path.join(run_dir, "report.md")) == before


@pytest.mark.slow
def test_the_resolved_config_repeats_the_run(finished_run, capsys):
    run_dir, resolved, _ = finished_run
    cli.main(["distill", "--config", os.path.join(run_dir, "config.json"), "--output", "unused", "--print-config"])
    assert json.loads(capsys.readouterr().out) == resolved


@pytest.mark.slow
def test_bad_config_exits_2_before_any_work(tmp_path):
    out = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, "-m", "tfdistill_command", "distill", "--output", str(out), "--set", "distill.epoch=3"],
        capture_output=True, text=True,
    )
    assert result.returncode == 2 and "Did you mean 'epochs'?" in result.stderr and "Traceback" not in result.stderr
    assert not out.exists()


def test_missing_dataset_is_refused_before_any_work(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(FileNotFoundError, match="dataset-fashion-mnist"):
        runs.run_distillation(config.run_config(None, TINY + [f"data.data_dir={tmp_path}"]), str(out), verbose=0)
    assert not out.exists()


def test_missing_teacher_points_to_train_teacher(tmp_path):
    with pytest.raises(config.ConfigError, match="tfdistill train-teacher"):
        runs.run_distillation(config.run_config(None, [f"teacher.path={tmp_path}/none"]), str(tmp_path / "r"), verbose=0)


@pytest.mark.slow
def test_students_are_evaluated_with_precise_batch_norm_statistics(finished_run):
    """1,000 images for 2 epochs (32 steps): lagging moving averages would leave both near chance."""
    run_dir, _, results = finished_run
    accuracies = {row["name"]: row["accuracy"] for row in results["rows"]}
    assert accuracies["student scratch"] > 0.4 and accuracies["student distilled"] > 0.4
    gain = results["gain"]
    assert gain["near_chance"] is False
    assert gain["points"] == pytest.approx(100 * (accuracies["student distilled"] - accuracies["student scratch"]))
    with open(os.path.join(run_dir, "run.json")) as f:
        assert json.load(f)["gain"]["summary"].startswith("Distillation: ")


@pytest.mark.slow
def test_tune_writes_its_choice_and_the_returned_student(tmp_path):
    import keras

    run_dir = str(tmp_path / "tune")
    resolved = config.run_config(None, TINY)
    result = runs.run_tuning(resolved, run_dir, families=["kd"], seeds=[0, 1], verbose=0)
    with open(os.path.join(run_dir, "run.json")) as f:
        recorded = json.load(f)
    assert recorded["status"] == "finished" and recorded["summary"] == result.summary
    assert recorded["best"]["loss"] in ("alone", "kd") and recorded["alone"]["loss"] == "alone"
    if recorded["best"]["loss"] == "kd":
        assert len(recorded["validation_gain"]["differences"]) == 2
    student = keras.models.load_model(os.path.join(run_dir, "student.keras"))
    assert student.count_params() == 14_618
    with pytest.raises(config.ConfigError, match="finished run"):
        runs.run_tuning(resolved, run_dir, families=["kd"], verbose=0)


@pytest.mark.slow
def test_a_refused_tflite_export_is_reported_and_the_run_still_finishes(tmp_path):
    run_dir = str(tmp_path / "refused")
    resolved = config.run_config(None, TINY + ["distill.epochs=1", "distill.train_scratch=false",
                                            "export.saved_model=false", "export.min_agreement=1.5"])
    results = runs.run_distillation(resolved, run_dir, verbose=0)
    assert [r["quantization"] for r in results["refused_exports"]] == ["float32"]
    assert results["refused_exports"][0]["top1_agreement"] == pytest.approx(1.0)
    assert not os.path.exists(os.path.join(run_dir, "export", "student_float32.tflite"))
    with open(os.path.join(run_dir, "run.json")) as f:
        assert json.load(f)["status"] == "finished"
    with open(os.path.join(run_dir, "report.md")) as f:
        assert "Not exported: The float32 TFLite model agrees" in f.read()


@pytest.mark.slow
def test_peak_memory_is_this_programs_not_its_parents():
    # A child started by a large parent: getrusage's peak would count the parent's memory.
    code = ("import numpy as np, subprocess, sys; big = np.ones(2**30 // 8); "
            "print(subprocess.run([sys.executable, '-c', 'from tfdistill.app.run_folder import peak_rss_bytes; "
            "print(peak_rss_bytes())'], capture_output=True, text=True, check=True).stdout)")
    child_peak = int(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
    assert 0 < child_peak < 2**30  # importing TensorFlow takes about 650 MiB


def test_the_demos_run_folders_are_numbered_and_an_interrupted_one_is_resumed(tmp_path):
    from tfdistill.app import run_folder

    parent, resolved = str(tmp_path / "demo"), config.resolve()
    first = run_folder.numbered_run_dir(parent, resolved)
    assert first == os.path.join(parent, "1")
    run_folder.start(first, resolved)  # interrupted: resumed by the same config, not by another
    assert run_folder.numbered_run_dir(parent, resolved) == first
    other = config.resolve(None, ["distill.epochs=3"])
    assert run_folder.numbered_run_dir(parent, other) == os.path.join(parent, "2")
    run_folder.finish(first, {})  # finished: never written again
    assert run_folder.numbered_run_dir(parent, resolved) == os.path.join(parent, "2")


@pytest.mark.slow
def test_int8_runs_add_a_quantization_aware_stage_reported_beside_post_training(tmp_path):
    run_dir = str(tmp_path / "qad")
    resolved = config.run_config(None, TINY + ["distill.epochs=1", "distill.train_scratch=false",
                                               "export.saved_model=false", 'export.tflite=["int8"]',
                                               "export.verify_examples=500", "export.min_agreement=0.9", "qat.epochs=1"])
    results = runs.run_distillation(resolved, run_dir, verbose=0)
    names = [row["name"] for row in results["rows"]]
    assert names[-2:] == ["student TFLite int8", "student TFLite int8 QAD"]
    qad = results["tflite"][-1]
    assert qad["quantization"] == "int8 QAD" and 0.5 < qad["float_agreement"] <= 1 and qad["num_examples"] == 500
    assert os.path.getsize(os.path.join(run_dir, "export", "student_int8_qad.tflite")) == qad["file_bytes"]
    with open(os.path.join(run_dir, "report.md")) as f:
        report = f.read()
    assert "| student TFLite int8 QAD |" in report and "int8 QAD: the distilled student fake-quantized" in report
