"""What distillation buys when labels are few: Fashion-MNIST at 10, 100 and 1,000 labels per class, and language ID.

The 50,000 training images of the validation split (`common.validation_split`)
are the data; `labels-per-class` of them per class keep their label
(`tfdistill.labels.keep_labels_per_class`, drawn per seed), the rest are the
unlabeled pool. Every student is the demo's CNN (14,618 parameters), starts
from the same initial weights per seed and trains for the same number of
steps of 128 examples:

- `alone`: the student on the labeled images alone (random flips and 2-pixel
  shifts), the labels' cross-entropy;
- `transfer`: distilled from the shipped teacher (94.08 % on test, trained on
  every label: the transfer case) on every training image, KD at T=1 on the
  teacher's probabilities alone (the labels are not read: on the validation
  split the labels' loss on a 25 % labeled share lost 1.3 points to it), the
  teacher's outputs for 8 views of every image cached once;
- `semi`: from a teacher that saw only the same few labels (the
  semi-supervised case), made in two steps: the shipped teacher's
  architecture (871,978 parameters) trained on the labeled images
  (`teacher0`), then a Noisy Student round (Xie et al., CVPR 2020): a fresh
  network of that architecture distilled from `teacher0` through the pool
  with dropout and augmented views as its noise (`teacher1`); the student is
  distilled from `teacher1` through the pool. A teacher that saw few labels
  errs, so both distillations add the labels' loss on a fixed 25 % labeled
  share of each batch (`offline_dataset(..., labeled_share=0.25)`);
  `semi0` is the student distilled from `teacher0` directly;
- `keras`: `keras.distillation.Distiller` with the shipped teacher, on
  `fit(x)` of every training image (`student_loss_weight=0`: Keras's
  distiller takes labels for all examples or none), KD at T=1, online.

`--task language_id` runs the same comparison on the examples' language
identification task (48-byte snippets of Debian's manual pages in five
languages, `examples/tasks/text_corpus.py`; test snippets come from pages no
training snippet comes from): the byte transformer teacher (96,197
parameters) and the byte CNN student (3,533), one view (no augmentation of
text); the transfer case's teacher is the transformer trained on every label
of the training split (trained once and kept in `--cache-dir`).

Recipes were fixed on the validation split (10,000 held-out training images;
2,000 snippets for language ID) before the test set was read;
`--evaluate validation` repeats that.
Differences are paired per seed (the same initial weights and labeled
images), with 95 % t-intervals (`tfdistill.stats.paired_difference`).

    python benchmarks/few_labels.py --labels-per-class 10 100 1000 --seeds 0 1 2 \
        --methods alone transfer semi keras --out benchmarks/results_few_labels.json
    python benchmarks/few_labels.py --task language_id --labels-per-class 10 100 --seeds 0 1 2 \
        --methods alone transfer semi --out benchmarks/results_few_labels_language_id.json
"""

import argparse
import dataclasses
import json
import os
import sys
import time
from typing import Callable

import keras
import numpy as np
import tensorflow as tf

import tfdistill
from common import shipped_teacher, validation_split
from tfdistill import offline
from tfdistill.app.models import build_student, build_teacher
from tfdistill.app.training import cosine_adam
from tfdistill.data import make_dataset
from tfdistill.labels import UNLABELED, keep_labels_per_class
from tfdistill.stats import paired_difference

BATCH_SIZE = 128
EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")


@dataclasses.dataclass
class Task:
    """A task's data, models and recipe settings."""

    train: tuple  # (x, y), the labeled pool before labels are dropped
    validation: tuple
    test: tuple
    make_student: Callable
    make_teacher: Callable  # the architecture of the semi-supervised case's teachers
    transfer_teacher: Callable  # () -> the teacher trained on every label
    views: int
    augment: bool
    learning_rate: float  # the students'
    teacher_learning_rate: float


def fashion_mnist_task(args):
    """The demo's models on the validation split of Fashion-MNIST (`common.validation_split`)."""
    train, validation, test = validation_split()
    return Task(train, validation, test, build_student, build_teacher, shipped_teacher, views=args.views or 8,
                augment=True, learning_rate=3e-3, teacher_learning_rate=2e-3)


def language_id_task(args):
    """The examples' language ID: 16,000 training snippets (2,000 held out for validation), 4,000 test snippets."""
    sys.path.insert(0, EXAMPLES)
    from tasks.text_corpus import language_id_data
    from tasks.text_models import byte_cnn_classifier, byte_ngram_cnn_classifier, byte_transformer_classifier

    text = language_id_data(length=48, snippets_per_language=4000, seed=0)
    order = np.random.default_rng(1234).permutation(len(text.x_train))
    train, held = order[2000:], order[:2000]
    classes = len(text.class_names)
    path = os.path.join(args.cache_dir, "language_id_teacher.keras")

    def every_label_teacher():
        if os.path.exists(path):
            return keras.models.load_model(path)
        teacher = train_alone(byte_transformer_classifier(48, classes), text.x_train[train], text.y_train[train],
                              steps=2200, seed=0, learning_rate=1e-3, augment=False)  # 20 epochs of 14,000
        os.makedirs(args.cache_dir, exist_ok=True)
        teacher.save(path)
        return teacher

    semi_teacher, teacher_learning_rate = {
        "transformer": (lambda: byte_transformer_classifier(48, classes), 1e-3),
        "ngram_cnn": (lambda: byte_ngram_cnn_classifier(48, classes), 2e-3),
    }[args.semi_teacher or "transformer"]
    return Task(
        (text.x_train[train], text.y_train[train]), (text.x_train[held], text.y_train[held]),
        (text.x_test, text.y_test), lambda: byte_cnn_classifier(48, classes), semi_teacher, every_label_teacher,
        views=args.views or 1, augment=False, learning_rate=5e-3, teacher_learning_rate=teacher_learning_rate,
    )


TASKS = {"fashion_mnist": fashion_mnist_task, "language_id": language_id_task}


def accuracy(model, x, y):
    return float(np.mean(model.predict(x, batch_size=1024, verbose=0).argmax(-1) == y))


def train_alone(model, x, y, steps, seed, learning_rate, augment):
    """Cross-entropy on the labeled examples only, reshuffled (and images randomly flipped and shifted) every pass."""
    keras.utils.set_random_seed(seed)
    model.compile(cosine_adam(learning_rate, steps), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    train = make_dataset(x, y, batch_size=min(BATCH_SIZE, len(x)), shuffle=True, augment=augment, seed=seed)
    model.fit(train.repeat(), steps_per_epoch=steps, epochs=1, verbose=0)
    return model


def distil(teacher, student, task, labels, cache, steps, seed, learning_rate, args, case):
    """KD on labels + pool from `cache` (the teacher's views); the labels' loss as the case's recipe says."""
    keras.utils.set_random_seed(seed)
    hard_weight, labeled_share = getattr(args, f"{case}_hard_weight"), getattr(args, f"{case}_labeled_share")
    train = offline.offline_dataset(
        task.train[0], labels if hard_weight else None, cache, batch_size=BATCH_SIZE, seed=seed,
        view_seed=args.view_seed, labeled_share=labeled_share or None,
    ).repeat()
    distiller = tfdistill.Distiller(teacher, student)
    distiller.compile(
        cosine_adam(learning_rate, steps), soft_loss=tfdistill.KnowledgeDistillation(args.temperature),
        hard_weight=hard_weight, soft_weight=1.0,
    )
    distiller.fit(train, steps_per_epoch=steps, epochs=1, verbose=0)
    return student


def kept(args, name, train):
    """A teacher trained once and kept in `args.cache_dir` (`train()` when it is not there yet)."""
    path = os.path.join(args.cache_dir, f"{name}.keras")
    if os.path.exists(path):
        return keras.models.load_model(path)
    model = train()
    os.makedirs(args.cache_dir, exist_ok=True)
    model.save(path)
    return model


def semi_supervised(task, labels, per_class, seed, args, log, student):
    """teacher0 on the labels alone, then one Noisy Student round through the pool (see the module docstring).

    Logs `teacher0`, `semi0` (the student distilled from teacher0) when asked
    for, `teacher1`, `semi` (the student distilled from teacher1) and
    `semi_ensemble` (from the ensemble of teacher0 and teacher1, the mean of
    their probabilities) when asked for. Teachers and their passes over the pool
    are kept in `--cache-dir`, so a second run (the test set after the
    validation split) trains only the students.
    """
    x_train = task.train[0]
    labeled = labels != UNLABELED

    def train_teacher0():
        keras.utils.set_random_seed(seed)
        return train_alone(task.make_teacher(), x_train[labeled], labels[labeled], args.teacher_steps, seed,
                           task.teacher_learning_rate, task.augment)

    def pass_of(teacher):
        return offline.cached_teacher_logits(teacher, x_train, views=task.views, seed=args.view_seed,
                                             cache_dir=args.cache_dir, verbose=0)

    task_name = args.task + (f"_{args.semi_teacher}" if args.semi_teacher else "")
    teacher0 = kept(args, f"teacher0_{task_name}_{per_class}_{seed}_{args.teacher_steps}", train_teacher0)
    log(teacher0=teacher0)
    cache0 = pass_of(teacher0)
    if "semi0" in args.methods:
        log(semi0=distil(teacher0, student(), task, labels, cache0, args.steps, seed, task.learning_rate, args, "semi"))
    if not {"semi", "semi_ensemble"} & set(args.methods):
        return

    def train_teacher1():
        keras.utils.set_random_seed(seed + 1000)
        return distil(teacher0, task.make_teacher(), task, labels, cache0, args.noisy_student_steps, seed,
                      task.teacher_learning_rate, args, "semi")

    teacher1 = kept(args, f"teacher1_{task_name}_{per_class}_{seed}_{args.teacher_steps}_{args.noisy_student_steps}"
                    f"_{task.views}", train_teacher1)
    log(teacher1=teacher1)
    cache1 = pass_of(teacher1)
    if "semi" in args.methods:
        log(semi=distil(teacher1, student(), task, labels, cache1, args.steps, seed, task.learning_rate, args, "semi"))
    if "semi_ensemble" in args.methods:
        log(semi_ensemble=distil(teacher1, student(), task, labels, ensemble_logits([cache0, cache1]), args.steps,
                                 seed, task.learning_rate, args, "semi"))


def ensemble_logits(caches):
    """Logits of the teachers' ensemble from their cached logits: the log of the mean of their probabilities.

    The same combination as `tfdistill.TeacherEnsemble(teachers,
    combine="probabilities")`, computed from the passes already made instead
    of a third pass of both teachers.
    """
    log_probabilities = [np.asarray(c, np.float32) - _logsumexp(np.asarray(c, np.float32)) for c in caches]
    mixture = _logsumexp(np.stack(log_probabilities), axis=0)[0] - np.log(len(caches))
    return mixture.astype(np.asarray(caches[0][:1]).dtype)


def _logsumexp(values, axis=-1):
    peak = values.max(axis=axis, keepdims=True)
    return peak + np.log(np.exp(values - peak).sum(axis=axis, keepdims=True))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=sorted(TASKS), default="fashion_mnist")
    parser.add_argument("--labels-per-class", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--methods", nargs="+", default=["alone", "transfer", "semi", "keras"],
                        choices=["alone", "transfer", "semi0", "semi", "semi_ensemble", "keras"])
    parser.add_argument("--steps", type=int, default=10000, help="training steps of every student")
    parser.add_argument("--teacher-steps", type=int, default=2000, help="teacher0's steps (semi)")
    parser.add_argument("--noisy-student-steps", type=int, default=3000, help="teacher1's steps (semi)")
    for case, hard_weight, share in (("transfer", 0.0, 0.0), ("semi", 1.0, 0.25)):
        parser.add_argument(f"--{case}-hard-weight", type=float, default=hard_weight,
                            help=f"weight of the labels' loss in the {case} case (0: the teacher alone, no labels read)")
        parser.add_argument(f"--{case}-labeled-share", type=float, default=share,
                            help=f"labeled share of each batch in the {case} case (0: batches as they come)")
    parser.add_argument("--semi-teacher", choices=["transformer", "ngram_cnn"], default=None,
                        help="language ID: the semi-supervised case's teachers (default: the byte transformer)")
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--views", type=int, default=None, help="views per example (default: 8 for images, 1 for text)")
    parser.add_argument("--view-seed", type=int, default=0)
    parser.add_argument("--evaluate", choices=["validation", "test"], default="test")
    parser.add_argument("--cache-dir", default=os.path.join("benchmarks", ".cache"))
    parser.add_argument("--out", default=None, help="write the results here (JSON)")
    parser.add_argument("--summarize", nargs="+", metavar="RESULTS",
                        help="print the table of these results files (rows of one task, joined by labels and seed)")
    parser.add_argument("--threads", type=int, default=None,
                        help="TensorFlow's threads per operation (1 lets two runs share two cores well)")
    args = parser.parse_args()
    if args.summarize:
        joined = {}
        for path in args.summarize:
            with open(path) as f:
                for row in json.load(f)["rows"]:
                    joined.setdefault((row["labels_per_class"], row["seed"]), {}).update(row)
        summarize(list(joined.values()))
        return
    if args.semi_teacher and args.task != "language_id":
        parser.error(f"--semi-teacher chooses language ID's teachers; received it with --task {args.task}")
    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)

    task = TASKS[args.task](args)
    (x_train, y_train) = task.train
    x_eval, y_eval = task.validation if args.evaluate == "validation" else task.test
    transfer_teacher = task.transfer_teacher() if {"transfer", "keras"} & set(args.methods) else None
    print(f"{args.task}: {len(y_train):,} training examples; evaluating on the {args.evaluate} set "
          f"({len(y_eval):,})" + (f"; the every-label teacher {accuracy(transfer_teacher, x_eval, y_eval):.2%}"
                                 if transfer_teacher else ""), flush=True)
    transfer_cache = None
    rows = []

    for per_class in args.labels_per_class:
        for seed in args.seeds:
            labels = keep_labels_per_class(y_train, per_class, seed=seed)
            labeled = labels != UNLABELED
            keras.utils.set_random_seed(seed)
            initial = task.make_student().get_weights()
            row = {"labels_per_class": per_class, "seed": seed}

            def student():
                model = task.make_student()
                model.set_weights(initial)
                return model

            def log(**models):
                for name, model in models.items():
                    row[name] = accuracy(model, x_eval, y_eval)
                    row[f"{name}_seconds"] = round(time.perf_counter() - started, 1)
                    print(f"  {args.task} {per_class:>5} labels/class, seed {seed}: {name:<9} {row[name]:.2%} "
                          f"({row[f'{name}_seconds']:.0f} s)", flush=True)

            if "alone" in args.methods:
                started = time.perf_counter()
                log(alone=train_alone(student(), x_train[labeled], labels[labeled], args.steps, seed,
                                      task.learning_rate, task.augment))
            if "transfer" in args.methods:
                if transfer_cache is None:
                    transfer_cache = offline.cached_teacher_logits(
                        transfer_teacher, x_train, views=task.views, seed=args.view_seed, cache_dir=args.cache_dir,
                        verbose=0,
                    )
                started = time.perf_counter()
                log(transfer=distil(transfer_teacher, student(), task, labels, transfer_cache, args.steps, seed,
                                    task.learning_rate, args, "transfer"))
            if {"semi0", "semi", "semi_ensemble"} & set(args.methods):
                started = time.perf_counter()
                semi_supervised(task, labels, per_class, seed, args, log, student)
            if "keras" in args.methods and per_class == args.labels_per_class[0]:
                started = time.perf_counter()
                log(keras=keras_distilled(transfer_teacher, student(), task, args.steps, seed, args))
            rows.append(row)
            if args.out:
                with open(args.out, "w") as f:
                    json.dump({"settings": vars(args), "rows": rows}, f, indent=1)

    summarize(rows)


def keras_distilled(teacher, student, task, steps, seed, args):
    """`keras.distillation.Distiller` on every training example without labels, KD at T=1, the teacher online."""
    keras.utils.set_random_seed(seed)
    distiller = keras.distillation.Distiller(
        teacher=teacher, student=student, student_loss_weight=0.0,
        # The loss as an instance: Keras 3.15's default ("kl_divergence", a string) resolves to the bare
        # function, which `LogitsDistillation` then applies to the logits instead of the probabilities.
        distillation_losses=keras.distillation.LogitsDistillation(
            temperature=args.temperature, loss=keras.losses.KLDivergence()),
    )
    distiller.compile(optimizer=cosine_adam(task.learning_rate, steps), loss="sparse_categorical_crossentropy")
    train = make_dataset(task.train[0], None, batch_size=BATCH_SIZE, shuffle=True, augment=task.augment, seed=seed)
    train = train.repeat()
    distiller.fit(train, steps_per_epoch=steps, epochs=1, verbose=0)
    return student


def summarize(rows):
    print("\nlabels/class  method     mean accuracy   gain over alone [95 % interval]")
    for per_class in sorted({r["labels_per_class"] for r in rows}):
        group = [r for r in rows if r["labels_per_class"] == per_class]
        for method in [m for m in ("alone", "transfer", "semi0", "semi", "semi_ensemble", "keras", "teacher0", "teacher1")
                       if any(m in r for r in group)]:
            values = [r[method] for r in group if method in r]
            line = f"{per_class:>12}  {method:<9}  {np.mean(values):>8.2%} (n={len(values)})"
            paired = [r[method] - r["alone"] for r in group if method in r and "alone" in r]
            if method != "alone" and len(paired) >= 2:
                line += f"   {paired_difference([100 * d for d in paired])}"
            print(line)


if __name__ == "__main__":
    main()
