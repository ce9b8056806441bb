"""The commands of `tfdistill` that are not runs: cache, export, evaluate, train-teacher, benchmark.

Each takes the parsed arguments (`tfdistill.app.cli`) and returns the exit
status. TensorFlow is imported inside them, so `--help` answers without it.
"""

import contextlib
import os
import runpy
import sys

from tfdistill.errors import ConfigError, TfdistillError

FASHION_MNIST_TEACHER = "saved_models/fashion_mnist_teacher"
# `--progress` choices as Keras verbosity.
VERBOSITY = {"bar": 1, "epoch": 2, "none": 0}


@contextlib.contextmanager
def user_file():
    """A library `ValueError` about a file the user named (damaged, or a softmax output) is expected.

    The library raises plain `ValueError`s for bad input, as Keras does; here the input is the
    user's, so the error is theirs to fix and becomes a `ConfigError` with the same message.
    """
    try:
        yield
    except ValueError as error:
        if isinstance(error, TfdistillError):
            raise
        raise ConfigError(str(error)) from error


def data_from_argument(text, input_shape, data_dir=None, streamed=True):
    """The `Data` a command's `--data` names: `NAME.npz`, an image folder, `tfds:NAME`, or `None` (Fashion-MNIST).

    `streamed=False` refuses an image folder (for commands that need the data in memory).
    """
    from tfdistill.app import config, data_sources

    if text is None:
        form = {}
    elif text.startswith("tfds:"):
        form = {"tfds": text[len("tfds:"):]}
    elif text.endswith(".npz"):
        form = {"arrays": text}
    elif os.path.isdir(text):
        if not streamed:
            raise ConfigError(
                f"Invalid value for argument `--data`: this command takes data held in memory (an .npz file or "
                f"tfds:NAME), not an image folder. Received: {text!r}"
            )
        form = {"image_folder": text}
    else:
        raise ConfigError(
            f"Invalid value for argument `--data`: expected an .npz file, an image folder or tfds:NAME. "
            f"Received: {text!r}" + ("" if os.path.exists(text) else " (no such file or folder)")
        )
    return data_sources.from_config(config.section("data", **form, data_dir=data_dir, validation_size=0), input_shape)


def cache(args):
    """`tfdistill cache`: the config's teacher pass on Apache Beam into `cache.path`."""
    from tfdistill.app import config, teacher_cache

    run_config = config.run_config(config.load(args.config) if args.config else None, args.set)
    runner, *options = args.runner or ["DirectRunner"]
    teacher_cache.write(run_config, [f"--runner={runner}", *options])
    return 0


def export(args):
    from tfdistill.export import export_saved_model, export_tflite
    from tfdistill.model_files import load_model

    with user_file():
        model = load_model(args.model, role="model")
    data = data_from_argument(args.data, tuple(model.inputs[0].shape[1:]), args.data_dir)
    if args.format == "saved_model":
        path = export_saved_model(
            model, args.output, version=args.version, overwrite=args.overwrite,
            raw_shape=(None, *data.raw_shape), raw_dtype=data.raw_dtype, scale=data.scale,
            class_names=data.class_names,
        )
        print(f"SavedModel written to {path}: serving_default takes {data.raw_dtype} examples of shape "
              f"{tuple(data.raw_shape)} and returns probabilities, class_id and class_name ({data.description})")
        return 0
    calibration = data.sample(data.train, args.calibration_examples, args.seed)
    x_test, y_test = data.arrays(data.test, limit=args.verify_examples)
    report = export_tflite(
        model, args.output, x_test, y_test, args.quantization,
        representative_data=calibration, min_agreement=args.min_agreement,
        overwrite=args.overwrite, num_calibration=args.calibration_examples, int8_io=args.int8_io,
    )
    print(f"TFLite written to {args.output}, verified on {len(y_test):,} test examples of {data.description}:")
    print(f"  {report}")
    return 0


def train_teacher(args):
    from tfdistill.app import training
    from tfdistill.export import export_saved_model

    data = data_from_argument(args.data, None, args.data_dir, streamed=False)
    if len(data.raw_shape) not in (2, 3):
        raise ConfigError(
            f"Invalid value for argument `--data`: the built-in teacher is a CNN for images (n, h, w[, c]), "
            f"but {data.description} holds examples of shape {data.raw_shape}. Train your own teacher with "
            "Keras and pass it as `teacher.path`."
        )
    output = args.output or (FASHION_MNIST_TEACHER if args.data is None else None)
    if output is None:
        raise ConfigError("Invalid arguments: with `--data`, give `--output` (the teacher's model folder, e.g. "
                          "saved_models/my_teacher), so the Fashion-MNIST teacher's folder gets no other model.")
    teacher = training.train_image_teacher(data.train.x, data.train.y, epochs=args.epochs, seed=args.seed,
                                           verbose=VERBOSITY[args.progress], num_classes=len(data.class_names))
    x_test, y_test = data.arrays(data.test)
    print(f"Teacher test accuracy on {data.description}: {training.accuracy(teacher, x_test, y_test):.2%}")
    path = export_saved_model(teacher, output, raw_shape=(None, *data.raw_shape), raw_dtype=data.raw_dtype,
                              scale=data.scale, class_names=data.class_names)
    print(f"Teacher saved to {path}")
    return 0


_STRIP_SOFTMAX_FILE = "Save `tfdistill.strip_softmax(model)` to a .keras file and pass that file."


def evaluate(args):
    import numpy as np

    from tfdistill import validation
    from tfdistill.model_files import load_model

    for argument, path in (("model", args.model), ("--teacher", args.teacher)):
        if path is not None and not os.path.isfile(path):
            raise FileNotFoundError(f"Invalid value for argument `{argument}`: no file at {path!r}")
    if not args.model.endswith((".tflite", ".keras")):
        raise ConfigError(f"Invalid value for argument `model`: expected a .keras or .tflite file. Received: {args.model!r}")
    if args.teacher is not None and not args.teacher.endswith(".keras"):
        raise ConfigError(f"Invalid value for argument `--teacher`: expected a .keras file. Received: {args.teacher!r}")
    size = os.path.getsize(args.model)
    predict, input_shape, parameters = _predictor(args.model, check_logits=args.teacher is not None)
    teacher = None
    if args.teacher is not None:
        with user_file():
            teacher = load_model(args.teacher, role="teacher")
            validation.check_logits_model(teacher, "--teacher", remedy=_STRIP_SOFTMAX_FILE)
    data = data_from_argument(args.data, input_shape, args.data_dir)
    splits = {"test": data.test}
    if teacher is not None:
        splits = {"train": data.train, **splits}
    logits = {name: predict(data.batches(split)) for name, split in splits.items()}
    classes = logits["test"].shape[-1]
    if len(data.class_names) != classes or data.test.y.max() >= classes:
        raise ConfigError(
            f"Invalid value for argument `--data`: {data.description} has {len(data.class_names)} classes "
            f"(labels up to {data.test.y.max()}) but the model outputs {classes}."
        )
    accuracy = np.mean(logits["test"].argmax(-1) == data.test.y)
    print(f"{args.model}: {size:,} bytes, {parameters} parameters, "
          f"{data.description} test accuracy {accuracy:.2%} ({len(data.test):,} examples)")
    if teacher is not None:
        from tfdistill.fidelity import fidelity_from_logits

        print(f"Fidelity to the teacher {args.teacher}:")
        for name, split in splits.items():
            teacher_logits = teacher.predict(data.batches(split), verbose=0)
            print(f"  {name:<5} {fidelity_from_logits(teacher_logits, logits[name], split.y)}")
    return 0


def _predictor(path, check_logits):
    """`(predict, input shape, parameters)` of a `.keras` or `.tflite` model; `predict` takes `(x, y)` batches."""
    import numpy as np

    from tfdistill import validation
    from tfdistill.model_files import load_model

    if path.endswith(".tflite"):
        from tfdistill.export.tflite import TFLiteRunner

        with open(path, "rb") as f, user_file():
            runner = TFLiteRunner(f.read())

        def predict(batches):
            return np.concatenate([runner(example) for x, _ in batches for example in x.numpy()])

        return predict, tuple(int(d) for d in runner.input["shape"][1:]), "n/a"
    with user_file():
        model = load_model(path, role="model")
        if check_logits:
            validation.check_logits_model(model, "model", remedy=_STRIP_SOFTMAX_FILE)
    return (lambda batches: model.predict(batches, verbose=0)), tuple(model.inputs[0].shape[1:]), f"{model.count_params():,}"


def benchmark(args):
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    script = os.path.join(root, "benchmarks", f"{args.name.replace('-', '_')}.py")
    if not os.path.isfile(script):
        raise FileNotFoundError(
            f"Benchmark script {script!r} not found: benchmarks run from a source checkout "
            "(`pip install -e .`)."
        )
    sys.argv = [script, *args.args]
    sys.path.insert(0, os.path.dirname(script))  # as `python benchmarks/NAME.py` does: `import common`
    runpy.run_path(script, run_name="__main__")
    return 0
