"""Cost of the NaN/Inf guard in the training step: the step time with and without it.

The same teacher, student, initial weights and batches; one Distiller with the
guard (`tfdistill.guard`: inputs, labels, sample weights, teacher outputs,
loss terms and gradients checked, the update applied only when all are
finite) and one compiled with `guard=False`; their
steps interleaved so both see the same machine state; medians. Online (the
teacher runs every step) and offline (cached teacher logits: the step is the
student's alone, so the guard's share is largest).

    python benchmarks/guard_overhead.py --steps 200
"""

import argparse
import time

import keras
import numpy as np

from common import shipped_teacher
import tfdistill
from tfdistill import offline
from tfdistill.data import load_fashion_mnist, to_float_images
from tfdistill.app.models import build_student


def make(guarded, teacher, student_weights):
    student = build_student()
    student.set_weights(student_weights)
    distiller = tfdistill.Distiller(teacher, student)
    distiller.compile(keras.optimizers.Adam(1e-3), soft_loss=tfdistill.KnowledgeDistillation(1.0),
                      hard_weight=0.0, soft_weight=1.0, metrics=["accuracy"], guard=guarded)
    return distiller


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--saved-models", default="saved_models")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args()

    (x_train, y_train), _ = load_fashion_mnist()
    teacher = shipped_teacher(args.saved_models)
    keras.utils.set_random_seed(0)
    student_weights = build_student().get_weights()
    n, total = args.batch_size, args.steps + args.warmup
    x, y = to_float_images(x_train[: n * total]), y_train[: n * total].astype("int32")
    logits = offline.compute_teacher_logits(teacher, x, dtype="float16", verbose=0)[0]
    models = {
        (mode, guarded): make(guarded, teacher, student_weights)
        for mode in ("online", "offline")
        for guarded in (True, False)
    }
    times = {key: [] for key in models}
    for step in range(total):
        rows = slice(step * n, (step + 1) * n)
        inputs = {"online": x[rows], "offline": {"x": x[rows], "teacher_logits": logits[rows]}}
        order = list(models.items())
        if step % 2:
            order.reverse()  # neither variant always runs first
        for (mode, guarded), model in order:
            start = time.perf_counter()
            logs = model.train_on_batch(inputs[mode], y[rows], return_dict=True)
            if step >= args.warmup:
                times[mode, guarded].append(time.perf_counter() - start)
            assert np.isfinite(logs["loss"])
    print(f"\nTraining step, batch {n}, median of {args.steps} interleaved steps (after {args.warmup} warm-up):")
    for mode in ("online", "offline"):
        guarded, bare = np.asarray(times[mode, True]), np.asarray(times[mode, False])
        print(
            f"  {mode:<8} with guard {np.median(guarded) * 1000:7.2f} ms   without {np.median(bare) * 1000:7.2f} ms   "
            f"ratio {np.median(guarded) / np.median(bare):.3f}   (median of per-step ratios "
            f"{np.median(guarded / bare):.3f})"
        )


if __name__ == "__main__":
    main()
