import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from tfdistill.export import KERAS_COPY, export_saved_model

CLASS_NAMES = ("a", "b", "c")


def small_image_model():
    x_in = keras.Input((6, 6, 1))
    x = keras.layers.Flatten()(x_in)
    return keras.Model(x_in, keras.layers.Dense(3)(x), name="student")


@pytest.mark.slow
def test_versions_are_never_overwritten(tmp_path):
    model = small_image_model()
    first = export_saved_model(model, str(tmp_path / "m"), raw_shape=(None, 6, 6))
    second = export_saved_model(model, str(tmp_path / "m"), raw_shape=(None, 6, 6))
    assert first.endswith(os.path.join("m", "1")) and second.endswith(os.path.join("m", "2"))
    stamp = os.path.getmtime(os.path.join(first, "saved_model.pb"))
    with pytest.raises(FileExistsError, match="already exists"):
        export_saved_model(model, str(tmp_path / "m"), version=1)
    assert os.path.getmtime(os.path.join(first, "saved_model.pb")) == stamp
    export_saved_model(model, str(tmp_path / "m"), version=1, overwrite=True, raw_shape=(None, 6, 6))


@pytest.mark.slow
def test_signature_in_a_fresh_process_matches_keras(tmp_path):
    model = small_image_model()
    path = export_saved_model(model, str(tmp_path / "m"), raw_shape=(None, 6, 6), class_names=CLASS_NAMES)
    raw = np.random.default_rng(0).integers(0, 256, size=(5, 6, 6)).astype("uint8")
    expected = keras.ops.convert_to_numpy(keras.ops.softmax(model(raw[..., None] / 255.0)))
    request = json.dumps({"instances": raw.tolist()})  # a TF Serving REST body
    script = (
        "import json, sys, numpy as np, tensorflow as tf\n"
        f"fn = tf.saved_model.load({path!r}).signatures['serving_default']\n"
        "body = json.loads(sys.stdin.read())\n"
        "out = fn(image=tf.constant(np.array(body['instances'], dtype='uint8')))\n"
        "print(json.dumps({k: v.numpy().tolist() if v.dtype != tf.string else "
        "[s.decode() for s in v.numpy()] for k, v in out.items()}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], input=request, capture_output=True, text=True, check=True
    )
    outputs = json.loads(result.stdout.strip().splitlines()[-1])
    np.testing.assert_allclose(outputs["probabilities"], expected, rtol=1e-5, atol=1e-6)
    assert outputs["class_id"] == expected.argmax(-1).tolist()
    assert outputs["class_name"] == [CLASS_NAMES[i] for i in expected.argmax(-1)]
    reloaded = keras.models.load_model(os.path.join(path, KERAS_COPY))
    np.testing.assert_array_equal(reloaded.predict(raw[..., None] / 255.0, verbose=0), model.predict(raw[..., None] / 255.0, verbose=0))


@pytest.mark.slow
def test_saved_model_cli_lists_the_signature(tmp_path):
    path = export_saved_model(small_image_model(), str(tmp_path / "m"), raw_shape=(None, 6, 6), class_names=CLASS_NAMES)
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    result = subprocess.run(
        [cli, "show", "--dir", path, "--tag_set", "serve", "--signature_def", "serving_default"],
        capture_output=True, text=True, check=True,
    )
    assert "inputs['image'] tensor_info:" in result.stdout
    assert "dtype: DT_UINT8" in result.stdout and "shape: (-1, 6, 6)" in result.stdout
    for name in ("probabilities", "class_id", "class_name"):
        assert f"outputs['{name}']" in result.stdout


@pytest.mark.slow
def test_saved_model_cli_run_gives_the_keras_outputs(tmp_path):
    model = small_image_model()
    path = export_saved_model(model, str(tmp_path / "m"), raw_shape=(None, 6, 6))
    raw = np.random.default_rng(1).integers(0, 256, size=(4, 6, 6)).astype("uint8")
    np.save(tmp_path / "raw.npy", raw)
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    subprocess.run(
        [cli, "run", "--dir", path, "--tag_set", "serve", "--signature_def", "serving_default",
         "--inputs", f"image={tmp_path / 'raw.npy'}", "--outdir", str(tmp_path / "out")],
        capture_output=True, text=True, check=True,
    )
    expected = keras.ops.convert_to_numpy(keras.ops.softmax(model(raw[..., None] / 255.0)))
    np.testing.assert_allclose(np.load(tmp_path / "out" / "probabilities.npy"), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(np.load(tmp_path / "out" / "class_id.npy"), expected.argmax(-1))
