"""Examples read one at a time by index, described so that any process reads the same ones.

The teacher's pass over a dataset too large for one process reads each
example by its index, in whichever process holds that index's shard. An
`ImageFiles` or `ArrayExamples` is a small, picklable description; each
process builds its reader from it with `load_example()`, a TensorFlow
function from an `int64` index to the example as the teacher takes it. The
in-process pass (`write_teacher_logits(teacher, examples.load_example(),
len(examples), ...)`) and a Beam pipeline's workers
(`tfdistill.offline.write_sharded_cache`) therefore read the very same
tensors. `ConcatenatedExamples` reads several descriptions one after the
other (labeled arrays, then a folder of unlabeled images). Any object with
`__len__`, `load_example()`, `identity()` and `describe()` serves as well
(a TFRecord reader, a database).
"""

import hashlib

import numpy as np
import tensorflow as tf

from tfdistill.offline.views import as_inputs


class ImageFiles:
    """Image files (PNG, JPEG, GIF, BMP), decoded and scaled to `[0, 1]` one at a time.

    Args:
        paths: the files, in example order; any path `tf.io.read_file`
            reads (a local file, `gs://...`).
        image_size: `(height, width)`; an image of another size is resized
            (bilinear) to it.
        channels: 1 (grey) or 3 (colour), whatever the files hold.

    Example:
        >>> files = ImageFiles(["a.png", "b.png"], image_size=(28, 28), channels=1)
        >>> len(files)
        2
    """

    def __init__(self, paths, image_size, channels=3):
        self.paths = [str(path) for path in paths]
        if len(image_size) != 2 or not all(isinstance(v, (int, np.integer)) and v > 0 for v in image_size):
            raise ValueError(f"Invalid value for argument `image_size`. Expected (height, width). Received: {image_size!r}")
        if channels not in (1, 3):
            raise ValueError(f"Invalid value for argument `channels`. Expected 1 or 3. Received: {channels!r}")
        self.image_size = tuple(int(v) for v in image_size)
        self.channels = int(channels)

    def __len__(self):
        return len(self.paths)

    def load_example(self):
        """A TensorFlow function from an index to its image, float32 `(height, width, channels)` in `[0, 1]`."""
        paths = tf.constant(self.paths)
        (height, width), channels = self.image_size, self.channels

        def load(index):
            image = tf.io.decode_image(tf.io.read_file(tf.gather(paths, index)), channels=channels,
                                       expand_animations=False)
            image = tf.cast(image, tf.float32)
            same = tf.reduce_all(tf.equal(tf.shape(image)[:2], [height, width]))
            image = tf.cond(same, lambda: image, lambda: tf.image.resize(image, (height, width)))
            image.set_shape((height, width, channels))
            return image / 255.0

        return load

    def identity(self):
        """What the examples are, for a cache's key: the paths in order, the size and channels."""
        return np.asarray(self.paths + [f"image_size={self.image_size}, channels={self.channels}"])

    def describe(self):
        height, width = self.image_size
        return f"{len(self):,} image files read at {height}x{width}x{self.channels}"


class ArrayExamples:
    """Examples held in an array: images (`uint8` scaled to `[0, 1]`), float arrays or token ids.

    The array travels with the description (pickled into a Beam pipeline), so
    it suits data that fits in memory; larger data is better read from files
    (`ImageFiles`). Images become what `compute_teacher_logits` makes of
    them (`uint8` divided by 255, a channel axis added to `(n, h, w)`).

    Args:
        x: the examples, first axis the example index.

    Example:
        >>> examples = ArrayExamples(np.zeros((10, 28, 28), np.uint8))
        >>> len(examples), examples.describe()
        (10, '10 arrays of shape (28, 28) and dtype uint8')
    """

    def __init__(self, x):
        self.x = np.asarray(x)
        if self.x.ndim < 1 or len(self.x) == 0:
            raise ValueError(f"Invalid value for argument `x`. Expected an array of examples. Received: shape {self.x.shape}")

    def __len__(self):
        return len(self.x)

    def load_example(self):
        """A TensorFlow function from an index to its example, as the teacher takes it (`as_inputs`'s values).

        `uint8` images stay `uint8` in memory and are scaled one at a time.
        """
        if self.x.dtype != np.uint8:
            table = tf.constant(as_inputs(self.x))
            return lambda index: tf.gather(table, index)
        as_inputs(self.x[:1])  # refuses what is no image, as for the whole array
        table = tf.constant(self.x)

        def load(index):
            image = tf.cast(tf.gather(table, index), tf.float32) / 255.0
            return image[..., None] if len(image.shape) == 2 else image

        return load

    def identity(self):
        """What the examples are, for a cache's key: the array itself."""
        return self.x

    def describe(self):
        return f"{len(self):,} arrays of shape {self.x.shape[1:]} and dtype {self.x.dtype}"


class ConcatenatedExamples:
    """The examples of several descriptions, one after the other: index `i` of the second follows the first's last.

    A training split of labeled arrays and unlabeled image files is one:
    `ConcatenatedExamples([ArrayExamples(x), ImageFiles(paths, (28, 28), 1)])`.
    Every part must give examples of one shape and dtype.

    Args:
        parts: the descriptions (`ArrayExamples`, `ImageFiles`, ...), in order.

    Example:
        >>> both = ConcatenatedExamples([ArrayExamples(np.zeros((10, 28, 28), np.uint8)),
        ...                              ImageFiles(["a.png", "b.png"], (28, 28), channels=1)])
        >>> len(both), both.describe()
        (12, '10 arrays of shape (28, 28) and dtype uint8, then 2 image files read at 28x28x1')
    """

    def __init__(self, parts):
        self.parts = list(parts)
        if not self.parts:
            raise ValueError("Invalid value for argument `parts`. Expected at least one description of examples. "
                             "Received: []")

    def __len__(self):
        return sum(len(part) for part in self.parts)

    def load_example(self):
        """A TensorFlow function from an index to its example, read by the part that holds it."""
        loads = [part.load_example() for part in self.parts]
        starts = np.cumsum([0] + [len(part) for part in self.parts[:-1]]).tolist()

        def load(index, first=0):
            if first == len(loads) - 1:
                return loads[first](index - starts[first])
            return tf.cond(index < starts[first + 1], lambda: loads[first](index - starts[first]),
                           lambda: load(index, first + 1))

        return load

    def identity(self):
        """What the examples are, for a cache's key: a hash of every part's identity, in order."""
        digest = hashlib.sha256()
        for part in self.parts:
            identity = np.ascontiguousarray(part.identity())
            digest.update(f"{type(part).__name__}{identity.shape}{identity.dtype}".encode())
            digest.update(identity.tobytes())
        return np.frombuffer(digest.digest(), np.uint8)

    def describe(self):
        return ", then ".join(part.describe() for part in self.parts)
