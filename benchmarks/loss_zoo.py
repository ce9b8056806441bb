"""Every loss in the zoo on the same teacher, student, data and budget.

The shipped teacher; the demo's student (same initial weights per seed); the
first 50,000 images of a fixed shuffle of Fashion-MNIST's training set, with
the teacher's logits cached for `--views` augmented views of each (the online
rows — feature losses and Keras's built-in — see the very same views, with the
teacher run online); the other 10,000 training images are the validation split
that settings are chosen on; the test set is only reported. Adam with cosine
decay, batch 128.

    python benchmarks/loss_zoo.py --epochs 10 --seeds 0 1 2 --out zoo.json

prints a Markdown table (mean ± std over seeds); with every row and 3 seeds it
takes about an hour and a half on 2 CPU cores (8 epochs: 83 minutes of training).
"""

import argparse
import json
import time

import keras
import numpy as np
import tensorflow as tf

from common import shipped_teacher, validation_split
import tfdistill
from tfdistill import losses, offline
from tfdistill.app import training

from tfdistill.app.models import build_student

FEATURES = ("block2b_relu", "block2_relu")  # teacher, student: both 14x14 maps


def warmup(epochs, steps):
    return tfdistill.schedules.LinearWarmup(1.0, max(1, epochs // 10) * steps)


# name: (online?, compile kwargs, or how to build the online row).
# Weights follow each method's paper or reference code unless the name says otherwise.
ROWS = {
    "student alone": (False, lambda: dict(soft_loss="kd", hard_weight=1.0, soft_weight=0.0)),
    "KD (T=4, 0.5/0.5)": (False, lambda: dict(soft_loss=losses.KnowledgeDistillation(4.0), hard_weight=0.5, soft_weight=0.5)),
    "KD (T=1, soft only)": (False, lambda: dict(soft_loss=losses.KnowledgeDistillation(1.0), hard_weight=0.0, soft_weight=1.0)),
    "soft MSE (T=4, 1 + 10)": (False, lambda: dict(soft_loss=losses.SoftenedProbabilityMSE(4.0), hard_weight=1.0, soft_weight=10.0)),
    "KD + logit std. (T=2, 0.1 + 9)": (False, lambda: dict(soft_loss="ls_kd", hard_weight=0.1, soft_weight=9.0)),
    "DKD (T=4, a=1, b=8, warm-up)": (False, "dkd"),
    "DIST (T=4, b=g=2)": (False, lambda: dict(soft_loss=losses.DIST(4.0, 2.0, 2.0), hard_weight=1.0, soft_weight=1.0)),
    "FitNets hint (1 + 100)": (True, "hint"),
    "attention transfer (1 + 1000)": (True, "attention"),
    "keras.distillation.Distiller (KD T=4, 0.5)": (True, "keras"),
}


def train_row(name, teacher, initial, train, epochs, learning_rate, seed):
    online, spec = ROWS[name]
    keras.utils.set_random_seed(seed)
    student = build_student(name="student")
    student.set_weights(initial)
    steps = len(train)
    optimizer = training.cosine_adam(learning_rate, epochs * steps)
    if online:
        train = train.map(lambda x, y: (x["x"], y))
    if spec == "keras":
        model = keras.distillation.Distiller(
            teacher=teacher,
            student=student,
            distillation_losses=keras.distillation.LogitsDistillation(
                temperature=4.0, loss=keras.losses.KLDivergence()
            ),
            student_loss_weight=0.5,
        )
        model.compile(optimizer, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    else:
        features = None
        if spec == "dkd":
            kwargs = dict(soft_loss="dkd", hard_weight=1.0, soft_weight=warmup(epochs, steps))
        elif spec in ("hint", "attention"):
            weight = 100.0 if spec == "hint" else 1000.0
            features = [tfdistill.FeaturePair(*FEATURES, loss=spec, weight=weight)]
            kwargs = dict(soft_loss="kd", hard_weight=1.0, soft_weight=0.0)
        else:
            kwargs = spec()
        model = tfdistill.Distiller(teacher, student, features=features)
        model.compile(optimizer, **kwargs)
    model.fit(train, epochs=epochs, verbose=0)
    return student


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--saved-models", default="saved_models")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--views", type=int, default=4)
    parser.add_argument("--learning-rate", type=float, default=3e-3)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--rows", nargs="+", default=list(ROWS), choices=list(ROWS), metavar="ROW")
    parser.add_argument("--out", default=None, help="JSON file for the results (rewritten after every run)")
    args = parser.parse_args()

    (x_train, y_train), (x_val, y_val), (x_test, y_test) = validation_split()
    teacher = shipped_teacher(args.saved_models)
    results = {"teacher": {"val": [training.accuracy(teacher, x_val, y_val)], "test": [training.accuracy(teacher, x_test, y_test)]}}
    start = time.time()
    logits = offline.compute_teacher_logits(teacher, x_train, views=args.views, verbose=0)
    print(f"teacher logits for {args.views} views cached in {time.time() - start:.0f} s", flush=True)
    for seed in args.seeds:
        keras.utils.set_random_seed(seed)
        initial = build_student().get_weights()
        for name in args.rows:
            train = offline.offline_dataset(x_train, y_train, logits, seed=seed)
            start = time.time()
            student = train_row(name, teacher, initial, train, args.epochs, args.learning_rate, seed)
            row = results.setdefault(name, {"val": [], "test": [], "seconds": []})
            row["val"].append(training.accuracy(student, x_val, y_val))
            row["test"].append(training.accuracy(student, x_test, y_test))
            row["seconds"].append(time.time() - start)
            print(
                f"seed {seed} {name:<44} val {row['val'][-1]:.2%} test {row['test'][-1]:.2%} "
                f"({row['seconds'][-1]:.0f} s)",
                flush=True,
            )
            if args.out:
                with open(args.out, "w") as f:
                    json.dump({"args": vars(args), "results": results}, f, indent=2)
    print(f"\n{len(args.seeds)} seed(s), {args.epochs} epochs, {args.views} cached views, 50,000 training images\n")
    print("| method | validation accuracy | test accuracy |")
    print("| --- | --- | --- |")
    for name, row in results.items():
        val, test = np.array(row["val"]) * 100, np.array(row["test"]) * 100
        print(f"| {name} | {val.mean():.2f} ± {val.std():.2f} | {test.mean():.2f} ± {test.std():.2f} |")


if __name__ == "__main__":
    tf.get_logger().setLevel("ERROR")
    main()
