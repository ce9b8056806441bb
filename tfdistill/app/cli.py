"""The `tfdistill` command line: demo, distill, cache, tune, train-teacher, evaluate, export, benchmark."""

import argparse
import json
import os
import runpy
import sys

_VERBOSITY = {"bar": 1, "epoch": 2, "none": 0}
BENCHMARKS = [
    "keras_distiller", "offline", "loss_zoo", "recipe_search", "distillation_gain", "default_suite",
    "function_matching", "guard_overhead", "precision", "cache_integrity",
]


def _demo(args):
    from tfdistill.app import demo

    recipe = demo.Recipe(
        epochs=args.epochs, views=args.views, seed=args.seed, student_width=args.student_width
    )
    demo.run(
        saved_models=args.saved_models,
        data_dir=args.data_dir,
        recipe=recipe,
        retrain_teacher=args.retrain_teacher,
        teacher_epochs=args.teacher_epochs,
        cache_dir=args.cache_dir,
        export=not args.no_export,
        verbose=1 if args.progress == "bar" else 2,
    )


def _export(args):
    from tfdistill.app import data_sources
    from tfdistill.export import export_saved_model, export_tflite
    from tfdistill.model_files import load_model

    model = load_model(args.model, role="model")
    data = data_sources.from_argument(args.data, tuple(model.inputs[0].shape[1:]), args.data_dir)
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


def _distill(args):
    from tfdistill.app import config as config_module

    loaded = config_module.load(args.config) if args.config else None
    config = config_module.resolve(loaded, args.set)
    if args.print_config:
        print(json.dumps(config, indent=2))
        return 0
    from tfdistill.app import runs

    runs.run_distillation(config, args.output, overwrite=args.overwrite, verbose=_VERBOSITY[args.progress])
    return 0


def _cache(args):
    from tfdistill.app import config as config_module

    loaded = config_module.load(args.config) if args.config else None
    config = config_module.resolve(loaded, args.set)
    from tfdistill.app import teacher_cache

    runner, *options = args.runner or ["DirectRunner"]
    teacher_cache.write(config, [f"--runner={runner}", *options])
    return 0


def _tune(args):
    from tfdistill.app import config as config_module

    loaded = config_module.load(args.config) if args.config else None
    config = config_module.resolve(loaded, args.set)
    from tfdistill.app import runs

    runs.run_tuning(config, args.output, families=args.families, seeds=args.seeds, overwrite=args.overwrite,
                    verbose=_VERBOSITY[args.progress])
    return 0


_FASHION_MNIST_TEACHER = "saved_models/fashion_mnist_teacher"


def _train_teacher(args):
    from tfdistill.app import data_sources, training
    from tfdistill.export import export_saved_model

    data = data_sources.from_argument(args.data, None, args.data_dir, streamed=False)
    if len(data.raw_shape) not in (2, 3):
        raise ValueError(
            f"Invalid value for argument `--data`: the built-in teacher is a CNN for images (n, h, w[, c]), "
            f"but {data.description} holds examples of shape {data.raw_shape}. Train your own teacher with "
            "Keras and pass it as `teacher.path`."
        )
    output = args.output or (_FASHION_MNIST_TEACHER if args.data is None else None)
    if output is None:
        raise ValueError("Invalid arguments: with `--data`, give `--output` (the teacher's model folder, e.g. "
                         "saved_models/my_teacher), so the Fashion-MNIST teacher's folder gets no other model.")
    teacher = training.train_teacher(data.train.x, data.train.y, epochs=args.epochs, seed=args.seed,
                                     verbose=_VERBOSITY[args.progress], num_classes=len(data.class_names))
    x_test, y_test = data.arrays(data.test)
    print(f"Teacher test accuracy on {data.description}: {training.accuracy(teacher, x_test, y_test):.2%}")
    path = export_saved_model(teacher, output, raw_shape=(None, *data.raw_shape), raw_dtype=data.raw_dtype,
                              scale=data.scale, class_names=data.class_names)
    print(f"Teacher saved to {path}")
    return 0


_DATA_HELP = (
    "the data: NAME.npz (x_train, y_train, x_test, y_test, optional class_names), an image folder "
    "(class sub-folders, or train/ and test/ of them; images read at the model's input size), or "
    "tfds:NAME; default: Fashion-MNIST"
)
_STRIP_SOFTMAX_FILE = "Save `tfdistill.strip_softmax(model)` to a .keras file and pass that file."


def _evaluate(args):
    import numpy as np

    from tfdistill import validation
    from tfdistill.app import data_sources
    from tfdistill.model_files import load_model

    for argument, path in (("model", args.model), ("--teacher", args.teacher)):
        if path is not None and not os.path.isfile(path):
            raise FileNotFoundError(f"Invalid value for argument `{argument}`: no file at {path!r}")
    if not args.model.endswith((".tflite", ".keras")):
        raise ValueError(f"Invalid value for argument `model`: expected a .keras or .tflite file. Received: {args.model!r}")
    if args.teacher is not None and not args.teacher.endswith(".keras"):
        raise ValueError(f"Invalid value for argument `--teacher`: expected a .keras file. Received: {args.teacher!r}")
    size = os.path.getsize(args.model)
    if args.model.endswith(".tflite"):
        from tfdistill.export.tflite import TFLiteRunner

        with open(args.model, "rb") as f:
            runner = TFLiteRunner(f.read())
        input_shape = tuple(int(d) for d in runner.input["shape"][1:])

        def predict(batches):
            return np.concatenate([runner(example) for x, _ in batches for example in x.numpy()])

        parameters = "n/a"
    else:
        model = load_model(args.model, role="model")
        input_shape = tuple(model.inputs[0].shape[1:])
        if args.teacher is not None:
            validation.check_logits_model(model, "model", remedy=_STRIP_SOFTMAX_FILE)

        def predict(batches):
            return model.predict(batches, verbose=0)

        parameters = f"{model.count_params():,}"
    teacher = None
    if args.teacher is not None:
        teacher = load_model(args.teacher, role="teacher")
        validation.check_logits_model(teacher, "--teacher", remedy=_STRIP_SOFTMAX_FILE)
    data = data_sources.from_argument(args.data, input_shape, args.data_dir)
    splits = {"test": data.test}
    if teacher is not None:
        splits = {"train": data.train, **splits}
    logits = {name: predict(data.batches(split)) for name, split in splits.items()}
    classes = logits["test"].shape[-1]
    if len(data.class_names) != classes or data.test.y.max() >= classes:
        raise ValueError(
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


def _benchmark(args):
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


def build_parser():
    parser = argparse.ArgumentParser(
        prog="tfdistill", description="Knowledge distillation for Keras 3 on TensorFlow."
    )
    parser.add_argument(
        "--verbose", action="store_true",
        help="also show TensorFlow's C++ log lines and the TFLite converter's messages "
             "(the `tfdistill` command hides them by default; see `tfdistill_command`)",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    from tfdistill.app.config import DEFAULTS, HELP

    distill_defaults, student_defaults = DEFAULTS["distill"], DEFAULTS["student"]
    demo = commands.add_parser(
        "demo",
        help="Distil the Fashion-MNIST teacher into a small student and export it.",
        description=(
            "Reuses the shipped teacher (or trains one), trains the same student alone "
            "and distilled from the same initial weights, prints a table and exports the "
            "distilled student to SAVED_MODELS/fashion_mnist_student/VERSION/."
        ),
    )
    demo.add_argument("--saved-models", default="saved_models", help="folder of exported models (default: %(default)s)")
    demo.add_argument("--data-dir", default=None, help="Fashion-MNIST IDX folder (default: /usr/share/datasets/fashion-mnist)")
    demo.add_argument("--epochs", type=int, default=distill_defaults["epochs"], help="student epochs (default: %(default)s)")
    demo.add_argument("--views", type=int, default=distill_defaults["views"], help="cached augmented views per image (default: %(default)s)")
    demo.add_argument("--student-width", type=int, default=student_defaults["width"], help="student's first-block filters (default: %(default)s)")
    demo.add_argument("--seed", type=int, default=distill_defaults["seed"], help="seed of weights, order and views (default: %(default)s)")
    demo.add_argument("--retrain-teacher", action="store_true", help="train a new teacher (25-35 minutes on 2 cores)")
    demo.add_argument("--teacher-epochs", type=int, default=DEFAULTS["teacher"]["epochs"], help="epochs of a retrained teacher (default: %(default)s)")
    demo.add_argument("--cache-dir", default=None, help="folder to keep teacher logits between runs")
    demo.add_argument("--no-export", action="store_true", help="do not export the distilled student")
    demo.add_argument("--progress", choices=["bar", "epoch"], default="epoch", help="a progress bar per step, or a line per epoch (default: %(default)s)")
    demo.set_defaults(func=_demo)

    export = commands.add_parser(
        "export",
        help="Export a .keras classifier to TFLite (verified on --data) or a TF Serving SavedModel.",
        description=(
            "TFLite: converts with TF's converter (int8 calibrated on examples of --data), runs the "
            ".tflite model on the data's test split and refuses to write it when its top-1 agreement "
            "with the Keras model is below --min-agreement. SavedModel: writes OUTPUT/VERSION/ (the "
            "next version unless --version is given) with a serving_default signature that takes the "
            "data's raw examples (uint8 images of its size, or float arrays) and returns "
            "probabilities, class ids and the data's class names."
        ),
    )
    export.add_argument("model", help="the .keras file to export")
    export.add_argument("--format", choices=["tflite", "saved_model"], default="tflite", help="(default: %(default)s)")
    export.add_argument("--output", required=True, help="the .tflite file, or the SavedModel's model folder saved_models/NAME")
    export.add_argument("--quantization", choices=["float32", "float16", "dynamic_range", "int8"], default="int8", help="TFLite only (default: %(default)s)")
    export.add_argument("--int8-io", action="store_true", help="int8 input and output tensors (with --quantization int8)")
    export.add_argument("--calibration-examples", type=int, default=200, help="int8 calibration examples drawn from the data's training split (default: %(default)s)")
    export.add_argument("--min-agreement", type=float, default=0.99, help="lowest top-1 agreement accepted (default: %(default)s)")
    export.add_argument("--version", type=int, default=None, help="SavedModel version number (default: next)")
    export.add_argument("--overwrite", action="store_true", help="replace an existing file or version")
    export.add_argument("--data", default=None, help=_DATA_HELP)
    export.add_argument("--data-dir", default=None, help="Fashion-MNIST IDX folder, or TFDS's data_dir")
    export.add_argument("--seed", type=int, default=0, help="seed of the calibration sample (default: %(default)s)")
    export.add_argument("--verify-examples", type=int, default=10_000,
                        help="verify the TFLite model on at most this many test examples (default: %(default)s)")
    export.set_defaults(func=_export)

    from tfdistill.app.config import DEFAULTS

    distill = commands.add_parser(
        "distill",
        help="Run a distillation described by a config file into its own folder, with a report.",
        description=(
            "Caches the teacher's logits, trains the student alone and distilled (same initial "
            "weights, data and views), tests both, exports and verifies the distilled student, and "
            "writes OUTPUT/: config.json (the resolved config), run.json, metrics/*.csv, "
            "tensorboard/, checkpoints/, export/, report.md and plots/. The config is plain JSON "
            "or YAML with the sections and keys below; --set overrides any key. Keys and "
            "defaults: " + "; ".join(f"{s}: " + ", ".join(f"{k}={json.dumps(v)}" for k, v in keys.items())
                                      for s, keys in DEFAULTS.items())
            + ". What the data, teacher and student keys mean: "
            + "; ".join(f"{key}: {text}" for key, text in HELP.items())
        ),
    )
    distill.add_argument("--config", help="a .json or .yaml config file (default: the defaults)")
    distill.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                         help="override one key, e.g. --set distill.epochs=5 (repeatable; VALUE is JSON)")
    distill.add_argument("--output", required=True, help="the run's folder")
    distill.add_argument("--overwrite", action="store_true", help="replace a finished run in --output")
    distill.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    distill.add_argument("--progress", choices=list(_VERBOSITY), default="bar",
                         help="progress bars, a line per epoch, or none (default: %(default)s)")
    distill.set_defaults(func=_distill)

    cache = commands.add_parser(
        "cache",
        help="Run the teacher over a config's training data on Apache Beam, into the sharded cache cache.path.",
        description=(
            "Runs the teacher once over every view of the config's training split (data.*, distill.views, "
            "distill.seed) through Apache Beam's RunInference, on any runner, and writes the sharded cache "
            "cache.path (a shard per cache.examples_per_shard examples, each verified by its integrity "
            "record, and a manifest). `distill` and `tune` with the same config then read it instead of "
            "running the teacher. Run again after a failure: complete shards are kept, the rest computed. "
            "Needs `pip install 'tfdistill[beam]'`."
        ),
    )
    cache.add_argument("--config", help="a .json or .yaml config file (default: the defaults)")
    cache.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                       help="override one key, e.g. --set cache.path=cache/pool (repeatable; VALUE is JSON)")
    cache.add_argument(
        "--runner", nargs=argparse.REMAINDER,
        help="last: Beam's runner (DirectRunner, DataflowRunner, FlinkRunner, SparkRunner, ...) and every "
             "pipeline option after it, passed to Beam as they are, e.g. --runner DirectRunner "
             "--direct_running_mode=multi_processing --direct_num_workers=2 (default: DirectRunner)",
    )
    cache.set_defaults(func=_cache)

    from tfdistill.tuning import FAMILIES

    tune = commands.add_parser(
        "tune",
        help="Search the distillation recipe that pays on a config's data, against the student alone.",
        description=(
            "Runs KerasTuner's Hyperband over the loss family, temperature, soft/hard weights and "
            "learning rate, with the student alone always a candidate, choosing on the config's "
            "validation split; then trains the best recipe and the student alone from the same initial "
            "weights for each --seeds and reports the gain with its 95 %% interval. When nothing beats "
            "the student alone it says so and saves the student trained alone. Writes OUTPUT/: "
            "config.json, run.json, tuner/ and student.keras. Takes the same config as `distill` "
            "(distill.epochs is each candidate's full budget)."
        ),
    )
    tune.add_argument("--config", help="a .json or .yaml config file (default: the defaults)")
    tune.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                      help="override one key, e.g. --set distill.epochs=10 (repeatable; VALUE is JSON)")
    tune.add_argument("--output", required=True, help="the search's folder")
    tune.add_argument("--families", nargs="+", choices=list(FAMILIES), default=list(FAMILIES),
                      help="loss families to search (default: all; alone is always included)")
    tune.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2],
                      help="seeds of the final best-against-alone comparison (default: 0 1 2)")
    tune.add_argument("--overwrite", action="store_true", help="replace a finished search in --output")
    tune.add_argument("--progress", choices=list(_VERBOSITY), default="bar",
                      help="progress output (default: %(default)s)")
    tune.set_defaults(func=_tune)

    teacher = commands.add_parser(
        "train-teacher",
        help="Train the built-in teacher CNN on images (Fashion-MNIST or --data) and save it as a new version of OUTPUT.",
        description="Trains tfdistill.app.models.build_teacher() with flip/shift augmentation and a cosine "
                    "schedule (about 30 minutes on 2 CPU cores for 24 epochs), reports its test "
                    "accuracy and writes OUTPUT/VERSION/ (the next version: nothing is overwritten).",
    )
    teacher.add_argument("--epochs", type=int, default=DEFAULTS["teacher"]["epochs"], help="(default: %(default)s)")
    teacher.add_argument("--output", default=None,
                         help=f"the model folder (default without --data: {_FASHION_MNIST_TEACHER}; required with it)")
    teacher.add_argument("--data", default=None, help="the data: NAME.npz or tfds:NAME of images (as for `evaluate`); "
                         "default: Fashion-MNIST")
    teacher.add_argument("--data-dir", default=None, help="Fashion-MNIST IDX folder, or TFDS's data_dir")
    teacher.add_argument("--seed", type=int, default=0, help="(default: %(default)s)")
    teacher.add_argument("--progress", choices=list(_VERBOSITY), default="epoch", help="(default: %(default)s)")
    teacher.set_defaults(func=_train_teacher)

    evaluate = commands.add_parser(
        "evaluate",
        help="Test accuracy, size and parameters of a .keras or .tflite model on --data.",
        description="Loads MODEL (.keras, or .tflite run in the TFLite interpreter) and reports its "
                    "file size, parameter count and accuracy on the test split of --data (default: the "
                    "10,000 Fashion-MNIST test images); with --teacher, also how closely it follows "
                    "that teacher.",
    )
    evaluate.add_argument("model", help="a .keras or .tflite file")
    evaluate.add_argument("--data", default=None, help=_DATA_HELP)
    evaluate.add_argument("--data-dir", default=None, help="Fashion-MNIST IDX folder, or TFDS's data_dir")
    evaluate.add_argument(
        "--teacher", default=None,
        help="a teacher .keras file: also report the model's fidelity to it (top-1 agreement, KL) "
             "on the data's training and test splits",
    )
    evaluate.set_defaults(func=_evaluate)

    benchmark = commands.add_parser(
        "benchmark",
        help="Run one of the benchmarks (benchmarks/NAME.py from a source checkout).",
        description="Runs benchmarks/NAME.py from the source checkout with ARGS; "
                    "`tfdistill benchmark NAME -- --help` shows its options.",
    )
    benchmark.add_argument("name", choices=BENCHMARKS)
    benchmark.add_argument("args", nargs=argparse.REMAINDER, help="arguments of the benchmark")
    benchmark.set_defaults(func=_benchmark)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileExistsError, FileNotFoundError, ImportError) as error:
        parser.exit(2, f"tfdistill {args.command}: error: {error}\n")


if __name__ == "__main__":
    sys.exit(main())
