"""Callbacks for long distillation runs."""

import json
import os
import shutil
import warnings

import keras
import tensorflow as tf

from tfdistill import compat

_POINTER = "checkpoint.json"


def _write_atomically(path, text):
    temporary = f"{path}.{os.getpid()}.tmp"
    with open(temporary, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temporary, path)


class BackupAndRestore(keras.callbacks.Callback):
    """Keras's `BackupAndRestore`, with checkpoints that a crash cannot corrupt.

    Each backup is a new weights file (the student's and the optimizer's
    state, and any feature adapters), written under a temporary name and
    renamed into place; only then does `checkpoint.json`, itself replaced
    atomically, point to it and record the epoch. A process killed at any
    moment — even while saving — leaves the last complete backup as the one
    that is restored; the previous file is deleted only after the pointer has
    moved on.

    On restart `fit` resumes at the start of the recorded epoch, like Keras's
    callback. With the default `save_freq="epoch"` and a pipeline whose order
    per epoch is reproducible, the resumed run ends with the same weights as an
    uninterrupted one; with `save_freq=N` steps, the first batches of the
    interrupted epoch are trained again from the mid-epoch weights (Keras's
    behaviour too).

    Under `MultiWorkerMirroredStrategy` only the chief (worker 0 when there is
    no `"chief"` task) writes, and every worker restores from the chief's
    backup, so `backup_dir` must be one folder all workers read (a shared
    file system or bucket). All workers then resume at the same epoch with the
    same weights. If one worker dies, the others stop with an error (the
    strategy's peer health check) rather than waiting for ever; starting the
    cluster again resumes from the last backup.

    Args:
        backup_dir: folder of the backups; one per run.
        save_freq: `"epoch"`, or a number of steps.
        delete_checkpoint: delete the backups when training finishes.

    Example:
        >>> backup = BackupAndRestore("runs/exp1/backup")  # doctest: +SKIP
        >>> distiller.fit(train, epochs=30, callbacks=[backup])  # doctest: +SKIP

    Reference:
        `keras.callbacks.BackupAndRestore`.
    """

    def __init__(self, backup_dir, save_freq="epoch", delete_checkpoint=True):
        super().__init__()
        if not backup_dir:
            raise ValueError(f"Invalid value for argument `backup_dir`. Expected a folder. Received: {backup_dir!r}")
        if save_freq != "epoch" and (isinstance(save_freq, bool) or not isinstance(save_freq, int) or save_freq < 1):
            raise ValueError(
                "Invalid value for argument `save_freq`. Expected 'epoch' or a number of steps >= 1. "
                f"Received: save_freq={save_freq!r}"
            )
        self.backup_dir = backup_dir
        self.save_freq = save_freq
        self.delete_checkpoint = delete_checkpoint
        self._epoch = 0
        self._last_batch = -1
        self._steps_since_save = 0

    def _pointer_path(self):
        return os.path.join(self.backup_dir, _POINTER)

    def _is_chief(self):
        """True unless this process is a non-chief worker of a multi-worker strategy."""
        resolver = getattr(self.model.distribute_strategy, "cluster_resolver", None)
        cluster = resolver.cluster_spec().as_dict() if resolver is not None else {}
        if not cluster:
            return True
        if "chief" in cluster:
            return resolver.task_type == "chief"
        return resolver.task_type == "worker" and resolver.task_id == 0

    def _save(self, epoch, batch):
        """Writes a backup from which `fit` resumes at `epoch`; `batch` is the last batch index seen in it."""
        if not self._is_chief():
            return  # The chief's backup is everyone's: all workers restore from it.
        os.makedirs(self.backup_dir, exist_ok=True)
        previous = self._read_pointer()
        index = previous["index"] + 1 if previous else 0
        name = f"checkpoint-{index}.weights.h5"
        temporary = os.path.join(self.backup_dir, f"tmp-{os.getpid()}-{name}")
        self.model.save_weights(temporary, overwrite=True)
        os.replace(temporary, os.path.join(self.backup_dir, name))
        pointer = {"index": index, "weights": name, "epoch": epoch, "batch": batch}
        _write_atomically(self._pointer_path(), json.dumps(pointer))
        if previous and previous["weights"] != name:
            old = os.path.join(self.backup_dir, previous["weights"])
            if os.path.exists(old):
                os.remove(old)

    def resume_epoch(self):
        """The epoch a restarted `fit` resumes at (0 when there is no backup)."""
        pointer = self._read_pointer()
        return pointer["epoch"] if pointer else 0

    def _read_pointer(self):
        if not os.path.exists(self._pointer_path()):
            return None
        with open(self._pointer_path()) as f:
            return json.load(f)

    def on_train_begin(self, logs=None):
        if not self.model.built:
            raise ValueError(
                "Invalid model for `BackupAndRestore`: the model must be built "
                "before `fit()` so its weights can be restored. Call it on a "
                "batch first, or build the student with `keras.Input`."
            )
        pointer = self._read_pointer()
        if pointer is None:
            return
        if self.model.optimizer is not None and not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)
        self.model.load_weights(os.path.join(self.backup_dir, pointer["weights"]))
        compat.set_initial_epoch(self.model, pointer["epoch"])

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch, self._last_batch = epoch, -1

    def on_train_batch_end(self, batch, logs=None):
        if self.save_freq == "epoch":
            return
        # With `steps_per_execution`, Keras reports every N-th batch: count the steps between.
        self._steps_since_save += batch - self._last_batch
        self._last_batch = batch
        if self._steps_since_save >= self.save_freq:
            self._steps_since_save = 0
            self._save(self._epoch, batch)

    def on_epoch_end(self, epoch, logs=None):
        if self.save_freq == "epoch":
            self._save(epoch + 1, 0)

    def on_train_end(self, logs=None):
        # Only the chief deletes: another worker removing the folder could race
        # with the chief's last backup.
        if self.delete_checkpoint and self._is_chief() and os.path.exists(self.backup_dir):
            shutil.rmtree(self.backup_dir)


def advance_to_resumed_epoch(dataset, callbacks, initial_epoch=0, steps_per_epoch=None):
    """Advances a seeded `tf.data` pipeline to the epoch a backup resumes at.

    A pipeline that reshuffles (`shuffle(..., reshuffle_each_iteration=True)`)
    or re-draws random numbers (`Dataset.random(rerandomize_each_iteration=True)`)
    draws new seeds when an iterator is created (and, for datasets nested
    under a shuffle or prefetch, when it first yields). A restarted process
    starts those sequences again, so without this the resumed epoch would see
    the first epoch's order and augmentation. Re-creating the iterators the
    interrupted run created, drawing from the same ones, puts every sequence
    where it was (at the cost of one batch, and a shuffle buffer's fill, per
    skipped epoch).

    Which: Keras's epoch iterator (keras/src/trainers/epoch_iterator.py,
    Keras 3.x) creates one iterator at the start of each epoch, reads it, and
    creates one more when an epoch of known length ends, which is dropped
    unread; with unknown cardinality each epoch creates only the one it
    reads. `tests/test_resume.py` checks the result against a killed and
    resumed run with a reshuffled, randomly augmented pipeline.

    Args:
        dataset: the `tf.data.Dataset` (or distributed dataset, which cannot
            be advanced: a warning says so) given to `fit`.
        callbacks: the callbacks given to `fit`; only
            `tfdistill.callbacks.BackupAndRestore` is read.
        initial_epoch: `fit`'s `initial_epoch`.
        steps_per_epoch: `fit`'s `steps_per_epoch`: with it, iterators last
            across epochs and the order cannot be restored (a warning says so).

    Returns:
        The number of iterators created.
    """
    backups = [c for c in callbacks or [] if isinstance(c, BackupAndRestore)]
    epochs = max(0, backups[0].resume_epoch() - initial_epoch) if backups else 0
    if not epochs:
        return 0
    if not isinstance(dataset, tf.data.Dataset):
        warnings.warn(
            "Resuming on a distributed dataset: its per-epoch shuffle and augmentation "
            "restart from their first epoch, so the resumed run sees a different order "
            "than the interrupted one would have. Pass the `tf.data.Dataset` itself "
            "to `fit` (Keras distributes it) to resume in the same order.",
            stacklevel=3,
        )
        return 0
    if steps_per_epoch is not None:
        warnings.warn(
            "Resuming with `steps_per_epoch` set: the pipeline's per-epoch shuffle and "
            "augmentation restart from their first epoch, so the resumed run sees a "
            "different order than the interrupted one would have.",
            stacklevel=3,
        )
        return 0
    # "D": an iterator an epoch drew from; "B": one created at an epoch's end and dropped unread.
    pattern = ("DB" if int(dataset.cardinality()) >= 0 else "D") * epochs
    for kind in pattern:
        iterator = iter(dataset)
        if kind == "D":
            next(iterator, None)
        del iterator
    return len(pattern)
