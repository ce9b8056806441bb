"""The `tfdistill` command's entry point: TensorFlow stays quiet from its first line.

TensorFlow writes C++ log lines (`I0000 ...`, `E0000 ...`) to the terminal as
soon as it is imported, and `import tfdistill` imports it. This module lives
outside the package so it can run first: unless `--verbose` is given, it turns
TensorFlow's C++ logging off, sends what still reaches file descriptor 2 to
/dev/null and keeps TensorFlow's Python logger to errors (Python's own warnings
and errors still show), then runs
`tfdistill.app.cli.main`.

    tfdistill demo                 # the console script
    python -m tfdistill_command demo
"""

import os
import sys


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if "--verbose" in argv:
        from tfdistill.app import cli

        return cli.main(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    sys.stderr.flush()
    python_stderr = os.fdopen(os.dup(2), "w", buffering=1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    sys.stderr = python_stderr
    import logging

    # TensorFlow's Python log lines (e.g. "N out of the last M calls ... triggered tf.function
    # retracing", from predicting on datasets whose last batch is smaller) go with the C++ ones.
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    from tfdistill.app import cli

    return cli.main(argv)


if __name__ == "__main__":
    sys.exit(main())
