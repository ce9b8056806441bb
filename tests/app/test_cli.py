import importlib.util
import os
import re
import signal
import subprocess
import sys

import numpy as np
import pytest

import tfdistill_command
from tfdistill.app import cli
from tfdistill.errors import CacheIntegrityError, ConfigError, ExportVerificationError
from helpers import REPO, image_teacher, small_images


NATIVE_LOG_LINE = r"^[IWE]\d{4} "  # absl's C++ log prefix: I0000, W0000, E0000
ABSL_NOTICE = "All log messages before absl::InitializeLog() is called are written to STDERR"


def _command_env():
    """A `tfdistill` subprocess's environment: this checkout's code, TensorFlow's and Python's defaults."""
    env = {key: value for key, value in os.environ.items()
           if key not in ("TF_CPP_MIN_LOG_LEVEL", "PYTHONFAULTHANDLER")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [REPO, env.get("PYTHONPATH")]))
    return env


@pytest.mark.slow
def test_verbose_shows_tensorflow_log_lines():
    student = os.path.join(REPO, "saved_models", "fashion_mnist_student", "1", "assets.extra", "model.keras")
    command = [sys.executable, "-m", "tfdistill_command", "evaluate", student]
    quiet = subprocess.run(command, capture_output=True, text=True, check=True, env=_command_env())
    verbose = subprocess.run(command + ["--verbose"], capture_output=True, text=True, check=True, env=_command_env())
    assert not re.search(NATIVE_LOG_LINE, quiet.stderr, re.M) and ABSL_NOTICE not in quiet.stderr, quiet.stderr
    assert re.search(NATIVE_LOG_LINE, verbose.stderr, re.M) and ABSL_NOTICE in verbose.stderr, verbose.stderr
    assert quiet.stdout == verbose.stdout and "test accuracy" in quiet.stdout


def test_only_what_tensorflow_logs_while_loading_is_dropped(capfd):
    chatter = [
        f"WARNING: {ABSL_NOTICE}\n",
        "I0000 00:00:1796052793.110224    4098 port.cc:153] oneDNN custom operations are on.\n",
        "W0000 00:00:1796052793.110845    4098 cudart_stub.cc:31] Could not find cuda drivers.\n",
    ]
    kept = ["E0000 00:00:1796052865.133286    6408 cuda_platform.cc:52] failed call to cuInit\n",
            "UserWarning: a Python warning while TensorFlow loads\n"]
    with pytest.raises(ImportError):
        with tfdistill_command._without_loading_chatter():
            for line in chatter + kept:
                os.write(2, line.encode())
            raise ImportError("the import failed")
    os.write(2, b"written after the import\n")
    assert capfd.readouterr().err == "".join(kept) + "written after the import\n"


# Imports TensorFlow as the `tfdistill` command does, hiding `tfdistill_command.KERAS_EXTRAS` = ARGV,
# then prints which of Keras's extras were loaded, and that TensorFlow, Keras and matplotlib work.
_IMPORT_TENSORFLOW = """
import os, sys, tfdistill_command
print("start", os.environ.get("TFDISTILL_KERAS_EXTRAS"), flush=True)
tfdistill_command.KERAS_EXTRAS = tuple(sys.argv[1:])
tfdistill_command.import_tensorflow()
print("loaded", sorted({name.split(".")[0] for name in sys.modules} & {"sklearn", "matplotlib", "IPython"}))
import keras, matplotlib, tensorflow as tf
print("works", keras.layers.Dense(2)(tf.ones((1, 3))).shape, matplotlib.__name__ in sys.modules)
"""


@pytest.mark.slow
def test_tensorflow_starts_without_kerass_unused_extras_and_they_import_afterwards():
    env = {key: value for key, value in _command_env().items() if key != "TFDISTILL_KERAS_EXTRAS"}
    lean = subprocess.run([sys.executable, "-c", _IMPORT_TENSORFLOW, *tfdistill_command.KERAS_EXTRAS],
                          capture_output=True, text=True, check=True, env=env).stdout
    assert lean.splitlines() == ["start None", "loaded []", "works (1, 2) True"]
    # A TensorFlow that cannot import without a hidden package (here one it always needs): the
    # process starts again and imports everything, Keras's extras included.
    needed = subprocess.run([sys.executable, "-c", _IMPORT_TENSORFLOW, "ml_dtypes"],
                            capture_output=True, text=True, check=True, env=env).stdout
    installed = sorted(name for name in tfdistill_command.KERAS_EXTRAS if importlib.util.find_spec(name))
    assert needed.splitlines() == ["start None", "start 1", f"loaded {installed}", "works (1, 2) True"], needed


# Runs `tfdistill_command.main(ARGV)` and prints its exit status and whether TensorFlow or Keras was imported.
_PARSE_ONLY = """
import sys, tfdistill_command
try:
    tfdistill_command.main(sys.argv[1:])
except SystemExit as exit:
    print("exit", exit.code, "tensorflow" in sys.modules, "keras" in sys.modules)
"""


@pytest.mark.slow
@pytest.mark.parametrize("argv, status", [
    (["--help"], 0), (["distill", "--help"], 0), (["tune", "--verbose", "--help"], 0), (["distill"], 2),
])
def test_help_and_argument_errors_answer_before_tensorflow_is_imported(argv, status):
    result = subprocess.run([sys.executable, "-c", _PARSE_ONLY, *argv], capture_output=True, text=True,
                            env=_command_env())
    assert result.stdout.splitlines()[-1] == f"exit {status} False False", result.stdout + result.stderr
    assert ("usage: tfdistill" in result.stdout) == (status == 0)


@pytest.mark.parametrize("argv, verbose", [
    (["distill", "--output", "run"], False),
    (["--verbose", "distill", "--output", "run"], True),
    (["distill", "--verbose", "--output", "run"], True),
    (["distill", "--output", "run", "--verbose"], True),
    (["evaluate", "model.keras", "--verbose"], True),
])
def test_verbose_is_accepted_before_or_after_the_command(argv, verbose):
    assert cli.parse_args(argv).verbose is verbose


def test_tune_offers_the_librarys_loss_families():
    from tfdistill.tuning import FAMILIES

    assert cli.TUNE_FAMILIES == FAMILIES


def test_every_benchmark_script_can_be_named():
    benchmarks = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "benchmarks")
    scripts = {name[:-3] for name in os.listdir(benchmarks) if name.endswith(".py")}
    helpers = {"common", "quantization_tables"}  # imported by the scripts, not run
    assert sorted(scripts - helpers) == sorted(cli.BENCHMARKS)


def test_a_benchmarks_own_arguments_stay_its_own():
    args = cli.parse_args(["benchmark", "offline", "--verbose"])
    assert args.args == ["--verbose"] and args.verbose is False


@pytest.mark.parametrize("argv, message", [
    (["export", "m.keras", "--output", "m", "--format", "saved_model", "--version", "0"],
     "argument --version: expected an integer >= 1. Received: '0'"),
    (["export", "m.keras", "--output", "m.tflite", "--min-agreement", "99"],
     "argument --min-agreement: expected a number in [0, 1]. Received: '99'"),
    (["demo", "--epochs", "-3"], "argument --epochs: expected an integer >= 1. Received: '-3'"),
])
def test_out_of_range_arguments_are_argument_errors(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.parametrize("error", [
    ConfigError("Invalid value for `distill.epochs`: expected an integer >= 1. Received: 0"),
    ExportVerificationError("The int8 TFLite model agrees with the Keras model on 90.00% of top-1 predictions"),
    CacheIntegrityError("The cache file 'cache/teacher_logits.npy' does not hold what its record says"),
    FileExistsError("'student.tflite' already exists; pass `overwrite=True` to replace it."),
    FileNotFoundError("Invalid value for argument `model`: no file at 'nope.keras'"),
])
def test_expected_errors_exit_2_with_one_line(error, monkeypatch, capsys):
    def command(args):
        raise error

    monkeypatch.setattr(cli, "_distill", command)
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["distill", "--output", "run"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == f"tfdistill distill: error: {error}\n"


@pytest.mark.parametrize("error", [ValueError("a bug"), TypeError("a bug"), KeyError("a bug"), ImportError("a bug")])
def test_unexpected_errors_are_not_caught(error, monkeypatch, capsys):
    def command(args):
        raise error

    monkeypatch.setattr(cli, "_distill", command)
    with pytest.raises(type(error)):
        cli.main(["distill", "--output", "run"])
    assert capsys.readouterr().err == ""


def test_a_damaged_model_file_is_an_expected_error(tmp_path, capsys):
    model = tmp_path / "model.keras"
    model.write_bytes(b"not a zip archive")
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["evaluate", str(model)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"tfdistill evaluate: error: Invalid model file {str(model)!r}: it is not a `.keras` file")
    assert len(err.splitlines()) == 1


# `student.builder`s of a run: each fails in a way the command does not expect.
_FAILING_BUILDERS = """
import ctypes
import subprocess
import sys


def segfault(**kwargs):
    ctypes.string_at(0)


def segfault_in_a_child(**kwargs):
    subprocess.run([sys.executable, "-c", "import ctypes; ctypes.string_at(0)"], check=True)


def internal_bug(**kwargs):
    return int("student")
"""


@pytest.mark.slow
@pytest.mark.parametrize("builder, status, shown", [
    ("segfault", -signal.SIGSEGV,
     ["Fatal Python error: Segmentation fault", 'failing_builders.py", line 8 in segfault']),
    ("segfault_in_a_child", 1,
     ["Fatal Python error: Segmentation fault", "Traceback (most recent call last)", "CalledProcessError"]),
    ("internal_bug", 1, ["Traceback (most recent call last)", "ValueError: invalid literal for int()"]),
])
def test_crashes_and_bugs_show_their_cause(tmp_path, builder, status, shown):
    (tmp_path / "failing_builders.py").write_text(_FAILING_BUILDERS)
    (x_train, y_train), (x_test, y_test) = small_images(40), small_images(20, seed=1)
    np.savez(tmp_path / "images.npz", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    image_teacher().save(tmp_path / "teacher.keras")
    command = [sys.executable, "-m", "tfdistill_command", "distill", "--output", "run", "--progress", "none",
               "--set", "data.arrays=images.npz", "--set", "teacher.path=teacher.keras",
               "--set", f"student.builder=failing_builders:{builder}"]
    result = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, env=_command_env())
    assert result.returncode == status, result.stderr[-3000:]
    for text in shown:
        assert text in result.stderr, result.stderr[-3000:]


def test_demo_help_describes_the_job(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["demo", "--help"])
    out = capsys.readouterr().out
    assert exit_info.value.code == 0 and "--retrain-teacher" in out and "fashion_mnist_student" in out


def test_unknown_command_exits_non_zero():
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["distil-everything"])
    assert exit_info.value.code == 2


def test_demo_flags_reach_the_recipe(monkeypatch):
    seen = {}
    monkeypatch.setattr("tfdistill.app.demo.run", lambda config, **kwargs: seen.update(config=config, **kwargs))
    cli.main(["demo", "--epochs", "3", "--views", "2", "--no-export"])
    recipe = seen["config"].distill
    assert recipe.epochs == 3 and recipe.views == 2
    assert seen["config"].export.saved_model is False and seen["config"].export.tflite == []


def test_the_demo_is_a_distill_run_of_the_default_config_with_few_labels(monkeypatch):
    from tfdistill.app import config, demo

    seen = {}
    monkeypatch.setattr("tfdistill.app.demo.run", lambda config, **kwargs: seen.update(config=config, **kwargs))
    cli.main(["demo"])
    few = seen["config"]
    assert few.data.labels_per_class == demo.LABELS_PER_CLASS == 100 and few.distill.epochs == demo.FEW_LABELS_EPOCHS
    assert few.export.serving_dir == os.path.join("saved_models", "fashion_mnist_student")
    assert few.teacher.path == os.path.join("saved_models", "fashion_mnist_teacher")
    cli.main(["demo", "--all-labels", "--set", "data.train_subset=6000"])
    every = seen["config"].to_dict()
    assert every["data"]["labels_per_class"] is None and every["data"]["train_subset"] == 6000
    # Apart from where its models are read and written, and the int8 export's quantization-aware
    # distillation, the demo is the default config.
    assert every["qat"]["epochs"] == demo.QAT_EPOCHS
    every["data"]["train_subset"], every["export"]["serving_dir"], every["qat"]["epochs"] = None, None, 0
    assert every == config.resolve()
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["demo", "--all-labels", "--labels-per-class", "10"])
    assert exit_info.value.code == 2


@pytest.mark.slow
def test_export_tflite_command_verifies_and_refuses_to_overwrite(tmp_path):
    repo = REPO
    student = os.path.join(repo, "saved_models", "fashion_mnist_student", "1", "assets.extra", "model.keras")
    output = tmp_path / "student.tflite"
    command = [sys.executable, "-m", "tfdistill_command", "export", student, "--output", str(output),
               "--quantization", "float32"]
    result = subprocess.run(command, capture_output=True, text=True, check=True, env=_command_env())
    assert "top-1 agreement 100.00%" in result.stdout and output.stat().st_size > 0
    # TensorFlow's C++ log lines and the converter's chatter stay off the user's terminal.
    assert not re.search(NATIVE_LOG_LINE, result.stderr, re.M), result.stderr
    again = subprocess.run(command, capture_output=True, text=True)
    assert again.returncode == 2 and "tfdistill export: error:" in again.stderr and "already exists" in again.stderr
    assert "Traceback" not in again.stderr


@pytest.mark.slow
def test_evaluate_reports_the_shipped_students_accuracy(capsys):
    student = os.path.join(REPO, "saved_models", "fashion_mnist_student", "1", "assets.extra", "model.keras")
    cli.main(["evaluate", student])
    assert "14,618 parameters, Fashion-MNIST test accuracy 90.31% (10,000 examples)" in capsys.readouterr().out


@pytest.mark.parametrize("command", ["distill", "tune", "train-teacher", "evaluate", "export", "benchmark", "demo"])
def test_every_subcommand_has_its_own_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main([command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: tfdistill {command}") and len(out) > 300 and "--verbose" in out
