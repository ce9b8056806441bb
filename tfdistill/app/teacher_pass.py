"""The teacher's pass: its outputs on every training example and view, computed once, and the students' batches.

Examples held in memory get their outputs in memory (or from a keyed cache
on disk, `teacher.cache_dir`); examples read by index (a streamed image
folder, or a top-k cache of a vocabulary) get them written once to a file and
read back memory-mapped. Outputs computed before, by `tfdistill cache` on
Apache Beam (`cache.path`), take the place of the teacher's pass: they cover
the same examples in the same order, so the batches are the same. Every call
of `TeacherPass.batches` gives a new pipeline that yields the same batches in
the same order, so two students trained one after the other see the same data.
"""

import dataclasses
import os
from typing import Callable, Optional

import numpy as np
import tensorflow as tf

from tfdistill import offline
from tfdistill.data.mixing import mixed_order
from tfdistill.export.atomic import temporary_path
from tfdistill.labels import UNLABELED


@dataclasses.dataclass(frozen=True)
class TrainingExamples:
    """The training examples the teacher runs over.

    Attributes:
        y: labels, `(n,)` or `(n, ...)` one per position; -1 where an
            example has none (an unlabeled pool).
        x: the examples in memory (uint8 images are scaled by the pipeline),
            or `None` when they are read by `load`.
        load: a TensorFlow function from an int64 index to one example as the
            models take it (read from disk), or `None` for `x`.
        sample_weight: optional weights, `(n,)` or the labels' shape
            (padding 0).
    """

    y: np.ndarray
    x: Optional[np.ndarray] = None
    load: Optional[Callable] = None
    sample_weight: Optional[np.ndarray] = None

    @property
    def count(self):
        return len(self.y)

    @property
    def labeled(self):
        """Indices of the examples with a label (any position labeled)."""
        y = np.asarray(self.y)
        return np.flatnonzero((y != UNLABELED).reshape(len(y), -1).any(axis=1))


@dataclasses.dataclass(frozen=True)
class TeacherPass:
    """The teacher's outputs on the training examples and the batches built on them.

    Attributes:
        logits: view 0 of the cache, the teacher's logits on the training
            examples themselves, `(n, ..., num_classes)` (memory-mapped when
            cached on disk); `None` for a top-k cache.
        labeled, unlabeled: how many training examples have a label and how
            many have none.
        steps_per_epoch: batches of an epoch of `batches()`; the student
            alone takes as many on its labeled examples.
    """

    logits: Optional[np.ndarray]
    labeled: int
    unlabeled: int
    steps_per_epoch: int
    _make: Callable[[bool], tf.data.Dataset]

    def batches(self, labeled_only=False):
        """A new pipeline of the epoch's batches: every example, or the labeled ones only.

        Each call gives the same batches in the same order (and the same
        epochs after it). With unlabeled examples, `labeled_only=True` cycles
        through the labeled ones for `steps_per_epoch` batches an epoch.
        """
        return self._make(labeled_only)


def teacher_pass(teacher, examples, settings, cache_path=None, top_k=None, cache_dir=None, outputs=None, verbose=0):
    """Runs the teacher once over every training example and view, or takes its outputs computed before.

    Args:
        teacher: the teacher `keras.Model`.
        examples: the `TrainingExamples`.
        settings: the `distill` section (`views`, `seed`, `batch_size`,
            `labeled_share`, `temperature` for a top-k cache).
        cache_path: the file (a folder with `top_k`) the outputs of examples
            read by `load` are written to; one already there is reused (a
            resumed run).
        top_k: keep the `k` largest logits of each example (a file cache).
        cache_dir: a folder that keeps in-memory examples' outputs between
            runs (`tfdistill.offline.cached_teacher_logits`).
        outputs: the teacher's outputs on every view of `examples`, computed
            before: `(views, n, ..., classes)`, e.g. the
            `tfdistill.offline.ShardedArray` of `tfdistill cache`. The
            teacher does not run; the labeled rows of examples read by `load`
            are copied beside `cache_path` for the student alone.
        verbose: 1 shows progress bars.

    Returns:
        A `TeacherPass`.
    """
    labeled = examples.labeled
    if examples.load is None and top_k is None:
        if outputs is None:
            logits = offline.cached_teacher_logits(teacher, examples.x, views=settings.views, seed=settings.seed,
                                                   cache_dir=cache_dir, verbose=verbose)
        else:
            logits = np.asarray(outputs)
        pipeline = _in_memory(examples, logits, settings)
        view_0 = logits[0]
    else:
        load = examples.load if examples.load is not None else _from_table(examples.x)
        if outputs is None and not os.path.exists(cache_path):  # written under a temporary name: present means complete
            os.makedirs(os.path.dirname(cache_path), exist_ok=True)
            offline.write_teacher_logits(teacher, load, examples.count, cache_path, views=settings.views,
                                         seed=settings.seed, verbose=verbose, top_k=top_k,
                                         temperature=settings.temperature if top_k else None)
        pipeline = _streamed(examples, load, cache_path, settings, outputs)
        view_0 = None if top_k else (np.load(cache_path, mmap_mode="r") if outputs is None else outputs)[0]
    steps = steps_per_epoch(examples.y, settings.batch_size, settings.labeled_share)

    def make(labeled_only):
        if labeled_only and len(labeled) < examples.count:
            return _cycled(pipeline(labeled), settings.batch_size, steps)
        return pipeline(None)

    return TeacherPass(logits=view_0, labeled=len(labeled), unlabeled=examples.count - len(labeled),
                       steps_per_epoch=steps, _make=make)


def steps_per_epoch(y, batch_size, labeled_share=None):
    """Batches in an epoch of every example: one pass over them all, or over the pool with a labeled share."""
    if labeled_share is None:
        examples = len(y)
    else:  # the length of the order `mixed_order` gives, without building any pipeline
        examples = len(mixed_order(np.asarray(y), batch_size, labeled_share, shuffle=False))
    return -(-examples // batch_size)


def _from_table(x):
    table = tf.constant(x)
    return lambda index: tf.gather(table, index)


def _rows(array, indices):
    return None if array is None else np.asarray(array)[indices]


def _in_memory(examples, logits, settings):
    """`make(indices)`: `offline_dataset` of every example (`None`), or of `indices` only."""
    options = dict(batch_size=settings.batch_size, seed=settings.seed, view_seed=settings.seed)

    def make(indices):
        if indices is None:
            return offline.offline_dataset(examples.x, examples.y, logits, sample_weight=examples.sample_weight,
                                           labeled_share=settings.labeled_share, **options)
        return offline.offline_dataset(examples.x[indices], np.asarray(examples.y)[indices],
                                       np.asarray(logits)[:, indices], sample_weight=_rows(examples.sample_weight, indices),
                                       **options)

    return make


def _streamed(examples, load, path, settings, outputs=None):
    """`make(indices)`: `streaming_offline_dataset` of every example, or of `indices` (their rows copied once).

    The outputs are the cache at `path`, or `outputs` when given; the rows of `indices` go beside `path`.
    """
    options = dict(batch_size=settings.batch_size, seed=settings.seed, view_seed=settings.seed)
    cache = path if outputs is None else outputs

    def make(indices):
        if indices is None:
            return offline.streaming_offline_dataset(load, examples.y, cache, sample_weight=examples.sample_weight,
                                                     labeled_share=settings.labeled_share, **options)
        table = tf.constant(indices, tf.int64)
        return offline.streaming_offline_dataset(
            lambda index: load(tf.gather(table, index)), np.asarray(examples.y)[indices],
            _subset_cache(path, indices, outputs), sample_weight=_rows(examples.sample_weight, indices), **options,
        )

    return make


def _subset_cache(path, indices, outputs=None):
    """`PATH.labeled.npy`: the rows of `indices` of the cache at `path` (or of `outputs`), copied a view at a time, once."""
    if outputs is None and os.path.isdir(path):
        raise ValueError("Invalid value for argument `top_k`: a top-k cache of partly labeled examples is not supported.")
    subset_path = f"{os.path.splitext(path)[0]}.labeled.npy"
    if os.path.exists(subset_path):
        return subset_path
    os.makedirs(os.path.dirname(subset_path), exist_ok=True)
    cache = np.load(path, mmap_mode="r") if outputs is None else outputs
    staging = temporary_path(subset_path, ".npy")
    rows = np.lib.format.open_memmap(staging, mode="w+", dtype=cache.dtype, shape=(cache.shape[0], len(indices), *cache.shape[2:]))
    for view in range(cache.shape[0]):
        rows[view] = cache[view, indices]
    rows.flush()
    del rows
    os.replace(staging, subset_path)
    return subset_path


def _cycled(dataset, batch_size, steps):
    """`steps` batches an epoch from `dataset`'s examples, cycled through (reshuffled on every pass)."""
    return dataset.unbatch().repeat().batch(batch_size).take(steps)
