"""Writes one teacher-output cache, started as its own process by the tests.

    python cache_writer.py OUT_DIR CACHE_DIR START_FILE

Builds the same seeded teacher and data as every other copy of this script,
waits until START_FILE exists (so that several copies write at the same
moment), then caches the teacher's logits in CACHE_DIR and writes a 64 MiB
array as the cache with key "big"; the logits it got go to OUT_DIR/logits.npy.
"""

import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tfdistill_command  # noqa: E402

tfdistill_command.import_tensorflow(quiet=False)  # as the `tfdistill` command does (see CONTRIBUTING.md)

import keras  # noqa: E402
import numpy as np  # noqa: E402

from tfdistill import cache_files, offline  # noqa: E402


def main():
    out, cache_dir, start = sys.argv[1:4]
    keras.utils.set_random_seed(0)
    x_in = keras.Input((6, 6, 1))
    teacher = keras.Model(x_in, keras.layers.Dense(4)(keras.layers.Flatten()(x_in)))
    x = np.random.default_rng(0).integers(0, 256, size=(4000, 6, 6), dtype=np.uint8)
    big = np.random.default_rng(1).standard_normal(8 * 2**20).astype("float64")
    while not os.path.exists(start):
        time.sleep(0.001)
    logits = offline.cached_teacher_logits(teacher, x, views=8, cache_dir=cache_dir, dtype="float32", verbose=0)
    cache_files.write_cache(cache_dir, "big", {"values": big})
    np.save(os.path.join(out, "logits.npy"), np.asarray(logits))


if __name__ == "__main__":
    main()
