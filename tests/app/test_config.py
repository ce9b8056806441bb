import json

import pytest

from tfdistill.app import config


def test_defaults_resolve_and_overrides_are_read_as_json():
    resolved = config.resolve(None, ["distill.epochs=3", "distill.temperature=2", 'export.tflite=["int8"]',
                                     "distill.soft_loss=dkd", "data.train_subset=null"])
    assert resolved["distill"]["epochs"] == 3
    assert resolved["distill"]["temperature"] == 2.0 and isinstance(resolved["distill"]["temperature"], float)
    assert resolved["export"]["tflite"] == ["int8"] and resolved["distill"]["soft_loss"] == "dkd"
    assert config.resolve()["distill"] == config.DEFAULTS["distill"]


@pytest.mark.parametrize(
    "given,overrides,message",
    [
        ({"distill": {"temprature": 2.0}}, [], r"Unknown key `distill.temprature`. Did you mean 'temperature'\?"),
        ({"distil": {}}, [], r"Unknown config section 'distil'. Did you mean 'distill'\?"),
        (None, ["distill.epochs=three"], r"`distill.epochs`: expected an integer. Received: 'three'"),
        (None, ["distill.epochs=2.5"], r"`distill.epochs`: expected an integer"),
        (None, ["distill.train_scratch=1"], r"`distill.train_scratch`: expected a boolean"),
        (None, ["epochs=3"], r"expected `section.key=value`"),
        (None, ["distill.temperature=0"], r"`distill.temperature`: expected a number > 0"),
        (None, ["distill.soft_loss=kdd"], r"`distill.soft_loss`: expected one of \[.*Did you mean 'kd'\?"),
        (None, ['export.tflite=["int4"]'], r"`export.tflite`: expected items of"),
        (None, ["data.dataset=cifar10"], r"`data.dataset`: expected one of \['fashion_mnist'\]"),
        ({"distill": 3}, [], r"section `distill`: expected a mapping"),
        (None, ["qat.teacher=float"], r"`qat.teacher`: expected 'teacher' or 'student'"),
        (None, ["qat.epochs=-1"], r"`qat.epochs`: expected an integer >= 0"),
        (None, ["qat.learning_rate=0"], r"`qat.learning_rate`: expected a number > 0"),
        (None, ["qat.weight_bits=2"], r"`qat.weight_bits`: expected 8 or 4"),
    ],
)
def test_bad_configs_name_the_key_and_the_fix(given, overrides, message):
    with pytest.raises(config.ConfigError, match=message):
        config.resolve(given, overrides)


def test_yaml_and_json_files_load_as_plain_data(tmp_path):
    (tmp_path / "a.yaml").write_text("distill:\n  epochs: 4\n")
    (tmp_path / "a.json").write_text(json.dumps({"distill": {"epochs": 5}}))
    assert config.resolve(config.load(str(tmp_path / "a.yaml")))["distill"]["epochs"] == 4
    assert config.resolve(config.load(str(tmp_path / "a.json")))["distill"]["epochs"] == 5


def test_yaml_cannot_run_code(tmp_path):
    marker = tmp_path / "ran"
    (tmp_path / "evil.yaml").write_text(f"distill: !!python/object/apply:os.system ['touch {marker}']\n")
    with pytest.raises(config.ConfigError, match="could not be parsed"):
        config.load(str(tmp_path / "evil.yaml"))
    assert not marker.exists()


def test_missing_and_unknown_files(tmp_path):
    with pytest.raises(config.ConfigError, match="not found"):
        config.load(str(tmp_path / "nope.yaml"))
    (tmp_path / "c.toml").write_text("")
    with pytest.raises(config.ConfigError, match="expected a .json, .yaml or .yml file"):
        config.load(str(tmp_path / "c.toml"))
