"""What distillation buys over the student trained alone, lever by lever.

Every row trains a student from the same initial weights (per seed and
architecture) on the same data order and augmented views, alone or distilled,
and reports the paired difference distilled - alone per seed, its mean and a
95 % t-interval. Settings are chosen on the validation split (10,000 held-out
training images, the same split as `loss_zoo.py`); the test set only reports.

    python benchmarks/distillation_gain.py --epochs 30 --views 8 --seeds 0 1 2 \
        --students cnn16 --methods alone kd_t1 --out gain.json

Students (all >= 50x fewer parameters than the shipped teacher's 871,978):
`cnn16` is the demo's student; `separable` is a deeper depthwise-separable
CNN of about the same size. Teachers: `shipped`, `flip_tta`, the shipped
teacher averaged over each image and its mirror image (a stronger teacher at
no training cost), or `assistant`, a teacher assistant (Mirzadeh et al., AAAI
2020): the demo's CNN at `--assistant-width` (32: 56,874 parameters, between
teacher and student), distilled from the shipped teacher with KD at T=1 on the
same views for `--assistant-epochs`, then used as the student's teacher.
`second`, `early` and `ensemble` need a second teacher: the shipped
teacher's recipe (`tfdistill.app.training.train_image_teacher`, 24 epochs) with
another seed, trained on the 50,000 training images of the split and kept in
`--second-teacher` (trained once, then reused). `second` is it when trained,
`early` its checkpoint after `--early-epoch` epochs (an early-stopped teacher,
Cho and Hariharan, ICCV 2019), `ensemble` the shipped and the second teacher
averaged (`tfdistill.TeacherEnsemble`, mean of logits).
"""

import argparse
import json
import os
import time

import keras
import numpy as np
import tensorflow as tf

import tfdistill
from tfdistill import offline
from common import shipped_teacher, validation_split
from tfdistill.app.models import build_separable_student, build_student
from tfdistill.app.training import train_image_teacher
from tfdistill.stats import paired_difference

STUDENTS = {
    "cnn16": lambda: build_student(width=16),
    "separable": lambda: build_separable_student(),
}
# name: (teacher variant, compile keyword arguments); "alone" never reads the teacher.
METHODS = {
    "alone": (None, dict(soft_loss=tfdistill.KnowledgeDistillation(1.0), hard_weight=1.0, soft_weight=0.0)),
    "kd_t1": ("shipped", dict(soft_loss=tfdistill.KnowledgeDistillation(1.0), hard_weight=0.0, soft_weight=1.0)),
    "kd_t2": ("shipped", dict(soft_loss=tfdistill.KnowledgeDistillation(2.0), hard_weight=0.0, soft_weight=1.0)),
    "kd_t1_tta": ("flip_tta", dict(soft_loss=tfdistill.KnowledgeDistillation(1.0), hard_weight=0.0, soft_weight=1.0)),
    "kd_t2_tta": ("flip_tta", dict(soft_loss=tfdistill.KnowledgeDistillation(2.0), hard_weight=0.0, soft_weight=1.0)),
    "mlkd": ("shipped", dict(soft_loss=tfdistill.losses.MultiLevelKD(), hard_weight=1.0, soft_weight=1.0)),
    "mlkd_soft": ("shipped", dict(soft_loss=tfdistill.losses.MultiLevelKD((1.0, 2.0, 4.0)), hard_weight=0.0, soft_weight=1.0)),
    "kd_t1_assistant": ("assistant", dict(soft_loss=tfdistill.KnowledgeDistillation(1.0), hard_weight=0.0, soft_weight=1.0)),
    "kd_t1_second": ("second", dict(soft_loss=tfdistill.KnowledgeDistillation(1.0), hard_weight=0.0, soft_weight=1.0)),
    "kd_t1_early": ("early", dict(soft_loss=tfdistill.KnowledgeDistillation(1.0), hard_weight=0.0, soft_weight=1.0)),
    "kd_t1_ensemble": ("ensemble", dict(soft_loss=tfdistill.KnowledgeDistillation(1.0), hard_weight=0.0, soft_weight=1.0)),
    "dist_tta": ("flip_tta", dict(soft_loss=tfdistill.losses.DIST(1.0), hard_weight=1.0, soft_weight=1.0)),
}


def flip_tta(teacher):
    """The teacher's logits averaged over the image and its left-right mirror."""
    inputs = keras.Input(teacher.inputs[0].shape[1:])
    mirrored = keras.ops.flip(inputs, axis=2)
    outputs = keras.layers.Average()([teacher(inputs), teacher(mirrored)])
    return keras.Model(inputs, outputs, name="teacher_flip_tta")


def second_teachers(directory, x_train, y_train, early_epoch, epochs=24):
    """The second teacher when trained and at `early_epoch`, trained once into `directory` and then loaded."""
    final = os.path.join(directory, "final.keras")
    early = os.path.join(directory, f"epoch_{early_epoch:02d}.keras")
    if not os.path.exists(final):
        os.makedirs(directory, exist_ok=True)
        checkpoint = keras.callbacks.ModelCheckpoint(os.path.join(directory, "epoch_{epoch:02d}.keras"))
        train_image_teacher(x_train, y_train, epochs=epochs, seed=1, verbose=2, callbacks=[checkpoint]).save(final)
    return keras.saving.load_model(final), keras.saving.load_model(early)


def fast_offline_dataset(images, y, logits, batch_size=128, seed=0):
    """`offline.offline_dataset`'s batches (one random view per example and epoch), drawn a batch at a time.

    The views are precomputed (`tfdistill.offline.views.all_views`), so an epoch gathers
    batches instead of rebuilding every augmented image; the order and draws
    are a fixed function of `seed`, the same for every row.
    """
    views, n = logits.shape[:2]
    images = tf.constant(images)
    logits = tf.constant(np.asarray(logits, np.float32))
    labels = tf.constant(np.asarray(y))
    order = tf.data.Dataset.range(n).shuffle(n, seed=seed, reshuffle_each_iteration=True).batch(batch_size)
    draws = tf.data.Dataset.random(seed=seed + 1, rerandomize_each_iteration=True)

    def pick(index, draw):
        view = tf.random.stateless_uniform(tf.shape(index), seed=tf.stack([draw, 0]), maxval=views, dtype=tf.int64)
        where = tf.stack([view, index], -1)
        x = tf.cast(tf.gather_nd(images, where), tf.float32) / 255.0
        return {"x": x, "teacher_logits": tf.gather_nd(logits, where)}, tf.gather(labels, index)

    return tf.data.Dataset.zip(order, draws).map(pick, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def train_assistant(teacher, all_views, y, logits, args):
    """A teacher assistant distilled from `teacher` (KD at T=1, soft only) on the cached views."""
    keras.utils.set_random_seed(1000)
    assistant = build_student(width=args.assistant_width)
    train = fast_offline_dataset(all_views, y, logits, args.batch_size, seed=1000)
    schedule = keras.optimizers.schedules.CosineDecay(args.learning_rate, args.assistant_epochs * len(train))
    distiller = tfdistill.Distiller(teacher, assistant)
    distiller.compile(keras.optimizers.Adam(schedule), **METHODS["kd_t1"][1])
    distiller.fit(train, epochs=args.assistant_epochs, verbose=0)
    return assistant


def accuracy(model, x, y):
    return float(np.mean(np.argmax(model.predict(x, batch_size=2048, verbose=0), -1) == y))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--saved-models", default="saved_models")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--views", type=int, default=4)
    parser.add_argument("--learning-rate", type=float, default=3e-3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--students", nargs="+", default=["cnn16"], choices=list(STUDENTS))
    parser.add_argument("--methods", nargs="+", default=["alone", "kd_t1"], choices=list(METHODS))
    parser.add_argument("--assistant-width", type=int, default=32)
    parser.add_argument("--assistant-epochs", type=int, default=12)
    parser.add_argument("--second-teacher", default="second_teacher", help="folder of the second teacher and its checkpoints")
    parser.add_argument("--early-epoch", type=int, default=8)
    parser.add_argument("--out", default=None, help="JSON file for the results (rewritten after every run)")
    parser.add_argument("--cache-dir", default=None, help="keep the teachers' logits here between runs")
    args = parser.parse_args()

    (x_train, y_train), (x_val, y_val), (x_test, y_test) = validation_split()
    teacher = shipped_teacher(args.saved_models)
    teachers = {"shipped": teacher, "flip_tta": flip_tta(teacher)}
    needed = {METHODS[m][0] for m in args.methods} - {None}
    if needed & {"second", "early", "ensemble"}:
        start = time.time()
        teachers["second"], teachers["early"] = second_teachers(args.second_teacher, x_train, y_train, args.early_epoch)
        teachers["ensemble"] = tfdistill.TeacherEnsemble([teacher, teachers["second"]])
        print(f"second teacher ready in {time.time() - start:.0f} s", flush=True)
    if "assistant" in needed:
        needed.add("shipped")
    results = {"args": vars(args), "teachers": {}, "runs": []}
    logits = {}
    all_views = None
    # "assistant" sorts first but is trained from the shipped teacher's logits: do it last.
    for variant in sorted(needed or {"shipped"}, key=lambda v: v == "assistant"):
        start = time.time()
        if variant == "assistant":
            all_views = offline.views.all_views(x_train, args.views, seed=0)
            teachers["assistant"] = train_assistant(teacher, all_views, y_train, logits["shipped"], args)
        logits[variant] = offline.cached_teacher_logits(
            teachers[variant], x_train, views=args.views, cache_dir=args.cache_dir, verbose=0
        )
        results["teachers"][variant] = {
            "val": accuracy(teachers[variant], x_val, y_val),
            "test": accuracy(teachers[variant], x_test, y_test),
            "params": teachers[variant].count_params(),
        }
        print(f"teacher {variant}: {results['teachers'][variant]} ({time.time() - start:.0f} s to cache)", flush=True)

    start = time.time()
    if all_views is None:
        all_views = offline.views.all_views(x_train, args.views, seed=0)
    print(f"{args.views} views of {len(x_train):,} images materialized in {time.time() - start:.0f} s", flush=True)
    for seed in args.seeds:
        for student_name in args.students:
            keras.utils.set_random_seed(seed)
            initial = STUDENTS[student_name]().get_weights()
            for method in args.methods:
                variant, kwargs = METHODS[method]
                train = fast_offline_dataset(all_views, y_train, logits[variant or sorted(logits)[0]], args.batch_size, seed)
                keras.utils.set_random_seed(seed)
                student = STUDENTS[student_name]()
                student.set_weights(initial)
                steps = len(train)
                schedule = keras.optimizers.schedules.CosineDecay(args.learning_rate, args.epochs * steps)
                distiller = tfdistill.Distiller(teachers[variant or "shipped"], student)
                distiller.compile(keras.optimizers.Adam(schedule), **kwargs)
                start = time.time()
                distiller.fit(train, epochs=args.epochs, verbose=0)
                run = {
                    "seed": seed,
                    "student": student_name,
                    "params": student.count_params(),
                    "method": method,
                    "val": accuracy(student, x_val, y_val),
                    "test": accuracy(student, x_test, y_test),
                    "seconds": time.time() - start,
                }
                results["runs"].append(run)
                print(
                    f"seed {seed} {student_name} ({run['params']:,} params) {method:<10} "
                    f"val {run['val']:.2%} test {run['test']:.2%} ({run['seconds']:.0f} s)",
                    flush=True,
                )
                if args.out:
                    with open(args.out, "w") as f:
                        json.dump(results, f, indent=2)

    print(f"\n{len(args.seeds)} seed(s), {args.epochs} epochs, {args.views} views, 50,000 training images\n")
    print("| student | method | validation | test | test gain over alone, per seed | mean gain [95 % interval] |")
    print("| --- | --- | --- | --- | --- | --- |")
    for student_name in args.students:
        alone = {r["seed"]: r for r in results["runs"] if r["student"] == student_name and r["method"] == "alone"}
        for method in args.methods:
            runs = [r for r in results["runs"] if r["student"] == student_name and r["method"] == method]
            val = np.mean([r["val"] for r in runs]) * 100
            test = np.mean([r["test"] for r in runs]) * 100
            gain = ""
            if method != "alone" and alone:
                diffs = [100 * (r["test"] - alone[r["seed"]]["test"]) for r in runs if r["seed"] in alone]
                summary = paired_difference(diffs)
                gain = f"{', '.join(f'{d:+.2f}' for d in diffs)} | {summary}"
            print(f"| {student_name} | {method} | {val:.2f} | {test:.2f} | {gain} |")


if __name__ == "__main__":
    tf.get_logger().setLevel("ERROR")
    main()
