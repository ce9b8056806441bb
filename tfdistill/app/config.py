"""Run configurations: plain data (JSON or YAML), checked before any work starts.

A config is a dict of sections; `DEFAULTS` lists every key with its default
and `HELP` what it is, and a value's type is the default's type (`None`
defaults accept a number or a string). Nothing in a config can import or run
code: YAML is read with `yaml.safe_load`, JSON with `json.load`. `resolve`
gives the checked dict (what `config.json` holds); `run_config` gives it as
typed sections, the `RunConfig` of `tfdistill.app.sections` that a run reads.
"""

import copy
import json
import os

from tfdistill.app.sections import SECTIONS, RunConfig, closest as _closest
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
        "test_subset": None,
        "validation_size": None,
        "seed": 0,
        "unlabeled": None,
        "labels_per_class": None,
    },
    "teacher": {
        "path": "saved_models/fashion_mnist_teacher",
        "outputs": "logits",
        "output_key": None,
        "epochs": 24,
        "cache_dir": None,
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
        "labeled_share": None,
    },
    "cache": {
        "path": None,
        "batch_size": 256,
        "examples_per_shard": 10240,
        "dtype": "float16",
    },
    "qat": {
        "epochs": 0,
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
        "serving_dir": None,
    },
}

# What each key is, for `tfdistill distill --help` and the docs' config reference.
HELP = {
    "data.dataset": "the built-in dataset when no other form is given: fashion_mnist",
    "data.arrays": "an .npz with x_train, y_train, x_test, y_test (and optional class_names)",
    "data.image_folder": "a folder of class sub-folders (or train/ and test/ of them), streamed from disk",
    "data.image_size": "[height, width] to read images at (default: the teacher's input size)",
    "data.class_names": "an image folder's class folders in the teacher's class order (default: sorted by name)",
    "data.test_size": "an image folder without train/ and test/: the test split, a count or a fraction",
    "data.tfds": "a TFDS dataset name (tensorflow-datasets, data prepared locally)",
    "data.tfds_train_split": "the TFDS split to train on (any TFDS split spec, e.g. train[:80%])",
    "data.tfds_test_split": "the TFDS split to test on",
    "data.data_dir": "where the data is read from: Fashion-MNIST's IDX folder (default: Debian's), or TFDS's data_dir",
    "data.train_subset": "train on this many training examples: the first ones of arrays, drawn at random from an image folder",
    "data.test_subset": "test on this many test examples (a quick run): the first ones of arrays, drawn at random "
                        "from an image folder (null: the whole test split)",
    "data.validation_size": "held out of the training split for validation: a count or a fraction "
                            "(default: 5,000 or a tenth of the training examples, whichever is fewer)",
    "data.seed": "seed of the splits drawn at random (validation, an image folder's test split and subset) "
                 "and of the labels kept by labels_per_class",
    "data.unlabeled": "unlabeled examples added to the training split as a pool labeled -1: an .npz with x "
                      "(examples of the labeled data's shape and dtype), or a folder of images without class "
                      "folders (streamed, read at the labeled images' size)",
    "data.labels_per_class": "keep this many labels per class of the training split (drawn with data.seed); "
                             "the other examples join the unlabeled pool (null: every label)",
    "teacher.path": "a .keras file, a SavedModel folder or a TF Serving model folder (its highest version)",
    "teacher.outputs": "what the teacher outputs: logits, or probabilities (distilled as their logarithm)",
    "teacher.output_key": "a SavedModel's output to read when its signature has several",
    "teacher.epochs": "epochs of a teacher trained by the command line (`tfdistill demo --retrain-teacher`, "
                      "`tfdistill train-teacher`)",
    "teacher.cache_dir": "a folder that keeps the teacher's outputs on in-memory training data between runs, "
                         "keyed by the teacher, the examples, the views and the seed (default: computed in each run)",
    "student.path": "a .keras student; its weights are the initial weights of both runs",
    "student.builder": "package.module:function that returns the student (called with student.args)",
    "student.args": "the keyword arguments of student.builder (plain data)",
    "student.width": "the built-in CNN student's width, when neither path nor builder is given",
    "distill.soft_loss": "the soft loss by name (tfdistill.losses.SOFT_LOSSES)",
    "distill.temperature": "the soft loss's temperature",
    "distill.hard_weight": "the weight of the labels' cross-entropy in the distilled student's loss",
    "distill.soft_weight": "the weight of the soft loss (the student alone trains with 0)",
    "distill.epochs": "epochs of each student; with unlabeled examples an epoch is one pass over the training "
                      "split (labels and pool), and the student alone takes as many steps on its labels",
    "distill.batch_size": "examples per training step",
    "distill.learning_rate": "Adam's peak learning rate, with cosine decay to 0",
    "distill.views": "augmented views of each training image whose teacher outputs are computed once (1: the images alone)",
    "distill.seed": "seed of the students' initial weights, the batch order and the views",
    "distill.train_scratch": "also train the student alone, from the same initial weights, to compare",
    "distill.precise_batch_norm": "recompute the students' BatchNorm statistics over their training examples when "
                                  "training ends, so they evaluate as they trained",
    "distill.labeled_share": "null: batches as they come; or the share of labeled examples in every batch of the "
                             "distilled student, the rest from the unlabeled pool (an epoch is then one pass over the pool)",
    "cache.path": "a sharded cache of the teacher's outputs on the training split (labeled examples and unlabeled "
                  "pool): `tfdistill cache` writes it on Apache Beam, `distill` and `tune` then read it instead of "
                  "running the teacher (a folder, or gs://... for the writing; default: the run computes them)",
    "cache.batch_size": "the teacher's inference batch size in `tfdistill cache`",
    "cache.examples_per_shard": "examples per shard of that cache, a multiple of cache.batch_size",
    "cache.dtype": "what the cache stores the teacher's outputs as: float16 or float32",
    "qat.epochs": "quantization-aware distillation after distilling, when export.tflite has int8 (0, the default: none): "
                  "the distilled student fake-quantized and distilled again, exported as student_int8_qad.tflite",
    "qat.learning_rate": "Adam's peak learning rate of that stage, with cosine decay to 0 (small: the weights "
                         "start trained)",
    "qat.teacher": "who teaches the int8 student: student (the float distilled student, self-distillation: "
                   "the int8 model follows it most closely) or teacher (the run's teacher, from its cache)",
    "qat.hard_weight": "the weight of the labels' cross-entropy in that stage's loss",
    "qat.soft_weight": "the weight of the soft loss (KD at temperature 1) in that stage's loss",
    "qat.per_channel": "a weight scale per output channel (true) or one per tensor (false)",
    "qat.weight_bits": "8, or 4: weights on 15 levels, stored as TFLite INT4 tensors (two per byte)",
    "qat.output_top_k": "the int8 logits' range covers each example's k largest logits (finer steps around "
                        "the top class); 0: every logit",
    "export.saved_model": "export the distilled student as a TF Serving SavedModel",
    "export.tflite": "the TFLite quantizations to export, each verified against the Keras student",
    "export.min_agreement": "the lowest top-1 agreement of a TFLite file with the Keras student on the test "
                            "examples; below it the file is not written",
    "export.calibration_examples": "training examples drawn at random to calibrate int8",
    "export.verify_examples": "test examples a TFLite file is verified on (at most)",
    "export.serving_dir": "a TF Serving model folder that gets the distilled student as its next version, with "
                          "the .tflite files in assets.extra/ (default: the run's export/ folder)",
}
# Keys whose value is a count or a fraction of the examples it is taken from.
COUNT_OR_FRACTION = ("data.validation_size", "data.test_size")


def _type_name(value):
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list", dict: "a mapping"}.get(
        type(value), type(value).__name__
    )


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
    resolved = _merged(config, overrides)
    RunConfig.from_dict(resolved)  # the sections' own checks (ranges, choices), then those across sections
    return resolved


def _merged(config, overrides):
    """`DEFAULTS` with `config` and `overrides` merged in, every key and type checked (see `resolve`)."""
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
    return resolved


def run_config(config=None, overrides=()):
    """`resolve`, as typed sections: a `tfdistill.app.sections.RunConfig`.

    Example:
        >>> run_config(None, ["distill.epochs=3"]).distill.epochs
        3
    """
    return RunConfig.from_dict(resolve(config, overrides))


def section(name, **values):
    """One section from `DEFAULTS` with some keys changed, checked as in a config.

    For code that runs one stage of a run without a config file (the examples' task comparison);
    the checks across sections (e.g. `distill.labeled_share` needs unlabeled data) are left to the
    code that brings the sections together.

    Example:
        >>> section("distill", epochs=20, views=1).views
        1
    """
    return SECTIONS[name].from_dict(_merged({name: values}, ())[name])


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
