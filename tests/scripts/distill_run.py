"""A small distillation run, started as its own process by the tests.

    python distill_run.py OUT_DIR [--backup DIR] [--kill-at EPOCH BATCH] [--multi-worker] [--offline]

Trains a distiller for 3 epochs on a fixed-order dataset and writes the
student's weights to OUT_DIR/weights.npz (the chief only, in multi-worker).
`--kill-at` sends SIGKILL to this process at that epoch and batch, once
(a marker file in OUT_DIR remembers it). `--offline` trains on cached teacher
logits, each worker caching its own shard (`distributed_offline_dataset`), and
writes the indices of the examples this process ran the teacher on to
OUT_DIR/teacher_rows.json.
"""

import argparse
import json
import os
import signal
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tfdistill_command  # noqa: E402

tfdistill_command.import_tensorflow(quiet=False)  # as the `tfdistill` command does (see CONTRIBUTING.md)

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import tfdistill  # noqa: E402
keras.config.disable_traceback_filtering()

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from helpers import dense_model, toy_data  # noqa: E402


class KillAt(keras.callbacks.Callback):
    def __init__(self, epoch, batch, marker):
        super().__init__()
        self.epoch, self.batch, self.marker, self.current = epoch, batch, marker, None

    def on_epoch_begin(self, epoch, logs=None):
        self.current = epoch

    def on_train_batch_begin(self, batch, logs=None):
        if (self.current, batch) == (self.epoch, self.batch) and not os.path.exists(self.marker):
            open(self.marker, "w").close()
            os.kill(os.getpid(), signal.SIGKILL)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--backup")
    parser.add_argument("--kill-at", type=int, nargs=2)
    parser.add_argument("--multi-worker", action="store_true")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--offline", action="store_true")
    parser.add_argument("--shuffle", action="store_true", help="reshuffle and re-augment every epoch (seeded)")
    args = parser.parse_args()

    strategy = (
        tf.distribute.MultiWorkerMirroredStrategy()
        if args.multi_worker
        else tf.distribute.get_strategy()
    )
    x, y = toy_data(n=96)
    with strategy.scope():
        keras.utils.set_random_seed(0)
        teacher = dense_model(32, "teacher", batch_norm=True)
        student = dense_model(8, "student")
        distiller = tfdistill.Distiller(teacher, student)
        distiller.compile(keras.optimizers.Adam(0.01), metrics=["accuracy"])
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    if args.shuffle:
        noise = tf.data.Dataset.random(seed=1, rerandomize_each_iteration=True).map(
            lambda r: tf.cast(r % 100, tf.float32) / 1000.0
        )
        data = (
            tf.data.Dataset.zip(tf.data.Dataset.from_tensor_slices((x, y)), noise)
            .map(lambda xy, n: (xy[0] + n, xy[1]))
            .shuffle(96, seed=0, reshuffle_each_iteration=True)
            .batch(16)
            .prefetch(2)
        )
    if args.offline:
        teacher_rows = []
        from tfdistill.offline import disk_cache  # where the cache runs the teacher

        compute = disk_cache.compute_teacher_logits

        def recording(teacher, inputs, *rest, **kwargs):
            teacher_rows.extend(int(np.flatnonzero((x == row).all(axis=1))[0]) for row in inputs)
            return compute(teacher, inputs, *rest, **kwargs)

        disk_cache.compute_teacher_logits = recording
        data = tfdistill.offline.distributed_offline_dataset(
            strategy, teacher, x, y, batch_size=16, shuffle=False, dtype="float32", verbose=0
        )
        with open(os.path.join(args.out, "teacher_rows.json"), "w") as f:
            json.dump(teacher_rows, f)
    elif args.multi_worker:
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        data = data.with_options(options)
    callbacks = []
    if args.backup:
        callbacks.append(tfdistill.callbacks.BackupAndRestore(args.backup, delete_checkpoint=False))
    if args.kill_at:
        callbacks.append(KillAt(*args.kill_at, os.path.join(args.out, "killed")))
    history = distiller.fit(data, epochs=args.epochs, verbose=0, callbacks=callbacks).history
    is_chief = not args.multi_worker or strategy.cluster_resolver.task_id == 0
    if is_chief:
        np.savez(os.path.join(args.out, "weights.npz"), *student.get_weights())
        with open(os.path.join(args.out, "loss.txt"), "w") as f:
            json.dump(history["loss"], f)


if __name__ == "__main__":
    main()
