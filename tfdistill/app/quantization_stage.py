"""A run's quantization-aware distillation (QAD) stage, after the export: an int8 student that loses nothing.

The distilled float student is cloned into its fake-quantized int8 form
(`tfdistill.quantization.quantize_model`, calibrated on the images that
calibrated the post-training int8 export), distilled again for `qat.epochs`
from the run's teacher (its cached outputs, the same batches) or from the
float student itself, and exported to `student_int8_qad.tflite` beside the
post-training `student_int8.tflite`: verified against the fake-quantized
Keras model like every export (refused below `export.min_agreement`) and
compared with the float student.
"""

import os

from tfdistill import losses
from tfdistill.app.exports import Exports
from tfdistill.app.training import cosine_adam
from tfdistill.distiller import Distiller
from tfdistill.errors import ExportVerificationError
from tfdistill.export.tflite import export_tflite
from tfdistill.quantization import quantize_model

FILE_NAME = "student_int8_qad.tflite"
QUANTIZATION = "int8 QAD"  # the export's name in reports, refusals and the results' rows


def applies(config):
    """Whether a run (a `RunConfig`) has the stage: `qat.epochs` > 0 and int8 among `export.tflite`."""
    return config.qat.epochs > 0 and "int8" in config.export.tflite


def _without_teacher_cache(train):
    """The run's batches with the teacher's cached outputs dropped: `(example, label[, weight])`."""
    return train.map(lambda x, *rest: (x["x"], *rest))


def quantize(student, calibration, settings):
    """The student's fake-quantized clone, calibrated (`settings`: the `qat` section).

    Raises:
        ValueError: the student has a layer without an int8 form here.
    """
    return quantize_model(student, calibration, weight_bits=settings.weight_bits, per_channel=settings.per_channel,
                          output_top_k=settings.output_top_k or None)


def distil(quantized, student, teacher, train, settings, steps_per_epoch=None, verbose=0):
    """Distils the fake-quantized `quantized` for `settings.epochs`, from the teacher or the float student; returns it.

    See `distil_quantized` for the arguments.
    """
    if settings.teacher == "student":  # self-distillation: the float student teaches, online
        distiller, data = Distiller(student, quantized), _without_teacher_cache(train)
    else:
        distiller, data = Distiller(teacher, quantized), train
    steps = steps_per_epoch or len(train)
    distiller.compile(
        optimizer=cosine_adam(settings.learning_rate, settings.epochs * steps),
        soft_loss=losses.KnowledgeDistillation(temperature=1.0),
        hard_weight=settings.hard_weight,
        soft_weight=settings.soft_weight,
        metrics=["accuracy"],
    )
    distiller.fit(data, epochs=settings.epochs, verbose=verbose)
    return quantized


def distil_quantized(student, teacher, train, calibration, settings, steps_per_epoch=None, verbose=0):
    """The fake-quantized student, distilled for `settings.epochs`: `quantize`, then `distil`.

    Args:
        student: the float distilled student (left unchanged).
        teacher: the run's teacher (used through the cache in `train`).
        train: the run's training batches with the teacher's cached outputs
            (`tfdistill.app.teacher_pass.TeacherPass.batches`).
        calibration: the int8 calibration examples.
        settings: the `qat` section (`tfdistill.app.sections.QatSection`).
        steps_per_epoch: batches in an epoch of `train` (default: `len(train)`),
            for the learning rate's decay.
        verbose: Keras verbosity of `fit`.

    Returns:
        The trained fake-quantized `keras.Model`.
    """
    quantized = quantize(student, calibration, settings)
    return distil(quantized, student, teacher, train, settings, steps_per_epoch, verbose)


def export_quantized(quantized, student, folder, x_test, y_test, min_agreement, verbose=0, exports=None):
    """Exports and verifies `folder/student_int8_qad.tflite`, as `tfdistill.app.exports.export_tflite_files` does.

    A file that agrees with the fake-quantized Keras model on fewer than
    `min_agreement` of `(x_test, y_test)` is not written: it is a refusal,
    not an error. The report's `float_agreement` is the file's top-1
    agreement with the float `student`.

    Returns:
        `exports` (a new `Exports` if `None`) with the report or the refusal added.
    """
    exports = exports or Exports()
    print(f"TFLite {QUANTIZATION}: converting and verifying on {len(y_test):,} test examples")
    try:
        report = export_tflite(quantized, os.path.join(folder, FILE_NAME), x_test, y_test, "int8",
                               min_agreement=min_agreement, verbose=verbose, float_model=student, overwrite=True)
    except ExportVerificationError as error:
        print(f"  refused: {error}")
        exports.errors.append(error)
        exports.refused.append({"quantization": QUANTIZATION, "reason": str(error),
                                "top1_agreement": error.report.top1_agreement if error.report else None})
        return exports
    report.quantization = QUANTIZATION
    print(f"  {report}")
    exports.tflite.append(report)
    return exports


def note(settings):
    """The report's line on the stage (`settings`: the `qat` section)."""
    teacher = "the float student itself" if settings.teacher == "student" else "the teacher"
    weights = f"{settings.weight_bits}-bit weights per {'channel' if settings.per_channel else 'tensor'}"
    top_k = settings.output_top_k
    logits = f"over each example's {top_k} largest" if top_k else "over every logit"
    return (f"int8 QAD: the distilled student fake-quantized (BatchNorm folded, {weights}, the "
            f"logits' range {logits}) and distilled from {teacher} for {settings.epochs} epochs; its "
            "agreement with the float student is in the TFLite list below.")


def distil_and_export(student, teacher, passed, data, config, exports, x_test, y_test, verbose=0):
    """The stage in a run: distils the int8 student and adds its export and note to `exports`.

    Args:
        student: the float distilled student.
        teacher: the run's teacher.
        passed: the run's `tfdistill.app.teacher_pass.TeacherPass`.
        data: the run's `Data` (the calibration sample, drawn as the int8 export's).
        config: the `RunConfig` (`qat`, `export`, `distill.seed`).
        exports: the run's `Exports` (`tflite_dir` says where the file goes).
        x_test, y_test: the examples the file is verified on.
        verbose: Keras verbosity of `fit` (1 also shows a progress bar while verifying).
    """
    settings = config.qat
    print(f"Quantization-aware distillation of the int8 student: {settings.epochs} epochs from "
          f"{'the float student' if settings.teacher == 'student' else 'the teacher'}")
    calibration = data.sample(data.train, config.export.calibration_examples, config.distill.seed)
    try:
        quantized = quantize(student, calibration, settings)
    except ValueError as error:  # a layer without an int8 form: the run keeps its other exports
        print(f"  refused: {error}")
        exports.refused.append({"quantization": QUANTIZATION, "top1_agreement": None,
                                "reason": f"The student has no fake-quantized int8 form: {error}",
                                "advice": "Set `qat.epochs=0` to skip quantization-aware distillation."})
        return exports
    distil(quantized, student, teacher, passed.batches(), settings, passed.steps_per_epoch, verbose)
    export_quantized(quantized, student, exports.tflite_dir, x_test, y_test, config.export.min_agreement,
                     verbose=int(verbose == 1), exports=exports)
    exports.notes.append(note(settings))
    return exports

__all__ = ["FILE_NAME", "QUANTIZATION", "applies", "distil", "distil_and_export", "distil_quantized",
           "export_quantized", "note", "quantize"]
