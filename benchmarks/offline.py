"""Offline distillation against online distillation and keras.distillation.Distiller.

Same teacher (shipped), student architecture, initial weights, data, seed and
objective (0.5 SCCE + 0.5 T^2 KL, T=4, Adam 1e-3, batch 128), one process.
Each repetition runs, in turn:
  - student alone (plain `student.fit`, no teacher), per-epoch time;
  - tfdistill offline: cache the teacher's logits once, then `fit` (no teacher);
  - the same from a top-3 cache (3 logits + the remainder), for its accuracy;
  - tfdistill online (teacher every step);
  - keras.distillation.Distiller (teacher every step).
All four see the same data order (offline pipelines shuffle exactly like
`make_dataset` with the same seed). Prints medians over repetitions of: offline epoch / student-alone epoch,
total wall time (cache included) of tfdistill offline / Keras, online epoch
time / Keras, test accuracies, and the cache's size.

    python benchmarks/offline.py --train-size 10000 --epochs 10 --repeats 3
"""

import argparse
import os
import sys
import time

import keras
import numpy as np

from common import shipped_teacher
from tfdistill import offline
from tfdistill.data import load_fashion_mnist, make_dataset, to_float_images
from tfdistill.app.models import build_student

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from keras_distiller import keras_distiller, tfdistill_distiller  # noqa: E402  (the same two set-ups)


class EpochTimer(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.times = []

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter() - self.start)


def accuracy(student, x, y):
    return float(np.mean(np.argmax(student.predict(x, batch_size=1024, verbose=0), -1) == y))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--saved-models", default="saved_models")
    parser.add_argument("--train-size", type=int, default=10_000)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--width", type=int, default=16)
    args = parser.parse_args()

    (x_train, y_train), (x_test, y_test) = load_fashion_mnist()
    x_train, y_train = x_train[: args.train_size], y_train[: args.train_size]
    x_test = to_float_images(x_test)
    teacher = shipped_teacher(args.saved_models)
    rows = {k: [] for k in ("alone", "offline", "offline_top3", "online", "keras")}
    cache_times = []
    for repeat in range(args.repeats):
        keras.utils.set_random_seed(repeat)
        initial = build_student(width=args.width).get_weights()

        def fresh_student():
            student = build_student(width=args.width)
            student.set_weights(initial)
            return student

        def run(name, model, data, cache_seconds=0.0):
            timer = EpochTimer()
            start = time.perf_counter()
            model.fit(data, epochs=args.epochs, verbose=0, callbacks=[timer])
            total = time.perf_counter() - start + cache_seconds
            student = model if name == "alone" else model.student
            rows[name].append(
                {"epoch": float(np.median(timer.times[1:])), "total": total, "acc": accuracy(student, x_test, y_test)}
            )
            print(f"repeat {repeat} {name:<8} median epoch {rows[name][-1]['epoch']:6.2f} s  total {total:7.1f} s  "
                  f"test acc {rows[name][-1]['acc']:.2%}", flush=True)

        def plain():
            # A new pipeline per run: reusing one would continue its seeded
            # reshuffles, and each run would see a different data order.
            return make_dataset(x_train, y_train, shuffle=True, seed=repeat)

        alone = fresh_student()
        alone.compile(keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        run("alone", alone, plain())

        start = time.perf_counter()
        logits = offline.compute_teacher_logits(teacher, x_train, views=1, verbose=0)
        cache_seconds = time.perf_counter() - start
        cache_times.append(cache_seconds)
        cached = offline.offline_dataset(x_train, y_train, logits, seed=repeat)
        run("offline", tfdistill_distiller(teacher, fresh_student()), cached, cache_seconds)
        start = time.perf_counter()
        top3 = offline.compute_teacher_logits(teacher, x_train, views=1, verbose=0, top_k=3, temperature=4.0)
        top3_seconds = time.perf_counter() - start
        cached = offline.offline_dataset(x_train, y_train, top3, seed=repeat)
        run("offline_top3", tfdistill_distiller(teacher, fresh_student()), cached, top3_seconds)
        run("online", tfdistill_distiller(teacher, fresh_student()), plain())
        run("keras", keras_distiller(teacher, fresh_student()), plain())

    median = lambda name, key: float(np.median([r[key] for r in rows[name]]))  # noqa: E731
    print(f"\nTrain size {args.train_size}, {args.epochs} epochs, batch 128, {args.repeats} repeats (medians):")
    print(f"  offline epoch / student-alone epoch:        {median('offline', 'epoch') / median('alone', 'epoch'):.3f}")
    print(f"  offline total (cache incl.) / keras total:  {median('offline', 'total') / median('keras', 'total'):.3f}")
    print(f"  online epoch / keras epoch:                 {median('online', 'epoch') / median('keras', 'epoch'):.3f}")
    print(f"  keras epoch / student-alone epoch:          {median('keras', 'epoch') / median('alone', 'epoch'):.3f}")
    print(f"  teacher cache: {np.median(cache_times):.1f} s for {args.train_size:,} images (batch 1024)")
    for name in rows:
        accs = [r["acc"] for r in rows[name]]
        print(f"  test accuracy {name:<8} {np.mean(accs):.2%} ± {np.std(accs):.2%}")
    print(f"  cache: {offline.cache_size_bytes(args.train_size, 10):,} B here (float16); "
          f"ImageNet-1k, 1,281,167 x 1000 classes: {offline.cache_size_bytes(1_281_167, 1000) / 2**30:.2f} GiB float16, "
          f"{offline.cache_size_bytes(1_281_167, 1000, top_k=10) / 2**20:.1f} MiB top-10")


if __name__ == "__main__":
    main()
