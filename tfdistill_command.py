"""The `tfdistill` command's entry point: arguments first, then TensorFlow, quietly.

`import tfdistill` imports TensorFlow (seconds), so this module lives outside
the package: it parses the arguments before the package's `__init__` runs,
and `--help` or a bad argument answers at once. Then TensorFlow is imported
by `import_tensorflow`, which leaves out what tfdistill never uses and,
unless `--verbose` is given, makes it quiet where its chatter starts:

- `TF_CPP_MIN_LOG_LEVEL=3` (unless set already) drops its C++ INFO, WARNING
  and ERROR lines, the TFLite converter's among them; FATAL lines still show.
- The INFO and WARNING lines its libraries write while they load, before
  absl's logging is set up (which no environment variable reaches: "All log
  messages before absl::InitializeLog() ...", oneDNN's and the CUDA stub's),
  are dropped from what `import tensorflow` writes to stderr; the rest of it
  is passed on.
- Its Python logger shows errors only (no retracing warnings).

What it leaves out: Keras, which TensorFlow imports, loads its optional
integrations with scikit-learn (its estimator wrappers), matplotlib (an image
gallery) and IPython (a notebook file editor) whenever those are installed,
a third of TensorFlow's start-up or more (1.2 to 2 of its 3.6 to 5.8 CPU
seconds on a 2-core machine). tfdistill uses none of them, so they are
hidden while TensorFlow imports;
Keras then runs without those three integrations, as where they are not
installed, and the packages themselves import as usual afterwards (the run
report's plots use matplotlib). `TFDISTILL_KERAS_EXTRAS=1` keeps them (for a
model builder that uses Keras's scikit-learn wrappers); a TensorFlow that
cannot import without them restarts the process with that setting. Beam's
local worker processes (`beam_worker`) and scripts that start many
processes call it too.

Nothing else is hidden: stderr is never redirected, so Python's warnings and
tracebacks, child processes' output and `faulthandler`'s report of a crash
(enabled here, and in Python child processes through `PYTHONFAULTHANDLER`)
reach the terminal.

    tfdistill demo                 # the console script
    python -m tfdistill_command demo
"""

import contextlib
import faulthandler
import importlib.abc
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

# Keras's optional integrations that tfdistill never uses (see the module's docstring), and the
# environment variable that keeps them (`TFDISTILL_KERAS_EXTRAS=1`).
KERAS_EXTRAS = ("sklearn", "matplotlib", "IPython")
_WITH_EXTRAS = "TFDISTILL_KERAS_EXTRAS"


def main(argv=None):
    _report_crashes()
    cli, load_package = _import_cli_first()
    args = cli.parse_args(argv)
    import_tensorflow(quiet=not args.verbose)
    load_package()
    return cli.run(args)


def import_tensorflow(quiet=True):
    """Imports TensorFlow (and Keras) without Keras's unused extras; quietly by default.

    Call it before anything imports TensorFlow, Keras or tfdistill; once
    TensorFlow is imported it does nothing.

    Args:
        quiet: drop TensorFlow's start-up chatter (see the module's docstring):
            `TF_CPP_MIN_LOG_LEVEL=3` and `GRPC_VERBOSITY=ERROR` unless set
            already, the lines its libraries write while they load, and its
            Python logger below errors.

    Example:
        >>> import tfdistill_command
        >>> tfdistill_command.import_tensorflow()
        >>> import tfdistill  # TensorFlow is imported already
    """
    if "tensorflow" in sys.modules:
        return
    if quiet:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
        logging.getLogger("tensorflow").setLevel(logging.ERROR)
    hide = () if os.environ.get(_WITH_EXTRAS) == "1" else KERAS_EXTRAS
    try:
        with _without_loading_chatter() if quiet else contextlib.nullcontext(), _hidden(hide):
            import tensorflow  # noqa: F401
    except ImportError as error:
        if (error.name or "").split(".")[0] not in hide:
            raise
        # A TensorFlow or Keras that needs one of them after all. A half-imported TensorFlow
        # cannot be imported again, so the process starts again, importing everything.
        os.environ[_WITH_EXTRAS] = "1"
        sys.stdout.flush()
        sys.stderr.flush()
        os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])


def beam_worker(fork_server=None):
    """Runs Beam's SDK worker in a local worker process (`tfdistill.offline.beam.worker`), TensorFlow imported first.

    Args:
        fork_server: the socket of a `ForkServer` (`tfdistill.offline.beam.fork_server`):
            this process then only stands in for a worker forked from it, and
            starts the worker itself where the server cannot be reached.
    """
    if fork_server is not None:
        _fork_server_module().run_worker(fork_server)  # returns only where the server cannot be reached
    import_tensorflow(quiet=False)
    from tfdistill.offline.beam import worker

    worker.main(sys.argv)


def beam_fork_server(listener_fd):
    """Runs a `ForkServer`: imports what Beam's workers need once, then forks them (`fork_server.serve`)."""
    import_tensorflow(quiet=False)
    from tfdistill.offline.beam import fork_server, pipeline, worker  # noqa: F401  (what every worker runs)

    fork_server.serve(listener_fd)


def _fork_server_module():
    """`tfdistill.offline.beam.fork_server`, loaded without the package (whose `__init__` imports TensorFlow)."""
    package = importlib.util.find_spec("tfdistill").submodule_search_locations[0]
    spec = importlib.util.spec_from_file_location(
        "_tfdistill_fork_server", os.path.join(package, "offline", "beam", "fork_server.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _Hidden(importlib.abc.MetaPathFinder):
    """Finds the top-level packages `names` (and their modules) missing, as if they were not installed."""

    def __init__(self, names):
        self.names = names

    def find_spec(self, fullname, path=None, target=None):
        if fullname.split(".")[0] in self.names:
            raise ModuleNotFoundError(f"No module named {fullname!r}", name=fullname)
        return None


@contextlib.contextmanager
def _hidden(names):
    """Packages `names` cannot be imported in the block (unless imported already); afterwards they can."""
    finder = _Hidden(names)
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)


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
