"""Write Fashion-MNIST as an image folder of PNGs, to try `data.image_folder` on real images.

    python examples/write_png_folder.py fashion_png

Writes `fashion_png/train/CLASS/*.png` (60,000) and `fashion_png/test/CLASS/*.png`
(10,000), one folder per class. Sorted by name, the folders are not in the
teacher's class order; `examples/configs/image_folder.yaml` gives the order
in `data.class_names`.
"""

import argparse
import os

from tfdistill.data import CLASS_NAMES, load_fashion_mnist, write_image_folder

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("folder", help="the folder to write (refused if it exists)")
args = parser.parse_args()
if os.path.exists(args.folder):
    raise SystemExit(f"{args.folder} exists; choose another folder")
(x, y), (x_test, y_test) = load_fashion_mnist()
write_image_folder(x, y, CLASS_NAMES, os.path.join(args.folder, "train"))
write_image_folder(x_test, y_test, CLASS_NAMES, os.path.join(args.folder, "test"))
print(f"{args.folder}: 60,000 training and 10,000 test PNGs")
