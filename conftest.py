"""Test set-up of `tests/`, `examples/tests/` and the doctests: two logical CPU devices (for
MirroredStrategy) and a seed per test."""

import os
import sys

# Test modules in sub-folders import `helpers` from tests/.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "tests"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tfdistill_command  # noqa: E402

# TensorFlow as the `tfdistill` command and the tests' helper processes import it: without Keras's
# scikit-learn, matplotlib and IPython integrations, which nothing here uses (see its docstring).
tfdistill_command.import_tensorflow(quiet=False)

import gc  # noqa: E402

import keras  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

_cpus = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(
    _cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2
)


def pytest_collection_modifyitems(items):
    """Modules with slow tests first, their slow tests first; each module's tests stay together.

    With `-n 4` xdist hands tests out in order, so the workers start on the
    long ones and end together on short ones instead of one waiting for
    another's last long test; a module's tests stay together so that its
    module-scoped fixtures are made once per worker.
    """
    modules = {}
    for item in items:
        modules.setdefault(item.nodeid.split("::")[0], []).append(item)

    def is_fast(item):
        return item.get_closest_marker("slow") is None

    ordered = sorted(modules.values(), key=lambda module: all(map(is_fast, module)))
    items[:] = [item for module in ordered for item in sorted(module, key=is_fast)]


def pytest_collection_finish(session):
    """Moves what imports and collection made out of the garbage collector's sight.

    TensorFlow's, Keras's and the test modules' half a million objects live as
    long as the process; frozen, Python's own full collections skip them.
    """
    gc.collect()
    gc.freeze()


@pytest.fixture(autouse=True)
def seed_everything():
    """A seed per test, and Keras's global state (layer names, graphs) reset after it.

    Without the full garbage collection `clear_session` runs by default: once
    a worker holds what earlier tests left (module fixtures, traced functions),
    it took 0.34 s after every test, 266 s of the suite's 1,432 test-seconds
    on 3 workers. Python's generational collector still frees cycles.
    """
    keras.utils.set_random_seed(0)
    yield
    keras.backend.clear_session(free_memory=False)


# A test over this many seconds (set-up, call and tear-down together) belongs in
# the slow set: `pytest -m "not slow"` must stay quick.
SLOW_TEST_SECONDS = 2.0
_durations = {}


def pytest_runtest_logreport(report):
    if "slow" not in report.keywords:
        _durations[report.nodeid] = _durations.get(report.nodeid, 0.0) + report.duration


def pytest_terminal_summary(terminalreporter):
    unmarked = sorted(((seconds, node) for node, seconds in _durations.items() if seconds > SLOW_TEST_SECONDS),
                      reverse=True)
    if unmarked:
        terminalreporter.section(f"tests over {SLOW_TEST_SECONDS:g} s without the slow marker")
        for seconds, node in unmarked:
            terminalreporter.write_line(f"{seconds:6.1f} s  {node}  (mark it @pytest.mark.slow, or make it faster)")
