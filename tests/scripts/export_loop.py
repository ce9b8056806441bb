"""Exports a small model again and again, started as its own process by the tests.

    python export_loop.py OUT_DIR [--iterations N] [--kill-before-rename K]

Each iteration writes the next SavedModel version under OUT_DIR/model/, then
OUT_DIR/student.tflite and OUT_DIR/student.keras (replacing them). Prints
"ready" once the model is built, so a test can kill it while it exports.
`--kill-before-rename K` sends SIGKILL to this process just before its K-th
(0-based) `os.rename` or `os.replace`: everything written, nothing moved.
"""

import argparse
import os
import signal

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tfdistill_command  # noqa: E402

tfdistill_command.import_tensorflow(quiet=False)  # as the `tfdistill` command does (see CONTRIBUTING.md)

import keras  # noqa: E402
import numpy as np  # noqa: E402

from tfdistill.export import export_saved_model, export_tflite, save_keras  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--iterations", type=int, default=1000)
    parser.add_argument("--kill-before-rename", type=int)
    args = parser.parse_args()
    if args.kill_before_rename is not None:
        calls = [0]

        def killing(original):
            def move(*move_args, **kwargs):
                if calls[0] == args.kill_before_rename:
                    os.kill(os.getpid(), signal.SIGKILL)
                calls[0] += 1
                return original(*move_args, **kwargs)

            return move

        os.rename, os.replace = killing(os.rename), killing(os.replace)
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
