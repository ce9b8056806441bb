"""What a run shows: the comparison table it prints, and its report (`report.md` with plots).

The plots and the Markdown are drawn by `tfdistill.app.reports`; the run
itself is `tfdistill.app.runs.run_distillation`.
"""

import os

import numpy as np

from tfdistill.app import reports


def trained_on(student):
    """`"1,000 labeled + 54,000 unlabeled"`: the examples a student trained on (`results["students"][name]`)."""
    text = f"{student['labeled']:,} labeled"
    return text + (f" + {student['unlabeled']:,} unlabeled" if student["unlabeled"] else "")


def format_table(rows):
    """The comparison table a run prints: one line per model, with what each student trained on."""
    header = f"{'model':<26}{'parameters':>12}{'file bytes':>12}{'test accuracy':>15}  trained on"
    lines = [f"{row['name']:<26}{row['parameters']:>12,}{row['bytes']:>12,}{row['accuracy'] * 100:>14.2f}%  "
             f"{row.get('trained_on', '')}".rstrip() for row in rows]
    return "\n".join([header, "-" * max(map(len, [header, *lines])), *lines])


def comparison_note(students):
    """What the two students had in common, and what not."""
    if "scratch" not in students:
        return ""
    alone, distilled = students["scratch"], students["distilled"]
    if not distilled["unlabeled"]:
        return (" Same initial weights, data order, views and epochs; one seed, so differences of a few "
                "tenths of a point are within seed-to-seed noise.")
    return (f" Same initial weights, epochs and steps ({alone['steps_per_epoch']:,} an epoch); the student alone "
            f"trained on the {trained_on(alone)} examples only, the distilled one on {trained_on(distilled)}. "
            "One seed, so differences of a few tenths of a point are within seed-to-seed noise.")


def print_summary(results, teacher_parameters):
    """The table, the gain and the distilled student's fidelity, on the console."""
    print()
    print(format_table(results["rows"]))
    print()
    if results.get("gain"):
        print(results["gain"]["summary"] + comparison_note(results["students"]))
    student = next(row for row in results["rows"] if row["name"] == "student distilled")
    print(f"The student has {teacher_parameters / student['parameters']:.0f}x fewer parameters than the teacher.")
    print("How closely the distilled student follows the teacher:")
    for split, report in results["fidelity_reports"].items():
        print(f"  {split:<5} {report}")


def write_run_report(run_dir, config, data, results, teacher, predictions, tflite_reports):
    """Writes `RUN_DIR/report.md` and its plots in `RUN_DIR/plots/`.

    Args:
        run_dir: the run's folder.
        config: the resolved config (a dict), quoted in the report.
        data: the run's `tfdistill.app.datasets.Data`.
        results: the run's results (`rows`, `histories`, `students`,
            `gain`, `refused_exports`, `fidelity_reports`, and `export_notes`:
            lines on how an export was made).
        teacher: the teacher, for its validation accuracy.
        predictions: `{name: test-set class ids}`, `"student distilled"` among them.
        tflite_reports: the verified `.tflite` exports' reports.
    """
    plots_dir = os.path.join(run_dir, "plots")
    os.makedirs(plots_dir, exist_ok=True)
    plots = {}
    rows = results["rows"]
    if len(data.validation):
        val_logits = teacher.predict(data.batches(data.validation), verbose=0)
        teacher_val = float(np.mean(val_logits.argmax(-1) == data.validation.y))
        reports.plot_learning_curves(results["histories"], os.path.join(plots_dir, "learning_curves.png"), teacher_val)
        plots["Learning curves (validation split)"] = "plots/learning_curves.png"
    reports.plot_tradeoff(rows, os.path.join(plots_dir, "accuracy_vs_size.png"), "bytes", "file size (bytes, log)",
                          "Test accuracy against file size")
    plots["Accuracy against size"] = "plots/accuracy_vs_size.png"
    reports.plot_tradeoff(rows, os.path.join(plots_dir, "accuracy_vs_latency.png"), "latency_ms",
                          "median latency per image, batch 1 (ms, log)", "Test accuracy against latency")
    plots["Accuracy against latency"] = "plots/accuracy_vs_latency.png"
    matrix = reports.confusion_matrix(data.test.y, predictions["student distilled"], len(data.class_names))
    reports.plot_confusion_matrix(matrix, data.class_names, os.path.join(plots_dir, "confusion_matrix.png"),
                                  f"Distilled student, {data.description} test set")
    plots["Confusion matrix of the distilled student"] = "plots/confusion_matrix.png"
    notes = []
    if results.get("gain"):
        notes.append(results["gain"]["summary"] + comparison_note(results["students"]))
    fidelity = results["fidelity_reports"]
    notes.append(f"Fidelity of the distilled student to the teacher: on its training images {fidelity['train']}; "
                 f"on the test images {fidelity['test']}. Low agreement on the training images means the student "
                 "does not fit the teacher's function (capacity or optimisation); high there but low on the test "
                 "images means it needs more transfer data (views, augmentation).")
    for export in results["refused_exports"]:
        advice = export.get("advice", "Lower `export.min_agreement` to accept it, or train longer.")
        notes.append(f"Not exported: {export['reason']} {advice}")
    notes += list(results.get("export_notes", ()))
    notes.append("Latency: Keras models as one compiled forward pass (tf.function); TFLite models in the "
                 "interpreter, 1 thread.")
    reports.write_report(os.path.join(run_dir, "report.md"), "tfdistill run", config, rows, tflite_reports, plots, notes)
