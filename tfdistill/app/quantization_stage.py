"""A run's quantization-aware distillation (QAD) stage, after distilling: an int8 student that loses nothing.

The distilled float student is cloned into its fake-quantized int8 form
(`tfdistill.quantization.quantize_model`, calibrated on the run's int8
calibration images), distilled again for `qat.epochs` from the run's teacher
(its cached outputs, the same batches) or from the float student itself,
and exported to `student_int8_qad.tflite`, verified against the fake-quantized
Keras model and compared with the float student, beside the post-training
`student_int8.tflite`.
"""

import os

from tfdistill import losses
from tfdistill.app.training import cosine_adam
from tfdistill.distiller import Distiller
from tfdistill.errors import ExportVerificationError
from tfdistill.export.tflite import export_tflite
from tfdistill.quantization import quantize_model

FILE_NAME = "student_int8_qad.tflite"


def _without_teacher_cache(train):
    """The run's batches with the teacher's cached outputs dropped: `(image, label)`."""
    return train.map(lambda x, *rest: (x["x"], *rest))


def distil_quantized(student, teacher, train, calibration, settings, verbose=0):
    """The fake-quantized student, distilled for `settings["epochs"]` (a config's `qat` section).

    Args:
        student: the float distilled student (left unchanged).
        teacher: the run's teacher (used through the cache in `train`).
        train: the run's training batches with the teacher's cached outputs.
        calibration: the int8 calibration images.
        settings: `tfdistill.app.config.DEFAULTS["qat"]`'s keys.
        verbose: Keras verbosity of `fit`.

    Returns:
        The trained fake-quantized `keras.Model`.
    """
    quantized = quantize_model(student, calibration, weight_bits=settings["weight_bits"],
                               per_channel=settings["per_channel"], output_top_k=settings["output_top_k"] or None)
    if settings["teacher"] == "student":  # self-distillation: the float student teaches, online
        distiller, data = Distiller(student, quantized), _without_teacher_cache(train)
    else:
        distiller, data = Distiller(teacher, quantized), train
    distiller.compile(
        optimizer=cosine_adam(settings["learning_rate"], settings["epochs"] * len(train)),
        soft_loss=losses.KnowledgeDistillation(temperature=1.0),
        hard_weight=settings["hard_weight"],
        soft_weight=settings["soft_weight"],
        metrics=["accuracy"],
    )
    distiller.fit(data, epochs=settings["epochs"], verbose=verbose)
    return quantized


def export_quantized(quantized, student, export_dir, x_test, y_test, min_agreement, verbose=0):
    """Exports and verifies `student_int8_qad.tflite`; returns `(report, refusal)` (one of them `None`)."""
    try:
        report = export_tflite(quantized, os.path.join(export_dir, FILE_NAME), x_test, y_test, "int8",
                               min_agreement=min_agreement, verbose=verbose, float_model=student, overwrite=True)
    except ExportVerificationError as error:
        return None, {"quantization": "int8 QAD", "reason": str(error),
                      "top1_agreement": error.report.top1_agreement if error.report else None}
    report.quantization = "int8 QAD"
    return report, None


def note(settings):
    """The report's line on the stage."""
    teacher = "the float student itself" if settings["teacher"] == "student" else "the teacher"
    weights = f"{settings['weight_bits']}-bit weights per {'channel' if settings['per_channel'] else 'tensor'}"
    top_k = settings["output_top_k"]
    logits = f"over each example's {top_k} largest" if top_k else "over every logit"
    return (f"int8 QAD: the distilled student fake-quantized (BatchNorm folded, {weights}, the "
            f"logits' range {logits}) and distilled from {teacher} for {settings['epochs']} epochs; its "
            "agreement with the float student is in the TFLite list below.")


__all__ = ["FILE_NAME", "distil_quantized", "export_quantized", "note"]
