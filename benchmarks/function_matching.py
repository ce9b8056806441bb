"""Function matching (mixup, teacher online) against the student alone, longer schedules.

The shipped teacher; the demo's student (same initial weights per seed); the
loss-zoo split (first 50,000 images of a fixed shuffle of Fashion-MNIST's
training set to train on, the other 10,000 to choose settings on; the test set
only reported); Adam with cosine decay, batch 128; random flip and 2-pixel
shift for every row. Rows:
  - student alone, hard labels;
  - student alone with mixup (mixed one-hot labels) -- the same augmentation
    as function matching;
  - KD, T=1, soft only, teacher online on the same augmented images (only
    with `--rows`);
  - function matching: KD, T=1, soft only, teacher and student on the same
    mixed images (Beyer et al., 2022).

    python benchmarks/function_matching.py --epochs 15 --seeds 0 1 2 --out fm.json

The default rows with 3 seeds at 15 epochs: 50 minutes of training on 2 CPU
cores; `--rows` adds the online KD row (about 20 minutes more).
"""

import argparse
import json
import time

import keras
import numpy as np
import tensorflow as tf

from common import shipped_teacher, validation_split
import tfdistill
from tfdistill import losses
from tfdistill.app import training
from tfdistill.data import make_dataset, mixup
from tfdistill.app.models import build_student

ROWS = ("student alone", "student alone + mixup", "KD (T=1, soft only)", "function matching (mixup, T=1)")
DEFAULT_ROWS = ("student alone", "student alone + mixup", "function matching (mixup, T=1)")


def train_row(name, teacher, initial, x_train, y_train, epochs, learning_rate, seed, alpha):
    keras.utils.set_random_seed(seed)
    student = build_student(name="student")
    student.set_weights(initial)
    train = make_dataset(x_train, y_train, shuffle=True, augment=True, seed=seed)
    optimizer = training.cosine_adam(learning_rate, epochs * len(train))
    if name == "student alone":
        student.compile(optimizer, keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        student.fit(train, epochs=epochs, verbose=0)
    elif name == "student alone + mixup":
        student.compile(optimizer, keras.losses.CategoricalCrossentropy(from_logits=True))
        student.fit(mixup(train, alpha, seed=seed, labels="one_hot", num_classes=10), epochs=epochs, verbose=0)
    else:
        if name.startswith("function matching"):
            train = mixup(train, alpha, seed=seed)
        distiller = tfdistill.Distiller(teacher, student)
        distiller.compile(optimizer, soft_loss=losses.KnowledgeDistillation(1.0), hard_weight=0.0, soft_weight=1.0)
        distiller.fit(train, epochs=epochs, verbose=0)
    return student


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--saved-models", default="saved_models")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--learning-rate", type=float, default=3e-3)
    parser.add_argument("--alpha", type=float, default=1.0, help="mixup's Beta concentration")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--rows", nargs="+", default=list(DEFAULT_ROWS), choices=list(ROWS), metavar="ROW")
    parser.add_argument("--out", default=None, help="JSON file for the results (rewritten after every run)")
    args = parser.parse_args()

    (x_train, y_train), (x_val, y_val), (x_test, y_test) = validation_split()
    teacher = shipped_teacher(args.saved_models)
    results = {"teacher": {"val": [training.accuracy(teacher, x_val, y_val)], "test": [training.accuracy(teacher, x_test, y_test)]}}
    for seed in args.seeds:
        keras.utils.set_random_seed(seed)
        initial = build_student().get_weights()
        for name in args.rows:
            start = time.time()
            student = train_row(name, teacher, initial, x_train, y_train, args.epochs, args.learning_rate, seed, args.alpha)
            row = results.setdefault(name, {"val": [], "test": [], "seconds": []})
            row["val"].append(training.accuracy(student, x_val, y_val))
            row["test"].append(training.accuracy(student, x_test, y_test))
            row["seconds"].append(time.time() - start)
            print(
                f"seed {seed} {name:<32} val {row['val'][-1]:.2%} test {row['test'][-1]:.2%} "
                f"({row['seconds'][-1]:.0f} s)",
                flush=True,
            )
            if args.out:
                with open(args.out, "w") as f:
                    json.dump({"args": vars(args), "results": results}, f, indent=2)
    print(f"\n{len(args.seeds)} seed(s), {args.epochs} epochs, flip + shift, 50,000 training images\n")
    print("| method | validation accuracy | test accuracy |")
    print("| --- | --- | --- |")
    for name, row in results.items():
        val, test = np.array(row["val"]) * 100, np.array(row["test"]) * 100
        print(f"| {name} | {val.mean():.2f} ± {val.std():.2f} | {test.mean():.2f} ± {test.std():.2f} |")


if __name__ == "__main__":
    tf.get_logger().setLevel("ERROR")
    main()
