"""Export a student for TF Serving (saved_models/NAME/VERSION/) and query the signature.

    python examples/export_tf_serving.py student.keras
    # then: docker run -p 8501:8501 -v $PWD/saved_models/my_student:/models/my_student \
    #         -e MODEL_NAME=my_student tensorflow/serving
"""

import json
import sys

import keras
import tensorflow as tf

from tfdistill.data import CLASS_NAMES, load_fashion_mnist
from tfdistill.export import export_saved_model

student = keras.models.load_model(sys.argv[1] if len(sys.argv) > 1 else "student.keras")
path = export_saved_model(student, "saved_models/my_student", raw_shape=(None, 28, 28), class_names=CLASS_NAMES)
print("exported to", path)

_, (x_test, _) = load_fashion_mnist()
body = {"instances": x_test[:2].tolist()}  # what a REST client POSTs to :predict
serve = tf.saved_model.load(path).signatures["serving_default"]
outputs = serve(image=tf.constant(body["instances"], dtype=tf.uint8))
print(json.dumps({"predictions": [n.decode() for n in outputs["class_name"].numpy()]}))
