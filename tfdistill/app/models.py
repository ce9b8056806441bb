"""The demo's teacher and student CNNs for 28x28 grey images."""

import keras
from keras import layers


def _conv_block(x, filters, name):
    x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def build_teacher(input_shape=(28, 28, 1), num_classes=10, name="teacher"):
    """A VGG-style CNN with batch normalisation and dropout (~0.95M weights).

    Args:
        input_shape: shape of one image, pixels scaled to `[0, 1]`.
        num_classes: number of classes.
        name: model name.

    Returns:
        An uncompiled `keras.Model` that outputs logits of shape
        `(batch, num_classes)`.
    """
    inputs = keras.Input(input_shape, name="image")
    x = _conv_block(inputs, 32, "block1a")
    x = _conv_block(x, 32, "block1b")
    x = layers.MaxPooling2D(name="block1_pool")(x)
    x = layers.Dropout(0.2, name="block1_dropout")(x)
    x = _conv_block(x, 64, "block2a")
    x = _conv_block(x, 64, "block2b")
    x = layers.MaxPooling2D(name="block2_pool")(x)
    x = layers.Dropout(0.3, name="block2_dropout")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(256, use_bias=False, name="fc")(x)
    x = layers.BatchNormalization(name="fc_bn")(x)
    x = layers.ReLU(name="fc_relu")(x)
    x = layers.Dropout(0.4, name="fc_dropout")(x)
    outputs = layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name=name)


def build_student(input_shape=(28, 28, 1), num_classes=10, width=16, name="student"):
    """A small CNN: three conv blocks, global average pooling, one dense layer.

    With `width=16` it has about 15k weights, over 60x fewer than
    `build_teacher()`.

    Args:
        input_shape: shape of one image, pixels scaled to `[0, 1]`.
        num_classes: number of classes.
        width: filters of the first block; later blocks use twice as many.
        name: model name.

    Returns:
        An uncompiled `keras.Model` that outputs logits of shape
        `(batch, num_classes)`.
    """
    inputs = keras.Input(input_shape, name="image")
    x = _conv_block(inputs, width, "block1")
    x = layers.MaxPooling2D(name="block1_pool")(x)
    x = _conv_block(x, 2 * width, "block2")
    x = layers.MaxPooling2D(name="block2_pool")(x)
    x = _conv_block(x, 2 * width, "block3")
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name=name)


def _separable_block(x, filters, name):
    x = layers.DepthwiseConv2D(3, padding="same", use_bias=False, name=f"{name}_dw")(x)
    x = layers.BatchNormalization(name=f"{name}_dw_bn")(x)
    x = layers.ReLU(name=f"{name}_dw_relu")(x)
    return _pointwise_block(x, filters, name)


def _pointwise_block(x, filters, name):
    x = layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_pw")(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def build_separable_student(
    input_shape=(28, 28, 1), num_classes=10, filters=(16, 32, 64, 64, 96), name="separable_student"
):
    """A deeper student of depthwise-separable blocks, MobileNet-style.

    One 3x3 convolution, then four depthwise 3x3 + pointwise 1x1 blocks with
    two poolings, global average pooling and one dense layer. With the default
    filters it has 17,290 weights, 50x fewer than `build_teacher()`: about the
    demo student's budget spent on depth (five layers of 3x3 receptive field
    instead of three) rather than on full 3x3 kernels.

    Args:
        input_shape: shape of one image, pixels scaled to `[0, 1]`.
        num_classes: number of classes.
        filters: output channels of the five blocks.
        name: model name.

    Returns:
        An uncompiled `keras.Model` that outputs logits of shape
        `(batch, num_classes)`.

    Reference:
        Howard et al., "MobileNets: Efficient Convolutional Neural Networks
        for Mobile Vision Applications", 2017.
    """
    if len(filters) != 5:
        raise ValueError(
            f"Invalid value for argument `filters`: expected 5 channel counts. Received: filters={filters!r}"
        )
    inputs = keras.Input(input_shape, name="image")
    x = _conv_block(inputs, filters[0], "block1")
    x = _separable_block(x, filters[1], "block2")
    x = layers.MaxPooling2D(name="block2_pool")(x)
    x = _separable_block(x, filters[2], "block3")
    x = _separable_block(x, filters[3], "block4")
    x = layers.MaxPooling2D(name="block4_pool")(x)
    x = _separable_block(x, filters[4], "block5")
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name=name)
