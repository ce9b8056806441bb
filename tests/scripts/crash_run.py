"""A whole offline distillation run, killed by the tests at chosen points.

    python crash_run.py OUT_DIR [--kill PHASE N]

Caches the teacher's logits (4 augmented views) under OUT_DIR/cache, trains a
student on them for 4 epochs with `BackupAndRestore(OUT_DIR/backup)` on a
pipeline that reshuffles and redraws views every epoch, exports it as a
SavedModel under OUT_DIR/export/student and as OUT_DIR/student.keras, and
writes its weights to OUT_DIR/weights.npz. Started again after a kill, it
resumes from what is on disk.

`--kill PHASE N` sends SIGKILL to this process at the N-th (0-based) moment of
PHASE: "cache" (the cache's files written, not yet renamed into place),
"batch" (before training batch N, counted over the run), "backup" (a backup's
weights file written, its pointer not yet), "export" (a SavedModel version
written, not yet renamed into place).
"""

import argparse
import os
import signal
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tfdistill_command  # noqa: E402

tfdistill_command.import_tensorflow(quiet=False)  # as the `tfdistill` command does (see CONTRIBUTING.md)

import keras  # noqa: E402
import numpy as np  # noqa: E402

import tfdistill  # noqa: E402
from tfdistill import cache_files, callbacks, offline  # noqa: E402
from tfdistill.export import atomic, export_saved_model, save_keras  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from helpers import dense_model  # noqa: E402


def kill_at(phase, target):
    """Wraps `module.name` of PHASE so that its `target`-th call (0-based) kills this process first."""
    module, name = {
        "cache": (cache_files, "_move_into_place"),
        "backup": (callbacks, "_write_atomically"),
        "export": (atomic, "move_folder_into_place"),
    }[phase]
    original, calls = getattr(module, name), [0]

    def wrapped(*args, **kwargs):
        if calls[0] == target:
            os.kill(os.getpid(), signal.SIGKILL)
        calls[0] += 1
        return original(*args, **kwargs)

    setattr(module, name, wrapped)


class KillAtBatch(keras.callbacks.Callback):
    def __init__(self, target):
        super().__init__()
        self.target = target

    def on_train_batch_begin(self, batch, logs=None):
        step = int(self.model.optimizer.iterations.numpy())
        if step == self.target:
            os.kill(os.getpid(), signal.SIGKILL)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--kill", nargs=2)
    args = parser.parse_args()
    callbacks_list = []
    if args.kill:
        phase, target = args.kill[0], int(args.kill[1])
        if phase == "batch":
            callbacks_list.append(KillAtBatch(target))
        else:
            kill_at(phase, target)

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(96, 8, 8), dtype=np.uint8)
    y = rng.integers(0, 3, 96).astype("int32")
    keras.utils.set_random_seed(0)
    teacher = dense_model(32, "teacher", inputs=64, batch_norm=True)
    flat_teacher = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(), teacher])
    student = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(), dense_model(8, "student", inputs=64)])
    logits = offline.cached_teacher_logits(flat_teacher, x, views=4, cache_dir=os.path.join(args.out, "cache"), verbose=0)
    train = offline.offline_dataset(x, y, logits, batch_size=16, seed=0)
    distiller = tfdistill.Distiller(flat_teacher, student)
    distiller.compile(keras.optimizers.Adam(0.01), soft_loss=tfdistill.KnowledgeDistillation(2.0))
    callbacks_list.insert(0, callbacks.BackupAndRestore(os.path.join(args.out, "backup"), delete_checkpoint=False))
    distiller.fit(train, epochs=4, verbose=0, callbacks=callbacks_list)
    export_dir = os.path.join(args.out, "export", "student")
    if not os.path.exists(os.path.join(export_dir, "1")):
        export_saved_model(student, export_dir, version=1)
    save_keras(student, os.path.join(args.out, "student.keras"))
    np.savez(os.path.join(args.out, "weights.npz"), *student.get_weights())


if __name__ == "__main__":
    main()
