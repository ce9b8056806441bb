"""A teacher cache in shards: a folder per range of examples, each with its integrity record, and a manifest.

    CACHE/
      manifest.json            the settings, the key and the complete shards; `"complete": true` once all are
      shard-00000-of-00020/    examples 0 .. examples_per_shard - 1
        logits.npy             (views, examples of the shard, ..., num_classes); with top-k, values.npy and
                               classes.npy as in `write_teacher_logits(..., top_k=k)`'s directory
        integrity.json         each file's bytes, CRC-32, shape and dtype (`tfdistill.cache_files`'s record)
      shard-00001-of-00020/
      ...

Shards are written independently, by any number of processes
(`tfdistill.offline.write_sharded_cache`). A shard's files are written under
temporary names and renamed when complete, and its integrity record comes
last: a folder without a record (its writer died) is not a shard, and is
never listed in the manifest. `read_sharded_cache` refuses a cache whose
manifest misses a shard, verifies every shard against its record and returns
the shards memory-mapped, as one `ShardedArray` of shape `(views, n, ...)`.
"""

import json
import os

import numpy as np

from tfdistill import cache_files
from tfdistill.errors import CacheIntegrityError
from tfdistill.offline.disk_cache import cache_key
from tfdistill.teacher_outputs import TopKLogits

MANIFEST = "manifest.json"
FORMAT = "tfdistill-sharded-teacher-cache-1"
LOGITS_FILE = "logits.npy"
# The files of a top-k cache (a shard, or the directory `write_teacher_logits(..., top_k=k)` writes).
TOP_K_VALUES, TOP_K_CLASSES, TOP_K_SETTINGS = "values.npy", "classes.npy", "settings.json"


def is_sharded_cache(path):
    """Whether `path` is a sharded cache's folder (it holds a manifest)."""
    return os.path.isfile(os.path.join(path, MANIFEST))


def shard_ranges(num_examples, examples_per_shard):
    """`(start, stop)` of every shard, in order; the last may be shorter.

    Example:
        >>> shard_ranges(10, 4)
        [(0, 4), (4, 8), (8, 10)]
    """
    return [(start, min(start + examples_per_shard, num_examples)) for start in range(0, num_examples, examples_per_shard)]


def shard_folder(index, num_shards):
    """The name of shard `index`'s folder.

    Example:
        >>> shard_folder(3, 20)
        'shard-00003-of-00020'
    """
    return f"shard-{index:05d}-of-{num_shards:05d}"


def shard_key(key, index):
    """The key in shard `index`'s integrity record: the cache's key and the shard."""
    return f"{key}/shard-{index}"


def sharded_cache_key(teacher, examples, views, seed, dtype, top_k=None, temperature=None):
    """A hash of the teacher (architecture and weights), the examples and the settings (`cache_key`'s).

    Args:
        teacher: the `keras.Model`.
        examples: an `ImageFiles`, `ArrayExamples` or any object with `identity()`.
        views, seed, dtype, top_k, temperature: as `write_sharded_cache`.

    Returns:
        32 hexadecimal digits; a cache written for them records it, and
        `read_sharded_cache(path, key=...)` refuses a cache of another key.

    Example:
        >>> key = sharded_cache_key(teacher, ImageFiles(paths, (96, 96)), views=4, seed=0, dtype="float16")  # doctest: +SKIP
        >>> logits = read_sharded_cache("cache/pool", key=key)  # doctest: +SKIP
    """
    return cache_key(teacher, examples.identity(), views, seed, dtype, top_k, temperature)


def file_names(top_k):
    """The arrays of a shard: `{"logits": "logits.npy"}`, or top-k values and classes."""
    if top_k is None:
        return {"logits": LOGITS_FILE}
    return {"values": TOP_K_VALUES, "classes": TOP_K_CLASSES}


def read_manifest(path):
    """The manifest of the sharded cache in `path` (a dict).

    Raises:
        FileNotFoundError: `path` holds no manifest.
        CacheIntegrityError: the manifest is unreadable or of another format.
    """
    manifest_path = os.path.join(path, MANIFEST)
    if not os.path.isfile(manifest_path):
        raise FileNotFoundError(
            f"Invalid sharded teacher cache {path!r}: no {MANIFEST}. Expected the folder "
            "`write_sharded_cache` (`tfdistill cache`) writes."
        )
    try:
        with open(manifest_path) as f:
            manifest = json.load(f)
        format_ = manifest.get("format")
    except (ValueError, AttributeError) as error:
        raise CacheIntegrityError(f"Sharded teacher cache {path!r}: its {MANIFEST} is unreadable ({error}).") from error
    if format_ != FORMAT:
        raise CacheIntegrityError(
            f"Sharded teacher cache {path!r}: unknown format. Expected {FORMAT!r}. Received: {format_!r}"
        )
    return manifest


class ShardedArray:
    """Arrays of shape `(views, n_i, ...)` read as one array of shape `(views, sum n_i, ...)`, never copied whole.

    Indexing with `[views, indices]` (two integer arrays of one shape) reads
    those rows from the shards that hold them, as `array[views, indices]`
    does for one array; `[view]` gives one view's rows of every example
    (in memory); `np.asarray` the whole array.

    Args:
        parts: the shards' arrays (memory maps), in example order.

    Example:
        >>> parts = [np.arange(12).reshape(1, 3, 4), np.arange(12, 20).reshape(1, 2, 4)]
        >>> array = ShardedArray(parts)
        >>> array.shape
        (1, 5, 4)
        >>> array[np.array([0, 0]), np.array([4, 1])]
        array([[16, 17, 18, 19],
               [ 4,  5,  6,  7]])
    """

    def __init__(self, parts):
        self.parts = list(parts)
        sizes = np.array([part.shape[1] for part in self.parts])
        self.stops = np.cumsum(sizes)
        self.starts = self.stops - sizes
        first = self.parts[0]
        self.shape = (first.shape[0], int(self.stops[-1])) + tuple(first.shape[2:])
        self.dtype = first.dtype

    @property
    def ndim(self):
        return len(self.shape)

    def __len__(self):
        return self.shape[0]

    def __getitem__(self, key):
        if isinstance(key, (int, np.integer)):
            return np.concatenate([part[key] for part in self.parts])
        if isinstance(key, tuple) and len(key) == 2:
            return self.rows(*key)
        raise TypeError(
            "Invalid index for a `ShardedArray`. Expected a view (an int) or `[views, indices]` (integer "
            f"arrays). Received: {key!r}"
        )

    def rows(self, views, indices):
        """`array[views, indices]`: the row of each `(view, index)` pair."""
        views, indices = np.broadcast_arrays(np.asarray(views, np.int64), np.asarray(indices, np.int64))
        if indices.size and (indices.min() < 0 or indices.max() >= self.shape[1]):
            raise IndexError(f"Example index out of range [0, {self.shape[1]}): {indices.min()}..{indices.max()}")
        out = np.empty(indices.shape + self.shape[2:], self.dtype)
        shards = np.searchsorted(self.stops, indices, side="right")
        for shard in np.unique(shards):
            where = shards == shard
            out[where] = self.parts[shard][views[where], indices[where] - self.starts[shard]]
        return out

    def __array__(self, dtype=None, copy=None):
        whole = np.concatenate(self.parts, axis=1)
        return whole if dtype is None else whole.astype(dtype)


def read_sharded_cache(path, key=None):
    """Opens a sharded teacher cache, every shard verified and memory-mapped.

    Args:
        path: the folder `write_sharded_cache` (`tfdistill cache`) wrote.
        key: the key it must have been written for (see
            `sharded_cache_key`); `None` skips that check.

    Returns:
        A `ShardedArray` of shape `(views, n, ..., num_classes)`, or with
        top-k a `TopKLogits` whose values and classes are `ShardedArray`s.
        Either goes where a cache file or array goes:
        `streaming_offline_dataset(..., logits_path=path)` opens the folder
        itself, and `offline_dataset(x, y, np.asarray(cache))` takes it in
        memory.

    Raises:
        FileNotFoundError: no manifest at `path`.
        CacheIntegrityError: the cache is incomplete (the shards missing are
            named: run the pass again and it computes only those), written
            for another key, or a shard is damaged (see
            `tfdistill.cache_files.verify`).

    Example:
        >>> logits = read_sharded_cache("cache/pool")  # doctest: +SKIP
        >>> logits.shape  # (views, examples, num_classes)  # doctest: +SKIP
        (4, 1000000, 1000)

    Reference:
        The manifest and record layout: this module's docstring.
    """
    manifest = read_manifest(path)
    if key is not None and manifest["key"] != key:
        raise CacheIntegrityError(
            f"Sharded teacher cache {path!r} was written for another teacher, data or settings "
            f"(key {manifest['key']!r}, not {key!r}). Make the cache again, or point to the one made for these."
        )
    settings = manifest["settings"]
    ranges = shard_ranges(settings["num_examples"], settings["examples_per_shard"])
    listed = {entry["index"]: entry for entry in manifest["shards"]}
    missing = [index for index in range(len(ranges)) if index not in listed]
    if missing or not manifest.get("complete"):
        raise CacheIntegrityError(
            f"Sharded teacher cache {path!r} is incomplete: {len(missing)} of {len(ranges)} shards missing "
            f"({missing[:10]}{'...' if len(missing) > 10 else ''}). Run the same pass again: it computes "
            "only the missing shards."
        )
    names = file_names(settings["top_k"])
    parts = {name: [] for name in names}
    for index, (start, stop) in enumerate(ranges):
        folder = os.path.join(path, listed[index]["folder"])
        arrays = cache_files.read_folder(folder, shard_key(manifest["key"], index))
        for name in names:
            array = arrays.get(name)
            expected = (settings["views"], stop - start)
            if array is None or array.shape[:2] != expected:
                raise CacheIntegrityError(
                    f"Shard {folder!r} does not hold examples {start}..{stop - 1}: expected {name!r} of shape "
                    f"{expected + ('...',)}. Received: {None if array is None else array.shape}"
                )
            parts[name].append(array)
    if settings["top_k"] is None:
        return ShardedArray(parts["logits"])
    return TopKLogits(ShardedArray(parts["values"]), ShardedArray(parts["classes"]), float(settings["temperature"]))
