"""tfdistill.Distiller against keras.distillation.Distiller, side by side.

Same teacher (the shipped Fashion-MNIST teacher), same student architecture
and initial weights, same data order, same seed, same objective
(0.5 * SCCE + 0.5 * T^2 KL at T=4, Adam 1e-3), in one process. Prints:
- the median training-step time of each over >= 50 interleaved steps after
  warm-up, and their ratio;
- test accuracy after the same number of epochs (online, teacher every step).

    python benchmarks/keras_distiller.py --steps 60 --epochs 2
"""

import argparse
import time

import keras
import numpy as np

from common import shipped_teacher
import tfdistill
from tfdistill.data import load_fashion_mnist, make_dataset, to_float_images
from tfdistill.app.models import build_student

T, ALPHA = 4.0, 0.5


def tfdistill_distiller(teacher, student):
    distiller = tfdistill.Distiller(teacher, student)
    distiller.compile(
        keras.optimizers.Adam(1e-3),
        soft_loss=tfdistill.KnowledgeDistillation(T),
        hard_weight=ALPHA,
        soft_weight=1 - ALPHA,
        metrics=["accuracy"],
    )
    return distiller


def keras_distiller(teacher, student):
    distiller = keras.distillation.Distiller(
        teacher=teacher,
        student=student,
        distillation_losses=keras.distillation.LogitsDistillation(
            temperature=T, loss=keras.losses.KLDivergence()
        ),
        student_loss_weight=ALPHA,
    )
    distiller.compile(
        keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return distiller


def fresh_pair(teacher, initial_weights, width):
    models = {}
    for name, make in (("tfdistill", tfdistill_distiller), ("keras", keras_distiller)):
        student = build_student(width=width, name=f"student_{name}")
        student.set_weights(initial_weights)
        models[name] = make(teacher, student)
    return models


def step_times(models, batches, warmup=5):
    times = {name: [] for name in models}
    for i, (x, y) in enumerate(batches):
        for name, model in models.items():  # interleaved: same machine state
            start = time.perf_counter()
            model.train_on_batch(x, y)
            if i >= warmup:
                times[name].append(time.perf_counter() - start)
    return times


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--saved-models", default="saved_models")
    parser.add_argument("--steps", type=int, default=60, help="timed steps per config")
    parser.add_argument("--epochs", type=int, default=2, help="epochs of the accuracy run")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    (x_train, y_train), (x_test, y_test) = load_fashion_mnist()
    teacher = shipped_teacher(args.saved_models)
    keras.utils.set_random_seed(args.seed)
    initial_weights = build_student(width=args.width).get_weights()

    x_float = to_float_images(x_train)
    n = args.batch_size
    batches = [(x_float[i * n:(i + 1) * n], y_train[i * n:(i + 1) * n]) for i in range(args.steps + 5)]
    times = step_times(fresh_pair(teacher, initial_weights, args.width), batches)
    medians = {name: float(np.median(t)) for name, t in times.items()}
    print(f"\nTraining step, batch {n}, median of {len(times['keras'])} interleaved steps:")
    for name, median in medians.items():
        print(f"  {name:<10} {median * 1000:8.2f} ms")
    print(f"  ratio tfdistill / keras: {medians['tfdistill'] / medians['keras']:.3f}")

    print(f"\nAccuracy after {args.epochs} epochs (online, same data order and initial weights):")
    x_test_float = to_float_images(x_test)
    for name, model in fresh_pair(teacher, initial_weights, args.width).items():
        keras.utils.set_random_seed(args.seed)
        train = make_dataset(x_train, y_train, batch_size=n, shuffle=True, seed=args.seed)
        start = time.perf_counter()
        model.fit(train, epochs=args.epochs, verbose=0)
        seconds = time.perf_counter() - start
        logits = model.student.predict(x_test_float, batch_size=1024, verbose=0)
        acc = np.mean(np.argmax(logits, -1) == y_test)
        print(f"  {name:<10} test accuracy {acc:.2%}  fit time {seconds:6.1f} s")


if __name__ == "__main__":
    main()
