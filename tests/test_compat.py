"""Every private Keras or TensorFlow API in `tfdistill.compat`'s table still behaves as the project expects.

One probe per row of the table; a row without a probe fails, so a new use of a
private API cannot be added without a check that the installed Keras still has it.
"""

import inspect
import re

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfdistill import compat


def table_rows():
    return re.findall(r"^\| `([^`]+)` \|", compat.__doc__, flags=re.MULTILINE)


def probe_producing_layer():
    inputs = keras.Input((2,))
    dense = keras.layers.Dense(3)
    assert compat.producing_layer(dense(inputs)) is dense


def probe_serialized_dataset_graph():
    graph = tf.compat.v1.GraphDef()
    graph.ParseFromString(compat.serialized_dataset_graph(tf.data.Dataset.range(3).map(lambda v: v + 1)))
    assert any(node.op == "MapDataset" for node in graph.node)


def probe_set_initial_epoch():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    compat.set_initial_epoch(model, 2)
    history = model.fit(np.zeros((4, 2)), np.zeros((4, 1)), epochs=3, verbose=0)
    assert history.epoch == [2]


def probe_maybe_symbolic_build():
    parameters = list(inspect.signature(keras.Model._maybe_symbolic_build).parameters)
    assert parameters == ["self", "iterator", "data_batch"]


def probe_loaded_signatures(tmp_path):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3)])
    model.export(str(tmp_path / "model"), verbose=False)
    layer = keras.layers.TFSMLayer(str(tmp_path / "model"), call_endpoint="serve")
    assert "serving_default" in compat.loaded_signatures(layer)


def probe_keras_mask():
    outputs = keras.layers.Embedding(5, 2, mask_zero=True)(np.array([[1, 0]]))
    np.testing.assert_array_equal(compat.keras_mask(outputs), [[True, False]])


def probe_with_keras_mask():
    tensor = compat.with_keras_mask(tf.identity(tf.zeros((2, 3))), tf.constant([True, False]))
    np.testing.assert_array_equal(compat.keras_mask(tensor), [True, False])
    accuracy = keras.metrics.SparseCategoricalAccuracy()  # metrics read the mask: the masked row does not count
    accuracy.update_state(tf.constant([0, 1]), compat.with_keras_mask(tf.identity(tf.constant([[1.0, 0, 0]] * 2)), tf.constant([True, False])))
    assert float(accuracy.result()) == 1.0


def probe_loss_tracker():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    assert compat.loss_tracker(model) is model.metrics[0] and compat.loss_tracker(model).name == "loss"


def probe_strategy_supports_no_merge_call():
    assert compat.strategy_supports_no_merge_call() in (True, False)


def probe_advance_to_resumed_epoch():
    """One epoch of `fit` on a dataset of known length creates two iterators (one read, one dropped)."""

    def dataset():
        return tf.data.Dataset.range(8).shuffle(8, seed=0, reshuffle_each_iteration=True).batch(8).map(
            lambda v: (tf.cast(v[:, None], tf.float32), tf.cast(v[:, None], tf.float32))
        )

    fresh = dataset()
    orders = [next(iter(fresh))[0].numpy().ravel().tolist() for _ in range(3)]
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    trained = dataset()
    model.fit(trained, epochs=1, verbose=0)
    assert next(iter(trained))[0].numpy().ravel().tolist() == orders[2]


def probe_logs_for_multi_worker():
    logs = {"loss": tf.constant(1.0)}
    assert compat.logs_for_multi_worker(logs) is logs  # other strategies: unchanged


PROBES = {
    "producing_layer": probe_producing_layer,
    "serialized_dataset_graph": probe_serialized_dataset_graph,
    "set_initial_epoch": probe_set_initial_epoch,
    "MultiWorkerBuild._maybe_symbolic_build": probe_maybe_symbolic_build,
    "loaded_signatures": probe_loaded_signatures,
    "keras_mask": probe_keras_mask,
    "with_keras_mask": probe_with_keras_mask,
    "loss_tracker": probe_loss_tracker,
    "strategy_supports_no_merge_call": probe_strategy_supports_no_merge_call,
    "tfdistill.callbacks.advance_to_resumed_epoch": probe_advance_to_resumed_epoch,
    "logs_for_multi_worker": probe_logs_for_multi_worker,
}


def test_every_row_of_the_table_has_a_probe():
    assert set(table_rows()) == set(PROBES)


@pytest.mark.parametrize("row", sorted(PROBES))
def test_the_installed_keras_still_has_it(row, tmp_path):
    probe = PROBES[row]
    probe(tmp_path) if "tmp_path" in inspect.signature(probe).parameters else probe()
