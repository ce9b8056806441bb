import dataclasses
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


def test_every_key_has_a_typed_field_and_a_description():
    from tfdistill.app.sections import SECTIONS, RunConfig

    assert [field.name for field in dataclasses.fields(RunConfig)] == list(config.DEFAULTS)
    for name, keys in config.DEFAULTS.items():
        assert [field.name for field in dataclasses.fields(SECTIONS[name])] == list(keys)
        assert all(f"{name}.{key}" in config.HELP for key in keys), [key for key in keys if f"{name}.{key}" not in config.HELP]
    assert set(config.HELP) == {f"{name}.{key}" for name, keys in config.DEFAULTS.items() for key in keys}


def test_typed_sections_hold_the_resolved_values_and_give_them_back():
    resolved = config.resolve(None, ["distill.epochs=3", "data.labels_per_class=10", "distill.labeled_share=0.25"])
    typed = config.run_config(None, ["distill.epochs=3", "data.labels_per_class=10", "distill.labeled_share=0.25"])
    assert typed.distill.epochs == 3 and typed.data.labels_per_class == 10 and typed.distill.labeled_share == 0.25
    assert typed.to_dict() == resolved
    assert config.section("distill", views=1).views == 1 and config.section("distill").epochs == 12
    with pytest.raises(dataclasses.FrozenInstanceError):
        typed.distill.epochs = 5  # frozen: a run's settings do not change under it


@pytest.mark.parametrize(
    "overrides,message",
    [
        (["data.labels_per_class=0"], r"`data.labels_per_class`: expected null \(every label\) or an integer >= 1. Received: 0"),
        (["data.labels_per_class=2.5"], r"`data.labels_per_class`: expected null \(every label\) or an integer >= 1"),
        (["data.unlabeled=3"], r"`data.unlabeled`: expected the path of an .npz file or of a folder of images. Received: 3"),
        (["distill.labeled_share=0.25"], r"`distill.labeled_share`: it mixes labeled examples with unlabeled ones, but the "
                                         r"run has none \(give `data.unlabeled` or `data.labels_per_class`\)"),
        (["data.labels_per_class=10", "distill.labeled_share=1"], r"`distill.labeled_share`: expected null \(batches as "
                                                                  r"they come\) or a number in \(0, 1\)"),
        (["data.labels_per_class=10", "distill.labeled_share=0.5", "distill.batch_size=1"], r"`distill.labeled_share`"),
        (["export.serving_dir=7"], r"`export.serving_dir`: expected a folder's path. Received: 7"),
    ],
)
def test_bad_keys_for_unlabeled_data_name_the_key(overrides, message):
    with pytest.raises(config.ConfigError, match=message):
        config.resolve(None, overrides)
