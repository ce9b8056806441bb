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
        "arrays": None,
        "image_folder": None,
        "image_size": None,
        "class_names": None,
        "test_size": 0.2,
        "tfds": None,
        "tfds_train_split": "train",
        "tfds_test_split": "test",
        "data_dir": None,
        "train_subset": None,
        "validation_size": None,
        "seed": 0,
    },
    "teacher": {
        "path": "saved_models/fashion_mnist_teacher",
        "outputs": "logits",
        "output_key": None,
        "epochs": 24,
    },
    "student": {
        "path": None,
        "builder": None,
        "args": {},
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
    "qat": {
        "epochs": 2,
        "learning_rate": 0.0001,
        "teacher": "student",
        "hard_weight": 0.0,
        "soft_weight": 1.0,
        "per_channel": True,
        "weight_bits": 8,
        "output_top_k": 2,
    },
    "export": {
        "saved_model": True,
        "tflite": ["float32", "int8"],
        "min_agreement": 0.99,
        "calibration_examples": 200,
        "verify_examples": 10000,
    },
}

# What each key is, for `tfdistill distill --help` and the README.
HELP = {
    "data.dataset": "the built-in dataset when no other form is given: fashion_mnist",
    "data.arrays": "an .npz with x_train, y_train, x_test, y_test (and optional class_names)",
    "data.image_folder": "a folder of class sub-folders (or train/ and test/ of them), streamed from disk",
    "data.image_size": "[height, width] to read images at (default: the teacher's input size)",
    "data.class_names": "an image folder's class folders in the teacher's class order (default: sorted by name)",
    "data.test_size": "an image folder without train/ and test/: the test split, a count or a fraction",
    "data.tfds": "a TFDS dataset name (tensorflow-datasets, data prepared locally)",
    "data.train_subset": "train on this many training examples: the first ones of arrays, drawn at random from an image folder",
    "data.validation_size": "held out of the training split for validation: a count or a fraction "
                            "(default: 5,000 or a tenth of the training examples, whichever is fewer)",
    "teacher.path": "a .keras file, a SavedModel folder or a TF Serving model folder (its highest version)",
    "teacher.outputs": "what the teacher outputs: logits, or probabilities (distilled as their logarithm)",
    "teacher.output_key": "a SavedModel's output to read when its signature has several",
    "student.path": "a .keras student; its weights are the initial weights of both runs",
    "student.builder": "package.module:function that returns the student (called with student.args)",
    "student.width": "the built-in CNN student's width, when neither path nor builder is given",
    "qat.epochs": "quantization-aware distillation after distilling, when export.tflite has int8 (0: none): "
                  "the distilled student fake-quantized and distilled again, exported as student_int8_qad.tflite",
    "qat.teacher": "who teaches the int8 student: student (the float distilled student, self-distillation: "
                   "the int8 model follows it most closely) or teacher (the run's teacher, from its cache)",
    "qat.weight_bits": "8, or 4: weights on 15 levels, stored as TFLite INT4 tensors (two per byte)",
    "qat.output_top_k": "the int8 logits' range covers each example's k largest logits (finer steps around "
                        "the top class); 0: every logit",
}
# Keys whose value is a count or a fraction of the examples it is taken from.
COUNT_OR_FRACTION = ("data.validation_size", "data.test_size")

DATASETS = ("fashion_mnist",)




def _type_name(value):
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list", dict: "a mapping"}.get(
        type(value), type(value).__name__
    )


def _closest(key, valid):
    match = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
    return f" Did you mean {match[0]!r}?" if match else ""


def _check_value(path, value, default):
    if path in COUNT_OR_FRACTION:
        if value is None and default is None:
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ConfigError(f"Invalid value for `{path}`: expected a count (an integer >= 0) or a fraction "
                              f"in [0, 1). Received: {value!r}")
        if isinstance(value, float) and value >= 1:
            if not value.is_integer():
                raise ConfigError(f"Invalid value for `{path}`: expected a fraction in [0, 1) or a count. Received: {value!r}")
            value = int(value)
        return value
    if default is None:
        lists = {"data.image_size": "a list [height, width]", "data.class_names": "a list of folder names"}
        allowed = (list,) if path in lists else (int, float, str)
        if value is not None and (isinstance(value, bool) or not isinstance(value, allowed)):
            expected = lists.get(path, "a number, a string")
            raise ConfigError(f"Invalid value for `{path}`: expected {expected} or null. Received: {value!r}")
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
        ("teacher.epochs", 1), ("export.calibration_examples", 1), ("export.verify_examples", 1),
    ):
        section, key = path.split(".")
        if config[section][key] < minimum:
            raise ConfigError(f"Invalid value for `{path}`: expected an integer >= {minimum}. Received: {config[section][key]}")
    for path in ("qat.epochs", "qat.output_top_k"):
        section, key = path.split(".")
        if config[section][key] < 0:
            raise ConfigError(f"Invalid value for `{path}`: expected an integer >= 0. Received: {config[section][key]}")
    if config["qat"]["weight_bits"] not in (4, 8):
        raise ConfigError(f"Invalid value for `qat.weight_bits`: expected 8 or 4. Received: {config['qat']['weight_bits']}")
    if config["qat"]["teacher"] not in ("teacher", "student"):
        raise ConfigError(
            "Invalid value for `qat.teacher`: expected 'teacher' or 'student'."
            f"{_closest(config['qat']['teacher'], ['teacher', 'student'])} Received: {config['qat']['teacher']!r}"
        )
    for path in ("distill.temperature", "distill.learning_rate", "qat.learning_rate"):
        section, key = path.split(".")
        if not config[section][key] > 0:
            raise ConfigError(f"Invalid value for `{path}`: expected a number > 0. Received: {config[section][key]}")
    for path in ("distill.hard_weight", "distill.soft_weight", "qat.hard_weight", "qat.soft_weight"):
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
    if config["teacher"]["outputs"] not in ("logits", "probabilities"):
        raise ConfigError(
            "Invalid value for `teacher.outputs`: expected 'logits' or 'probabilities'."
            f"{_closest(config['teacher']['outputs'], ['logits', 'probabilities'])} Received: {config['teacher']['outputs']!r}"
        )
    if config["student"]["path"] is not None and config["student"]["builder"] is not None:
        raise ConfigError("Invalid config: give `student.path` or `student.builder`, not both.")
    builder = config["student"]["builder"]
    if builder is not None and (not isinstance(builder, str) or builder.count(":") != 1):
        raise ConfigError(
            "Invalid value for `student.builder`: expected 'package.module:function'. "
            f"Received: {builder!r}"
        )
    subset = config["data"]["train_subset"]
    validation_size = config["data"]["validation_size"]
    if subset is not None and (not isinstance(subset, int) or (isinstance(validation_size, int) and subset <= validation_size)):
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
