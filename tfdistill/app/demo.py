"""The main job: distil a Fashion-MNIST teacher into a 60x smaller student.

Reuses the shipped teacher (or trains one), trains the same student from the
same initial weights twice on the same data order and augmented views — once
alone, once distilled — prints a comparison table and exports the distilled
student under `saved_models/` in TF Serving's layout.
"""

import dataclasses
import os
import time

import keras
import numpy as np

from tfdistill import offline
from tfdistill.app.config import DEFAULTS
from tfdistill.app.model_sources import load_teacher
from tfdistill.app.models import build_student
from tfdistill.app.training import (
    accuracy,
    calibration_images,
    fidelity_on_train_and_test,
    keras_file_size,
    train_student,
    train_teacher,
)
from tfdistill.data.fashion_mnist import CLASS_NAMES, load_fashion_mnist
from tfdistill.data.pipelines import make_dataset, to_float_images
from tfdistill.export.saved_model import export_saved_model, latest_version_dir
from tfdistill.export.tflite import export_tflite
from tfdistill.stats import describe_gain

# Standard deviation across seeds of one student's test accuracy here (README), x2.
SEED_NOISE_POINTS = 0.3
TEACHER_NAME = "fashion_mnist_teacher"
STUDENT_NAME = "fashion_mnist_student"
_DISTILL = DEFAULTS["distill"]


@dataclasses.dataclass
class Recipe:
    """The demo's settings; every default is `tfdistill.app.config.DEFAULTS`'s (the README says how they were chosen)."""

    epochs: int = _DISTILL["epochs"]
    batch_size: int = _DISTILL["batch_size"]
    learning_rate: float = _DISTILL["learning_rate"]
    soft_loss: str = _DISTILL["soft_loss"]
    temperature: float = _DISTILL["temperature"]
    hard_weight: float = _DISTILL["hard_weight"]
    soft_weight: float = _DISTILL["soft_weight"]
    views: int = _DISTILL["views"]
    precise_batch_norm: bool = _DISTILL["precise_batch_norm"]
    student_width: int = DEFAULTS["student"]["width"]
    seed: int = _DISTILL["seed"]

    def distill_settings(self):
        """The recipe as a config's `distill` section."""
        settings = dataclasses.asdict(self)
        settings.pop("student_width")
        return settings


def load_or_train_teacher(saved_models, x_train, y_train, retrain=False, epochs=DEFAULTS["teacher"]["epochs"], seed=0):
    """The latest shipped teacher under `saved_models/`, or a newly trained one."""
    model_dir = os.path.join(saved_models, TEACHER_NAME)
    latest = latest_version_dir(model_dir)
    if latest and not retrain:
        print(f"Teacher: reusing {latest} (pass --retrain-teacher to train a new one)")
        return load_teacher(model_dir)
    print(f"Teacher: training for {epochs} epochs")
    teacher = train_teacher(x_train, y_train, epochs=epochs, seed=seed)
    path = export_saved_model(teacher, model_dir, raw_shape=(None, 28, 28), class_names=CLASS_NAMES)
    print(f"Teacher: saved to {path}")
    return teacher


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
    teacher_epochs=DEFAULTS["teacher"]["epochs"],
    cache_dir=None,
    export=True,
    train_subset=None,
    min_agreement=DEFAULTS["export"]["min_agreement"],
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
    settings = recipe.distill_settings()
    print(f"Student alone: {recipe.epochs} epochs")
    scratch, scratch_history = train_student(
        teacher, train, initial_weights, settings, recipe.student_width, soft=False, verbose=verbose,
        batch_norm_data=plain,
    )
    print(f"Student distilled: {recipe.epochs} epochs")
    distilled, distilled_history = train_student(
        teacher, train, initial_weights, settings, recipe.student_width, soft=True, verbose=verbose,
        batch_norm_data=plain,
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
    fidelity = fidelity_on_train_and_test(
        distilled, to_float_images(x_train), y_train, logits[0], teacher_test_logits, distilled_test_logits, y_test
    )
    print("How closely the distilled student follows the teacher:")
    for split, report in fidelity.items():
        print(f"  {split:<5} {report}")
    path = None
    if export:
        path = export_saved_model(
            distilled, os.path.join(saved_models, STUDENT_NAME), raw_shape=(None, 28, 28), class_names=CLASS_NAMES
        )
        print(f"Distilled student exported to {path}")
        calibration = calibration_images(x_train, DEFAULTS["export"]["calibration_examples"], recipe.seed)
        print("TFLite exports, verified on the test set:")
        for quantization in DEFAULTS["export"]["tflite"]:
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
