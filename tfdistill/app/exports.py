"""Exporting the distilled student: a TF Serving SavedModel and verified `.tflite` files.

A `.tflite` file is written only when it agrees with the Keras student on at
least `export.min_agreement` of the test examples; a refused one is reported,
never fatal to the run that trained the student.
"""

import dataclasses
import os
from typing import List, Optional

from tfdistill.errors import ExportVerificationError
from tfdistill.export.saved_model import export_saved_model
from tfdistill.export.tflite import VerificationReport, export_tflite


@dataclasses.dataclass
class Exports:
    """What was exported.

    Attributes:
        saved_model: the SavedModel's version folder, or `None`.
        tflite: the verified `.tflite` files' reports.
        refused: the refused ones: `quantization`, `reason`, `top1_agreement` (and
            `advice`, what to do, when it is not to lower `export.min_agreement`).
        errors: the refusals as raised (`ExportVerificationError`).
        tflite_dir: the folder the `.tflite` files went to, or `None`.
        notes: lines for the run's report on how an export was made.
    """

    saved_model: Optional[str] = None
    tflite: List[VerificationReport] = dataclasses.field(default_factory=list)
    refused: List[dict] = dataclasses.field(default_factory=list)
    errors: List[ExportVerificationError] = dataclasses.field(default_factory=list)
    tflite_dir: Optional[str] = None
    notes: List[str] = dataclasses.field(default_factory=list)


def export_tflite_files(student, quantizations, folder, x_test, y_test, calibration, min_agreement,
                        num_calibration, sample_weight=None, verbose=0, exports=None):
    """Converts the student for each quantization, verifies it on `(x_test, y_test)`, writes `folder/student_Q.tflite`.

    An existing file is replaced: the folder is the run's own (a resumed run
    writes its exports again).

    Returns:
        `exports` (a new `Exports` if `None`) with the reports and refusals added.
    """
    exports = exports or Exports()
    for quantization in quantizations:
        print(f"TFLite {quantization}: converting and verifying on {len(y_test):,} test examples")
        try:
            report = export_tflite(
                student, os.path.join(folder, f"student_{quantization}.tflite"), x_test, y_test, quantization,
                representative_data=calibration, min_agreement=min_agreement, num_calibration=num_calibration,
                overwrite=True, verbose=verbose, sample_weight=sample_weight,
            )
        except ExportVerificationError as error:
            print(f"  refused: {error}")
            exports.errors.append(error)
            exports.refused.append({"quantization": quantization, "reason": str(error),
                                    "top1_agreement": error.report.top1_agreement if error.report else None})
            continue
        print(f"  {report}")
        exports.tflite.append(report)
    return exports


def export_student(student, data, settings, run_export_dir, seed, x_test, y_test, verbose=0):
    """The distilled student's SavedModel and `.tflite` files, as the `export` section says.

    Args:
        student: the distilled student.
        data: the run's `Data` (the raw form clients send, the class names,
            the training examples that calibrate int8).
        settings: the `export` section (`tfdistill.app.sections.ExportSection`).
        run_export_dir: the run's `export/` folder: the SavedModel goes to its
            `student/1`, the `.tflite` files beside it; with
            `settings.serving_dir`, to that model folder's next version and
            its `assets.extra/` instead.
        seed: seed of the calibration sample.
        x_test, y_test: the test examples the `.tflite` files are verified on.
        verbose: 1 shows a progress bar while verifying.

    Returns:
        The `Exports`.
    """
    exports, folder = Exports(), run_export_dir
    if settings.saved_model:
        if settings.serving_dir is not None:
            exports.saved_model = export_saved_model(student, settings.serving_dir, raw_shape=(None, *data.raw_shape),
                                                     raw_dtype=data.raw_dtype, scale=data.scale,
                                                     class_names=data.class_names)
            folder = os.path.join(exports.saved_model, "assets.extra")
        else:  # the run's own: a resumed run replaces it
            exports.saved_model = export_saved_model(student, os.path.join(run_export_dir, "student"), version=1,
                                                     overwrite=True, raw_shape=(None, *data.raw_shape),
                                                     raw_dtype=data.raw_dtype, scale=data.scale,
                                                     class_names=data.class_names)
        print(f"SavedModel written to {exports.saved_model}")
    if settings.tflite:
        os.makedirs(folder, exist_ok=True)
        exports.tflite_dir = folder
        calibration = data.sample(data.train, settings.calibration_examples, seed)
        export_tflite_files(student, settings.tflite, folder, x_test, y_test, calibration, settings.min_agreement,
                            settings.calibration_examples, verbose=verbose, exports=exports)
    return exports
