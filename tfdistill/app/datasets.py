"""`Data` and its `Split`s: the examples of a run, in memory or streamed from files, read as the models take them.

A split holds its examples as arrays (`x`), as image files (`paths`), or both:
the training split of labeled arrays with a folder of unlabeled images holds
the arrays' examples first, then the files'. Files are never loaded whole:
they are read and decoded a batch at a time.
"""

import dataclasses
from typing import List, Optional

import numpy as np
import tensorflow as tf

from tfdistill.data.pipelines import AUTOTUNE
from tfdistill.labels import UNLABELED
from tfdistill.offline.examples import ArrayExamples, ConcatenatedExamples, ImageFiles
from tfdistill.offline.views import as_inputs


@dataclasses.dataclass
class Split:
    """One split: raw arrays `x` and/or image `paths` (in that order), and integer labels `y` (-1: none)."""

    y: np.ndarray
    x: Optional[np.ndarray] = None
    paths: Optional[np.ndarray] = None

    def __len__(self):
        return len(self.y)

    @property
    def in_memory(self):
        return self.paths is None

    @property
    def labeled(self):
        """Indices of the examples that have a label."""
        return np.flatnonzero(self.y != UNLABELED)

    def subset(self, indices):
        """The examples at `indices`; a split of arrays and files keeps its arrays' examples first."""
        indices = np.asarray(indices, dtype=np.int64)
        if self.x is None or self.paths is None:
            return Split(self.y[indices], None if self.x is None else self.x[indices],
                         None if self.paths is None else self.paths[indices])
        count = len(self.x)
        in_x, in_files = indices[indices < count], indices[indices >= count]
        # A part left empty is dropped: the labeled arrays of arrays and files stay in memory.
        return Split(np.concatenate([self.y[in_x], self.y[in_files]]),
                     self.x[in_x] if len(in_x) or not len(in_files) else None,
                     self.paths[in_files - count] if len(in_files) else None)


def concatenate(first, second):
    """One split of both splits' examples: arrays and files together keep the arrays' first."""
    if first.in_memory and second.in_memory:
        return Split(np.concatenate([first.y, second.y]), x=np.concatenate([first.x, second.x]))
    if first.x is None and second.x is None:
        return Split(np.concatenate([first.y, second.y]), paths=np.concatenate([first.paths, second.paths]))
    arrays, files = (first, second) if first.in_memory else (second, first)
    return Split(np.concatenate([arrays.y, files.y]), x=arrays.x, paths=files.paths)


@dataclasses.dataclass
class Data:
    """A dataset in one of the forms a config or `--data` names.

    Attributes:
        description: what it is, for messages (`"Fashion-MNIST"`, a path).
        train, validation, test: the splits; the training split may hold
            unlabeled examples (label `tfdistill.labels.UNLABELED`).
        class_names: one name per class, in label order.
        raw_shape: one example as clients send it to the exported model
            (e.g. `(28, 28)` for grey images, `(h, w, 3)` for colour ones).
        raw_dtype: `"uint8"` (images, scaled by 1/255 inside the model) or
            `"float32"` (sent as they are).
    """

    description: str
    train: Split
    validation: Split
    test: Split
    class_names: List[str]
    raw_shape: tuple
    raw_dtype: str

    @property
    def streamed(self):
        """Whether the training split is read from files (its teacher outputs are then cached on disk)."""
        return not self.train.in_memory

    @property
    def scale(self):
        return 1 / 255.0 if self.raw_dtype == "uint8" else None

    @property
    def input_shape(self):
        """One example's shape as the models take it (images get a channel axis)."""
        if self.train.x is not None:
            return tuple(as_inputs(self.train.x[:1]).shape[1:])
        return tuple(self.raw_shape)

    @property
    def image_shape(self):
        """`(height, width, channels)` images are read at: files, and arrays of images."""
        shape = tuple(self.raw_shape)
        return shape + (1,) if len(shape) == 2 else shape

    def examples(self, split):
        """`split`'s examples read by index, as every process reads them (`tfdistill.offline.ArrayExamples`, `ImageFiles`).

        A split of arrays and files gives its arrays' examples first, then the
        files' (`tfdistill.offline.ConcatenatedExamples`). The run's own
        teacher pass and `tfdistill cache`'s workers read them from the same
        description, so both see identical examples.
        """
        parts = []
        if split.x is not None:
            parts.append(ArrayExamples(split.x))
        if split.paths is not None:
            height, width, channels = self.image_shape
            parts.append(ImageFiles(split.paths, (height, width), channels))
        return parts[0] if len(parts) == 1 else ConcatenatedExamples(parts)

    def load_example(self, split):
        """A TensorFlow function from an index of `split` to its model input (for streamed data)."""
        return self.examples(split).load_example()

    def batches(self, split, batch_size=512, limit=None):
        """`(x, y)` batches of `split` as the models take them, in order, never all in memory."""
        count = len(split) if limit is None else min(limit, len(split))
        if split.in_memory:
            return tf.data.Dataset.from_tensor_slices((as_inputs(split.x[:count]), split.y[:count])).batch(batch_size)
        load = self.load_example(split)
        labels = tf.constant(split.y)
        return tf.data.Dataset.range(count).map(
            lambda index: (load(index), tf.gather(labels, index)), num_parallel_calls=AUTOTUNE, deterministic=True
        ).batch(batch_size).prefetch(AUTOTUNE)

    def arrays(self, split, limit=None):
        """`(x, y)` of at most `limit` examples of `split` in memory, as the models take them."""
        if split.in_memory:
            count = len(split) if limit is None else min(limit, len(split))
            return as_inputs(split.x[:count]), split.y[:count]
        parts = list(self.batches(split, limit=limit))
        return np.concatenate([p[0].numpy() for p in parts]), np.concatenate([p[1].numpy() for p in parts])

    def sample(self, split, count, seed):
        """`count` examples of `split` drawn at random (reproducibly from `seed`), as the models take them."""
        indices = np.random.default_rng(seed).permutation(len(split))[:count]
        return self.arrays(split.subset(indices))[0]
