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
    demo.add_argument("--retrain-teacher", action="store_true", help="train a new teacher (about 25 minutes on 2 cores)")
    demo.add_argument("--teacher-epochs", type=int, default=24, help="epochs of a retrained teacher (default: %(default)s)")
    demo.add_argument("--cache-dir", default=None, help="folder to keep teacher logits between runs")
    demo.add_argument("--no-export", action="store_true", help="do not export the distilled student")
    demo.add_argument("--progress", choices=["bar", "epoch"], default="epoch", help="a progress bar per step, or a line per epoch (default: %(default)s)")
    demo.set_defaults(func=_demo)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
