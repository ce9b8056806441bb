"""Examples read one at a time by index, described so that any process reads the same ones.

The teacher's pass over a dataset too large for one process reads each
example by its index, in whichever process holds that index's shard. An
`ImageFiles` or `ArrayExamples` is a small, picklable description; each
process builds its reader from it with `load_example()`, a TensorFlow
function from an `int64` index to the example as the teacher takes it. The
in-process pass (`write_teacher_logits(teacher, examples.load_example(),
len(examples), ...)`) and a Beam pipeline's workers
(`tfdistill.offline.write_sharded_cache`) therefore read the very same
tensors. Any object with `__len__`, `load_example()`, `identity()` and
`describe()` serves as well (a TFRecord reader, a database).
"""

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
        """A TensorFlow function from an index to its example, as the teacher takes it."""
        table = tf.constant(as_inputs(self.x))
        return lambda index: tf.gather(table, index)

    def identity(self):
        """What the examples are, for a cache's key: the array itself."""
        return self.x

    def describe(self):
        return f"{len(self):,} arrays of shape {self.x.shape[1:]} and dtype {self.x.dtype}"
