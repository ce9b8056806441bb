"""Peak memory of `tfdistill distill` on an image folder too large to load whole.

Writes an image folder of `--images` 28x28 grey PNGs (`train/` and `test/`
of class folders): Fashion-MNIST's 60,000 training images, then flipped and
shifted copies of them (`tfdistill.offline.views.all_views`) until there are
enough, and its 10,000 test images (`tfdistill.data.write_image_folder`). Then runs `tfdistill distill` on it in a
fresh process, with the shipped Fashion-MNIST teacher and the built-in
student, and prints the run's peak resident memory (`peak_rss_bytes` in its
`run.json`) and time. Run it at two sizes to see the memory not grow with the
data:

    python benchmarks/streaming_scale.py --images 50000 --folder /tmp/fm50k --output /tmp/run50k
    python benchmarks/streaming_scale.py --images 200000 --folder /tmp/fm200k --output /tmp/run200k
"""

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

from tfdistill.data import CLASS_NAMES, folder_name, load_fashion_mnist, write_image_folder
from tfdistill.offline.views import all_views


def folder_names():
    """Fashion-MNIST's class folders, in the teacher's class order (sorted by name they would not be)."""
    return [folder_name(name) for name in CLASS_NAMES]


def write_folder(folder, count, data_dir=None):
    """Writes `count` training PNGs and the 10,000 test PNGs under `folder` (kept if complete)."""
    done = os.path.join(folder, ".complete")
    if os.path.exists(done):
        return
    (x, y), (x_test, y_test) = load_fashion_mnist(data_dir)
    views = -(-count // len(x))
    # View 0 is the image itself, views 1.. flipped and shifted copies.
    images = all_views(x, views, seed=0).reshape(-1, *x.shape[1:])[:count]
    labels = np.tile(y, views)[:count]
    write_image_folder(images, labels, CLASS_NAMES, os.path.join(folder, "train"))
    write_image_folder(x_test, y_test, CLASS_NAMES, os.path.join(folder, "test"))
    open(done, "w").close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200_000, help="training images in the folder")
    parser.add_argument("--folder", required=True, help="where the image folder is written (outside the repository)")
    parser.add_argument("--output", required=True, help="the run's folder")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--views", type=int, default=1)
    parser.add_argument("--teacher", default="saved_models/fashion_mnist_teacher")
    args = parser.parse_args()

    start = time.time()
    write_folder(args.folder, args.images)
    print(f"Image folder {args.folder}: {args.images:,} training and 10,000 test PNGs ({time.time() - start:.0f} s)")
    command = [
        sys.executable, "-m", "tfdistill_command", "distill", "--output", args.output, "--progress", "none",
        "--set", f"data.image_folder={args.folder}", "--set", f"teacher.path={args.teacher}",
        # Sorted by name the folders would be in another order than the teacher's classes.
        "--set", f"data.class_names={json.dumps(folder_names())}",
        "--set", f"distill.epochs={args.epochs}", "--set", f"distill.views={args.views}",
        "--set", "export.tflite=[\"int8\"]",
    ]
    start = time.time()
    subprocess.run(command, check=True)
    seconds = time.time() - start
    with open(os.path.join(args.output, "run.json")) as f:
        run = json.load(f)
    cache = os.path.join(args.output, "cache", "teacher_logits.npy")
    rows = {row["name"]: row["accuracy"] for row in run["rows"]}
    print(json.dumps({
        "training_images": args.images,
        "peak_rss_mib": round(run["peak_rss_bytes"] / 2**20),
        "teacher_cache_bytes": os.path.getsize(cache),
        "seconds": round(seconds),
        "accuracy": rows,
    }, indent=2))


if __name__ == "__main__":
    main()
