"""Training-step time of the Distiller in float32, mixed bfloat16 and with XLA, side by side.

The shipped teacher and the demo's student, online distillation (the teacher
runs every step), batch 128, the same batches; steps interleaved across the
configurations so each sees the same machine state; medians.

    python benchmarks/precision.py --steps 40
"""

import argparse
import time

import keras
import numpy as np

from common import shipped_teacher
import tfdistill
from tfdistill.data import load_fashion_mnist, to_float_images
from tfdistill.app.models import build_student, build_teacher

# name: (teacher policy, student policy, jit_compile)
CONFIGS = {
    "float32": ("float32", "float32", False),
    "student mixed_bfloat16": ("float32", "mixed_bfloat16", False),
    "both mixed_bfloat16": ("mixed_bfloat16", "mixed_bfloat16", False),
    "float32 + XLA": ("float32", "float32", True),
    "both mixed_bfloat16 + XLA": ("mixed_bfloat16", "mixed_bfloat16", True),
}


def make(teacher_weights, student_weights, teacher_policy, student_policy, jit_compile):
    try:
        keras.config.set_dtype_policy(teacher_policy)
        teacher = build_teacher()
        teacher.set_weights(teacher_weights)
        keras.config.set_dtype_policy(student_policy)
        student = build_student()
        student.set_weights(student_weights)
    finally:
        keras.config.set_dtype_policy("float32")
    distiller = tfdistill.Distiller(teacher, student)
    distiller.compile(keras.optimizers.Adam(1e-3), metrics=["accuracy"], jit_compile=jit_compile)
    return distiller


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--saved-models", default="saved_models")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args()

    (x_train, y_train), _ = load_fashion_mnist()
    teacher = shipped_teacher(args.saved_models)
    keras.utils.set_random_seed(0)
    student_weights = build_student().get_weights()
    models = {name: make(teacher.get_weights(), student_weights, *spec) for name, spec in CONFIGS.items()}
    n = args.batch_size
    x = to_float_images(x_train[: n * (args.steps + 5)])
    times = {name: [] for name in models}
    for step in range(args.steps + 5):
        batch = (x[step * n:(step + 1) * n], y_train[step * n:(step + 1) * n])
        for name, model in models.items():
            start = time.perf_counter()
            logs = model.train_on_batch(*batch, return_dict=True)
            if step >= 5:
                times[name].append(time.perf_counter() - start)
        assert np.isfinite(logs["loss"])
    base = np.median(times["float32"])
    print(f"\nTraining step, batch {n}, median of {args.steps} interleaved steps:")
    for name, values in times.items():
        print(f"  {name:<28} {np.median(values) * 1000:8.2f} ms   x{np.median(values) / base:.2f} of float32")


if __name__ == "__main__":
    main()
