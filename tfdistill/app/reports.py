"""Plots and a Markdown report of a distillation run (needs matplotlib)."""

import numpy as np


def _pyplot():
    try:
        import matplotlib
    except ImportError as error:
        raise ImportError(
            "Reports need matplotlib: `pip install matplotlib`."
        ) from error
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_learning_curves(histories, path, teacher_accuracy=None):
    """Validation accuracy and training loss per epoch, one line per model.

    Args:
        histories: `{name: keras History.history dict}` with `accuracy` and
            `val_accuracy` (and `loss`).
        path: the PNG to write.
        teacher_accuracy: the teacher's validation accuracy, drawn as a line.
    """
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for index, (name, history) in enumerate(histories.items()):
        color = f"C{index}"
        epochs = np.arange(1, len(history["val_accuracy"]) + 1)
        left.plot(epochs, np.array(history["val_accuracy"]) * 100, marker="o", color=color, label=f"{name} (validation)")
        left.plot(epochs, np.array(history["accuracy"]) * 100, linestyle=":", color=color, label=f"{name} (training)")
        right.plot(epochs, history["hard_loss"], marker="o", color=color, label=f"{name}: cross-entropy on labels")
    if teacher_accuracy is not None:
        left.axhline(teacher_accuracy * 100, color="black", linestyle="--", label="teacher (validation)")
    left.set(xlabel="epoch", ylabel="accuracy (%)", title="Accuracy")
    right.set(xlabel="epoch", ylabel="loss", title="Training loss on the labels")
    for axis in (left, right):
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_tradeoff(points, path, x_key, x_label, title):
    """Test accuracy against size or latency, one labelled point per model.

    Args:
        points: list of dicts with `name`, `accuracy` and `x_key`.
        path: the PNG to write.
        x_key: the key of the x value (`"bytes"` or `"latency_ms"`), on a log axis.
        x_label: the x axis' label.
        title: the plot's title.
    """
    plt = _pyplot()
    fig, axis = plt.subplots(figsize=(7, 4.5))
    for index, point in enumerate(points):
        axis.scatter(point[x_key], point["accuracy"] * 100, s=40, color=f"C{index}", label=point["name"])
        # Alternate label offsets: students of one size sit on top of each other.
        axis.annotate(point["name"], (point[x_key], point["accuracy"] * 100), textcoords="offset points",
                      xytext=(6, 6 if index % 2 else -12), fontsize=8, color=f"C{index}")
    axis.legend(fontsize=8, loc="lower right")
    axis.set_xscale("log")
    axis.set(xlabel=x_label, ylabel="test accuracy (%)", title=title)
    low = min(p["accuracy"] for p in points) * 100
    high = max(p["accuracy"] for p in points) * 100
    axis.set_ylim(low - 0.5, high + 0.5)
    axis.grid(alpha=0.3, which="both")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def confusion_matrix(y_true, y_pred, num_classes):
    """Counts, shape `(num_classes, num_classes)`: row = true class, column = predicted.

    Example:
        >>> confusion_matrix([0, 1, 1], [0, 0, 1], 2).tolist()
        [[1, 0], [1, 1]]
    """
    matrix = np.zeros((num_classes, num_classes), dtype=int)
    np.add.at(matrix, (np.asarray(y_true), np.asarray(y_pred)), 1)
    return matrix


def plot_confusion_matrix(matrix, class_names, path, title):
    """Draws a confusion matrix with the count in each cell."""
    plt = _pyplot()
    fig, axis = plt.subplots(figsize=(7.5, 6.5))
    image = axis.imshow(matrix, cmap="Blues")
    fig.colorbar(image, ax=axis, fraction=0.046)
    ticks = np.arange(len(class_names))
    axis.set_xticks(ticks, class_names, rotation=45, ha="right", fontsize=8)
    axis.set_yticks(ticks, class_names, fontsize=8)
    threshold = matrix.max() / 2
    for i in range(len(class_names)):
        for j in range(len(class_names)):
            axis.text(j, i, matrix[i, j], ha="center", va="center", fontsize=7,
                      color="white" if matrix[i, j] > threshold else "black")
    axis.set(xlabel="predicted class", ylabel="true class", title=title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(path, title, config, rows, tflite_reports, plots, notes=()):
    """Writes the run's Markdown report.

    Args:
        path: the `.md` file.
        title: its heading.
        config: the resolved config (shown as JSON).
        rows: dicts with `name`, `parameters`, `bytes`, `accuracy`, `latency_ms` and,
            for a student, `trained_on`.
        tflite_reports: `VerificationReport`s of the TFLite exports.
        plots: `{caption: PNG path relative to the report}`.
        notes: extra lines under the table.
    """
    import json

    lines = [f"# {title}", "", "| model | parameters | file bytes | test accuracy | latency (ms, batch 1) | trained on |",
             "| --- | ---: | ---: | ---: | ---: | --- |"]
    for row in rows:
        lines.append(
            f"| {row['name']} | {row['parameters']:,} | {row['bytes']:,} | {row['accuracy']:.2%} | "
            f"{row['latency_ms']:.3f} | {row.get('trained_on', '')} |"
        )
    lines += [""] + [f"{note}" for note in notes] + [""]
    if tflite_reports:
        lines += ["## TFLite exports, verified against the Keras student", ""]
        lines += [f"- `{report}`" for report in tflite_reports] + [""]
    for caption, image in plots.items():
        lines += [f"## {caption}", "", f"![{caption}]({image})", ""]
    lines += ["## Resolved config", "", "```json", json.dumps(config, indent=2), "```", ""]
    with open(path, "w") as f:
        f.write("\n".join(lines))
