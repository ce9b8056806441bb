"""The `tfdistill` command line."""

import argparse
import sys


def _demo(args):
    from tfdistill import demo

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
    import keras
    import numpy as np

    from tfdistill.data import CLASS_NAMES, load_fashion_mnist, to_float_images
    from tfdistill.export import export_saved_model, export_tflite

    model = keras.models.load_model(args.model)
    if args.format == "saved_model":
        path = export_saved_model(
            model, args.output, version=args.version, overwrite=args.overwrite,
            raw_shape=(None, 28, 28), class_names=CLASS_NAMES,
        )
        print(f"SavedModel written to {path}")
        return 0
    (x_train, _), (x_test, y_test) = load_fashion_mnist(args.data_dir)
    rng = np.random.default_rng(args.seed)
    calibration = to_float_images(x_train[rng.permutation(len(x_train))[: args.calibration_examples]])
    report = export_tflite(
        model, args.output, to_float_images(x_test), y_test, args.quantization,
        representative_data=calibration, min_agreement=args.min_agreement,
        overwrite=args.overwrite, num_calibration=args.calibration_examples, int8_io=args.int8_io,
    )
    print(f"TFLite written to {args.output}, verified on the Fashion-MNIST test set:")
    print(f"  {report}")
    return 0


def build_parser():
    parser = argparse.ArgumentParser(
        prog="tfdistill", description="Knowledge distillation for Keras 3 on TensorFlow."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    defaults = __import__("tfdistill.demo", fromlist=["Recipe"]).Recipe()
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
    demo.add_argument("--epochs", type=int, default=defaults.epochs, help="student epochs (default: %(default)s)")
    demo.add_argument("--views", type=int, default=defaults.views, help="cached augmented views per image (default: %(default)s)")
    demo.add_argument("--student-width", type=int, default=defaults.student_width, help="student's first-block filters (default: %(default)s)")
    demo.add_argument("--seed", type=int, default=defaults.seed, help="seed of weights, order and views (default: %(default)s)")
    demo.add_argument("--retrain-teacher", action="store_true", help="train a new teacher (25-35 minutes on 2 cores)")
    demo.add_argument("--teacher-epochs", type=int, default=24, help="epochs of a retrained teacher (default: %(default)s)")
    demo.add_argument("--cache-dir", default=None, help="folder to keep teacher logits between runs")
    demo.add_argument("--no-export", action="store_true", help="do not export the distilled student")
    demo.add_argument("--progress", choices=["bar", "epoch"], default="epoch", help="a progress bar per step, or a line per epoch (default: %(default)s)")
    demo.set_defaults(func=_demo)

    export = commands.add_parser(
        "export",
        help="Export a Fashion-MNIST .keras model to TFLite (verified) or a TF Serving SavedModel.",
        description=(
            "TFLite: converts with TF's converter, runs the .tflite model on the test set and "
            "refuses to write it when its top-1 agreement with the Keras model is below "
            "--min-agreement. SavedModel: writes OUTPUT/VERSION/ (the next version unless "
            "--version is given) with a serving_default signature on raw uint8 images."
        ),
    )
    export.add_argument("model", help="the .keras file to export")
    export.add_argument("--format", choices=["tflite", "saved_model"], default="tflite", help="(default: %(default)s)")
    export.add_argument("--output", required=True, help="the .tflite file, or the SavedModel's model folder saved_models/NAME")
    export.add_argument("--quantization", choices=["float32", "float16", "dynamic_range", "int8"], default="int8", help="TFLite only (default: %(default)s)")
    export.add_argument("--int8-io", action="store_true", help="int8 input and output tensors (with --quantization int8)")
    export.add_argument("--calibration-examples", type=int, default=200, help="int8 calibration images from the training set (default: %(default)s)")
    export.add_argument("--min-agreement", type=float, default=0.99, help="lowest top-1 agreement accepted (default: %(default)s)")
    export.add_argument("--version", type=int, default=None, help="SavedModel version number (default: next)")
    export.add_argument("--overwrite", action="store_true", help="replace an existing file or version")
    export.add_argument("--data-dir", default=None, help="Fashion-MNIST IDX folder")
    export.add_argument("--seed", type=int, default=0, help="seed of the calibration sample (default: %(default)s)")
    export.set_defaults(func=_export)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileExistsError, FileNotFoundError) as error:
        parser.exit(2, f"tfdistill {args.command}: error: {error}\n")


if __name__ == "__main__":
    sys.exit(main())
