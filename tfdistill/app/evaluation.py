"""What a run measures: each model's size, test accuracy and latency, the student's fidelity, the gain."""

import os
import tempfile
import time

import numpy as np
import tensorflow as tf

from tfdistill.fidelity import fidelity_from_logits
from tfdistill.labels import UNLABELED
from tfdistill.stats import describe_gain, near_chance


def keras_file_size(model):
    """Size in bytes of the model saved as a `.keras` file."""
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "model.keras")
        model.save(path)
        return os.path.getsize(path)


def keras_latency_ms(model, x, repeats=200):
    """Median time of one compiled batch-1 forward pass, in milliseconds."""
    forward = tf.function(lambda batch: model(batch, training=False))
    forward(x[:1])
    times = []
    for index in range(repeats):
        start = time.perf_counter()
        forward(x[index % len(x)][None]).numpy()
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1000)


def measure_models(models, data, x_latency):
    """Each model's row and its logits on the whole test split.

    Args:
        models: `{name: keras.Model}`, in the table's order.
        data: the run's `tfdistill.app.datasets.Data`.
        x_latency: test examples to time batch-1 forward passes on.

    Returns:
        `(rows, logits)`: rows of `name`, `parameters`, `bytes` (`.keras`
        file), `accuracy` and `latency_ms`; `{name: test logits}`.
    """
    rows, logits = [], {}
    for name, model in models.items():
        logits[name] = model.predict(data.batches(data.test), verbose=0)
        rows.append({
            "name": name,
            "parameters": model.count_params(),
            "bytes": keras_file_size(model),
            "accuracy": float(np.mean(logits[name].argmax(-1) == data.test.y)),
            "latency_ms": keras_latency_ms(model, x_latency),
        })
    return rows, logits


def fidelity_on_train_and_test(student, train_inputs, y_train, teacher_train_logits, teacher_test_logits,
                               student_test_logits, y_test):
    """The student's `Fidelity` to its teacher on the training and the test examples.

    `teacher_train_logits` are view 0 of the teacher's cache, its outputs on
    the training examples themselves, so the teacher is not run again.
    `train_inputs` are those examples as the student takes them: an array,
    or a `tf.data.Dataset` of batches (streamed data). Accuracies on the
    training examples are left out when some of them have no label.
    """
    batch_size = None if isinstance(train_inputs, tf.data.Dataset) else 1024
    student_train_logits = student.predict(train_inputs, batch_size=batch_size, verbose=0)
    y_train = None if np.any(np.asarray(y_train) == UNLABELED) else y_train
    return {
        "train": fidelity_from_logits(np.asarray(teacher_train_logits, np.float32), student_train_logits, y_train),
        "test": fidelity_from_logits(teacher_test_logits, student_test_logits, y_test),
    }


def gain(rows, num_classes):
    """The distilled student's gain over the student alone, or `None` without a student alone."""
    accuracies = {row["name"]: row["accuracy"] for row in rows}
    if "student scratch" not in accuracies:
        return None
    alone, distilled = accuracies["student scratch"], accuracies["student distilled"]
    return {
        "points": 100 * (distilled - alone),
        "near_chance": near_chance(alone, num_classes) or near_chance(distilled, num_classes),
        "summary": describe_gain(alone, distilled, num_classes),
    }
