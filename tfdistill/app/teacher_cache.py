"""`tfdistill cache`: a config's teacher pass on Apache Beam, into the sharded cache `cache.path`; runs then read it.

    tfdistill cache --config run.yaml --runner DirectRunner
    tfdistill distill --config run.yaml --output runs/one     # cache.path set: the teacher does not run

The cache holds the teacher's outputs for every view of the config's
training split (the same split `distill` trains on: `data.*` and
`distill.views`, `distill.seed`). Its key (teacher, examples, settings) is
checked by `distill` and `tune` before they write anything, so a cache of
another teacher or data is refused instead of trained on.
"""

import functools

import numpy as np

from tfdistill import offline, validation
from tfdistill.app import data_sources, model_sources
from tfdistill.errors import CacheIntegrityError, ConfigError
from tfdistill.offline import shards


def _path(config):
    path = config["cache"]["path"]
    if path is None:
        raise ConfigError(
            "Invalid value for `cache.path`: null. Expected the folder the sharded teacher cache goes to, "
            "e.g. --set cache.path=cache/pool (or gs://bucket/pool)."
        )
    return path


def _load(config):
    """The picklable loader every worker reads the teacher with: the one `distill` uses."""
    teacher = config["teacher"]
    return functools.partial(model_sources.load_teacher, output_key=teacher["output_key"], outputs=teacher["outputs"])


def write(config, pipeline_options=(), verbose=1):
    """Writes (or finishes) the sharded cache of a resolved config's teacher pass; returns its path.

    Args:
        config: from `tfdistill.app.config.resolve`, with `cache.path` set.
        pipeline_options: Beam's pipeline options, command-line form
            (`["--runner=DirectRunner", "--direct_num_workers=2"]`).
        verbose: 1 prints what was computed and reused.
    """
    from tfdistill.offline.beam import load_teacher, write_sharded_cache

    path = _path(config)
    teacher = load_teacher(config["teacher"]["path"], _load(config))  # gs://... too: the workers read it there
    validation.check_logits_model(teacher, "teacher.path", remedy=(
        "Save `tfdistill.strip_softmax(teacher)` to a .keras file and pass that, or set "
        "`teacher.outputs: probabilities`."))
    data = data_sources.from_config(config["data"], tuple(teacher.inputs[0].shape[1:]))
    examples = data.examples(data.train)
    settings, cache = config["distill"], config["cache"]
    print(f"Teacher cache of {data.description}: {examples.describe()} x {settings['views']} views into {path}")
    return write_sharded_cache(
        config["teacher"]["path"], examples, path, views=settings["views"], seed=settings["seed"],
        batch_size=cache["batch_size"], dtype=cache["dtype"], examples_per_shard=cache["examples_per_shard"],
        load=_load(config), pipeline_options=list(pipeline_options), verbose=verbose,
    )


def _key(config, teacher, data):
    return shards.sharded_cache_key(teacher, data.examples(data.train), config["distill"]["views"],
                                    config["distill"]["seed"], config["cache"]["dtype"])


def check(config, teacher, data):
    """Refuses, before a run writes anything, a `cache.path` that is missing, incomplete or of another pass.

    Reads the manifest only; the shards are verified when `training_data` opens them.
    """
    path = _path(config)
    try:
        manifest = shards.read_manifest(path)
    except (FileNotFoundError, CacheIntegrityError) as error:
        raise ConfigError(f"Invalid value for `cache.path`: {error} Make it with `tfdistill cache` first.") from None
    if not manifest.get("complete"):
        settings = manifest["settings"]
        total = len(shards.shard_ranges(settings["num_examples"], settings["examples_per_shard"]))
        raise ConfigError(
            f"Invalid value for `cache.path`: the sharded cache {path!r} is incomplete ({len(manifest['shards'])} "
            f"of {total} shards). Run `tfdistill cache` with the same config again: it computes only the missing shards."
        )
    if manifest["key"] != _key(config, teacher, data):
        raise ConfigError(
            f"Invalid value for `cache.path`: {path!r} holds the outputs of another teacher, training data or "
            f"settings ({manifest['examples']}, views={manifest['settings']['views']}, "
            f"seed={manifest['settings']['seed']}, dtype={manifest['settings']['dtype']}). Run `tfdistill cache` "
            "with this config into another folder."
        )


def training_data(config, teacher, data):
    """`(train dataset, view-0 logits)` of a run from its sharded cache, every shard verified, read memory-mapped."""
    settings, path = config["distill"], _path(config)
    cache = offline.read_sharded_cache(path, key=_key(config, teacher, data))
    print(f"Teacher logits: {path} ({cache.shape[1]:,} examples x {cache.shape[0]} views, integrity checked)")
    if data.streamed:
        train = offline.streaming_offline_dataset(
            data.load_example(data.train), data.train.y, cache, batch_size=settings["batch_size"],
            seed=settings["seed"], view_seed=settings["seed"])
    else:
        train = offline.offline_dataset(data.train.x, data.train.y, np.asarray(cache),
                                        batch_size=settings["batch_size"], seed=settings["seed"],
                                        view_seed=settings["seed"])
    return train, cache[0]

