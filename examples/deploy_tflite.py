"""Convert a student to int8 TFLite, verified against the Keras model, and run it.

    python examples/deploy_tflite.py student.keras
"""

import sys

import keras
import numpy as np

from tfdistill.data import CLASS_NAMES, load_fashion_mnist, to_float_images
from tfdistill.export import TFLiteRunner, export_tflite

student = keras.models.load_model(sys.argv[1] if len(sys.argv) > 1 else "student.keras")
(x_train, _), (x_test, y_test) = load_fashion_mnist()
calibration = to_float_images(x_train[np.random.default_rng(0).permutation(len(x_train))[:200]])
x_eval = to_float_images(x_test)

report = export_tflite(
    student, "student_int8.tflite", x_eval, y_test, "int8",
    representative_data=calibration, min_agreement=0.99, overwrite=True,
)
print(report)

# On the device: the interpreter, one image at a time.
runner = TFLiteRunner(open("student_int8.tflite", "rb").read(), num_threads=1)
print("first test image:", CLASS_NAMES[int(np.argmax(runner(x_eval[0])))], "| label:", CLASS_NAMES[y_test[0]])
