"""Teacher outputs cached on disk under a key of teacher, data and settings; their size.
"""

import hashlib
import json
import warnings

from typing import Optional, Union

import keras
import numpy as np

from tfdistill import cache_files
from tfdistill.errors import CacheIntegrityError
from tfdistill.offline.teacher_runs import compute_teacher_logits
from tfdistill.teacher_outputs import TopKLogits, check_top_k_arguments

def _architecture(model):
    """The model's serialized config, or its class and layers' classes where it has no config."""
    try:
        return json.dumps(keras.saving.serialize_keras_object(model), sort_keys=True, default=str)
    except Exception:  # A subclassed model without get_config.
        layers = getattr(model, "layers", [])
        return type(model).__qualname__ + ":" + ",".join(type(layer).__qualname__ for layer in layers)


def cache_key(teacher, x, views, seed, dtype, top_k=None, temperature=None):
    """A hash of the teacher's architecture and weights, the data (values and order) and settings.

    The architecture counts: a wrapper that computes something else from the
    same weights (a test-time-augmented teacher, an ensemble of one model)
    must not reuse the plain teacher's outputs.
    """
    digest = hashlib.sha256()
    digest.update(_architecture(teacher).encode())
    if top_k is not None:
        digest.update(f"top_k={top_k},temperature={float(temperature)}".encode())
    for weight in teacher.weights:
        digest.update(weight.path.encode())
        digest.update(np.ascontiguousarray(keras.ops.convert_to_numpy(weight)).tobytes())
    x = np.ascontiguousarray(x)
    digest.update(f"{x.shape}{x.dtype}{views}{seed}{dtype}".encode())
    digest.update(x.tobytes())
    return digest.hexdigest()[:32]


def cached_teacher_logits(
    teacher: keras.Model,
    x: np.ndarray,
    views: int = 1,
    seed: int = 0,
    cache_dir: Optional[str] = None,
    dtype: str = "float16",
    verbose: int = 1,
    on_damaged: str = "recompute",
    **kwargs,
) -> Union[np.ndarray, TopKLogits]:
    """`compute_teacher_logits`, stored on disk under a key of teacher and data.

    A changed teacher (any weight), changed data or changed order gives a new
    key, so stale outputs are never reused. Each cache is stored with an
    integrity record (per array: CRC-32 and size of its file, shape, dtype;
    and the key; see `tfdistill.cache_files`) and checked against it when it
    is read, so a file changed after it was written (bytes overwritten, a
    truncated file) is never trained on. The cache appears on disk only when
    complete; two processes writing it at once both end with a complete one.

    Args:
        teacher, x, views, seed, dtype, verbose: as `compute_teacher_logits`.
        cache_dir: folder of the caches (one sub-folder per key); `None`
            keeps nothing on disk.
        on_damaged: what to do with a damaged cache: `"recompute"` (warn,
            naming the file, then run the teacher again and replace it) or
            `"raise"` (a `tfdistill.CacheIntegrityError`).
        **kwargs: passed to `compute_teacher_logits`.

    Returns:
        As `compute_teacher_logits` (arrays memory-mapped when read from disk).
    """
    if on_damaged not in ("recompute", "raise"):
        raise ValueError(
            "Invalid value for argument `on_damaged`. Expected 'recompute' or 'raise'. "
            f"Received: on_damaged={on_damaged!r}"
        )
    if cache_dir is None:
        return compute_teacher_logits(teacher, x, views, seed, dtype=dtype, verbose=verbose, **kwargs)
    top_k, temperature = check_top_k_arguments(kwargs.get("top_k"), kwargs.get("temperature"))
    key = cache_key(teacher, x, views, seed, dtype, top_k, temperature)

    def result(arrays):
        if top_k is None:
            return arrays["logits"]
        return TopKLogits(arrays["values"], arrays["classes"], float(temperature))

    try:
        stored = cache_files.read_cache(cache_dir, key)
    except CacheIntegrityError as error:
        if on_damaged == "raise":
            raise
        warnings.warn(f"{error} Recomputing the teacher's outputs and replacing the cache.", stacklevel=2)
        stored = None
    if stored is not None:
        if verbose:
            print(f"Teacher logits: reusing {cache_files.cache_path(cache_dir, key)} (integrity checked)")
        return result(stored)
    computed = compute_teacher_logits(teacher, x, views, seed, dtype=dtype, verbose=verbose, **kwargs)
    arrays = {"logits": computed} if top_k is None else {"values": computed.values, "classes": computed.classes}
    cache_files.write_cache(cache_dir, key, arrays)
    return computed


def cache_size_bytes(num_examples, num_classes, views=1, dtype="float16", top_k=None):
    """Bytes needed to cache teacher outputs.

    With `top_k`, each example keeps `k + 1` values (in `dtype`: the top-k
    logits and the remainder logit) and `k` int32 class ids instead of all
    `num_classes` values (see `TopKLogits`).

    Example:
        >>> cache_size_bytes(1_281_167, 1000)  # ImageNet, float16
        2562334000
        >>> cache_size_bytes(1_281_167, 1000, top_k=10)  # 62 bytes per example
        79432354
    """
    itemsize = np.dtype(dtype).itemsize
    per_example = num_classes * itemsize if top_k is None else (top_k + 1) * itemsize + top_k * 4
    return num_examples * views * per_example
