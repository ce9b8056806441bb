"""The `tfdistill` command line: demo, distill, cache, tune, train-teacher, evaluate, export, benchmark.

This module parses the arguments and hands each command its own: the runs
(`demo`, `distill`, `tune`) to `tfdistill.app.runs` and `tfdistill.app.demo`,
the others to `tfdistill.app.commands`. Building the parser and answering
`--help` import no TensorFlow.
"""

import argparse
import json
import sys

from tfdistill.app import commands, demo
from tfdistill.app.config import DEFAULTS, HELP
from tfdistill.errors import TfdistillError

# Errors that say the input cannot be used: one line on stderr and exit status 2. They are
# tfdistill's own (`ConfigError` for arguments, configs and run folders, `ExportVerificationError`,
# ...) and refusals about the files named (`FileExistsError`, `FileNotFoundError`); argparse answers
# bad arguments the same way. Any other exception is a bug: Python prints its traceback and exits 1.
EXPECTED_ERRORS = (TfdistillError, FileExistsError, FileNotFoundError)
# `tfdistill.tuning.FAMILIES`, written out so that `--help` does not import TensorFlow.
TUNE_FAMILIES = ("alone", "kd", "ls_kd", "dkd", "dist")
_VERBOSITY = commands.VERBOSITY
BENCHMARKS = [
    "keras_distiller", "offline", "loss_zoo", "recipe_search", "distillation_gain", "default_suite",
    "function_matching", "guard_overhead", "precision", "cache_integrity", "few_labels", "unlabeled_step",
    "beam_throughput", "streaming_scale", "quantization",
]


def _demo(args):
    config = demo.demo_config(
        args.saved_models, labels_per_class=None if args.all_labels else args.labels_per_class, epochs=args.epochs,
        views=args.views, student_width=args.student_width, seed=args.seed, data_dir=args.data_dir,
        teacher_epochs=args.teacher_epochs, cache_dir=args.cache_dir, export=not args.no_export, overrides=args.set,
    )
    demo.run(config, run_dir=args.output, retrain_teacher=args.retrain_teacher,
             verbose=1 if args.progress == "bar" else 2)
    return 0


def _config(args):
    from tfdistill.app import config as config_module

    return config_module.resolve(config_module.load(args.config) if args.config else None, args.set)


def _distill(args):
    config = _config(args)
    if args.print_config:
        print(json.dumps(config, indent=2))
        return 0
    from tfdistill.app import runs
    from tfdistill.app.sections import RunConfig

    runs.run_distillation(RunConfig.from_dict(config), args.output, overwrite=args.overwrite,
                          verbose=_VERBOSITY[args.progress])
    return 0


def _tune(args):
    from tfdistill.app import runs
    from tfdistill.app.sections import RunConfig

    runs.run_tuning(RunConfig.from_dict(_config(args)), args.output, families=args.families, seeds=args.seeds,
                    overwrite=args.overwrite, verbose=_VERBOSITY[args.progress])
    return 0


_DATA_HELP = (
    "the data: NAME.npz (x_train, y_train, x_test, y_test, optional class_names), an image folder "
    "(class sub-folders, or train/ and test/ of them; images read at the model's input size), or "
    "tfds:NAME; default: Fashion-MNIST"
)
_SET_HELP = "override one key, e.g. --set distill.epochs=5 (repeatable; VALUE is JSON)"


def _positive_int(text):
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1. Received: {text!r}")
    return int(text)


def _fraction(text):
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1]. Received: {text!r}")
    return value


def _add_verbose(parser, default):
    parser.add_argument(
        "--verbose", action="store_true", default=default,
        help="also show TensorFlow's log lines: C++ INFO, WARNING and ERROR lines (the TFLite "
             "converter's among them) and retracing warnings",
    )


def _add_demo(subcommands):
    demo_parser = subcommands.add_parser(
        "demo",
        help="Distil the Fashion-MNIST teacher into a small student with few labels, compare, export.",
        description=(
            "A `tfdistill distill` run on the default config with the shipped teacher (or a new one, trained "
            f"first): {demo.LABELS_PER_CLASS} labels per class of the training split are kept, the other images "
            "are an unlabeled pool. The student alone trains on the labeled images, the distilled one on labels "
            "and pool, from the same initial weights and for as many steps; the comparison is printed, the run "
            "written to runs/demo/N/ and the distilled student exported (SavedModel and verified TFLite "
            f"files; the int8 one after {demo.QAT_EPOCHS} epochs of quantization-aware distillation, "
            "qat.epochs) to SAVED_MODELS/fashion_mnist_student/VERSION/. --all-labels compares them with every label."
        ),
    )
    labels = demo_parser.add_mutually_exclusive_group()
    labels.add_argument("--labels-per-class", type=_positive_int, default=demo.LABELS_PER_CLASS,
                        help="labels kept per class; the rest of the training images are unlabeled (default: %(default)s)")
    labels.add_argument("--all-labels", action="store_true", help="keep every label: no unlabeled pool")
    demo_parser.add_argument("--saved-models", default="saved_models", help="folder of exported models (default: %(default)s)")
    demo_parser.add_argument("--output", default=None, help="the run's folder (default: runs/demo/N, the next number, "
                             "or the last one when it was interrupted: it is resumed)")
    demo_parser.add_argument("--data-dir", default=None, help="Fashion-MNIST IDX folder (default: /usr/share/datasets/fashion-mnist)")
    demo_parser.add_argument("--epochs", type=_positive_int, default=None,
                             help=f"student epochs (default: {demo.FEW_LABELS_EPOCHS} with few labels, "
                                  f"{DEFAULTS['distill']['epochs']} with --all-labels)")
    demo_parser.add_argument("--views", type=_positive_int, default=DEFAULTS["distill"]["views"], help="cached augmented views per image (default: %(default)s)")
    demo_parser.add_argument("--student-width", type=_positive_int, default=DEFAULTS["student"]["width"], help="student's first-block filters (default: %(default)s)")
    demo_parser.add_argument("--seed", type=int, default=DEFAULTS["distill"]["seed"], help="seed of weights, order and views (default: %(default)s)")
    demo_parser.add_argument("--retrain-teacher", action="store_true", help="train a new teacher (25-35 minutes on 2 cores)")
    demo_parser.add_argument("--teacher-epochs", type=_positive_int, default=DEFAULTS["teacher"]["epochs"], help="epochs of a retrained teacher (default: %(default)s)")
    demo_parser.add_argument("--cache-dir", default=None, help="folder to keep teacher logits between runs")
    demo_parser.add_argument("--no-export", action="store_true", help="do not export the distilled student")
    demo_parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", help=_SET_HELP)
    demo_parser.add_argument("--progress", choices=["bar", "epoch"], default="epoch", help="a progress bar per step, or a line per epoch (default: %(default)s)")
    demo_parser.set_defaults(func=_demo)


def _add_distill(subcommands):
    distill = subcommands.add_parser(
        "distill",
        help="Run a distillation described by a config file into its own folder, with a report.",
        description=(
            "Caches the teacher's logits, trains the student alone and distilled (same initial "
            "weights, data and views; with unlabeled examples, the student alone on the labeled ones "
            "for as many steps), tests both, prints the comparison, exports and verifies the distilled "
            "student, and writes OUTPUT/: config.json (the resolved config), run.json, metrics/*.csv, "
            "tensorboard/, checkpoints/, export/, report.md and plots/. The config is plain JSON "
            "or YAML with the sections and keys below; --set overrides any key. Keys and "
            "defaults: " + "; ".join(f"{s}: " + ", ".join(f"{k}={json.dumps(v)}" for k, v in keys.items())
                                      for s, keys in DEFAULTS.items())
            + ". What each key means: " + "; ".join(f"{key}: {text}" for key, text in HELP.items())
        ),
    )
    distill.add_argument("--config", help="a .json or .yaml config file (default: the defaults)")
    distill.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", help=_SET_HELP)
    distill.add_argument("--output", required=True, help="the run's folder")
    distill.add_argument("--overwrite", action="store_true", help="replace a finished run in --output")
    distill.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    distill.add_argument("--progress", choices=list(_VERBOSITY), default="bar",
                         help="progress bars, a line per epoch, or none (default: %(default)s)")
    distill.set_defaults(func=_distill)


def _add_cache(subcommands):
    cache = subcommands.add_parser(
        "cache",
        help="Run the teacher over a config's training data on Apache Beam, into the sharded cache cache.path.",
        description=(
            "Runs the teacher once over every view of the config's training split (data.*, its labeled examples "
            "and then its unlabeled pool, as `distill` takes them; distill.views, distill.seed) through Apache "
            "Beam's RunInference, on any runner, and writes the sharded cache cache.path (a shard per "
            "cache.examples_per_shard examples, each verified by its integrity record, and a manifest). "
            "`distill` and `tune` with the same config then read it instead of running the teacher. Run again "
            "after a failure: complete shards are kept, the rest computed. Needs `pip install 'tfdistill[beam]'`."
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
    cache.set_defaults(func=commands.cache)


def _add_export(subcommands):
    export = subcommands.add_parser(
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
    export.add_argument("--calibration-examples", type=_positive_int, default=200, help="int8 calibration examples drawn from the data's training split (default: %(default)s)")
    export.add_argument("--min-agreement", type=_fraction, default=0.99, help="lowest top-1 agreement accepted (default: %(default)s)")
    export.add_argument("--version", type=_positive_int, default=None, help="SavedModel version number (default: next)")
    export.add_argument("--overwrite", action="store_true", help="replace an existing file or version")
    export.add_argument("--data", default=None, help=_DATA_HELP)
    export.add_argument("--data-dir", default=None, help="Fashion-MNIST IDX folder, or TFDS's data_dir")
    export.add_argument("--seed", type=int, default=0, help="seed of the calibration sample (default: %(default)s)")
    export.add_argument("--verify-examples", type=_positive_int, default=10_000,
                        help="verify the TFLite model on at most this many test examples (default: %(default)s)")
    export.set_defaults(func=commands.export)


def _add_tune(subcommands):
    tune = subcommands.add_parser(
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
                      help=_SET_HELP)
    tune.add_argument("--output", required=True, help="the search's folder")
    tune.add_argument("--families", nargs="+", choices=TUNE_FAMILIES, default=list(TUNE_FAMILIES),
                      help="loss families to search (default: all; alone is always included)")
    tune.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2],
                      help="seeds of the final best-against-alone comparison (default: 0 1 2)")
    tune.add_argument("--overwrite", action="store_true", help="replace a finished search in --output")
    tune.add_argument("--progress", choices=list(_VERBOSITY), default="bar",
                      help="progress output (default: %(default)s)")
    tune.set_defaults(func=_tune)


def _add_train_teacher(subcommands):
    teacher = subcommands.add_parser(
        "train-teacher",
        help="Train the built-in teacher CNN on images (Fashion-MNIST or --data) and save it as a new version of OUTPUT.",
        description="Trains tfdistill.app.models.build_teacher() with flip/shift augmentation and a cosine "
                    "schedule (about 30 minutes on 2 CPU cores for 24 epochs), reports its test "
                    "accuracy and writes OUTPUT/VERSION/ (the next version: nothing is overwritten).",
    )
    teacher.add_argument("--epochs", type=_positive_int, default=DEFAULTS["teacher"]["epochs"], help="(default: %(default)s)")
    teacher.add_argument("--output", default=None,
                         help=f"the model folder (default without --data: {commands.FASHION_MNIST_TEACHER}; required with it)")
    teacher.add_argument("--data", default=None, help="the data: NAME.npz or tfds:NAME of images (as for `evaluate`); "
                         "default: Fashion-MNIST")
    teacher.add_argument("--data-dir", default=None, help="Fashion-MNIST IDX folder, or TFDS's data_dir")
    teacher.add_argument("--seed", type=int, default=0, help="(default: %(default)s)")
    teacher.add_argument("--progress", choices=list(_VERBOSITY), default="epoch", help="(default: %(default)s)")
    teacher.set_defaults(func=commands.train_teacher)


def _add_evaluate(subcommands):
    evaluate = subcommands.add_parser(
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
    evaluate.set_defaults(func=commands.evaluate)


def _add_benchmark(subcommands):
    benchmark = subcommands.add_parser(
        "benchmark",
        help="Run one of the benchmarks (benchmarks/NAME.py from a source checkout).",
        description="Runs benchmarks/NAME.py from the source checkout with ARGS; "
                    "`tfdistill benchmark NAME -- --help` shows its options.",
    )
    benchmark.add_argument("name", choices=BENCHMARKS)
    benchmark.add_argument("args", nargs=argparse.REMAINDER, help="arguments of the benchmark")
    benchmark.set_defaults(func=commands.benchmark)


def build_parser():
    """The `tfdistill` parser; building it and answering `--help` import no TensorFlow."""
    parser = argparse.ArgumentParser(
        prog="tfdistill", description="Knowledge distillation for Keras 3 on TensorFlow."
    )
    _add_verbose(parser, default=False)
    subcommands = parser.add_subparsers(dest="command", required=True)
    for add in (_add_demo, _add_export, _add_distill, _add_cache, _add_tune, _add_train_teacher, _add_evaluate,
                _add_benchmark):
        add(subcommands)
    for command in subcommands.choices.values():
        # SUPPRESS: a subcommand without `--verbose` keeps the value given before it.
        _add_verbose(command, default=argparse.SUPPRESS)
    return parser


def parse_args(argv=None):
    """The parsed arguments; `--help` and argument errors exit here (status 0 and 2)."""
    return build_parser().parse_args(argv)


def run(args):
    """Runs the parsed command; an expected error (`EXPECTED_ERRORS`) exits 2 with one line."""
    try:
        return args.func(args)
    except EXPECTED_ERRORS as error:
        print(f"tfdistill {args.command}: error: {error}", file=sys.stderr)
        raise SystemExit(2) from None


def main(argv=None):
    return run(parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
