"""Does a batch without labels cost more than a labeled one? Step times side by side.

The same teacher (the shipped Fashion-MNIST teacher), student, initial weights
and batches of 128 images with the teacher's cached logits; four Distillers
trained step for step, interleaved so all see the same machine state: on
labeled batches, on batches where a quarter of the examples keep their label
(the rest `UNLABELED`, -1), on batches without labels (`x` alone), and on
labeled batches with the guard off (for scale). Medians after warm-up.

    python benchmarks/unlabeled_step.py --steps 300
"""

import argparse
import time

import keras
import numpy as np

import tfdistill
from common import shipped_teacher
from tfdistill import offline
from tfdistill.app.models import build_student
from tfdistill.data import load_fashion_mnist, to_float_images
from tfdistill.labels import UNLABELED

VARIANTS = ("labeled", "quarter labeled", "unlabeled", "labeled, guard off")


def make(teacher, student_weights, hard_weight, guard=True):
    student = build_student()
    student.set_weights(student_weights)
    distiller = tfdistill.Distiller(teacher, student)
    distiller.compile(keras.optimizers.Adam(1e-3), soft_loss=tfdistill.KnowledgeDistillation(1.0),
                      hard_weight=hard_weight, soft_weight=1.0, metrics=["accuracy"], guard=guard)
    return distiller


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args()

    (x_train, y_train), _ = load_fashion_mnist()
    teacher = shipped_teacher()
    keras.utils.set_random_seed(0)
    weights = build_student().get_weights()
    n, total = args.batch_size, args.steps + args.warmup
    x, y = to_float_images(x_train[: n * total]), y_train[: n * total].astype("int32")
    partial = np.where(np.arange(len(y)) % 4 == 0, y, UNLABELED).astype("int32")
    logits = offline.compute_teacher_logits(teacher, x, dtype="float16", verbose=0)[0]
    models = {
        "labeled": make(teacher, weights, 1.0),
        "quarter labeled": make(teacher, weights, 1.0),
        "unlabeled": make(teacher, weights, 0.0),
        "labeled, guard off": make(teacher, weights, 1.0, guard=False),
    }
    labels = {"labeled": y, "quarter labeled": partial, "unlabeled": None, "labeled, guard off": y}
    times = {name: [] for name in models}
    for step in range(total):
        rows = slice(step * n, (step + 1) * n)
        inputs = {"x": x[rows], "teacher_logits": logits[rows]}
        order = list(models.items())
        if step % 2:
            order.reverse()  # no variant always runs first
        for name, model in order:
            batch_labels = None if labels[name] is None else labels[name][rows]
            start = time.perf_counter()
            model.train_on_batch(inputs, batch_labels)
            if step >= args.warmup:
                times[name].append(time.perf_counter() - start)
    base = np.median(times["labeled"])
    print(f"\nTraining step, batch {n}, cached teacher logits, median of {args.steps} interleaved steps "
          f"(after {args.warmup} warm-up):")
    for name in VARIANTS:
        median = np.median(times[name])
        print(f"  {name:<20} {median * 1000:7.2f} ms   ratio to labeled {median / base:.3f}")


if __name__ == "__main__":
    main()
