"""One task end to end: a teacher, a student alone and distilled, an int8 export verified.

The task examples (`examples/keyword_spotting.py`, `examples/language_id.py`,
`examples/byte_language_model.py`) build their data and models and call
`compare_alone_and_distilled`, which runs them through the pieces of a
`tfdistill distill` run (`tfdistill.app`): it trains the teacher (or reuses
the one saved in the output folder), runs it once over the training data (the
teacher's pass: in memory, or with `top_k` a memory-mapped top-k cache on
disk), trains the student twice from the same initial weights on the same
batches in the same order, once on the labels alone (soft weight 0) and once
distilled, and exports the distilled student to int8 TFLite, verified against
the Keras model. What is the task's own stays here: logits with positions (a
language model's tokens) are compared per position, padding weighted out, and
the cross-entropy is given in bits.
"""

import dataclasses
import json
import os
import time
from typing import Callable, Optional

import keras
import numpy as np
import tensorflow as tf

from tfdistill.app import config
from tfdistill.app.evaluation import keras_file_size
from tfdistill.app.exports import export_tflite_files
from tfdistill.app.model_sources import with_initial_weights
from tfdistill.app.teacher_pass import TrainingExamples, teacher_pass
from tfdistill.app.training import train_student, train_teacher
from tfdistill.fidelity import fidelity_from_logits


def task_recipe(**keys):
    """The students' recipe: a config's `distill` section with `keys` changed (`epochs`, `learning_rate`, ...).

    One view (the examples are not images to flip and shift) and the
    BatchNorm statistics as trained, unless `keys` say otherwise.

    Example:
        >>> task_recipe(epochs=20, batch_size=64).views
        1
    """
    return config.section("distill", **{"views": 1, "precise_batch_norm": False, **keys})


def _weighted_accuracy(logits, y, weights=None):
    hits = np.argmax(logits, axis=-1) == np.asarray(y)
    weights = np.ones(hits.shape) if weights is None else np.asarray(weights)
    return float(np.sum(hits * weights) / np.sum(weights))


def _cross_entropy_bits(logits, y, weights=None):
    """Mean cross-entropy of the labels in bits (bits per byte for a byte language model)."""
    logits = np.asarray(logits, np.float64)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    nats = -np.take_along_axis(log_probs, np.asarray(y)[..., None].astype(np.int64), axis=-1)[..., 0]
    weights = np.ones(nats.shape) if weights is None else np.asarray(weights)
    return float(np.sum(nats * weights) / np.sum(weights) / np.log(2.0))


def _dataset(x, y, weights, batch_size, seed):
    arrays = (x, y) if weights is None else (x, y, weights)
    return tf.data.Dataset.from_tensor_slices(arrays).shuffle(len(x), seed=seed, reshuffle_each_iteration=True).batch(
        batch_size
    )


def compare_alone_and_distilled(
    task: str,
    data: dict,
    make_teacher: Callable[[], keras.Model],
    make_student: Callable[[str], keras.Model],
    recipe,
    output_dir: str,
    teacher_epochs: int = 20,
    teacher_learning_rate: float = 1e-3,
    top_k: Optional[int] = None,
    verify_examples: Optional[int] = None,
    min_agreement: float = 0.95,
    verbose: int = 2,
    overwrite: bool = False,
) -> dict:
    """Trains (or reuses) a teacher, a student alone and distilled; exports the distilled one to int8.

    Args:
        task: the task's name, for the report.
        data: `x_train`, `y_train`, `x_test`, `y_test` and, for outputs with
            positions, `w_train`, `w_test` (padding 0).
        make_teacher: builds an untrained teacher.
        make_student: `name -> ` a fresh student; its first call's weights
            are both runs' initial weights.
        recipe: the students' recipe, a `distill` section (`task_recipe`):
            epochs, learning rate, batch size, soft loss, temperature, the
            distilled run's hard weight (the alone run's is 1), seed.
        output_dir: where `teacher.keras` is read or written, and the
            students, `student_int8.tflite`, the cache and `results.json` go.
        teacher_epochs, teacher_learning_rate: the teacher's training, when
            it is trained.
        top_k: cache the teacher's top-k logits (on disk) instead of all.
        verify_examples: test examples the int8 model is verified on (a
            random subset of this size; `None`: all).
        min_agreement: lowest top-1 agreement of the int8 model with Keras.
        verbose: Keras verbosity of `fit`.
        overwrite: replace the students, export and results of an earlier
            run in `output_dir` (otherwise refused before any training).

    Returns:
        The results (also written to `output_dir/results.json`).
    """
    check_output_dir(output_dir, overwrite)
    seconds = {}
    teacher = _teacher(make_teacher, data, recipe, teacher_epochs, teacher_learning_rate, output_dir, seconds, verbose)

    start = time.perf_counter()
    examples = TrainingExamples(data["y_train"], x=data["x_train"], sample_weight=data.get("w_train"))
    cache = os.path.join(output_dir, "cache", f"teacher_top{top_k}_T{recipe.temperature:g}") if top_k else None
    passed = teacher_pass(teacher, examples, recipe, cache_path=cache, top_k=top_k)
    seconds["teacher_cache"] = time.perf_counter() - start

    students = _train_pair(teacher, make_student, passed, recipe, output_dir, seconds, verbose)
    results = _test(task, data, teacher, students, recipe, teacher_epochs, teacher_learning_rate, top_k)
    start = time.perf_counter()
    results["int8"] = dataclasses.asdict(_export_int8(students["distilled"], data, recipe.seed, output_dir,
                                                      verify_examples, min_agreement))
    seconds["export"] = time.perf_counter() - start
    results["accuracy"]["distilled_int8"] = results["int8"]["accuracy"]
    results["seconds"] = seconds
    with open(os.path.join(output_dir, "results.json"), "w") as file:
        json.dump(results, file, indent=2)
    print(summary(results))
    return results


def check_output_dir(output_dir, overwrite):
    """Refuses, before any work, a folder that holds an earlier run's students or results
    (unless `overwrite`); creates the folder."""
    outputs = ["student_alone.keras", "student_distilled.keras", "student_int8.tflite", "results.json"]
    existing = [name for name in outputs if os.path.exists(os.path.join(output_dir, name))]
    if existing and not overwrite:
        raise FileExistsError(
            f"Invalid value for argument `output_dir`: {output_dir!r} already holds {', '.join(existing)} "
            "from an earlier run; nothing was changed. Choose another folder, or pass `overwrite=True` "
            "(`--overwrite`) to replace them (the saved teacher is reused either way)."
        )
    os.makedirs(output_dir, exist_ok=True)


def _teacher(make_teacher, data, recipe, epochs, learning_rate, output_dir, seconds, verbose):
    """The teacher saved in `output_dir`, or a new one trained on the labels (and saved there)."""
    path = os.path.join(output_dir, "teacher.keras")
    if os.path.exists(path):
        print(f"Teacher: {path} (reused)")
        return keras.models.load_model(path)
    print(f"Training the teacher ({epochs} epochs):")
    start = time.perf_counter()
    model = make_teacher()
    keras.utils.set_random_seed(recipe.seed)
    train = _dataset(data["x_train"], data["y_train"], data.get("w_train"), recipe.batch_size, recipe.seed)
    teacher = train_teacher(model, train, epochs, learning_rate, seed=recipe.seed, verbose=verbose)
    teacher.save(path)
    seconds["teacher"] = time.perf_counter() - start
    return teacher


def _train_pair(teacher, make_student, passed, recipe, output_dir, seconds, verbose):
    """The student alone and distilled, from the same initial weights on the same batches; each saved."""
    keras.utils.set_random_seed(recipe.seed)
    make = with_initial_weights(make_student, make_student("student_initial"))
    students = {}
    for run, distil in (("alone", False), ("distilled", True)):
        print(f"Student {run} ({recipe.epochs} epochs):")
        start = time.perf_counter()
        students[run], _ = train_student(teacher, make, passed.batches(), recipe, distil=distil, name=f"student_{run}",
                                         verbose=verbose)
        seconds[f"student_{run}"] = time.perf_counter() - start
        students[run].save(os.path.join(output_dir, f"student_{run}.keras"))
    return students


def _test(task, data, teacher, students, recipe, teacher_epochs, teacher_learning_rate, top_k):
    """The task's measures of the teacher and both students on the test data."""
    x_test, y_test, w_test = data["x_test"], data["y_test"], data.get("w_test")
    teacher_logits = teacher.predict(x_test, batch_size=512, verbose=0)
    results = {
        "task": task,
        "recipe": {**recipe.to_dict(), "teacher_epochs": teacher_epochs,
                   "teacher_learning_rate": teacher_learning_rate, "top_k": top_k},
        "train_examples": int(len(data["x_train"])),
        "test_examples": int(len(x_test)),
        "parameters": {"teacher": int(teacher.count_params()), "student": int(students["alone"].count_params())},
        "keras_bytes": {"teacher": keras_file_size(teacher), "student": keras_file_size(students["distilled"])},
        "accuracy": {"teacher": _weighted_accuracy(teacher_logits, y_test, w_test)},
        "cross_entropy_bits": {"teacher": _cross_entropy_bits(teacher_logits, y_test, w_test)},
        "fidelity": {},
    }
    for run, student in students.items():
        logits = student.predict(x_test, batch_size=512, verbose=0)
        results["accuracy"][run] = _weighted_accuracy(logits, y_test, w_test)
        results["cross_entropy_bits"][run] = _cross_entropy_bits(logits, y_test, w_test)
        fidelity = fidelity_from_logits(teacher_logits, logits, y_test, w_test)
        results["fidelity"][run] = {"top1_agreement": fidelity.top1_agreement, "kl": fidelity.kl_divergence}
    return results


def _export_int8(student, data, seed, output_dir, verify_examples, min_agreement):
    """The int8 `.tflite` file, calibrated on 200 training examples and verified on the test data (or a subset)."""
    x_test, y_test, w_test = data["x_test"], data["y_test"], data.get("w_test")
    rng = np.random.default_rng(seed)
    calibration = data["x_train"][rng.permutation(len(data["x_train"]))[:200]]
    subset = np.arange(len(x_test))
    if verify_examples is not None and verify_examples < len(x_test):
        subset = np.sort(rng.permutation(len(x_test))[:verify_examples])
    exports = export_tflite_files(student, ["int8"], output_dir, x_test[subset], y_test[subset], calibration,
                                  min_agreement, len(calibration), sample_weight=None if w_test is None else w_test[subset])
    if exports.errors:
        raise exports.errors[0]
    return exports.tflite[0]


def summary(results):
    """The comparison as a small table, for the console."""
    accuracy, parameters, bits = results["accuracy"], results["parameters"], results["cross_entropy_bits"]
    lines = [
        f"{results['task']}: {results['train_examples']:,} training and {results['test_examples']:,} test examples",
        "  accuracy, cross-entropy in bits",
        f"  teacher             {accuracy['teacher']:.2%}  {bits['teacher']:.3f}  ({parameters['teacher']:,} parameters)",
        f"  student alone       {accuracy['alone']:.2%}  {bits['alone']:.3f}  ({parameters['student']:,} parameters, "
        f"{parameters['teacher'] / parameters['student']:.0f}x fewer)",
        f"  student distilled   {accuracy['distilled']:.2%}  {bits['distilled']:.3f}  "
        f"({100 * (accuracy['distilled'] - accuracy['alone']):+.2f} points)",
        f"  distilled, int8     {accuracy['distilled_int8']:.2%}  on {results['int8']['num_examples']:,} test "
        f"examples (Keras {results['int8']['keras_accuracy']:.2%} on them); {results['int8']['file_bytes']:,} B, "
        "agreement with Keras "
        f"{results['int8']['top1_agreement']:.2%}, {results['int8']['median_latency_ms']:.3f} ms/example",
        "  seconds: " + ", ".join(f"{name} {value:.0f}" for name, value in results["seconds"].items()),
    ]
    return "\n".join(lines)
