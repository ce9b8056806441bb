"""Writing files and folders so that a crash never leaves a half-written one in place.

Everything is written under a temporary name in the destination's own folder
(the same file system, so the final rename is atomic) and renamed into place
only when complete. Temporary names start with a dot and never parse as a
version number, so TF Serving, which loads the highest numbered folder under
a model's base path, never sees one. A process killed mid-write leaves only
such a temporary; the next write there removes the temporaries of processes
of this host that are no longer running (never another host's: a shared file
system may hold its writes in progress).
"""

import os
import re
import shutil
import socket
import uuid

_HOST = re.sub(r"\W", "_", socket.gethostname())
_TEMPORARY = re.compile(r"^\.(?P<name>.+)\.(?P<host>\w+)-(?P<pid>\d+)-[0-9a-f]{8}\.partial(?P<suffix>\.\w+)?$")


def temporary_name(name, suffix=""):
    """A unique temporary name for a file or folder called `name`, of this host and process."""
    return f".{name}.{_HOST}-{os.getpid()}-{uuid.uuid4().hex[:8]}.partial{suffix}"


def temporary_path(path, suffix=""):
    """A unique temporary name beside `path` (`suffix` keeps an extension, e.g. `.keras`)."""
    directory, name = os.path.split(os.path.abspath(path))
    return os.path.join(directory, temporary_name(name, suffix))


def _running(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temporaries(directory):
    """Removes the temporaries left in `directory` by processes no longer running; returns their names."""
    if not os.path.isdir(directory):
        return []
    removed = []
    for name in os.listdir(directory):
        match = _TEMPORARY.match(name)
        if match is None or match["host"] != _HOST or _running(int(match["pid"])):
            continue
        path = os.path.join(directory, name)
        if os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            os.remove(path)
        removed.append(name)
    return removed


def fsync_path(path):
    """Flushes a file or folder (its entries: a rename into it) to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_bytes(path, content):
    """Writes `content` to `path` atomically, with a normal file's permissions."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    remove_stale_temporaries(directory)
    temporary = temporary_path(path)
    with open(temporary, "wb") as f:
        f.write(content)
        f.flush()
        os.fsync(f.fileno())
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(temporary, 0o666 & ~umask)
    os.replace(temporary, path)
    return path


def save_keras(model, path):
    """`model.save(path)` for a `.keras` file, atomically: a crash leaves the previous file or none."""
    if not str(path).endswith(".keras"):
        raise ValueError(f"Invalid value for argument `path`. Expected a name ending in '.keras'. Received: path={path!r}")
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    remove_stale_temporaries(directory)
    temporary = temporary_path(path, suffix=".keras")
    try:
        model.save(temporary)
        fsync_path(temporary)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
    return path


def move_folder_into_place(staging, path, overwrite=False):
    """Renames a complete folder `staging` to `path`; with `overwrite`, replaces an existing `path`.

    The old folder is first renamed to a temporary name, never deleted in
    place, so `path` is at every moment absent, the old folder or the new.

    Raises:
        FileExistsError: `path` exists (or appeared meanwhile) and not `overwrite`.
    """
    fsync_path(staging)
    old = None
    if overwrite and os.path.exists(path):
        old = temporary_path(path)
        os.rename(path, old)
    try:
        os.rename(staging, path)  # Fails when `path` exists and is not empty: never merged.
    except OSError as error:
        if not os.path.exists(path):
            raise
        raise FileExistsError(f"{path!r} appeared while it was being written; nothing was replaced.") from error
    fsync_path(os.path.dirname(os.path.abspath(path)))
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
