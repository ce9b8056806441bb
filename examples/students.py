"""A student written as code, for `student.builder: "examples.students:mobile_student"` in a config.

A builder is any importable function that takes the config's `student.args`
(plain data) and returns an uncompiled `keras.Model` that outputs logits, one
per class. `tfdistill distill` calls it once under the run's seed for the
initial weights, which both the student alone and the distilled student start
from. Run the command from the folder that holds `examples/` (the current
folder is searched, as `python -m` does), or install your module.
"""

import keras
from keras import layers


def mobile_student(input_shape=(28, 28, 1), num_classes=10, width=16):
    """Depthwise-separable blocks (MobileNet-style): about 10k weights at `width=16`."""
    inputs = keras.Input(tuple(input_shape), name="image")
    x = layers.Conv2D(width, 3, padding="same", use_bias=False)(inputs)
    x = layers.ReLU()(layers.BatchNormalization()(x))
    for filters, pool in ((2 * width, True), (4 * width, True), (4 * width, False)):
        x = layers.DepthwiseConv2D(3, padding="same", use_bias=False)(x)
        x = layers.Conv2D(filters, 1, use_bias=False)(layers.ReLU()(layers.BatchNormalization()(x)))
        x = layers.ReLU()(layers.BatchNormalization()(x))
        if pool:
            x = layers.MaxPooling2D()(x)
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, layers.Dense(num_classes, name="logits")(x), name="mobile_student")
