"""Cost of checking a teacher-output cache's integrity, next to reading the cache.

Writes a cache of `--gigabytes` GB (float16 logits, 1000 classes, like an
ImageNet cache) with `tfdistill.cache_files.write_cache`, then times, each
`--repeats` times (medians):

- verifying it (`cache_files.verify`: size and CRC-32 of each file),
- opening it verified (`cache_files.read_cache`: verify, then memory-map),
- reading it: `np.load` into memory, and one pass over the memory-mapped
  array (what a training epoch reads).

The file was just written, so it is read from the page cache; on a cold
cache all four are bound by the disk alike.

    python benchmarks/cache_integrity.py --gigabytes 1 --dir /tmp
"""

import argparse
import os
import shutil
import tempfile
import time

import numpy as np

from tfdistill import cache_files


def timed(function, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def one_pass(array, rows=65_536):
    total = 0.0
    for start in range(0, len(array), rows):
        total += float(np.asarray(array[start : start + rows], dtype="float32").sum())
    return total


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gigabytes", type=float, default=1.0)
    parser.add_argument("--classes", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dir", default=None, help="where to write the cache (default: a temporary folder)")
    args = parser.parse_args()

    rows = int(args.gigabytes * 1e9 / (2 * args.classes))
    logits = np.empty((rows, args.classes), "float16")
    rng = np.random.default_rng(0)
    for start in range(0, rows, 65_536):
        block = logits[start : start + 65_536]
        block[...] = rng.standard_normal(block.shape, dtype="float32")
    root = tempfile.mkdtemp(dir=args.dir)
    try:
        start = time.perf_counter()
        folder = cache_files.write_cache(root, "bench", {"logits": logits})
        written = time.perf_counter() - start
        del logits
        path = os.path.join(folder, "logits.npy")
        size = os.path.getsize(path)
        verify = timed(lambda: cache_files.verify(folder, "bench"), args.repeats)
        open_verified = timed(lambda: cache_files.read_cache(root, "bench"), args.repeats)
        load = timed(lambda: np.load(path), args.repeats)
        mapped = np.load(path, mmap_mode="r")
        read_pass = timed(lambda: one_pass(mapped), args.repeats)
        arrays = cache_files.read_cache(root, "bench")
        assert isinstance(arrays["logits"], np.memmap)
    finally:
        shutil.rmtree(root)
    print(f"\nCache of {size / 1e9:.2f} GB ({rows:,} x {args.classes} float16), medians of {args.repeats}:")
    print(f"  write (np.save, fsync, CRC-32, rename)  {written:7.2f} s (once)")
    print(f"  verify (size + CRC-32)                  {verify:7.2f} s   {size / verify / 1e9:5.2f} GB/s")
    print(f"  read_cache (verify + memory-map)        {open_verified:7.2f} s")
    print(f"  np.load into memory                     {load:7.2f} s   verify / np.load = {verify / load:.2f}")
    print(f"  one pass over the memory-mapped array   {read_pass:7.2f} s   verify / one pass = {verify / read_pass:.2f}")
    print("  read_cache returns np.memmap arrays: the cache stays memory-mapped")


if __name__ == "__main__":
    main()
