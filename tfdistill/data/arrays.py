"""Arrays from `.npz` files, checked before anything trains on them."""

import zipfile

import numpy as np


def load_npz(path, keys=("x", "y")):
    """Loads the named arrays of an `.npz` file (never unpickling anything).

    Args:
        path: an `.npz` file, e.g. written by `np.savez(path, x=images, y=labels)`.
        keys: the arrays to return, in order; they must all hold the same
            number of examples (first axis).

    Returns:
        A tuple of numpy arrays, one per key.

    Raises:
        ValueError: naming the file and what is wrong: not an `.npz` file,
            a missing array (the ones present are listed), an array of
            Python objects (loading it would unpickle, which can run code),
            or arrays of different lengths.

    Example:
        >>> x, y = load_npz("train.npz")  # doctest: +SKIP
    """
    try:
        archive = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
        raise ValueError(f"File {path!r} is not a readable `.npz` file ({type(error).__name__}: {error}).") from error
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise ValueError(
            f"File {path!r} holds a single array, not an `.npz` archive of named arrays. "
            f"Expected arrays {list(keys)}; write it with `np.savez(path, {', '.join(f'{k}=...' for k in keys)})`."
        )
    with archive:
        missing = [key for key in keys if key not in archive.files]
        if missing:
            raise ValueError(
                f"File {path!r} lacks the arrays {missing}. Expected arrays {list(keys)}. "
                f"Received arrays: {sorted(archive.files)}"
            )
        arrays = []
        for key in keys:
            try:
                arrays.append(archive[key])
            except ValueError as error:
                raise ValueError(
                    f"File {path!r}: array {key!r} holds Python objects; loading it would unpickle, "
                    "which can run code, so it is refused. Store numeric arrays."
                ) from error
            except (OSError, EOFError, zipfile.BadZipFile) as error:
                raise ValueError(f"File {path!r}: array {key!r} is damaged or truncated ({error}).") from error
    lengths = {key: len(array) if array.ndim else None for key, array in zip(keys, arrays)}
    if len(set(lengths.values())) > 1 or None in lengths.values():
        raise ValueError(
            f"File {path!r}: the arrays must hold the same number of examples (first axis). "
            f"Received lengths: {lengths}"
        )
    return tuple(arrays)
