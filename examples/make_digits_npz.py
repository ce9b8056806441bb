"""Write scikit-learn's bundled 8x8 digits as an `.npz` for `data.arrays` (and `--data`).

    python examples/make_digits_npz.py digits.npz

1,797 grey 8x8 images (values 0-16, stored as uint8 0-255) of 10 classes:
the first 1,497 for training, the last 300 for testing, with class names.
Needs scikit-learn (`pip install scikit-learn`).
"""

import argparse
import os

import numpy as np
from sklearn.datasets import load_digits

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("output", help="the .npz file to write (an existing file is refused)")
args = parser.parse_args()
if os.path.exists(args.output):
    raise SystemExit(f"{args.output} exists; choose another name")
digits = load_digits()
images = np.round(digits.images * (255 / 16)).astype(np.uint8)
labels = digits.target.astype("int64")
np.savez(args.output, x_train=images[:1497], y_train=labels[:1497], x_test=images[1497:], y_test=labels[1497:],
         class_names=np.array([str(i) for i in range(10)]))
print(f"{args.output}: {len(images[:1497])} training and {len(images[1497:])} test images of shape {images.shape[1:]}")
