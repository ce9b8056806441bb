"""The `tfdistill` command's entry point: arguments first, then TensorFlow, quietly.

`import tfdistill` imports TensorFlow (seconds), so this module lives outside
the package: it parses the arguments before the package's `__init__` runs,
and `--help` or a bad argument answers at once. Then, unless `--verbose` is
given, TensorFlow is made quiet where its chatter starts:

- `TF_CPP_MIN_LOG_LEVEL=3` (unless set already) drops its C++ INFO, WARNING
  and ERROR lines, the TFLite converter's among them; FATAL lines still show.
- The INFO and WARNING lines its libraries write while they load, before
  absl's logging is set up (which no environment variable reaches: "All log
  messages before absl::InitializeLog() ...", oneDNN's and the CUDA stub's),
  are dropped from what `import tensorflow` writes to stderr; the rest of it
  is passed on.
- Its Python logger shows errors only (no retracing warnings).

Nothing else is hidden: stderr is never redirected, so Python's warnings and
tracebacks, child processes' output and `faulthandler`'s report of a crash
(enabled here, and in Python child processes through `PYTHONFAULTHANDLER`)
reach the terminal.

    tfdistill demo                 # the console script
    python -m tfdistill_command demo
"""

import contextlib
import faulthandler
import importlib.util
import logging
import os
import re
import sys
import tempfile

# What TensorFlow's libraries write while they load: absl's notice and native INFO or WARNING
# lines ("I0000 00:00:1796052793.110224    4098 port.cc:153] oneDNN custom operations are on...").
_LOADING_CHATTER = re.compile(
    r"WARNING: All log messages before absl::InitializeLog\(\) is called|[IW]\d{4} [\d:.]+ +\d+ \S+:\d+\] "
)


def main(argv=None):
    _report_crashes()
    cli, load_package = _import_cli_first()
    args = cli.parse_args(argv)
    if not args.verbose:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
        logging.getLogger("tensorflow").setLevel(logging.ERROR)
        with _without_loading_chatter():
            import tensorflow  # noqa: F401
    load_package()
    return cli.run(args)


def _report_crashes():
    """A crash (a segfault, an abort) prints every thread's Python stack to stderr, in children too."""
    os.environ.setdefault("PYTHONFAULTHANDLER", "1")
    # A duplicate of file descriptor 2: the report reaches the terminal even while
    # `_without_loading_chatter` holds descriptor 2.
    faulthandler.enable(file=os.fdopen(os.dup(2), "w"))


def _import_cli_first():
    """Imports `tfdistill.app.cli` before `tfdistill/__init__.py` runs (it imports TensorFlow).

    Returns the module and a function that runs the package's `__init__` in the same module
    object, so that afterwards `tfdistill` is as after a plain `import tfdistill`.
    """
    if "tfdistill" in sys.modules:  # imported already, by code that calls `main`
        from tfdistill.app import cli

        return cli, lambda: None
    spec = importlib.util.find_spec("tfdistill")
    package = importlib.util.module_from_spec(spec)
    sys.modules["tfdistill"] = package
    from tfdistill.app import cli

    return cli, lambda: spec.loader.exec_module(package)


@contextlib.contextmanager
def _without_loading_chatter():
    """Holds what is written to stderr in the block, then writes it back but `_LOADING_CHATTER`."""
    sys.stderr.flush()
    stderr = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(stderr, 2)
            os.close(stderr)
            held.seek(0)
            lines = held.read().decode(errors="replace").splitlines(keepends=True)
            sys.stderr.write("".join(line for line in lines if not _LOADING_CHATTER.match(line)))
            sys.stderr.flush()


if __name__ == "__main__":
    sys.exit(main())
