"""A shard written by one worker, through Beam's file systems (a local folder, `gs://...`), and the manifest.

Every file is written under a temporary name and renamed when complete;
a shard's integrity record (`tfdistill.cache_files`'s format) is written
last, so a shard without one is no shard (see `tfdistill.offline.shards`).
Local files are also flushed to disk (`fsync`) before they are renamed.
"""

import io
import json
import logging
import os
import zlib
from typing import NamedTuple

import numpy as np
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from tfdistill.cache_files import FORMAT as RECORD_FORMAT
from tfdistill.cache_files import RECORD
from tfdistill.export import atomic
from tfdistill.offline import shards

_CHUNK = 64 * 2**20


def join(*parts):
    return FileSystems.join(*parts)


def write_json(path, content):
    """Writes a small JSON file under a temporary name, then renames it into place."""
    directory, name = FileSystems.split(path)
    temporary = join(directory, atomic.temporary_name(name))
    with FileSystems.create(temporary, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        f.write(json.dumps(content, indent=1).encode())
        sync(f)
    FileSystems.rename([temporary], [path])


def read_json(path):
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        return json.loads(f.read().decode())


def sync(f):
    """Flushes a local file to disk (`fsync`); files of other file systems are complete when closed."""
    f.flush()
    try:
        os.fsync(f.fileno())
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is both of the last two
        pass


def verify_shard(folder, key):
    """Whether `folder` holds a complete shard written for `key`: its record exists and every file matches it."""
    record_path = join(folder, RECORD)
    if not FileSystems.exists(record_path):
        return False
    try:
        record = read_json(record_path)
        if record.get("format") != RECORD_FORMAT or record.get("key") != key:
            return False
        for entry in record["arrays"].values():
            path = join(folder, entry["file"])
            if not FileSystems.exists(path):
                return False
            crc, size = 0, 0
            with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
                for chunk in iter(lambda: f.read(_CHUNK), b""):
                    crc, size = zlib.crc32(chunk, crc), size + len(chunk)
            if (crc, size) != (entry["crc32"], entry["bytes"]):
                logging.warning("Shard %s: %s differs from its integrity record; it is computed again.", folder, path)
                return False
    except (ValueError, KeyError, TypeError, AttributeError, OSError) as error:
        logging.warning("Shard %s: unreadable integrity record (%s); it is computed again.", folder, error)
        return False
    return True


class Plan(NamedTuple):
    """What every worker needs to know of the pass (picklable)."""

    path: str
    key: str
    views: int
    seed: int
    batch_size: int
    dtype: str
    ranges: tuple
    output_shape: tuple
    top_k: object
    class_dtype: object

    def folder(self, index):
        return join(self.path, shards.shard_folder(index, len(self.ranges)))

    def entry(self, index):
        start, stop = self.ranges[index]
        return {"index": index, "start": start, "stop": stop, "folder": shards.shard_folder(index, len(self.ranges))}


class ShardFile:
    """One `.npy` file written front to back under a temporary name, its size and CRC-32 counted as written."""

    def __init__(self, folder, name, shape, dtype):
        self.final = join(folder, name)
        self.temporary = join(folder, atomic.temporary_name(name))
        self.shape, self.dtype = tuple(shape), np.dtype(dtype)
        self.file = FileSystems.create(self.temporary, compression_type=CompressionTypes.UNCOMPRESSED)
        self.crc = self.bytes = 0
        header = {"descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False, "shape": self.shape}
        buffer = io.BytesIO()
        np.lib.format.write_array_header_1_0(buffer, header)
        self._write(buffer.getvalue())

    def _write(self, data):
        self.file.write(data)
        self.crc = zlib.crc32(data, self.crc)
        self.bytes += len(data)

    def write(self, rows):
        self._write(np.ascontiguousarray(rows, self.dtype).tobytes())

    def close(self):
        sync(self.file)
        self.file.close()
        return {"file": FileSystems.split(self.final)[1], "bytes": self.bytes, "crc32": self.crc,
                "shape": list(self.shape), "dtype": self.dtype.str}

    def abandon(self):
        try:
            self.file.close()
        finally:
            if FileSystems.exists(self.temporary):
                FileSystems.delete([self.temporary])


class ShardWriter:
    """Receives a shard's batches (in any order; in order they are written at once) and completes the shard."""

    def __init__(self, plan, index):
        self.plan, self.index = plan, index
        self.folder = plan.folder(index)
        start, stop = plan.ranges[index]
        self.order = [(view, batch) for view in range(plan.views) for batch in range(start, stop, plan.batch_size)]
        self.next, self.waiting, self.files = 0, {}, None

    def _open(self):
        if not FileSystems.exists(self.folder):
            FileSystems.mkdirs(self.folder)
        elif "://" not in self.folder:
            atomic.remove_stale_temporaries(self.folder)  # left by writers of this host that died
        start, stop = self.plan.ranges[self.index]
        shape = (self.plan.views, stop - start) + tuple(self.plan.output_shape[:-1])
        if self.plan.top_k is None:
            layout = {"logits": (shape + (self.plan.output_shape[-1],), self.plan.dtype)}
        else:
            layout = {"values": (shape + (self.plan.top_k + 1,), self.plan.dtype),
                      "classes": (shape + (self.plan.top_k,), self.plan.class_dtype)}
        names = shards.file_names(self.plan.top_k)
        self.files = {}
        for name, (file_shape, dtype) in layout.items():
            self.files[name] = ShardFile(self.folder, names[name], file_shape, dtype)

    def add(self, view, start, outputs):
        """Adds one batch's outputs; returns whether the shard is now complete."""
        self.waiting[(view, start)] = outputs
        while self.next < len(self.order) and self.order[self.next] in self.waiting:
            if self.files is None:
                self._open()
            ready = self.waiting.pop(self.order[self.next])
            for name, file in self.files.items():
                file.write(ready[name])
            self.next += 1
        return self.next == len(self.order)

    def finish(self):
        """Closes the files, renames them into place and writes the record last; returns the manifest entry."""
        entries = {name: file.close() for name, file in self.files.items()}
        FileSystems.rename([f.temporary for f in self.files.values()], [f.final for f in self.files.values()])
        write_json(join(self.folder, RECORD), {
            "format": RECORD_FORMAT, "key": shards.shard_key(self.plan.key, self.index), "arrays": entries,
        })
        if "://" not in self.folder:
            atomic.fsync_path(self.folder)
        return self.plan.entry(self.index)

    def abandon(self):
        for file in (self.files or {}).values():
            file.abandon()


def write_manifest(entries, path, header, num_shards):
    """Writes the manifest: the settings and the complete shards, `complete` once every one is."""
    entries = sorted(entries, key=lambda entry: entry["index"])
    complete = len({entry["index"] for entry in entries}) == num_shards
    write_json(join(path, shards.MANIFEST), {**header, "shards": entries, "complete": complete})
    if complete:
        remove_temporaries(path)
    return complete


def remove_temporaries(path):
    """Removes what writers left under temporary names in the shard folders (local: only of dead processes)."""
    if "://" not in path:
        for name in os.listdir(path):
            if name.startswith("shard-") and os.path.isdir(os.path.join(path, name)):
                atomic.remove_stale_temporaries(os.path.join(path, name))
        return
    found = FileSystems.match([join(path, "shard-*", ".*.partial*")])[0].metadata_list
    if found:
        FileSystems.delete([m.path for m in found])


def prepare_folder(path, header):
    """Refuses a `path` that holds anything but a sharded cache of these settings, else makes it a cache folder.

    A new or empty folder gets a manifest of no shards (`header`: the
    format, key, settings and examples); a cache of the same settings is
    kept as it is, to be finished.
    """
    _check_folder(path, header)
    if not FileSystems.exists(path):
        FileSystems.mkdirs(path)
    if not FileSystems.exists(join(path, shards.MANIFEST)):
        write_json(join(path, shards.MANIFEST), {**header, "shards": [], "complete": False})


def _check_folder(path, header):
    if "://" not in path and os.path.isfile(path):
        raise FileExistsError(f"Invalid value for argument `path`: {path!r} already exists; nothing was written.")
    manifest_path = join(path, shards.MANIFEST)
    if FileSystems.exists(manifest_path):
        try:
            manifest = read_json(manifest_path)
            manifest.get("key")
        except (ValueError, AttributeError) as error:
            raise FileExistsError(
                f"Invalid value for argument `path`: {path!r} holds an unreadable {shards.MANIFEST} ({error}); "
                "nothing was written. Choose another folder."
            ) from None
        differs = {name: (manifest.get(name), value) for name, value in header.items() if manifest.get(name) != value}
        if differs:
            raise FileExistsError(
                f"Invalid value for argument `path`: {path!r} holds a teacher cache made with other settings, "
                f"teacher or data ({', '.join(f'{k}: {old!r}, now {new!r}' for k, (old, new) in differs.items())}); "
                "nothing was written. Choose another folder, or the same settings to finish that cache."
            )
        return
    if "://" not in path and os.path.isdir(path) and os.listdir(path):
        raise FileExistsError(
            f"Invalid value for argument `path`: {path!r} is a folder that holds no sharded teacher cache; "
            "nothing was written. Choose a new or empty folder."
        )
