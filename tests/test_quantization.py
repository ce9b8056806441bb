"""Fake quantization, folding, the fake-quantized clone, its `.keras` round trip and its int8 export."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfdistill import Distiller
from tfdistill.export import convert, operators, verify
from tfdistill.export.tflite import TFLiteRunner, _make_interpreter
from tfdistill.quantization import (
    ActivationQuantizer,
    QuantConv1D,
    QuantConv2D,
    QuantDense,
    QuantDepthwiseConv2D,
    QuantEmbedding,
    QuantSeparableConv2D,
    calibrate,
    fake_quantize_weights,
    is_fake_quantized,
    quantize_model,
)
from tfdistill.quantization import folding

L = keras.layers


def _randomize_batch_norm(model, seed=0):
    """Moving statistics and affine weights far from the identity, so folding them shows."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, L.BatchNormalization):
            shape = layer.gamma.shape
            layer.set_weights([rng.uniform(0.5, 2.0, shape), rng.normal(0, 0.3, shape), rng.normal(0, 0.3, shape),
                               rng.uniform(0.2, 2.0, shape)])


def _image_model(depth_multiplier=1):
    """Every 2-D layer kind the students use: conv, depthwise, separable, BN, ReLU(6), pooling, dense."""
    inputs = keras.Input((8, 8, 2), name="image")
    x = L.Conv2D(6, 3, padding="same", use_bias=False, name="conv")(inputs)
    x = L.BatchNormalization(name="conv_bn")(x)
    x = L.ReLU(name="conv_relu")(x)
    x = L.DepthwiseConv2D(3, padding="same", depth_multiplier=depth_multiplier, use_bias=False, name="dw")(x)
    x = L.BatchNormalization(name="dw_bn")(x)
    x = L.ReLU(6.0, name="dw_relu6")(x)
    x = L.MaxPooling2D(name="pool")(x)
    x = L.SeparableConv2D(8, 3, padding="same", name="sep")(x)
    x = L.BatchNormalization(name="sep_bn")(x)
    x = L.Activation("relu", name="sep_relu")(x)
    x = L.GlobalAveragePooling2D(name="gap")(x)
    x = L.Dense(8, use_bias=False, name="fc")(x)
    x = L.BatchNormalization(name="fc_bn")(x)
    x = L.ReLU(name="fc_relu")(x)
    model = keras.Model(inputs, L.Dense(4, name="logits")(x), name="image_model")
    _randomize_batch_norm(model)
    return model


def _token_model():
    """The byte language model's layer kinds: embedding, causal dilated Conv1D, residual Add, Dense."""
    tokens = keras.Input((12,), dtype="int32", name="bytes")
    x = L.Embedding(20, 4, name="embedding")(tokens)
    x = L.Conv1D(8, 1, name="project")(x)
    h = L.Conv1D(8, 3, padding="causal", dilation_rate=2, activation="relu", name="causal")(x)
    x = L.Add(name="residual")([x, h])
    return keras.Model(tokens, L.Dense(20, name="next")(x), name="token_model")


def _images(n=64, seed=0):
    return np.random.default_rng(seed).normal(size=(n, 8, 8, 2)).astype("float32")


def _tokens(n=64, seed=0):
    return np.random.default_rng(seed).integers(0, 20, size=(n, 12)).astype("int32")


# ------------------------------------------------------------------ quantizers
def test_weights_round_to_a_symmetric_grid_per_channel():
    w = np.array([[0.5, -2.0], [-1.0, 1.0]], "float32")
    # Channel 0: m = 1, step 1/127: 0.5 = 63.5 steps, rounded half up to 64. Channel 1: m = 2, step 2/127.
    expected = [[64 / 127, -2.0], [-1.0, 128 / 127]]
    np.testing.assert_allclose(np.asarray(fake_quantize_weights(w, channel_axis=-1)), expected, rtol=1e-6)
    # One range for the tensor, m = 2: 0.5 = 31.75 steps -> 32; -1.0 = -63.5 steps -> -63 (half up).
    per_tensor = np.asarray(fake_quantize_weights(w))
    np.testing.assert_allclose(per_tensor, [[64 / 127, -2.0], [-126 / 127, 128 / 127]], rtol=1e-6)


def test_four_bit_weights_take_fifteen_values():
    w = np.linspace(-1, 1, 101, dtype="float32")
    values = np.unique(np.asarray(fake_quantize_weights(w, num_bits=4)))
    assert len(values) == 15
    np.testing.assert_allclose(values * 7, np.round(values * 7), atol=1e-5)


def test_a_channel_of_zeros_stays_zero_and_finite():
    w = np.zeros((3, 2), "float32")
    w[:, 1] = [0.1, -0.3, 0.2]
    out = np.asarray(fake_quantize_weights(w, channel_axis=-1))
    assert np.all(np.isfinite(out)) and np.all(out[:, 0] == 0)


def test_weight_gradient_passes_straight_through():
    w = tf.constant([[0.3, -1.0], [0.7, 0.2]])
    with tf.GradientTape() as tape:
        tape.watch(w)
        loss = tf.reduce_sum(fake_quantize_weights(w, channel_axis=-1) * tf.constant([[1.0, 2.0], [3.0, 4.0]]))
    np.testing.assert_allclose(tape.gradient(loss, w).numpy(), [[1.0, 2.0], [3.0, 4.0]])


def test_only_the_last_axis_is_a_channel_axis():
    with pytest.raises(ValueError, match="Invalid value for argument `channel_axis`"):
        fake_quantize_weights(np.ones((2, 3), "float32"), channel_axis=0)


def test_calibration_takes_the_extremes_with_zero_inside():
    quantizer = ActivationQuantizer()
    model = keras.Sequential([keras.Input((3,)), quantizer])
    assert calibrate(model, np.array([[0.5, 1.0, 2.0], [0.2, 3.0, 0.1]], "float32"), batch_size=1) == 2
    assert quantizer.range_min.numpy() == 0.0 and quantizer.range_max.numpy() == 3.0
    # Inference rounds to 255 steps of [0, 3] and clips to it.
    out = np.asarray(quantizer(np.array([[0.02, -1.0, 7.0]], "float32")))
    np.testing.assert_allclose(out, [[3 / 255 * np.round(0.02 * 85), 0.0, 3.0]], atol=1e-6)


def test_training_moves_the_range_by_a_moving_average():
    quantizer = ActivationQuantizer(decay=0.9)
    quantizer.build(())
    quantizer.range_min.assign(-1.0)
    quantizer.range_max.assign(1.0)
    quantizer(np.array([[-3.0, 5.0]], "float32"), training=True)
    np.testing.assert_allclose([quantizer.range_min.numpy(), quantizer.range_max.numpy()], [-1.2, 1.4], rtol=1e-6)
    quantizer(np.array([[-3.0, 5.0]], "float32"), training=False)  # inference leaves it
    np.testing.assert_allclose(quantizer.range_max.numpy(), 1.4, rtol=1e-6)


def test_a_top_k_range_covers_each_rows_largest_logits():
    quantizer = ActivationQuantizer(top_k=2)
    model = keras.Sequential([keras.Input((4,)), quantizer])
    calibrate(model, np.array([[-9.0, 1.0, 3.0, -2.0], [5.0, -1.0, -7.0, 0.5]], "float32"))
    # Second largest of each row: 1.0 and 0.5 (then 0 inside); largest of all: 5.0.
    assert (quantizer.range_min.numpy(), quantizer.range_max.numpy()) == (0.0, 5.0)
    quantized = quantize_model(_image_model(), _images(), output_top_k=2)
    assert quantized.get_layer("logits_quantizer").top_k == 2 and quantized.get_layer("gap_quantizer").top_k is None


@pytest.mark.parametrize("kwargs, argument", [({"decay": 1.0}, "decay"), ({"num_bits": 9}, "num_bits"),
                                              ({"top_k": 0}, "top_k")])
def test_quantizer_arguments_are_checked(kwargs, argument):
    with pytest.raises(ValueError, match=f"Invalid value for argument `{argument}`"):
        ActivationQuantizer(**kwargs)


def test_weight_bits_are_checked():
    with pytest.raises(ValueError, match="Invalid value for argument `weight_bits`. Expected one of"):
        QuantConv2D(4, 3, weight_bits=6)


# ------------------------------------------------------------------------ layers
def _rounded_like_tflite(layer, name, weights):
    """A weight as the int8 kernel holds it: per output channel (`per_channel`), except for embeddings and 4-bit dense."""
    if name not in ("kernel", "depthwise_kernel", "pointwise_kernel", "embeddings"):
        return weights  # biases stay float (TFLite keeps them at 32 bits)
    bits = layer.weight_bits
    if isinstance(layer, QuantEmbedding) or not layer.per_channel or (isinstance(layer, QuantDense) and bits == 4):
        return np.asarray(fake_quantize_weights(weights, num_bits=bits))
    if isinstance(layer, QuantDepthwiseConv2D) or name == "depthwise_kernel":  # per channel `in · multiplier`
        flat = weights.reshape(*weights.shape[:-2], -1)
        return np.asarray(fake_quantize_weights(flat, channel_axis=-1, num_bits=bits)).reshape(weights.shape)
    return np.asarray(fake_quantize_weights(weights, channel_axis=-1, num_bits=bits))


@pytest.mark.parametrize("layer, float_layer, shape", [
    (QuantConv1D(5, 3, padding="causal", dilation_rate=2), L.Conv1D, (2, 11, 3)),
    (QuantConv1D(5, 3, padding="causal", dilation_rate=2, data_format="channels_first"), L.Conv1D, (2, 3, 11)),
    (QuantConv1D(5, 3, strides=2, padding="same", activation="relu"), L.Conv1D, (2, 11, 3)),
    (QuantConv1D(5, 1, per_channel=False, weight_bits=4), L.Conv1D, (2, 11, 3)),
    (QuantConv2D(5, 3, padding="same"), L.Conv2D, (2, 6, 6, 3)),
    (QuantDepthwiseConv2D(3, depth_multiplier=2), L.DepthwiseConv2D, (2, 6, 6, 3)),
    (QuantDense(5), L.Dense, (2, 7, 3)),
    (QuantDense(5, weight_bits=4), L.Dense, (2, 7, 3)),
    (QuantDense(5, per_channel=False), L.Dense, (2, 3)),
    (QuantEmbedding(10, 5), L.Embedding, (2, 7)),
])
def test_each_layer_computes_with_its_rounded_weights(layer, float_layer, shape):
    """The Keras layer it is named after, on the weights the int8 kernel holds, and not on the float ones."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 10, shape).astype("int32") if float_layer is L.Embedding else rng.normal(size=shape)
    layer.build(shape)
    layer.set_weights([rng.normal(size=w.shape) for w in layer.get_weights()])
    config = {k: v for k, v in layer.get_config().items() if k not in ("weight_bits", "per_channel")}
    reference = float_layer.from_config(config)
    reference.build(shape)
    reference.set_weights(layer.get_weights())
    try:
        float_outputs = np.asarray(reference(x))
    except tf.errors.UnimplementedError as error:  # TensorFlow's CPU kernels without oneDNN: NHWC only
        if getattr(layer, "data_format", None) != "channels_first":
            raise
        pytest.skip(f"this machine's TensorFlow runs no channels-first convolution on the CPU: {error.message[:80]}")
    reference.set_weights([_rounded_like_tflite(layer, v.name, w) for v, w in zip(layer.weights, layer.get_weights())])
    outputs = np.asarray(layer(x))
    np.testing.assert_allclose(outputs, np.asarray(reference(x)), rtol=1e-5, atol=1e-5)
    assert np.abs(outputs - float_outputs).max() > 1e-3  # the rounding shows


# --------------------------------------------------------------------- folding
@pytest.mark.parametrize("make", [
    lambda: L.Conv2D(6, 3, padding="same", use_bias=False),
    lambda: L.DepthwiseConv2D(3, padding="same", depth_multiplier=3),
    lambda: L.SeparableConv2D(6, 3, padding="same"),
    lambda: L.Dense(6),
])
def test_folded_weights_compute_the_layer_then_its_batch_norm(make):
    layer = make()
    x = _images(8, seed=1)
    y = layer(x)
    bn = L.BatchNormalization(epsilon=1e-3)
    bn(y)
    rng = np.random.default_rng(0)
    channels = y.shape[-1]
    bn.set_weights([rng.uniform(0.5, 2, channels), rng.normal(size=channels), rng.normal(size=channels),
                    rng.uniform(0.2, 2, channels)])
    config = {**layer.get_config(), "use_bias": True, "name": "folded"}
    folded = type(layer).from_config(config)
    folded.build(x.shape)
    folded.set_weights(folding.fold_output_affine(layer, layer.get_weights(), *folding.batch_norm_affine(bn)))
    np.testing.assert_allclose(folded(x), bn(y, training=False), rtol=1e-4, atol=1e-4)


def test_normalization_division_folds_into_the_next_convolution():
    inputs = keras.Input((8, 8, 2))
    normalization = L.Normalization(axis=None)
    normalization.adapt(_images(32) * 3 + 2)
    model = keras.Model(inputs, L.Conv2D(4, 3, padding="same")(normalization(inputs)))
    quantized = quantize_model(model, _images(32) * 3 + 2)
    convolution = quantized.get_layer(model.layers[-1].name)
    np.testing.assert_allclose(quantized.get_layer(normalization.name).variance.numpy(), 1.0)
    _, inverse_std = folding.normalization_affine(normalization)
    np.testing.assert_allclose(convolution.kernel.numpy(), model.layers[-1].kernel.numpy() * inverse_std, rtol=1e-5)
    # The clone still subtracts the mean: its outputs are the float model's up to int8 rounding.
    x = _images(32) * 3 + 2
    expected = model.predict(x, verbose=0)
    np.testing.assert_allclose(quantized.predict(x, verbose=0), expected, atol=0.03 * np.abs(expected).max())


# ------------------------------------------------------------ the quantized clone
@pytest.mark.slow
def test_clone_folds_fuses_and_places_quantizers_where_tflite_keeps_ranges():
    model = _image_model()
    quantized = quantize_model(model, _images())
    kinds = [(layer.name, type(layer).__name__) for layer in quantized.layers[1:]]
    assert kinds == [
        ("image_quantizer", "ActivationQuantizer"),
        ("conv", "QuantConv2D"), ("conv_relu_quantizer", "ActivationQuantizer"),
        ("dw", "QuantDepthwiseConv2D"), ("dw_relu6_quantizer", "ActivationQuantizer"),
        ("pool", "MaxPooling2D"),  # max pooling keeps its input's scale: no quantizer
        ("sep", "QuantSeparableConv2D"), ("sep_relu_quantizer", "ActivationQuantizer"),
        ("gap", "GlobalAveragePooling2D"), ("gap_quantizer", "ActivationQuantizer"),
        ("fc", "QuantDense"), ("fc_relu_quantizer", "ActivationQuantizer"),
        ("logits", "QuantDense"), ("logits_quantizer", "ActivationQuantizer"),
    ]
    assert [quantized.get_layer(n).activation.__name__ for n in ("conv", "dw", "sep", "fc", "logits")] == [
        "relu", "relu6", "relu", "relu", "linear"]
    assert all(quantized.get_layer(n).use_bias for n in ("conv", "dw", "sep", "fc"))
    assert is_fake_quantized(quantized) and not is_fake_quantized(model)
    # The clone computes the float model up to rounding; the float model is untouched.
    x = _images(32, seed=3)
    float_out, quantized_out = model.predict(x, verbose=0), quantized.predict(x, verbose=0)
    assert np.max(np.abs(float_out - quantized_out)) < 0.05 * np.max(np.abs(float_out))
    assert np.any(float_out != quantized_out)
    assert [type(layer).__name__ for layer in model.layers].count("BatchNormalization") == 4


def test_ranges_are_calibrated_on_the_float_activations():
    model = _image_model()
    x = _images()
    quantized = quantize_model(model, x)
    image = quantized.get_layer("image_quantizer")
    assert image.range_min.numpy() == pytest.approx(min(x.min(), 0)) and image.range_max.numpy() == pytest.approx(x.max())
    relu6 = quantized.get_layer("dw_relu6_quantizer")
    assert relu6.range_min.numpy() == 0 and 0 < relu6.range_max.numpy() <= 6


def test_per_tensor_weights_share_one_range():
    quantized = quantize_model(_image_model(), _images(), per_channel=False)
    conv = quantized.get_layer("conv")
    kernel = np.asarray(conv._quantize(conv.kernel))
    step = np.abs(conv.kernel.numpy()).max() / 127
    np.testing.assert_allclose(kernel / step, np.round(kernel / step), atol=1e-3)


def test_layers_without_an_int8_form_are_refused_with_the_list():
    inputs = keras.Input((4, 3))
    model = keras.Model(inputs, L.Dense(2)(L.LSTM(3)(inputs)))
    with pytest.raises(ValueError, match=r"layer 'lstm.*' \(LSTM\) has no int8 form here. Layers with an int8 form"):
        quantize_model(model, np.zeros((2, 4, 3), "float32"))
    gelu = keras.Sequential([keras.Input((3,)), L.Dense(2, activation="gelu")])
    with pytest.raises(ValueError, match="has the activation 'gelu', which TFLite does not fuse"):
        quantize_model(gelu, np.zeros((2, 3), "float32"))


# ---------------------------------------------------------------- round trips
@pytest.mark.slow
@pytest.mark.parametrize("make, data", [(_image_model, _images), (_token_model, _tokens)])
def test_keras_file_round_trip(tmp_path, make, data):
    quantized = quantize_model(make(), data())
    path = str(tmp_path / "quantized.keras")
    quantized.save(path)
    loaded = keras.models.load_model(path)
    x = data(16, seed=5)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), quantized.predict(x, verbose=0))
    for original, restored in zip(quantized.layers, loaded.layers):
        assert type(original) is type(restored) and original.get_config() == restored.get_config()


@pytest.mark.parametrize("layer", [
    QuantConv1D(4, 3, weight_bits=4, per_channel=False), QuantConv2D(4, 3), QuantDepthwiseConv2D(3, depth_multiplier=2),
    QuantSeparableConv2D(4, 3), QuantDense(3, weight_bits=4, per_channel=False), QuantEmbedding(10, 3),
    ActivationQuantizer(decay=0.5, top_k=2),
])
def test_every_layer_round_trips_its_config(layer):
    config = keras.saving.serialize_keras_object(layer)
    assert config["registered_name"].startswith("tfdistill>")
    restored = keras.saving.deserialize_keras_object(config)
    assert type(restored) is type(layer) and restored.get_config() == layer.get_config()


def test_a_dense_layer_saved_without_per_channel_keeps_its_one_range():
    config = QuantDense(3).get_config()
    del config["per_channel"]  # as saved before dense kernels had a range per channel
    assert QuantDense.from_config(config).per_channel is False
    assert QuantDense.from_config(QuantDense(3).get_config()).per_channel is True


# ---------------------------------------------------------------------- export
def _nonfloat_tensors(content):
    """(dtype, shape, number of scales) of every int8/int32 tensor: the weights, biases and activations."""
    details = _make_interpreter(content, 1).get_tensor_details()
    return sorted((t["dtype"].__name__, tuple(t["shape"]), len(t["quantization_parameters"]["scales"]))
                  for t in details if t["dtype"] in (np.int8, np.int32))


@pytest.mark.slow
@pytest.mark.parametrize("make, data", [(_image_model, _images), (_token_model, _tokens)])
def test_int8_export_has_the_post_training_model_ops_and_follows_the_fake_quantized_model(make, data):
    model = make()
    calibration = data(64)
    quantized = quantize_model(model, calibration)
    content = convert(quantized, "int8")
    baseline = convert(model, "int8", representative_data=calibration, num_calibration=64)
    ops = operators(content)
    assert ops == operators(baseline)
    assert not {"FAKE_QUANT", "QUANTIZE", "DEQUANTIZE"} & set(ops[1:-1])  # only at the float input and output
    # Same tensors, the weights with PTQ's scales per channel: same kernels, same size.
    assert _nonfloat_tensors(content) == _nonfloat_tensors(baseline)
    x = data(48, seed=7)
    keras_out = quantized.predict(x, verbose=0)
    lite_out = np.concatenate([TFLiteRunner(content)(example) for example in x])
    output_step = np.ptp([quantized.layers[-1].range_min.numpy(), quantized.layers[-1].range_max.numpy()]) / 255
    # The int8 kernels compute what the clone simulates: a value apart by a rounding tie at most.
    assert np.abs(lite_out - keras_out).max() <= 1.01 * output_step
    assert np.mean(lite_out.argmax(-1) == keras_out.argmax(-1)) >= 0.98


@pytest.mark.slow
def test_int8_io_and_refused_float_conversion():
    quantized = quantize_model(_image_model(), _images())
    content = convert(quantized, "int8", int8_io=True)
    details = _make_interpreter(content, 1).get_input_details()[0]
    assert details["dtype"] == np.int8
    assert operators(content)[0] != "QUANTIZE"
    with pytest.raises(ValueError, match="a fake-quantized model converts to 'int8' only"):
        convert(quantized, "float32")


# ---------------------------------------------------------- distillation
@pytest.fixture(scope="module")
def digits_student():
    """A small CNN with BatchNorm trained on scikit-learn's 8x8 digits (real data)."""
    from sklearn.datasets import load_digits

    keras.utils.set_random_seed(0)
    digits = load_digits()
    x = (digits.images / 16.0).astype("float32")[..., None]
    y = digits.target.astype("int32")
    inputs = keras.Input((8, 8, 1))
    h = L.ReLU()(L.BatchNormalization()(L.Conv2D(8, 3, use_bias=False)(inputs)))
    h = L.ReLU()(L.BatchNormalization()(L.DepthwiseConv2D(3, use_bias=False)(h)))
    model = keras.Model(inputs, L.Dense(10)(L.GlobalAveragePooling2D()(h)))
    model.compile(keras.optimizers.Adam(1e-2), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x[:1400], y[:1400], epochs=15, batch_size=64, verbose=0)
    return model, x, y


@pytest.mark.slow
def test_self_distillation_without_labels_brings_a_four_bit_student_closer_to_the_float_one(digits_student):
    model, x, y = digits_student
    quantized = quantize_model(model, x[:200], weight_bits=4, per_channel=False)
    float_test = model.predict(x[1400:], verbose=0).argmax(-1)

    def agreement():
        return np.mean(quantized.predict(x[1400:], verbose=0).argmax(-1) == float_test)

    before = agreement()
    model.trainable = False  # as a teacher: the clone of a frozen model still trains
    assert len(quantize_model(model, x[:200]).trainable_weights) == len(quantized.trainable_weights)
    distiller = Distiller(model, quantized)
    distiller.compile(keras.optimizers.Adam(1e-3))
    distiller.fit(x[:1400], batch_size=64, epochs=8, verbose=0)  # no labels: the float model teaches
    assert agreement() > before
    content = convert(quantized, "int8")
    report = verify(content, quantized, x[1400:], y[1400:], "int8")
    assert report.top1_agreement >= 0.97


@pytest.mark.slow
def test_four_bit_weights_export_packed_on_fifteen_levels():
    model, x = _image_model(), _images()
    eight, four = (convert(quantize_model(model, x, weight_bits=bits), "int8") for bits in (8, 4))
    interpreter = _make_interpreter(four, 1)
    interpreter.allocate_tensors()
    weighted = [op for op in interpreter._get_ops_details()
                if op["op_name"] in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")]
    assert len(weighted) == 6  # conv, depthwise, separable (depthwise + pointwise), two dense
    kernel_values = 0
    for op in weighted:
        kernel = interpreter.get_tensor(op["inputs"][1])  # unpacked by the interpreter
        assert kernel.min() >= -7 and kernel.max() <= 7 and len(np.unique(kernel)) > 7
        kernel_values += kernel.size
    assert operators(four) == operators(eight)
    assert len(eight) - len(four) >= 0.45 * kernel_values  # two 4-bit weights per byte (TFLite INT4 tensors)


def test_a_top_k_quantizer_tracks_its_range_in_training_but_rounds_at_inference_only():
    quantizer = ActivationQuantizer(top_k=2, decay=0.5)
    calibrate(keras.Sequential([keras.Input((3,)), quantizer]), np.array([[4.0, 1.0, -5.0]], "float32"))
    logits = np.array([[2.0, 1.5, -9.0]], "float32")
    np.testing.assert_array_equal(quantizer(logits, training=True), logits)  # unrounded, unclipped
    assert quantizer.range_min.numpy() == pytest.approx(0.0) and quantizer.range_max.numpy() == pytest.approx(3.0)
    rounded = np.asarray(quantizer(logits))
    np.testing.assert_allclose(rounded, [[2.0, 1.5, 0.0]], atol=3 / 255 / 2 + 1e-6)
