"""Peak memory of `tfdistill distill` on an image folder too large to load whole.

Writes an image folder of `--images` 28x28 grey PNGs (`train/` and `test/`
of class folders): Fashion-MNIST's 60,000 training images, then flipped and
shifted copies of them (`tfdistill.offline.view_image`) until there are
enough, and its 10,000 test images. Then runs `tfdistill distill` on it in a
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
import tensorflow as tf

from tfdistill.data import CLASS_NAMES, load_fashion_mnist
from tfdistill.offline.views import view_image


def folder_names():
    """Fashion-MNIST's class names as folder names, in the teacher's class order (not sorted)."""
    return [name.replace("/", "-").replace(" ", "_") for name in CLASS_NAMES]


def write_folder(folder, count, data_dir=None):
    """Writes `count` training PNGs and the 10,000 test PNGs under `folder` (kept if complete)."""
    done = os.path.join(folder, ".complete")
    if os.path.exists(done):
        return
    (x, y), (x_test, y_test) = load_fashion_mnist(data_dir)
    names = folder_names()
    for split in ("train", "test"):
        for name in names:
            os.makedirs(os.path.join(folder, split, name), exist_ok=True)

    @tf.function
    def encoded(image, index, view):
        image = view_image(tf.cast(image[..., None], tf.float32) / 255.0, index, view, 0)
        return tf.io.encode_png(tf.cast(tf.round(image * 255.0), tf.uint8))

    start = time.time()
    for index in range(count):
        source, view = index % len(x), index // len(x)
        png = encoded(x[source], tf.constant(source, tf.int64), tf.constant(view, tf.int64)).numpy()
        with open(os.path.join(folder, "train", names[y[source]], f"{index:06d}.png"), "wb") as f:
            f.write(png)
        if index % 20000 == 0:
            print(f"  {index:,} / {count:,} training images written ({time.time() - start:.0f} s)", flush=True)
    for index, (image, label) in enumerate(zip(x_test, y_test)):
        with open(os.path.join(folder, "test", names[label], f"{index:05d}.png"), "wb") as f:
            f.write(tf.io.encode_png(image[..., None]).numpy())
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
