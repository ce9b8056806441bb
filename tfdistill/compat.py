"""Every use of a private Keras or TensorFlow API, in one place.

Each entry names what it reaches into and why no public route exists:

| where | private API | why |
| --- | --- | --- |
| `producing_layer` | `KerasTensor._keras_history` | the layer that produced a Functional model's output (`strip_softmax`, `final_softmax_layer`); Keras has no public accessor. |
| `serialized_dataset_graph` | `tf.data.Dataset._as_serialized_graph` | a pipeline's graph, read for randomness before caching it (`pipeline_randomness`); the only route TensorFlow offers. |
| `set_initial_epoch` | `keras.Model._initial_epoch` | where a resumed `fit` starts; Keras's own `BackupAndRestore` sets it the same way. |
| `MultiWorkerBuild._maybe_symbolic_build` | `keras.Model._maybe_symbolic_build` | Keras averages the first distributed batch with an eager `strategy.reduce`, which fails under `MultiWorkerMirroredStrategy` (keras-team/keras#20585). |
| `loaded_signatures` | `keras.layers.TFSMLayer._reloaded_obj` | the signatures of the SavedModel a `TFSMLayer` loaded (input names, dtypes, outputs); without it the SavedModel would be loaded a second time to read them. |
| `keras_mask` | `keras.src.backend.get_keras_mask` | the mask a layer (`Embedding(mask_zero=True)`) put on the student's output, for per-token weights; Keras reads it the same way in `Loss.__call__` and has no public accessor. |
| `with_keras_mask` | `keras.src.backend.set_keras_mask` | marks the unlabeled examples (positions) of the student's logits as masked, so every compiled metric, weighted or not, counts labeled ones only; Keras's metrics read masks and have no other way in. |
| `loss_tracker` | `keras.Model._loss_tracker` | the `Mean` that logs `loss`: Keras creates it in `compile` and lists it first in `model.metrics`; a second tracker named `loss` would clash with it. |
| `strategy_supports_no_merge_call` | `tf.__internal__.distribute.strategy_supports_no_merge_call` | whether the guard may branch around `apply_gradients` in a replica context; Keras's `LossScaleOptimizer` asks the same. |
| `tfdistill.callbacks.advance_to_resumed_epoch` | (Keras's epoch iterator, `keras/src/trainers/epoch_iterator.py`) | how many dataset iterators an epoch of `fit` creates (one read, plus one dropped unread when the length is known); resuming re-creates as many, so a reshuffling pipeline resumes in its uninterrupted order. Keras documents no such guarantee. |
| `logs_for_multi_worker` | (Keras's log reduction) | the same issue: Keras reduces each log with `strategy.reduce("MEAN", v, axis=0)`, which fails on scalars. |

When a Keras or TensorFlow upgrade breaks one of these, only this module (and
`advance_to_resumed_epoch`) changes; `tests/test_compat.py` probes every row
against the installed versions and fails when one of them changed.
"""

import keras
import tensorflow as tf


def producing_layer(tensor):
    """The layer (operation) that produced a Functional model's symbolic `tensor`."""
    return tensor._keras_history.operation


def serialized_dataset_graph(dataset):
    """The `GraphDef` bytes of a `tf.data.Dataset`'s pipeline."""
    return dataset._as_serialized_graph(
        external_state_policy=tf.data.experimental.ExternalStatePolicy.WARN
    ).numpy()


def loaded_signatures(layer):
    """The `signatures` of the SavedModel a `keras.layers.TFSMLayer` loaded."""
    return layer._reloaded_obj.signatures


def keras_mask(tensor):
    """The Keras mask a layer attached to `tensor`, or `None`."""
    from keras.src.backend import get_keras_mask

    return get_keras_mask(tensor)


def with_keras_mask(tensor, mask):
    """`tensor` carrying the Keras mask `mask` (a new tensor should be passed: the mask is set on it)."""
    from keras.src.backend import set_keras_mask

    set_keras_mask(tensor, mask)
    return tensor


def loss_tracker(model):
    """The `keras.metrics.Mean` that Keras's `compile` made to log a model's `loss`."""
    return model._loss_tracker


def strategy_supports_no_merge_call():
    """Whether the current `tf.distribute` strategy synchronises without `merge_call`."""
    return tf.__internal__.distribute.strategy_supports_no_merge_call()


def set_initial_epoch(model, epoch):
    """Makes the running `fit` continue at `epoch` (as `keras.callbacks.BackupAndRestore` does)."""
    model._initial_epoch = epoch


def logs_for_multi_worker(logs):
    """Logs as shape-(1,) tensors under `MultiWorkerMirroredStrategy`.

    Keras reduces each per-replica log with `strategy.reduce("MEAN", v, axis=0)`
    there, which fails on scalars (keras-team/keras#20585); on shape `(1,)` it
    gives the scalar mean over replicas, which is what the other strategies log.
    """
    if isinstance(tf.distribute.get_strategy(), tf.distribute.MultiWorkerMirroredStrategy):
        return {name: tf.reshape(value, (1,)) for name, value in logs.items()}
    return logs


class MultiWorkerBuild:
    """Mixin for a `keras.Model`: builds from one replica's batch under `MultiWorkerMirroredStrategy`.

    Keras averages the first distributed batch with an eager
    `strategy.reduce`, which fails under `MultiWorkerMirroredStrategy`
    (keras-team/keras#20585). The build needs the batch's structure only:
    one replica's local batch has it.
    """

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        strategy = self._distribute_strategy
        if iterator is not None and isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
            for _, _, batches in iterator:
                batch = next(batches)
                data_batch = keras.tree.map_structure(
                    lambda v: strategy.experimental_local_results(v)[0]
                    if isinstance(v, tf.distribute.DistributedValues)
                    else v,
                    batch,
                )
                break
            iterator = None
        return super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)
