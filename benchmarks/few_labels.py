"""What distillation buys when labels are few: Fashion-MNIST at 10, 100 and 1,000 labels per class.

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
  teacher's outputs for 4 views of every image cached once;
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

Recipes were fixed on the validation split (10,000 held-out training images)
before the test set was read; `--evaluate validation` repeats that.
Differences are paired per seed (the same initial weights and labeled
images), with 95 % t-intervals (`tfdistill.stats.paired_difference`).

    python benchmarks/few_labels.py --labels-per-class 10 100 1000 --seeds 0 1 2 \
        --methods alone transfer semi keras --out benchmarks/results_few_labels.json
"""

import argparse
import json
import os
import time

import keras
import numpy as np

import tfdistill
from common import shipped_teacher, validation_split
from tfdistill import offline
from tfdistill.app.models import build_student, build_teacher
from tfdistill.app.training import cosine_adam
from tfdistill.data import make_dataset
from tfdistill.labels import UNLABELED, keep_labels_per_class
from tfdistill.stats import paired_difference

BATCH_SIZE = 128


def accuracy(model, x, y):
    return float(np.mean(model.predict(x, batch_size=1024, verbose=0).argmax(-1) == y))


def labeled_pipeline(x, y, seed):
    """The labeled images alone, reshuffled and randomly flipped and shifted every pass."""
    return make_dataset(x, y, batch_size=min(BATCH_SIZE, len(x)), shuffle=True, augment=True, seed=seed).repeat()


def train_alone(model, x, y, steps, seed, learning_rate):
    """Cross-entropy on the labeled images only."""
    keras.utils.set_random_seed(seed)
    model.compile(cosine_adam(learning_rate, steps), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(labeled_pipeline(x, y, seed), steps_per_epoch=steps, epochs=1, verbose=0)
    return model


def distil(teacher, student, x_train, labels, cache, steps, seed, learning_rate, args, case):
    """KD on labels + pool from `cache` (the teacher's views); the labels' loss as the case's recipe says."""
    keras.utils.set_random_seed(seed)
    hard_weight, labeled_share = getattr(args, f"{case}_hard_weight"), getattr(args, f"{case}_labeled_share")
    train = offline.offline_dataset(
        x_train, labels if hard_weight else None, cache, batch_size=BATCH_SIZE, seed=seed,
        view_seed=args.view_seed, labeled_share=labeled_share or None,
    ).repeat()
    distiller = tfdistill.Distiller(teacher, student)
    distiller.compile(
        cosine_adam(learning_rate, steps), soft_loss=tfdistill.KnowledgeDistillation(args.temperature),
        hard_weight=hard_weight, soft_weight=1.0,
    )
    distiller.fit(train, steps_per_epoch=steps, epochs=1, verbose=0)
    return student


def teacher_views(teacher, x_train, args, name, cache_dir):
    return offline.cached_teacher_logits(
        teacher, x_train, views=args.views, seed=args.view_seed, cache_dir=cache_dir, verbose=0
    )


def semi_supervised(x_train, labels, seed, args, log, student):
    """teacher0 on the labels alone, then one Noisy Student round through the pool (see the module docstring).

    Logs `teacher0`, `semi0` (the student distilled from teacher0) when asked
    for, `teacher1` and `semi` (the student distilled from teacher1).
    """
    labeled = labels != UNLABELED
    keras.utils.set_random_seed(seed)
    teacher0 = train_alone(build_teacher(), x_train[labeled], labels[labeled], args.teacher_steps, seed, 2e-3)
    log(teacher0=teacher0)
    cache = offline.compute_teacher_logits(teacher0, x_train, views=args.views, seed=args.view_seed, verbose=0)
    if "semi0" in args.methods:
        log(semi0=distil(teacher0, student(), x_train, labels, cache, args.steps, seed, args.learning_rate, args, "semi"))
    if "semi" in args.methods:
        keras.utils.set_random_seed(seed + 1000)
        teacher1 = distil(teacher0, build_teacher(), x_train, labels, cache, args.noisy_student_steps, seed, 2e-3,
                          args, "semi")
        log(teacher1=teacher1)
        cache = offline.compute_teacher_logits(teacher1, x_train, views=args.views, seed=args.view_seed, verbose=0)
        log(semi=distil(teacher1, student(), x_train, labels, cache, args.steps, seed, args.learning_rate, args, "semi"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels-per-class", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--methods", nargs="+", default=["alone", "transfer", "semi", "keras"],
                        choices=["alone", "transfer", "semi0", "semi", "keras"])
    parser.add_argument("--steps", type=int, default=2000, help="training steps of every student")
    parser.add_argument("--teacher-steps", type=int, default=2000, help="teacher0's steps (semi)")
    parser.add_argument("--noisy-student-steps", type=int, default=3000, help="teacher1's steps (semi)")
    parser.add_argument("--learning-rate", type=float, default=3e-3)
    for case, hard_weight, share in (("transfer", 0.0, 0.0), ("semi", 1.0, 0.25)):
        parser.add_argument(f"--{case}-hard-weight", type=float, default=hard_weight,
                            help=f"weight of the labels' loss in the {case} case (0: the teacher alone, no labels read)")
        parser.add_argument(f"--{case}-labeled-share", type=float, default=share,
                            help=f"labeled share of each batch in the {case} case (0: batches as they come)")
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--views", type=int, default=4)
    parser.add_argument("--view-seed", type=int, default=0)
    parser.add_argument("--evaluate", choices=["validation", "test"], default="test")
    parser.add_argument("--cache-dir", default=os.path.join("benchmarks", ".cache"))
    parser.add_argument("--out", default=None, help="write the results here (JSON)")
    args = parser.parse_args()

    (x_train, y_train), validation, test = validation_split()
    x_eval, y_eval = validation if args.evaluate == "validation" else test
    shipped = shipped_teacher()
    print(f"Evaluating on the {args.evaluate} set ({len(y_eval):,} images); shipped teacher "
          f"{accuracy(shipped, x_eval, y_eval):.2%}", flush=True)
    shipped_cache = None
    rows = []

    for per_class in args.labels_per_class:
        for seed in args.seeds:
            labels = keep_labels_per_class(y_train, per_class, seed=seed)
            labeled = labels != UNLABELED
            keras.utils.set_random_seed(seed)
            initial = build_student().get_weights()
            row = {"labels_per_class": per_class, "seed": seed}

            def student():
                model = build_student()
                model.set_weights(initial)
                return model

            def log(**models):
                for name, model in models.items():
                    row[name] = accuracy(model, x_eval, y_eval)
                    row[f"{name}_seconds"] = round(time.perf_counter() - started, 1)
                    print(f"  {per_class:>5} labels/class, seed {seed}: {name:<9} {row[name]:.2%} "
                          f"({row[f'{name}_seconds']:.0f} s)", flush=True)

            if "alone" in args.methods:
                started = time.perf_counter()
                log(alone=train_alone(student(), x_train[labeled], labels[labeled], args.steps, seed, args.learning_rate))
            if "transfer" in args.methods:
                if shipped_cache is None:
                    shipped_cache = teacher_views(shipped, x_train, args, "shipped", args.cache_dir)
                started = time.perf_counter()
                log(transfer=distil(shipped, student(), x_train, labels, shipped_cache, args.steps, seed,
                                    args.learning_rate, args, "transfer"))
            if "semi" in args.methods or "semi0" in args.methods:
                started = time.perf_counter()
                semi_supervised(x_train, labels, seed, args, log, student)
            if "keras" in args.methods and per_class == args.labels_per_class[0]:
                started = time.perf_counter()
                log(keras=keras_distilled(shipped, student(), x_train, args.steps, seed, args))
            rows.append(row)
            if args.out:
                with open(args.out, "w") as f:
                    json.dump({"settings": vars(args), "rows": rows}, f, indent=1)

    summarize(rows, args.methods)


def keras_distilled(teacher, student, x_train, steps, seed, args):
    """`keras.distillation.Distiller` on every training image without labels, KD at T=1, the teacher online."""
    keras.utils.set_random_seed(seed)
    distiller = keras.distillation.Distiller(
        teacher=teacher, student=student, student_loss_weight=0.0,
        distillation_losses=keras.distillation.LogitsDistillation(temperature=args.temperature),
    )
    distiller.compile(optimizer=cosine_adam(args.learning_rate, steps), loss="sparse_categorical_crossentropy")
    train = make_dataset(x_train, None, batch_size=BATCH_SIZE, shuffle=True, augment=True, seed=seed).repeat()
    distiller.fit(train, steps_per_epoch=steps, epochs=1, verbose=0)
    return student


def summarize(rows, methods):
    print("\nlabels/class  method     mean accuracy   gain over alone [95 % interval]")
    for per_class in sorted({r["labels_per_class"] for r in rows}):
        group = [r for r in rows if r["labels_per_class"] == per_class]
        for method in [m for m in ("alone", "transfer", "semi0", "semi", "keras", "teacher0", "teacher1")
                       if any(m in r for r in group)]:
            values = [r[method] for r in group if method in r]
            line = f"{per_class:>12}  {method:<9}  {np.mean(values):>8.2%} (n={len(values)})"
            paired = [r[method] - r["alone"] for r in group if method in r and "alone" in r]
            if method != "alone" and len(paired) >= 2:
                line += f"   {paired_difference([100 * d for d in paired])}"
            print(line)


if __name__ == "__main__":
    main()
