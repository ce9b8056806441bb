"""The main job: distil a Fashion-MNIST teacher into a 60x smaller student.

Reuses the shipped teacher (or trains one), trains the same student from the
same initial weights twice on the same data order and augmented views — once
alone, once distilled — prints a comparison table and exports the distilled
student under `saved_models/` in TF Serving's layout.
"""

import dataclasses
import os
import tempfile
import time

import keras
import numpy as np

from tfdistill import offline
from tfdistill.data.fashion_mnist import CLASS_NAMES, load_fashion_mnist
from tfdistill.data.pipelines import make_dataset, to_float_images
from tfdistill.batch_norm import PreciseBatchNorm
from tfdistill.distiller import Distiller
from tfdistill.export.saved_model import KERAS_COPY, export_saved_model, latest_version_dir
from tfdistill.export.tflite import export_tflite
from tfdistill.fidelity import fidelity_from_logits
from tfdistill.model_files import load_model
from tfdistill.losses import KnowledgeDistillation
from tfdistill.models.fashion_mnist import build_student, build_teacher
from tfdistill.stats import describe_gain

# Standard deviation across seeds of one student's test accuracy here (README), x2.
SEED_NOISE_POINTS = 0.3
TEACHER_NAME = "fashion_mnist_teacher"
STUDENT_NAME = "fashion_mnist_student"


@dataclasses.dataclass
class Recipe:
    """The default distillation settings (see the README for how they were chosen)."""

    epochs: int = 12
    batch_size: int = 128
    learning_rate: float = 3e-3
    # KD at T=1 on the teacher's probabilities alone: the best distillation
    # setting on the validation split in every comparison run here (README).
    temperature: float = 1.0
    hard_weight: float = 0.0
    soft_weight: float = 1.0
    views: int = 4
    student_width: int = 16
    seed: int = 0


def cosine_adam(learning_rate, total_steps, warmup_steps=0):
    """Adam with a linear warm-up and cosine decay to zero."""
    schedule = keras.optimizers.schedules.CosineDecay(
        0.0 if warmup_steps else learning_rate,
        total_steps,
        warmup_target=learning_rate if warmup_steps else None,
        warmup_steps=warmup_steps,
    )
    return keras.optimizers.Adam(schedule)


def train_teacher(x_train, y_train, epochs=24, seed=0, verbose=2):
    """Trains `build_teacher()` with flip/shift augmentation and a cosine schedule.

    24 epochs take 25-35 minutes on 2 CPU cores; the shipped teacher reached 94.08 % on
    the Fashion-MNIST test set.
    """
    keras.utils.set_random_seed(seed)
    train = make_dataset(x_train, y_train, batch_size=128, shuffle=True, augment=True, seed=seed)
    teacher = build_teacher()
    teacher.compile(
        optimizer=cosine_adam(2e-3, epochs * len(train), warmup_steps=len(train)),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    teacher.fit(train, epochs=epochs, verbose=verbose)
    return teacher


def load_or_train_teacher(saved_models, x_train, y_train, retrain=False, epochs=24, seed=0):
    """The latest shipped teacher under `saved_models/`, or a newly trained one."""
    model_dir = os.path.join(saved_models, TEACHER_NAME)
    latest = latest_version_dir(model_dir)
    if latest and not retrain:
        print(f"Teacher: reusing {latest} (pass --retrain-teacher to train a new one)")
        return load_model(os.path.join(latest, KERAS_COPY), role="teacher")
    print(f"Teacher: training for {epochs} epochs")
    teacher = train_teacher(x_train, y_train, epochs=epochs, seed=seed)
    path = export_saved_model(teacher, model_dir, raw_shape=(None, 28, 28), class_names=CLASS_NAMES)
    print(f"Teacher: saved to {path}")
    return teacher


def distill_student(teacher, train, recipe, initial_weights, soft=True, verbose=2, batch_norm_data=None):
    """Trains a fresh student from `initial_weights`; `soft=False` trains it alone.

    Training alone uses the same `Distiller`, data and views with the soft
    weight set to zero, so the two runs differ in the teacher's signal only.
    With `batch_norm_data` (training images without augmentation), the
    student's BatchNorm statistics are recomputed over it when training ends
    (`PreciseBatchNorm`), so it evaluates as it trained.
    """
    keras.utils.set_random_seed(recipe.seed)
    student = build_student(width=recipe.student_width)
    student.set_weights(initial_weights)
    distiller = Distiller(teacher, student)
    distiller.compile(
        optimizer=cosine_adam(recipe.learning_rate, recipe.epochs * len(train)),
        soft_loss=KnowledgeDistillation(recipe.temperature),
        hard_weight=recipe.hard_weight if soft else 1.0,
        soft_weight=recipe.soft_weight if soft else 0.0,
        metrics=["accuracy"],
    )
    callbacks = [PreciseBatchNorm(batch_norm_data)] if batch_norm_data is not None else []
    history = distiller.fit(train, epochs=recipe.epochs, verbose=verbose, callbacks=callbacks)
    return student, history.history


def keras_file_size(model):
    """Size in bytes of the model saved as a `.keras` file."""
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "model.keras")
        model.save(path)
        return os.path.getsize(path)


def accuracy(model, x, y):
    logits = model.predict(x, batch_size=1024, verbose=0)
    return float(np.mean(np.argmax(logits, axis=-1) == y))


def format_table(rows):
    header = f"{'model':<22}{'parameters':>12}{'.keras bytes':>14}{'test accuracy':>15}"
    lines = [header, "-" * len(header)]
    for name, params, size, acc in rows:
        lines.append(f"{name:<22}{params:>12,}{size:>14,}{acc * 100:>14.2f}%")
    return "\n".join(lines)


def run(
    saved_models="saved_models",
    data_dir=None,
    recipe=None,
    retrain_teacher=False,
    teacher_epochs=24,
    cache_dir=None,
    export=True,
    train_subset=None,
    min_agreement=0.99,
    verbose=2,
):
    """Runs the whole demo and returns its results as a dict.

    Args:
        saved_models: folder of exported models (`NAME/VERSION/` inside).
        data_dir: Fashion-MNIST folder (default: Debian's package's).
        recipe: a `Recipe`; default `Recipe()`.
        retrain_teacher: train a new teacher even if one is shipped.
        teacher_epochs: epochs when training the teacher.
        cache_dir: folder for cached teacher logits (default: none on disk).
        export: export the distilled student under `saved_models/`.
        train_subset: use only the first N training examples (for tests).
        min_agreement: lowest top-1 agreement of a TFLite export with the
            Keras student; below it the export is refused.
        verbose: Keras verbosity of `fit`.

    Returns:
        A dict with the table rows, accuracies, the distilled student's
        fidelity to the teacher (`"train"`, `"test"`) and the export path.
    """
    recipe = recipe or Recipe()
    start = time.time()
    (x_train, y_train), (x_test, y_test) = load_fashion_mnist(data_dir)
    if train_subset:
        x_train, y_train = x_train[:train_subset], y_train[:train_subset]
    teacher = load_or_train_teacher(
        saved_models, x_train, y_train, retrain_teacher, teacher_epochs, recipe.seed
    )
    x_test_float = to_float_images(x_test)
    teacher_test_logits = teacher.predict(x_test_float, batch_size=1024, verbose=0)
    teacher_acc = float(np.mean(teacher_test_logits.argmax(-1) == y_test))
    print(f"Teacher: {teacher.count_params():,} parameters, test accuracy {teacher_acc:.2%}")

    logits = offline.cached_teacher_logits(
        teacher, x_train, views=recipe.views, seed=recipe.seed, cache_dir=cache_dir, verbose=verbose
    )
    train = offline.offline_dataset(
        x_train, y_train, logits, batch_size=recipe.batch_size, seed=recipe.seed, view_seed=recipe.seed
    )
    keras.utils.set_random_seed(recipe.seed)
    initial_weights = build_student(width=recipe.student_width).get_weights()

    plain = make_dataset(x_train, y_train, batch_size=512)
    print(f"Student alone: {recipe.epochs} epochs")
    scratch, scratch_history = distill_student(
        teacher, train, recipe, initial_weights, soft=False, verbose=verbose, batch_norm_data=plain
    )
    print(f"Student distilled: {recipe.epochs} epochs")
    distilled, distilled_history = distill_student(
        teacher, train, recipe, initial_weights, soft=True, verbose=verbose, batch_norm_data=plain
    )

    distilled_test_logits = distilled.predict(x_test_float, batch_size=1024, verbose=0)
    rows = [
        ("teacher", teacher.count_params(), keras_file_size(teacher), teacher_acc),
        ("student alone", scratch.count_params(), keras_file_size(scratch), accuracy(scratch, x_test_float, y_test)),
        ("student distilled", distilled.count_params(), keras_file_size(distilled),
         float(np.mean(distilled_test_logits.argmax(-1) == y_test))),
    ]
    print()
    print(format_table(rows))
    print()
    print(describe_gain(rows[1][3], rows[2][3], len(CLASS_NAMES)))
    print(
        f"One seed: differences within about {SEED_NOISE_POINTS} points are seed-to-seed noise "
        "(the README gives the mean gain over several seeds with its 95 % interval). "
        f"The student has {teacher.count_params() / distilled.count_params():.0f}x fewer parameters than the teacher."
    )
    # The teacher's outputs are not recomputed: view 0 of the cache is the
    # teacher on the training images themselves.
    distilled_train_logits = distilled.predict(to_float_images(x_train), batch_size=1024, verbose=0)
    fidelity = {
        "train": fidelity_from_logits(logits[0], distilled_train_logits, y_train),
        "test": fidelity_from_logits(teacher_test_logits, distilled_test_logits, y_test),
    }
    print("How closely the distilled student follows the teacher:")
    for split, report in fidelity.items():
        print(f"  {split:<5} {report}")
    path = None
    if export:
        path = export_saved_model(
            distilled, os.path.join(saved_models, STUDENT_NAME), raw_shape=(None, 28, 28), class_names=CLASS_NAMES
        )
        print(f"Distilled student exported to {path}")
        calibration = to_float_images(x_train[np.random.default_rng(recipe.seed).permutation(len(x_train))[:200]])
        print("TFLite exports, verified on the test set:")
        for quantization in ("float32", "int8"):
            report = export_tflite(
                distilled,
                os.path.join(path, "assets.extra", f"student_{quantization}.tflite"),
                x_test_float,
                y_test,
                quantization,
                representative_data=calibration,
                min_agreement=min_agreement,
            )
            print(f"  {report}")
            rows.append((f"student {quantization} TFLite", distilled.count_params(), report.file_bytes, report.accuracy))
        print()
        print(format_table(rows))
    print(f"Done in {time.time() - start:.0f} s.")
    return {
        "rows": rows,
        "teacher_accuracy": rows[0][3],
        "scratch_accuracy": rows[1][3],
        "distilled_accuracy": rows[2][3],
        "scratch_history": scratch_history,
        "distilled_history": distilled_history,
        "export_path": path,
        "fidelity": fidelity,
    }
