"""One task end to end: a teacher, a student alone and distilled, an int8 export verified.

The task examples (`examples/keyword_spotting.py`, `examples/language_id.py`,
`examples/byte_language_model.py`) build their data and models and call
`compare_alone_and_distilled`. It trains the teacher (or reuses the one
saved in the output folder), runs it once over the training data (an
offline cache: in memory, or with `top_k` a memory-mapped top-k cache on
disk), trains the student twice from the same initial weights on the same
batches in the same order, once on the labels alone (soft weight 0) and once
distilled, and exports the distilled student to int8 TFLite, verified against
the Keras model. Logits with positions (a language model's tokens) are
compared per position, padding weighted out.
"""

import dataclasses
import json
import os
import time
from typing import Callable, Optional

import keras
import numpy as np
import tensorflow as tf

from tfdistill import losses
from tfdistill.app.training import cosine_adam, keras_file_size
from tfdistill.distiller import Distiller
from tfdistill.export import export_tflite
from tfdistill.fidelity import fidelity_from_logits
from tfdistill.offline import compute_teacher_logits, offline_dataset, streaming_offline_dataset, write_teacher_logits


@dataclasses.dataclass
class Recipe:
    """How the students train: the same optimizer, epochs and batches for both runs.

    Attributes:
        epochs: epochs of each student run.
        learning_rate: Adam's peak rate (cosine decay to 0).
        batch_size: examples per batch.
        soft_loss: the distilled run's soft loss (a name or a loss).
        temperature: its temperature.
        hard_weight: the distilled run's label weight (the alone run has 1).
        teacher_epochs: epochs of the teacher, when it is trained.
        teacher_learning_rate: the teacher's peak rate.
        top_k: cache the teacher's top-k logits (on disk) instead of all.
        seed: seed of the initial weights and the batch order.
    """

    epochs: int = 20
    learning_rate: float = 3e-3
    batch_size: int = 128
    soft_loss: str = "kd"
    temperature: float = 1.0
    hard_weight: float = 0.0
    teacher_epochs: int = 20
    teacher_learning_rate: float = 1e-3
    top_k: Optional[int] = None
    seed: int = 0


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


def train_teacher(model, data, recipe, verbose=2):
    """Trains a teacher on the labels with Adam and cosine decay; returns it."""
    keras.utils.set_random_seed(recipe.seed)
    train = _dataset(data["x_train"], data["y_train"], data.get("w_train"), recipe.batch_size, recipe.seed)
    model.compile(
        optimizer=cosine_adam(recipe.teacher_learning_rate, recipe.teacher_epochs * len(train), len(train)),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        weighted_metrics=["accuracy"],
    )
    model.fit(train, epochs=recipe.teacher_epochs, verbose=verbose, shuffle=False)  # the dataset shuffles
    return model


def _teacher_cache(teacher, data, recipe, output_dir):
    """The teacher's outputs on the training data, once: in memory, or a top-k cache on disk."""
    if recipe.top_k is None:
        logits = compute_teacher_logits(teacher, data["x_train"], batch_size=512, verbose=0)
        return lambda: offline_dataset(
            data["x_train"], data["y_train"], logits, batch_size=recipe.batch_size, seed=recipe.seed,
            sample_weight=data.get("w_train"),
        )
    path = os.path.join(output_dir, "cache", f"teacher_top{recipe.top_k}_T{recipe.temperature:g}")
    table = tf.constant(data["x_train"])
    load = lambda index: tf.gather(table, index)  # noqa: E731
    if not os.path.exists(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        write_teacher_logits(teacher, load, len(data["x_train"]), path, batch_size=256, verbose=0,
                             top_k=recipe.top_k, temperature=recipe.temperature)
    return lambda: streaming_offline_dataset(
        load, data["y_train"], path, batch_size=recipe.batch_size, seed=recipe.seed,
        sample_weight=data.get("w_train"),
    )


def _train_student(teacher, make_student, initial_weights, make_train, recipe, distil, name, verbose):
    keras.utils.set_random_seed(recipe.seed)
    student = make_student(name)
    student.set_weights(initial_weights)
    train = make_train()
    soft_loss = losses.get(recipe.soft_loss)
    soft_loss.temperature = recipe.temperature
    distiller = Distiller(teacher, student)
    distiller.compile(
        optimizer=cosine_adam(recipe.learning_rate, recipe.epochs * len(train)),
        soft_loss=soft_loss,
        hard_weight=recipe.hard_weight if distil else 1.0,
        soft_weight=1.0 if distil else 0.0,
        metrics=["accuracy"],
    )
    distiller.fit(train, epochs=recipe.epochs, verbose=verbose)
    return student


def compare_alone_and_distilled(
    task: str,
    data: dict,
    make_teacher: Callable[[], keras.Model],
    make_student: Callable[[str], keras.Model],
    recipe: Recipe,
    output_dir: str,
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
        recipe: a `Recipe`.
        output_dir: where `teacher.keras` is read or written, and the
            students, `student_int8.tflite`, the cache and `results.json` go.
        verify_examples: test examples the int8 model is verified on (a
            random subset of this size; `None`: all).
        min_agreement: lowest top-1 agreement of the int8 model with Keras.
        verbose: Keras verbosity of `fit`.
        overwrite: replace the students, export and results of an earlier
            run in `output_dir` (otherwise refused before any training).

    Returns:
        The results (also written to `output_dir/results.json`).
    """
    outputs = ["student_alone.keras", "student_distilled.keras", "student_int8.tflite", "results.json"]
    existing = [name for name in outputs if os.path.exists(os.path.join(output_dir, name))]
    if existing and not overwrite:
        raise FileExistsError(
            f"Invalid value for argument `output_dir`: {output_dir!r} already holds {', '.join(existing)} "
            "from an earlier run; nothing was changed. Choose another folder, or pass `overwrite=True` "
            "(`--overwrite`) to replace them (the saved teacher is reused either way)."
        )
    os.makedirs(output_dir, exist_ok=True)
    seconds = {}
    teacher_path = os.path.join(output_dir, "teacher.keras")
    start = time.perf_counter()
    if os.path.exists(teacher_path):
        teacher = keras.models.load_model(teacher_path)
        print(f"Teacher: {teacher_path} (reused)")
    else:
        print(f"Training the teacher ({recipe.teacher_epochs} epochs):")
        teacher = train_teacher(make_teacher(), data, recipe, verbose)
        teacher.save(teacher_path)
        seconds["teacher"] = time.perf_counter() - start

    start = time.perf_counter()
    make_train = _teacher_cache(teacher, data, recipe, output_dir)
    seconds["teacher_cache"] = time.perf_counter() - start

    keras.utils.set_random_seed(recipe.seed)
    initial_weights = make_student("student_initial").get_weights()
    students = {}
    for run, distil in (("alone", False), ("distilled", True)):
        print(f"Student {run} ({recipe.epochs} epochs):")
        start = time.perf_counter()
        students[run] = _train_student(teacher, make_student, initial_weights, make_train, recipe, distil,
                                       f"student_{run}", verbose)
        seconds[f"student_{run}"] = time.perf_counter() - start
        students[run].save(os.path.join(output_dir, f"student_{run}.keras"))

    x_test, y_test, w_test = data["x_test"], data["y_test"], data.get("w_test")
    teacher_logits = teacher.predict(x_test, batch_size=512, verbose=0)
    results = {
        "task": task,
        "recipe": dataclasses.asdict(recipe),
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

    start = time.perf_counter()
    rng = np.random.default_rng(recipe.seed)
    calibration = data["x_train"][rng.permutation(len(data["x_train"]))[:200]]
    subset = np.arange(len(x_test))
    if verify_examples is not None and verify_examples < len(x_test):
        subset = np.sort(rng.permutation(len(x_test))[:verify_examples])
    tflite_path = os.path.join(output_dir, "student_int8.tflite")
    report = export_tflite(
        students["distilled"], tflite_path, x_test[subset], y_test[subset], "int8",
        representative_data=calibration, min_agreement=min_agreement, overwrite=True,
        sample_weight=None if w_test is None else w_test[subset],
    )
    seconds["export"] = time.perf_counter() - start
    results["int8"] = dataclasses.asdict(report)
    results["accuracy"]["distilled_int8"] = report.accuracy
    results["seconds"] = seconds
    with open(os.path.join(output_dir, "results.json"), "w") as file:
        json.dump(results, file, indent=2)
    print(summary(results))
    return results


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
