"""The report of a `tfdistill distill` run: which plots and notes, from the run's results.

The plots and the Markdown are drawn by `tfdistill.app.reports`; the run
itself is `tfdistill.app.runs.run_distillation`.
"""

import os

import numpy as np

from tfdistill.app import reports
from tfdistill.stats import describe_gain


def write_run_report(run_dir, config, data, rows, tflite_reports, histories, teacher, predictions, fidelity,
                     refused=()):
    """Writes `RUN_DIR/report.md` and its plots in `RUN_DIR/plots/`.

    Args:
        run_dir: the run's folder.
        config: the resolved config, quoted in the report.
        data: the run's `tfdistill.app.data_sources.Data`.
        rows: one dict per model (`name`, `parameters`, `bytes`, `accuracy`, `latency_ms`).
        tflite_reports: the verified `.tflite` exports' reports.
        histories: `{name: per-epoch metrics}` of the students.
        teacher: the teacher, for its validation accuracy.
        predictions: `{name: test-set class ids}`, `"student distilled"` among them.
        fidelity: `{"train": ..., "test": ...}`, the distilled student's to the teacher.
        refused: the refused exports (`quantization`, `reason`).
    """
    plots_dir = os.path.join(run_dir, "plots")
    os.makedirs(plots_dir, exist_ok=True)
    plots = {}
    if len(data.validation):
        val_logits = teacher.predict(data.batches(data.validation), verbose=0)
        teacher_val = float(np.mean(val_logits.argmax(-1) == data.validation.y))
        reports.plot_learning_curves(histories, os.path.join(plots_dir, "learning_curves.png"), teacher_val)
        plots["Learning curves (validation split)"] = "plots/learning_curves.png"
    reports.plot_tradeoff(rows, os.path.join(plots_dir, "accuracy_vs_size.png"), "bytes", "file size (bytes, log)",
                          "Test accuracy against file size")
    plots["Accuracy against size"] = "plots/accuracy_vs_size.png"
    reports.plot_tradeoff(rows, os.path.join(plots_dir, "accuracy_vs_latency.png"), "latency_ms",
                          "median latency per image, batch 1 (ms, log)", "Test accuracy against latency")
    plots["Accuracy against latency"] = "plots/accuracy_vs_latency.png"
    classes = len(data.class_names)
    matrix = reports.confusion_matrix(data.test.y, predictions["student distilled"], classes)
    reports.plot_confusion_matrix(matrix, data.class_names, os.path.join(plots_dir, "confusion_matrix.png"),
                                  f"Distilled student, {data.description} test set")
    plots["Confusion matrix of the distilled student"] = "plots/confusion_matrix.png"
    by_name = {row["name"]: row for row in rows}
    notes = []
    if "student scratch" in by_name:
        notes.append(describe_gain(by_name["student scratch"]["accuracy"], by_name["student distilled"]["accuracy"],
                                   classes)
                     + " Same initial weights, data order, views and epochs; one seed, so differences of a few "
                     "tenths of a point are within seed-to-seed noise.")
    notes.append(f"Fidelity of the distilled student to the teacher: on its training images {fidelity['train']}; "
                 f"on the test images {fidelity['test']}. Low agreement on the training images means the student "
                 "does not fit the teacher's function (capacity or optimisation); high there but low on the test "
                 "images means it needs more transfer data (views, augmentation).")
    for export in refused:
        notes.append(f"Not exported: {export['reason']} Lower `export.min_agreement` to accept it, or train longer.")
    notes.append("Latency: Keras models as one compiled forward pass (tf.function); TFLite models in the "
                 "interpreter, 1 thread.")
    reports.write_report(os.path.join(run_dir, "report.md"), "tfdistill run", config, rows, tflite_reports, plots, notes)
