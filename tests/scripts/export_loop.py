"""Exports a small model again and again, started as its own process by the tests.

    python export_loop.py OUT_DIR [--iterations N]

Each iteration writes the next SavedModel version under OUT_DIR/model/, then
OUT_DIR/student.tflite and OUT_DIR/student.keras (replacing them). Prints
"ready" once the model is built, so a test can kill it while it exports.
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from tfdistill.export import export_saved_model, export_tflite, save_keras  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--iterations", type=int, default=1000)
    args = parser.parse_args()
    keras.utils.set_random_seed(0)
    x_in = keras.Input((6, 6, 1))
    model = keras.Model(x_in, keras.layers.Dense(3)(keras.layers.Flatten()(x_in)))
    x = np.random.default_rng(0).uniform(size=(20, 6, 6, 1)).astype("float32")
    y = model.predict(x, verbose=0).argmax(-1)
    print("ready", flush=True)
    for _ in range(args.iterations):
        export_saved_model(model, os.path.join(args.out, "model"), raw_shape=(None, 6, 6))
        export_tflite(model, os.path.join(args.out, "student.tflite"), x, y, overwrite=True)
        save_keras(model, os.path.join(args.out, "student.keras"))


if __name__ == "__main__":
    main()
