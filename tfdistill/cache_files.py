"""Teacher-output caches on disk, each with an integrity record, written atomically.

One cache is one folder, `CACHE_DIR/teacher_KEY/`: an `.npy` file per array
and `integrity.json`, which records the key and, per array, its file's size
and CRC-32 and the array's shape and dtype. The folder is written under a
temporary name and renamed into place when complete, so a reader never sees
half a cache, and two processes writing the same cache at once both end with
a complete one (the second rename finds the first writer's folder and keeps
it). Reading checks the record against the files before anything is trained
on: bytes overwritten in place, a truncated file, a missing or garbled record
raise `CacheIntegrityError` naming the file. CRC-32 detects accidental
damage (disk faults, torn or truncated writes, another program writing), not
deliberate tampering. The arrays are returned memory-mapped.
"""

import json
import mmap
import os
import shutil
import zlib

import numpy as np

from tfdistill.errors import CacheIntegrityError
from tfdistill.export import atomic

RECORD = "integrity.json"
FORMAT = "tfdistill-teacher-cache-1"
_CHUNK = 64 * 2**20


def cache_path(cache_dir, key):
    """The folder of the cache with `key` under `cache_dir`."""
    return os.path.join(cache_dir, f"teacher_{key}")


def file_crc32(path):
    """CRC-32 of a file's bytes, read through a memory map in 64 MiB chunks."""
    crc = 0
    with open(path, "rb") as f:
        if os.fstat(f.fileno()).st_size == 0:
            return crc
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as view, memoryview(view) as data:
            for start in range(0, len(data), _CHUNK):
                crc = zlib.crc32(data[start : start + _CHUNK], crc)  # A view: no copy of the chunk.
    return crc


def write_cache(cache_dir, key, arrays):
    """Writes `arrays` (name -> numpy array) as the cache `key`; returns its folder.

    A complete cache already in place (another process wrote it meanwhile) is
    kept; a damaged one is replaced.
    """
    final = cache_path(cache_dir, key)
    os.makedirs(cache_dir, exist_ok=True)
    atomic.remove_stale_temporaries(cache_dir)  # Left by writers that were killed.
    staging = atomic.temporary_path(final)
    os.makedirs(staging)
    record = {"format": FORMAT, "key": key, "arrays": {}}
    for name, array in arrays.items():
        path = os.path.join(staging, f"{name}.npy")
        np.save(path, np.asarray(array))
        atomic.fsync_path(path)
        record["arrays"][name] = {
            "file": f"{name}.npy",
            "bytes": os.path.getsize(path),
            "crc32": file_crc32(path),
            "shape": list(np.shape(array)),
            "dtype": np.asarray(array).dtype.str,
        }
    with open(os.path.join(staging, RECORD), "w") as f:
        json.dump(record, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    atomic.fsync_path(staging)
    _move_into_place(staging, final, cache_dir, key)
    atomic.fsync_path(cache_dir)
    return final


def _move_into_place(staging, final, cache_dir, key):
    try:
        os.rename(staging, final)  # Fails if `final` exists: a folder is never replaced half-way.
        return
    except OSError:
        pass
    try:
        verify(final, key)
        shutil.rmtree(staging)  # Another writer finished the same cache first: keep it.
        return
    except CacheIntegrityError:
        pass
    damaged = atomic.temporary_path(final)
    try:
        os.rename(final, damaged)
    except OSError:
        pass  # Another writer moved it first.
    try:
        os.rename(staging, final)
    except OSError:
        shutil.rmtree(staging)  # Another writer's complete cache took its place.
    shutil.rmtree(damaged, ignore_errors=True)


def _read_record(folder):
    path = os.path.join(folder, RECORD)
    if not os.path.exists(path):
        raise CacheIntegrityError(
            f"Cache {folder!r} has no integrity record {RECORD!r}; it was not written "
            "completely by tfdistill and cannot be trusted."
        )
    try:
        with open(path) as f:
            record = json.load(f)
        record["arrays"].items()
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise CacheIntegrityError(
            f"Cache {folder!r}: its integrity record {RECORD!r} is unreadable ({error}); the cache cannot be trusted."
        ) from error
    return record


def verify(folder, key=None):
    """Checks a cache folder against its integrity record.

    Args:
        folder: the cache's folder (`cache_path(cache_dir, key)`).
        key: the key the cache must have been written for; `None` skips
            that check.

    Returns:
        The record (a dict).

    Raises:
        CacheIntegrityError: naming the file and what is wrong: a missing
            or garbled record, another key, a missing file, a size or
            checksum that differs from the record.
    """
    record = _read_record(folder)
    if record.get("format") != FORMAT:
        raise CacheIntegrityError(
            f"Cache {folder!r}: unknown format. Expected {FORMAT!r}. Received: {record.get('format')!r}"
        )
    if key is not None and record.get("key") != key:
        raise CacheIntegrityError(
            f"Cache {folder!r} was written for key {record.get('key')!r}, not {key!r}."
        )
    for name, entry in record["arrays"].items():
        path = os.path.join(folder, entry["file"])
        if not os.path.exists(path):
            raise CacheIntegrityError(f"Cache file {path!r} is missing.")
        size = os.path.getsize(path)
        if size != entry["bytes"]:
            raise CacheIntegrityError(
                f"Cache file {path!r} is damaged: expected {entry['bytes']:,} bytes, as written. "
                f"Received: {size:,} bytes (truncated or extended after it was written)."
            )
        crc = file_crc32(path)
        if crc != entry["crc32"]:
            raise CacheIntegrityError(
                f"Cache file {path!r} is damaged: its bytes changed after it was written "
                f"(CRC-32 {crc:08x}, the integrity record says {entry['crc32']:08x})."
            )
    return record


def read_cache(cache_dir, key):
    """The verified arrays of cache `key`, memory-mapped; `None` if there is none.

    Raises:
        CacheIntegrityError: the cache exists but is damaged (see `verify`).
    """
    folder = cache_path(cache_dir, key)
    if not os.path.isdir(folder):
        return None
    return read_folder(folder, key)


def read_folder(folder, key=None):
    """The verified arrays of the cache folder `folder` (name -> array), memory-mapped.

    Raises:
        CacheIntegrityError: the folder is damaged (see `verify`), written for
            another `key`, or an array is not what its record says.
    """
    record = verify(folder, key)
    arrays = {}
    for name, entry in record["arrays"].items():
        path = os.path.join(folder, entry["file"])
        try:
            array = np.load(path, mmap_mode="r")
        except (ValueError, OSError) as error:
            raise CacheIntegrityError(f"Cache file {path!r} cannot be read as an array: {error}") from error
        if list(array.shape) != entry["shape"] or array.dtype.str != entry["dtype"]:
            raise CacheIntegrityError(
                f"Cache file {path!r} holds shape {array.shape} and dtype {array.dtype}; the "
                f"integrity record says shape {tuple(entry['shape'])} and dtype {np.dtype(entry['dtype'])}."
            )
        arrays[name] = array
    return arrays
