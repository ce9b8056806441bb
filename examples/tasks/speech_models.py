"""Keyword-spotting models on log-mel features: a CNN teacher and a DS-CNN student.

Both take `(frames, mel_bins, 1)` log-mel features (`speech_corpus.log_mel_features`:
49 frames of 40 bins for one second) and output logits. Each starts with a
`Normalization` layer adapted to the training features, so the exported model
takes the log-mel features as they are computed.
"""

import keras


def _normalized_input(input_shape, features, name):
    inputs = keras.Input(input_shape, name="log_mel")
    normalization = keras.layers.Normalization(axis=None, name=f"{name}_normalization")
    if features is not None:
        normalization.adapt(features)
    return inputs, normalization(inputs)


def keyword_cnn(input_shape=(49, 40, 1), num_classes=10, widths=(64, 128, 256), features=None, dropout=0.3,
                name="keyword_cnn"):
    """A VGG-style CNN teacher: two 3x3 convolutions per width, pooling between.

    Args:
        input_shape: `(frames, mel_bins, 1)`.
        num_classes: keywords (plus any other classes).
        widths: filters of each stage.
        features: training features to adapt the input normalization to.
        dropout: before the classifier.
        name: model name.

    Returns:
        A `keras.Model` that outputs logits.

    Example:
        >>> teacher = keyword_cnn()
        >>> teacher.output.shape
        (None, 10)
    """
    inputs, x = _normalized_input(input_shape, features, name)
    for stage, width in enumerate(widths):
        for conv in range(2):
            x = keras.layers.Conv2D(width, 3, padding="same", use_bias=False, name=f"conv{stage}_{conv}")(x)
            x = keras.layers.BatchNormalization(name=f"bn{stage}_{conv}")(x)
            x = keras.layers.ReLU()(x)
        if stage < len(widths) - 1:
            x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dropout(dropout)(x)
    return keras.Model(inputs, keras.layers.Dense(num_classes, name="logits")(x), name=name)


def ds_cnn(input_shape=(49, 40, 1), num_classes=10, filters=64, blocks=4, features=None, name="ds_cnn"):
    """The depthwise-separable CNN of "Hello Edge" (DS-CNN), sized for a microcontroller.

    A strided 10x4 convolution, then `blocks` depthwise 3x3 + pointwise 1x1
    convolutions with batch normalization, global average pooling and a dense
    classifier. With 64 filters and 4 blocks it has about 23,000 parameters:
    about 30 KB as int8 TFLite.

    Args:
        input_shape: `(frames, mel_bins, 1)`.
        num_classes: number of classes.
        filters: channels of every block.
        blocks: depthwise-separable blocks.
        features: training features to adapt the input normalization to.
        name: model name.

    Returns:
        A `keras.Model` that outputs logits.

    Example:
        >>> student = ds_cnn()
        >>> 20_000 < student.count_params() < 30_000
        True

    Reference:
        Zhang, Suda, Lai and Chandra, "Hello Edge: Keyword Spotting on
        Microcontrollers", 2017.
    """
    inputs, x = _normalized_input(input_shape, features, name)
    x = keras.layers.Conv2D(filters, (10, 4), strides=2, padding="same", use_bias=False, name="conv0")(x)
    x = keras.layers.BatchNormalization(name="bn0")(x)
    x = keras.layers.ReLU()(x)
    for block in range(1, blocks + 1):
        x = keras.layers.DepthwiseConv2D(3, padding="same", use_bias=False, name=f"depthwise{block}")(x)
        x = keras.layers.BatchNormalization(name=f"bn_dw{block}")(x)
        x = keras.layers.ReLU()(x)
        x = keras.layers.Conv2D(filters, 1, use_bias=False, name=f"pointwise{block}")(x)
        x = keras.layers.BatchNormalization(name=f"bn_pw{block}")(x)
        x = keras.layers.ReLU()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(num_classes, name="logits")(x), name=name)
