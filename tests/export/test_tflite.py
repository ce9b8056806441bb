import sys

import numpy as np
import pytest
import tensorflow as tf

import keras
from tfdistill.export import ExportVerificationError, TFLiteRunner, convert, export_tflite, verify


@pytest.fixture(scope="module")
def trained():
    """A tiny CNN trained on scikit-learn's 8x8 digits (real data)."""
    from sklearn.datasets import load_digits

    keras.utils.set_random_seed(0)
    digits = load_digits()
    x = (digits.images / 16.0).astype("float32")[..., None]
    y = digits.target.astype("int32")
    x_in = keras.Input((8, 8, 1))
    h = keras.layers.Conv2D(16, 3, activation="relu")(x_in)
    h = keras.layers.Dense(32, activation="relu")(keras.layers.Flatten()(h))
    model = keras.Model(x_in, keras.layers.Dense(10)(h))
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    model.fit(x[:1400], y[:1400], epochs=20, batch_size=64, verbose=0)
    return model, x, y


@pytest.mark.slow
@pytest.mark.parametrize("quantization", ["float32", "float16", "dynamic_range", "int8"])
def test_every_quantization_agrees_with_keras(trained, quantization, tmp_path):
    model, x, y = trained
    path = tmp_path / f"m_{quantization}.tflite"
    report = export_tflite(
        model, str(path), x[1400:], y[1400:], quantization, representative_data=x[:200], min_agreement=0.95
    )
    assert path.stat().st_size == report.file_bytes
    assert report.top1_agreement >= 0.95
    assert abs(report.accuracy - report.keras_accuracy) < 0.03
    if quantization in ("float32", "float16"):
        assert report.max_abs_diff < 0.05
    assert report.median_latency_ms > 0 and report.num_examples == len(x) - 1400


@pytest.mark.slow
def test_int8_is_smaller_than_float(trained):
    model, x, _ = trained
    sizes = {q: len(convert(model, q, representative_data=x[:100])) for q in ("float32", "int8")}
    assert sizes["int8"] < 0.5 * sizes["float32"]


@pytest.mark.slow
def test_int8_io_is_dequantised_for_the_comparison(trained):
    model, x, y = trained
    content = convert(model, "int8", representative_data=x[:200], int8_io=True)
    report = verify(content, model, x[1400:], y[1400:], "int8")
    assert report.top1_agreement >= 0.95


@pytest.mark.slow
def test_disagreeing_export_is_refused_and_not_written(trained, tmp_path, monkeypatch):
    model, x, y = trained
    keras.utils.set_random_seed(1)
    other = keras.models.clone_model(model)  # fresh random weights: disagrees
    content = convert(other)
    assert verify(content, model, x[1400:], y[1400:]).top1_agreement < 0.5
    monkeypatch.setattr("tfdistill.export.tflite.convert", lambda *args, **kwargs: content)
    path = tmp_path / "bad.tflite"
    with pytest.raises(ExportVerificationError, match="below min_agreement=99.00%; nothing was written"):
        export_tflite(model, str(path), x[1400:], y[1400:])
    assert not path.exists()


@pytest.mark.slow
def test_existing_file_is_not_overwritten(trained, tmp_path):
    model, x, y = trained
    path = tmp_path / "m.tflite"
    path.write_bytes(b"user's file")
    with pytest.raises(FileExistsError):
        export_tflite(model, str(path), x[1400:], y[1400:])
    assert path.read_bytes() == b"user's file"


@pytest.mark.slow
def test_unknown_quantization(trained):
    with pytest.raises(ValueError, match=r"`quantization`. Expected one of"):
        convert(trained[0], "int4")


def _outputs(interpreter, x):
    interpreter.allocate_tensors()
    source, target = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    outputs = []
    for example in x:
        interpreter.set_tensor(source["index"], example[None].astype("float32"))
        interpreter.invoke()
        outputs.append(interpreter.get_tensor(target["index"]).copy())
    return np.concatenate(outputs)


@pytest.mark.slow
@pytest.mark.parametrize("quantization", ["float32", "int8"])
def test_litert_and_the_deprecated_tf_lite_interpreter_give_the_same_numbers(trained, quantization):
    litert = pytest.importorskip("ai_edge_litert.interpreter")
    model, x, _ = trained
    content = convert(model, quantization, representative_data=x[:200])
    runner = TFLiteRunner(content)
    assert type(runner.interpreter).__module__.startswith("ai_edge_litert")  # the maintained runtime is used
    new = _outputs(litert.Interpreter(model_content=content), x[1400:1500])
    old = _outputs(tf.lite.Interpreter(model_content=content), x[1400:1500])
    np.testing.assert_array_equal(new, old)
    np.testing.assert_array_equal(np.concatenate([runner(e) for e in x[1400:1500]]), new)


@pytest.mark.slow
def test_without_litert_the_runner_falls_back_to_tf_lite(trained, monkeypatch):
    model, x, _ = trained
    content = convert(model, "float32")
    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)  # `import` now raises ImportError
    runner = TFLiteRunner(content)
    assert type(runner.interpreter) is tf.lite.Interpreter
    np.testing.assert_allclose(runner(x[1400]), model.predict(x[1400:1401], verbose=0), atol=1e-5)


@pytest.mark.slow
def test_token_ids_stay_integer_and_verification_is_per_token(tmp_path):
    """A tagger over int32 token ids: its int8 export keeps an int32 input; padding is not counted."""
    keras.utils.set_random_seed(0)
    tokens = keras.Input((6,), dtype="int32")
    hidden = keras.layers.Embedding(20, 8)(tokens)
    model = keras.Model(tokens, keras.layers.Dense(4)(keras.layers.Conv1D(8, 3, padding="same")(hidden)))
    rng = np.random.default_rng(0)
    x = rng.integers(1, 20, size=(30, 6)).astype("int32")
    x[:, 4:] = 0
    y = (x % 4).astype("int32")
    weights = (x > 0).astype("float32")
    content = convert(model, "int8", representative_data=x)
    runner = TFLiteRunner(content)
    assert runner.input["dtype"] == np.int32
    assert runner(x[0]).shape == (1, 6, 4)
    report = verify(convert(model), model, x, y, sample_weight=weights)
    keras_top1 = model.predict(x, verbose=0).argmax(-1)
    assert report.keras_accuracy == pytest.approx(((keras_top1 == y) * weights).sum() / weights.sum())
    assert report.top1_agreement == 1.0
    with pytest.raises(ValueError, match="integer ids"):
        convert(model, "int8", representative_data=x, int8_io=True)
