"""Run configurations: plain data (JSON or YAML), checked before any work starts.

A config is a dict of sections; `DEFAULTS` lists every key with its default,
and a value's type is the default's type (`None` defaults accept a number or a
string). Nothing in a config can import or run code: YAML is read with
`yaml.safe_load`, JSON with `json.load`.
"""

import copy
import difflib
import json
import os

from tfdistill.errors import ConfigError

DEFAULTS = {
    "data": {
        "dataset": "fashion_mnist",
        "data_dir": None,
        "train_subset": None,
        "validation_size": 5000,
        "seed": 0,
    },
    "teacher": {
        "path": "saved_models/fashion_mnist_teacher",
        "epochs": 24,
    },
    "student": {
        "width": 16,
    },
    "distill": {
        "soft_loss": "kd",
        "temperature": 1.0,
        "hard_weight": 0.0,
        "soft_weight": 1.0,
        "epochs": 12,
        "batch_size": 128,
        "learning_rate": 0.003,
        "views": 4,
        "seed": 0,
        "train_scratch": True,
        "precise_batch_norm": True,
    },
    "export": {
        "saved_model": True,
        "tflite": ["float32", "int8"],
        "min_agreement": 0.99,
        "calibration_examples": 200,
    },
}

DATASETS = ("fashion_mnist",)




def _type_name(value):
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list"}.get(
        type(value), type(value).__name__
    )


def _closest(key, valid):
    match = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
    return f" Did you mean {match[0]!r}?" if match else ""


def _check_value(path, value, default):
    if default is None:
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float, str))):
            raise ConfigError(f"Invalid value for `{path}`: expected a number, a string or null. Received: {value!r}")
        return value
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, type(default))
    if not ok:
        raise ConfigError(
            f"Invalid value for `{path}`: expected {_type_name(default)}. "
            f"Received: {value!r} ({_type_name(value)})"
        )
    return value


def resolve(config=None, overrides=()):
    """Merges `config` and `overrides` into `DEFAULTS` and checks every key and type.

    Args:
        config: a dict of sections (from `load`), or `None` for the defaults.
        overrides: strings `"section.key=value"`; `value` is read as JSON
            (`3`, `0.5`, `true`, `"kd"`, `["int8"]`), or as a string when it
            is not valid JSON.

    Returns:
        The resolved config, a new dict.

    Raises:
        ConfigError: an unknown section or key (with the closest valid one),
            a wrong type, an override that is not `section.key=value`, or an
            out-of-range value.

    Example:
        >>> resolve({"distill": {"epochs": 3}}, ["distill.temperature=2"])["distill"]["temperature"]
        2.0
    """
    resolved = copy.deepcopy(DEFAULTS)
    config = config or {}
    if not isinstance(config, dict):
        raise ConfigError(f"Invalid config: expected a mapping of sections. Received: {type(config).__name__}")
    entries = []
    for section, values in config.items():
        if section not in DEFAULTS:
            raise ConfigError(f"Unknown config section {section!r}.{_closest(section, list(DEFAULTS))} Valid sections: {sorted(DEFAULTS)}")
        if not isinstance(values, dict):
            raise ConfigError(f"Invalid config section `{section}`: expected a mapping of keys. Received: {values!r}")
        entries += [(section, key, value) for key, value in values.items()]
    for override in overrides:
        path, sep, text = override.partition("=")
        section, dot, key = path.strip().partition(".")
        if not sep or not dot:
            raise ConfigError(f"Invalid override {override!r}: expected `section.key=value`, e.g. `distill.epochs=5`.")
        if section not in DEFAULTS:
            raise ConfigError(f"Unknown config section {section!r}.{_closest(section, list(DEFAULTS))} Valid sections: {sorted(DEFAULTS)}")
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text
        entries.append((section, key, value))
    for section, key, value in entries:
        if key not in DEFAULTS[section]:
            valid = list(DEFAULTS[section])
            raise ConfigError(
                f"Unknown key `{section}.{key}`.{_closest(key, valid)} Valid keys of `{section}`: {valid}"
            )
        resolved[section][key] = _check_value(f"{section}.{key}", value, DEFAULTS[section][key])
    _check_ranges(resolved)
    return resolved


def _check_ranges(config):
    if config["data"]["dataset"] not in DATASETS:
        raise ConfigError(
            f"Invalid value for `data.dataset`: expected one of {list(DATASETS)} (the "
            f"demo models take 28x28 grey images). Received: {config['data']['dataset']!r}"
        )
    for path, minimum in (
        ("distill.epochs", 1), ("distill.batch_size", 1), ("distill.views", 1), ("student.width", 1),
        ("teacher.epochs", 1), ("data.validation_size", 0), ("export.calibration_examples", 1),
    ):
        section, key = path.split(".")
        if config[section][key] < minimum:
            raise ConfigError(f"Invalid value for `{path}`: expected an integer >= {minimum}. Received: {config[section][key]}")
    for path in ("distill.temperature", "distill.learning_rate"):
        section, key = path.split(".")
        if not config[section][key] > 0:
            raise ConfigError(f"Invalid value for `{path}`: expected a number > 0. Received: {config[section][key]}")
    for path in ("distill.hard_weight", "distill.soft_weight"):
        section, key = path.split(".")
        if config[section][key] < 0:
            raise ConfigError(f"Invalid value for `{path}`: expected a number >= 0. Received: {config[section][key]}")
    from tfdistill.export.tflite import QUANTIZATIONS
    from tfdistill.losses import SOFT_LOSSES

    if config["distill"]["soft_loss"] not in SOFT_LOSSES:
        raise ConfigError(
            f"Invalid value for `distill.soft_loss`: expected one of {sorted(SOFT_LOSSES)}."
            f"{_closest(config['distill']['soft_loss'], list(SOFT_LOSSES))} Received: {config['distill']['soft_loss']!r}"
        )
    for quantization in config["export"]["tflite"]:
        if quantization not in QUANTIZATIONS:
            raise ConfigError(
                f"Invalid value in `export.tflite`: expected items of {list(QUANTIZATIONS)}. Received: {quantization!r}"
            )
    subset = config["data"]["train_subset"]
    if subset is not None and (not isinstance(subset, int) or subset <= config["data"]["validation_size"]):
        raise ConfigError(
            "Invalid value for `data.train_subset`: expected null or an integer larger than "
            f"`data.validation_size` ({config['data']['validation_size']}). Received: {subset!r}"
        )


def load(path):
    """Reads a config file: `.json`, or `.yaml`/`.yml` (safe loader: plain data only).

    Raises:
        ConfigError: missing file, unknown extension or unparsable content.
    """
    if not os.path.isfile(path):
        raise ConfigError(f"Config file not found: {path!r}")
    extension = os.path.splitext(path)[1].lower()
    with open(path) as f:
        text = f.read()
    try:
        if extension == ".json":
            return json.loads(text)
        if extension in (".yaml", ".yml"):
            import yaml

            return yaml.safe_load(text) or {}
    except Exception as error:  # json.JSONDecodeError, yaml.YAMLError
        raise ConfigError(f"Config file {path!r} could not be parsed: {error}") from error
    raise ConfigError(f"Invalid config file {path!r}: expected a .json, .yaml or .yml file.")
