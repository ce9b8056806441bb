"""Test set-up of `tests/`, `examples/tests/` and the doctests: two logical CPU devices (for
MirroredStrategy) and a seed per test."""

import os
import sys

# Test modules in sub-folders import `helpers` from tests/.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "tests"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

_cpus = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(
    _cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2
)


@pytest.fixture(autouse=True)
def seed_everything():
    keras.utils.set_random_seed(0)
    yield
    keras.backend.clear_session()
