"""Does `Distiller.compile()`'s default recipe ever lose to the student alone?

A suite of small classification tasks of different kinds, all from data that
is on the machine (no downloads):

- `digits`: scikit-learn's 8x8 handwritten digits (1,797 images, 10 classes);
  an MLP teacher, a 16-unit student.
- `breast_cancer`: scikit-learn's Wisconsin breast cancer table (569 rows,
  30 features, 2 classes); an MLP teacher, a 4-unit student.
- `fortunes`: topic of a quotation from Debian's `fortunes` package (10 topic
  files, about 7,900 texts; `apt-get install fortunes`); a TF-IDF MLP teacher, a
  TF-IDF linear student.
- `fashion_mnist`: 10,000 Fashion-MNIST training images, the shipped teacher
  and the demo's student (docs/results/gains.md's multi-seed table covers the full set).

Each task is split once (train / validation / test); its teacher is trained
once on the training split (fashion_mnist: the shipped teacher). For each seed,
every recipe trains the student from the same initial weights on the same data
order; the table gives the paired test-accuracy difference recipe - alone per
seed, its mean and 95 % t-interval.

    python benchmarks/default_suite.py --seeds 0 1 2 3 4 --out suite.json
"""

import argparse
import json
import os
import time

import keras
import numpy as np
import tensorflow as tf

from common import shipped_teacher
import tfdistill
from tfdistill.data import load_fashion_mnist, to_float_images
from tfdistill.app.models import build_student
from tfdistill.stats import paired_difference

FORTUNE_TOPICS = (
    "computers", "definitions", "people", "songs-poems", "politics",
    "science", "work", "men-women", "zippy", "platitudes",
)

# name: compile keyword arguments (None: `compile()` with no loss named).
RECIPES = {
    "alone": dict(soft_loss=tfdistill.KnowledgeDistillation(1.0), hard_weight=1.0, soft_weight=0.0),
    "compile() defaults": None,
    "KD T=4, 0.5/0.5": dict(soft_loss=tfdistill.KnowledgeDistillation(4.0), hard_weight=0.5, soft_weight=0.5),
    "KD T=1, soft only": dict(soft_loss=tfdistill.KnowledgeDistillation(1.0), hard_weight=0.0, soft_weight=1.0),
    "KD T=1, 0.5/0.5": dict(soft_loss=tfdistill.KnowledgeDistillation(1.0), hard_weight=0.5, soft_weight=0.5),
}


def _split(x, y, seed=1234, val=0.2, test=0.2):
    order = np.random.default_rng(seed).permutation(len(x))
    n_test, n_val = int(len(x) * test), int(len(x) * val)
    test_i, val_i, train_i = order[:n_test], order[n_test:n_test + n_val], order[n_test + n_val:]
    return (x[train_i], y[train_i]), (x[val_i], y[val_i]), (x[test_i], y[test_i])


def _mlp(inputs, hidden, classes, dropout=0.0, name="mlp"):
    x_in = keras.Input((inputs,))
    x = x_in
    for i, units in enumerate(hidden):
        x = keras.layers.Dense(units, activation="relu", name=f"{name}_dense{i}")(x)
        if dropout:
            x = keras.layers.Dropout(dropout)(x)
    return keras.Model(x_in, keras.layers.Dense(classes, name=f"{name}_logits")(x), name=name)


def digits_task():
    from sklearn.datasets import load_digits

    data = load_digits()
    x, y = (data.data / 16.0).astype("float32"), data.target.astype("int32")
    return dict(
        splits=_split(x, y),
        teacher=lambda: _mlp(64, [256, 256], 10, dropout=0.3, name="teacher"),
        student=lambda: _mlp(64, [16], 10, name="student"),
        epochs=60, teacher_epochs=100, batch_size=32, learning_rate=3e-3,
    )


def breast_cancer_task():
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer()
    (x_tr, y_tr), val, test = _split(data.data.astype("float32"), data.target.astype("int32"))
    mean, std = x_tr.mean(0), x_tr.std(0) + 1e-6
    norm = lambda s: ((s[0] - mean) / std, s[1])  # noqa: E731
    return dict(
        splits=(norm((x_tr, y_tr)), norm(val), norm(test)),
        teacher=lambda: _mlp(30, [128, 128], 2, dropout=0.3, name="teacher"),
        student=lambda: _mlp(30, [4], 2, name="student"),
        epochs=60, teacher_epochs=100, batch_size=32, learning_rate=3e-3,
    )


def read_fortunes(directory="/usr/share/games/fortunes", topics=FORTUNE_TOPICS):
    """Texts and topic ids of Debian's fortune files (one `%` line between quotations)."""
    texts, labels = [], []
    for label, topic in enumerate(topics):
        path = os.path.join(directory, topic)
        if not os.path.exists(path):
            raise FileNotFoundError(f"{path} not found: install Debian's `fortunes` package (apt-get install fortunes)")
        with open(path, encoding="utf-8", errors="replace") as f:
            for text in f.read().split("\n%\n"):
                if text.strip():
                    texts.append(text.strip())
                    labels.append(label)
    return np.array(texts), np.array(labels, "int32")


def fortunes_task():
    texts, labels = read_fortunes()
    (t_tr, y_tr), (t_val, y_val), (t_te, y_te) = _split(texts, labels)
    vectorize = keras.layers.TextVectorization(max_tokens=8000, ngrams=2, output_mode="tf_idf")
    vectorize.adapt(t_tr)
    feats = lambda t: vectorize(t).numpy().astype("float32")  # noqa: E731
    return dict(
        splits=((feats(t_tr), y_tr), (feats(t_val), y_val), (feats(t_te), y_te)),
        teacher=lambda: _mlp(8000, [256], 10, dropout=0.5, name="teacher"),
        student=lambda: _mlp(8000, [], 10, name="student"),
        epochs=20, teacher_epochs=20, batch_size=64, learning_rate=1e-3,
    )


def fashion_mnist_task(saved_models="saved_models"):
    (x, y), (x_test, y_test) = load_fashion_mnist()
    order = np.random.default_rng(1234).permutation(len(x))
    x, y = to_float_images(x[order]), y[order]
    teacher = shipped_teacher(saved_models)
    return dict(
        splits=((x[:10_000], y[:10_000]), (x[50_000:], y[50_000:]), (to_float_images(x_test), y_test)),
        teacher=teacher,
        student=lambda: build_student(width=16),
        epochs=10, batch_size=128, learning_rate=3e-3,
    )


TASKS = {
    "digits": digits_task,
    "breast_cancer": breast_cancer_task,
    "fortunes": fortunes_task,
    "fashion_mnist": fashion_mnist_task,
}


def accuracy(model, x, y):
    return float(np.mean(np.argmax(model.predict(x, batch_size=1024, verbose=0), -1) == y))


def train_teacher(task):
    if isinstance(task["teacher"], keras.Model):
        return task["teacher"]
    (x, y), _, _ = task["splits"]
    keras.utils.set_random_seed(0)
    teacher = task["teacher"]()
    teacher.compile(keras.optimizers.Adam(task["learning_rate"]), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    teacher.fit(x, y, batch_size=task["batch_size"], epochs=task["teacher_epochs"], verbose=0)
    return teacher


def train_student(task, teacher, initial, recipe, seed):
    (x, y), _, _ = task["splits"]
    keras.utils.set_random_seed(seed)
    student = task["student"]()
    student.set_weights(initial)
    train = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x), seed=seed).batch(task["batch_size"])
    steps = task["epochs"] * len(train)
    optimizer = keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(task["learning_rate"], steps))
    distiller = tfdistill.Distiller(teacher, student)
    distiller.compile(optimizer, **(RECIPES[recipe] or {}))
    distiller.fit(train, epochs=task["epochs"], verbose=0)
    return student


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    parser.add_argument("--recipes", nargs="+", default=list(RECIPES), choices=list(RECIPES), metavar="RECIPE")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    recipes = ["alone"] + [r for r in args.recipes if r != "alone"]
    results = {}
    for name in args.tasks:
        start = time.time()
        task = TASKS[name]()
        teacher = train_teacher(task)
        (x_tr, y_tr), (x_val, y_val), (x_te, y_te) = task["splits"]
        student_params = task["student"]().count_params()
        info = dict(
            train=len(x_tr), val=len(x_val), test=len(x_te),
            teacher_params=teacher.count_params(), student_params=student_params,
            teacher_train=accuracy(teacher, x_tr, y_tr), teacher_test=accuracy(teacher, x_te, y_te),
            runs={r: {"val": [], "test": []} for r in recipes},
        )
        for seed in args.seeds:
            keras.utils.set_random_seed(seed)
            initial = task["student"]().get_weights()
            for recipe in recipes:
                student = train_student(task, teacher, initial, recipe, seed)
                info["runs"][recipe]["val"].append(accuracy(student, x_val, y_val))
                info["runs"][recipe]["test"].append(accuracy(student, x_te, y_te))
        info["seconds"] = time.time() - start
        results[name] = info
        print(
            f"{name}: train/val/test {info['train']}/{info['val']}/{info['test']}, teacher "
            f"{info['teacher_params']:,} params (train {info['teacher_train']:.2%}, test {info['teacher_test']:.2%}), "
            f"student {student_params:,} params, {info['seconds']:.0f} s",
            flush=True,
        )
        if args.out:
            with open(args.out, "w") as f:
                json.dump({"args": vars(args), "results": results}, f, indent=2)

    print(f"\nseeds {args.seeds}; test accuracy, and the paired difference recipe - alone (points)\n")
    print("| task | recipe | test accuracy | per seed | mean [95 % interval] |")
    print("| --- | --- | --- | --- | --- |")
    for name, info in results.items():
        alone = np.array(info["runs"]["alone"]["test"])
        for recipe in recipes:
            test = np.array(info["runs"][recipe]["test"])
            cells = ["", ""]
            if recipe != "alone":
                diffs = 100 * (test - alone)
                cells = [", ".join(f"{d:+.2f}" for d in diffs), str(paired_difference(diffs))]
            print(f"| {name} | {recipe} | {100 * test.mean():.2f} | {cells[0]} | {cells[1]} |")


if __name__ == "__main__":
    tf.get_logger().setLevel("ERROR")
    main()
