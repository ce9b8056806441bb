"""Caching the teacher's outputs for any deterministic `tf.data` pipeline.

`tfdistill.offline.offline_dataset` builds its own pipeline from arrays. Users
with their own `tf.data` pipeline (files, decoding, preprocessing) call
`cache_dataset`: it runs the teacher once over one pass of the pipeline and
joins the outputs to it by position, which is only right when every pass
yields the same batches in the same order. `pipeline_randomness` reads the
pipeline's graph for what would break that (reshuffling, random ops, random
layers with state); `cache_dataset` then does not cache, says why, and the
`Distiller` runs the teacher online.
"""

import warnings

import keras
import numpy as np
import tensorflow as tf

from tfdistill.data.pipelines import AUTOTUNE
from tfdistill import compat
from tfdistill.teacher_outputs import CLASSES_KEY, INPUT_KEY, LOGITS_KEY, TEMPERATURE_KEY, check_top_k_arguments
from tfdistill.losses.logits import top_k_logits

# Ops that draw new numbers on every call (stateful random ops).
_RANDOM_OPS = {
    "RandomUniform", "RandomUniformInt", "RandomStandardNormal", "TruncatedNormal",
    "ParameterizedTruncatedNormal", "RandomShuffle", "RandomGamma", "RandomGammaGrad",
    "RandomPoisson", "RandomPoissonV2", "Multinomial", "RandomCrop",
    "StatefulUniform", "StatefulUniformInt", "StatefulUniformFullInt", "StatefulStandardNormal",
    "StatefulStandardNormalV2", "StatefulTruncatedNormal", "StatefulRandomBinomial",
    "RngSkip", "RngReadAndSkip", "NonDeterministicInts",
}
# Ops that change a variable: a seed generator (e.g. Keras's random layers) moves on each call.
_STATE_OPS = {"AssignVariableOp", "AssignAddVariableOp", "AssignSubVariableOp", "ResourceScatterUpdate"}
# Ops whose effect cannot be read from the graph.
_OPAQUE_OPS = {"PyFunc", "PyFuncStateless", "EagerPyFunc"}


def pipeline_randomness(dataset):
    """Lists what makes a pipeline yield different batches on different passes.

    Reads the dataset's graph: datasets that reshuffle or re-randomize every
    pass, stateful random ops and variable updates (the seed generators of
    Keras's random layers) in its functions, non-deterministic parallel
    ordering, and Python functions, whose effect cannot be checked. Stateless
    random ops with fixed seeds (`tfdistill.data.augment_image` driven by
    per-example seeds that are themselves fixed) are deterministic.

    Args:
        dataset: a `tf.data.Dataset`.

    Returns:
        A list of reasons, e.g. `["'ShuffleDatasetV3' reshuffles every
        pass"]`; empty when every pass yields the same batches.

    Example:
        >>> ds = tf.data.Dataset.range(8).shuffle(8).batch(4)
        >>> pipeline_randomness(ds)
        ["'ShuffleDatasetV3' reshuffles every pass"]
        >>> pipeline_randomness(tf.data.Dataset.range(8).batch(4))
        []
    """
    graph = tf.compat.v1.GraphDef()
    graph.ParseFromString(compat.serialized_dataset_graph(dataset))
    reasons = []

    def add(reason):
        if reason not in reasons:
            reasons.append(reason)

    def check_dataset_op(node):
        attrs = node.attr
        if node.op.startswith("ShuffleDataset") or node.op.startswith("ShuffleAndRepeatDataset"):
            if "reshuffle_each_iteration" not in attrs or attrs["reshuffle_each_iteration"].b:
                add(f"'{node.op}' reshuffles every pass")
        if node.op.startswith("RandomDataset"):
            if "rerandomize_each_iteration" not in attrs or attrs["rerandomize_each_iteration"].b:
                add(f"'{node.op}' (tf.data.Dataset.random) draws new numbers every pass")
        if "deterministic" in attrs and attrs["deterministic"].s == b"false":
            add(f"'{node.op}' runs with deterministic=False, so its order can change")

    for node in graph.node:
        check_dataset_op(node)
    for function in graph.library.function:
        for node in function.node_def:
            check_dataset_op(node)  # Datasets built inside functions (interleave, flat_map).
            if node.op in _RANDOM_OPS:
                add(f"'{node.op}' in a mapped function draws new random numbers on every call")
            elif node.op in _STATE_OPS:
                add(f"'{node.op}' in a mapped function changes a variable (e.g. the seed generator of a random layer)")
            elif node.op in _OPAQUE_OPS:
                add(f"'{node.op}' (a Python function) in a mapped function cannot be checked")
    if dataset.options().deterministic is False:
        add("the dataset's options set deterministic=False")
    return reasons


def _join(x, outputs):
    if isinstance(x, dict):
        return {**x, **outputs}
    return {INPUT_KEY: x, **outputs}


def cache_dataset(
    teacher,
    dataset,
    top_k=None,
    temperature=None,
    dtype="float16",
    shuffle_buffer=None,
    seed=0,
    assume_deterministic=False,
    verbose=1,
):
    """Runs the teacher once over a deterministic pipeline and joins its outputs.

    The returned dataset yields `({"x": x, "teacher_logits": ...}, y)` (a dict
    `x` keeps its keys and gains `"teacher_logits"`), so `Distiller.fit` never
    calls the teacher. The outputs are joined by position, which is right only
    if every pass of `dataset` yields the same batches: when
    `pipeline_randomness` finds anything that changes between passes, nothing
    is cached, a warning says why, and `dataset` is returned as it is (the
    teacher then runs online, on the very images the student sees). Shuffle
    *after* caching with `shuffle_buffer`, or cache a fixed number of
    augmented views with `tfdistill.offline.compute_teacher_logits`.

    Args:
        teacher: a `keras.Model` that outputs logits; run with
            `training=False`.
        dataset: a batched `tf.data.Dataset` of `(x, y)` or
            `(x, y, sample_weight)`.
        top_k: keep the `k` largest logits and a remainder logit (see
            `tfdistill.losses.top_k_kd`); `None` keeps all.
        temperature: with `top_k`, the KD loss's temperature.
        dtype: storage dtype of the outputs, `"float16"` or `"float32"`.
        shuffle_buffer: when set, the joined examples are reshuffled every
            epoch through a buffer of this many examples (pairs stay
            together), then rebatched to the first batch's size.
        seed: seed of that shuffle.
        assume_deterministic: cache even when the graph holds Python
            functions or other reasons, at the caller's word.
        verbose: 1 shows a progress bar.

    Returns:
        The joined `tf.data.Dataset`, or `dataset` itself when it cannot be
        cached.

    Example:
        >>> train = tf.data.TFRecordDataset(files).map(parse).batch(256)  # doctest: +SKIP
        >>> distiller.fit(cache_dataset(teacher, train, shuffle_buffer=10_000), epochs=30)  # doctest: +SKIP
    """
    if not isinstance(dataset, tf.data.Dataset) or not (
        isinstance(dataset.element_spec, tuple) and len(dataset.element_spec) in (2, 3)
    ):
        raise ValueError(
            "Invalid value for argument `dataset`. Expected a batched `tf.data.Dataset` "
            f"of `(x, y)` or `(x, y, sample_weight)`. Received: {dataset!r}"
        )
    top_k, temperature = check_top_k_arguments(top_k, temperature)
    cardinality = int(dataset.cardinality())
    if cardinality == tf.data.INFINITE_CARDINALITY:
        raise ValueError(
            "Invalid value for argument `dataset`: it repeats forever, so the teacher "
            "cannot run over it once. Cache the pipeline before `.repeat()`. "
            f"Received: {dataset!r}"
        )
    reasons = pipeline_randomness(dataset)
    if reasons and not assume_deterministic:
        warnings.warn(
            "Teacher outputs not cached; the teacher will run online. Cached outputs are "
            "joined to the pipeline by position, but this pipeline yields different "
            "batches on different passes, so they would belong to other images than the "
            "student sees: " + "; ".join(reasons) + ". To cache, make the pipeline "
            "deterministic and shuffle after caching (`shuffle_buffer=`), or cache "
            "a fixed number of augmented views with "
            "`tfdistill.offline.compute_teacher_logits(views=...)`.",
            stacklevel=2,
        )
        return dataset

    @tf.function
    def outputs_of(x):
        logits = teacher(x, training=False)
        if top_k is None:
            return {LOGITS_KEY: logits}
        values, classes = top_k_logits(logits, top_k, temperature)
        return {LOGITS_KEY: values, CLASSES_KEY: classes}

    progress = keras.utils.Progbar(cardinality if cardinality > 0 else None) if verbose else None
    batches, sizes = [], []
    for element in dataset:
        outputs = outputs_of(element[0])
        batches.append({key: value.numpy() for key, value in outputs.items()})
        sizes.append(len(element[1]))
        if progress:
            progress.add(1)
    if not batches:
        raise ValueError(f"Invalid value for argument `dataset`: it yielded no batches. Received: {dataset!r}")
    stored = {
        key: tf.constant(np.concatenate([b[key] for b in batches]).astype(dtype if key == LOGITS_KEY else "int32"))
        for key in batches[0]
    }
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype("int64")

    def slice_outputs(offset, size):
        outputs = {key: value[offset : offset + size] for key, value in stored.items()}
        if top_k is not None:
            outputs[TEMPERATURE_KEY] = tf.fill([size], tf.constant(temperature, tf.float32))
        return outputs

    outputs_ds = tf.data.Dataset.from_tensor_slices((offsets, np.asarray(sizes, "int64"))).map(slice_outputs)
    joined = tf.data.Dataset.zip(dataset, outputs_ds).map(
        lambda element, outputs: (_join(element[0], outputs), *element[1:])
    )
    if shuffle_buffer:
        joined = (
            joined.unbatch()
            .shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
            .batch(sizes[0])
        )
    return joined.prefetch(AUTOTUNE)
