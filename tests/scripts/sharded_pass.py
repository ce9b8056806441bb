"""Runs the teacher's pass on Beam over an image folder, started as its own process by the tests.

    python sharded_pass.py TEACHER FOLDER CACHE [BEAM OPTION ...]

The examples are FOLDER's PNG files sorted by name, read at 6x6 grey; the
pass keeps 2 views (seed 3) in float32, batches of 16, shards of 32 examples.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tfdistill_command  # noqa: E402

tfdistill_command.import_tensorflow(quiet=False)  # as the `tfdistill` command does (see CONTRIBUTING.md)

from tfdistill import offline  # noqa: E402

SETTINGS = dict(views=2, seed=3, batch_size=16, dtype="float32", examples_per_shard=32)


def examples(folder):
    names = sorted(name for name in os.listdir(folder) if name.endswith(".png"))
    return offline.ImageFiles([os.path.join(folder, name) for name in names], (6, 6), channels=1)


def main():
    teacher, folder, cache, *options = sys.argv[1:]
    offline.write_sharded_cache(teacher, examples(folder), cache, pipeline_options=options, **SETTINGS)


if __name__ == "__main__":
    main()
