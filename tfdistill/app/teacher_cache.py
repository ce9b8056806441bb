"""`tfdistill cache`: a config's teacher pass on Apache Beam, into the sharded cache `cache.path`; runs then read it.

    tfdistill cache --config run.yaml --runner DirectRunner
    tfdistill distill --config run.yaml --output runs/one     # cache.path set: the teacher does not run

The cache covers the examples the run's own teacher pass covers, in its
order: the training split (`data.*`), its labeled examples first, then the
unlabeled pool of `data.unlabeled` (`data.labels_per_class` keeps the same
examples and only drops labels), every view of each (`distill.views`,
`distill.seed`). Both read them from one description (`Data.examples`), so
a run on the cache trains the students a run without it trains. The
cache's key (teacher, examples, views, seed, dtype) is checked by `distill`
and `tune` before they write anything: a cache of another teacher, data,
pool or settings is refused instead of trained on.
"""

import functools

from tfdistill import offline, validation
from tfdistill.app import data_sources, model_sources
from tfdistill.errors import CacheIntegrityError, ConfigError
from tfdistill.offline import shards


def _path(config):
    path = config.cache.path
    if path is None:
        raise ConfigError(
            "Invalid value for `cache.path`: null. Expected the folder the sharded teacher cache goes to, "
            "e.g. --set cache.path=cache/pool (or gs://bucket/pool)."
        )
    return path


def _load(config):
    """The picklable loader every worker reads the teacher with: the one `distill` uses."""
    return functools.partial(model_sources.load_teacher, output_key=config.teacher.output_key,
                             outputs=config.teacher.outputs)


def _pool(data):
    """`" (L labeled, U unlabeled)"` for a training split with unlabeled examples, else `""`."""
    labeled = len(data.train.labeled)
    if labeled == len(data.train):
        return ""
    return f" ({labeled:,} labeled, {len(data.train) - labeled:,} unlabeled)"


def write(config, pipeline_options=(), verbose=1):
    """Writes (or finishes) the sharded cache of a config's teacher pass; returns its path.

    Args:
        config: a `tfdistill.app.sections.RunConfig`, with `cache.path` set.
        pipeline_options: Beam's pipeline options, command-line form
            (`["--runner=DirectRunner", "--direct_num_workers=2"]`).
        verbose: 1 prints what was computed and reused.
    """
    from tfdistill.offline.beam import load_teacher, write_sharded_cache

    path = _path(config)
    teacher = load_teacher(config.teacher.path, _load(config))  # gs://... too: the workers read it there
    validation.check_logits_model(teacher, "teacher.path", remedy=(
        "Save `tfdistill.strip_softmax(teacher)` to a .keras file and pass that, or set "
        "`teacher.outputs: probabilities`."))
    data = data_sources.from_config(config.data, tuple(teacher.inputs[0].shape[1:]))
    examples = data.examples(data.train)
    settings, cache = config.distill, config.cache
    print(f"Teacher cache of {data.description}: {examples.describe()}{_pool(data)} x {settings.views} views "
          f"into {path}")
    return write_sharded_cache(
        config.teacher.path, examples, path, views=settings.views, seed=settings.seed,
        batch_size=cache.batch_size, dtype=cache.dtype, examples_per_shard=cache.examples_per_shard,
        load=_load(config), pipeline_options=list(pipeline_options), verbose=verbose,
    )


def read(config, teacher, data):
    """The teacher's outputs on a run's training split from `cache.path`, instead of running the teacher.

    Refuses, before a run writes anything, a cache that is missing,
    incomplete or of another pass (its manifest read first, for the
    remedy), then verifies every shard against its integrity record.

    Args:
        config: the run's `tfdistill.app.sections.RunConfig`, with `cache.path` set.
        teacher: the run's teacher.
        data: the run's `Data`, its unlabeled examples in the training split.

    Returns:
        A `tfdistill.offline.ShardedArray` of shape `(views, n, ..., classes)`,
        read memory-mapped.

    Raises:
        ConfigError: the cache is missing, incomplete or made from another
            teacher, training split (pool included) or settings.
        CacheIntegrityError: a shard differs from its integrity record.
    """
    path = _path(config)
    try:
        manifest = shards.read_manifest(path)
    except (FileNotFoundError, CacheIntegrityError) as error:
        raise ConfigError(f"Invalid value for `cache.path`: {error} Make it with `tfdistill cache` first.") from None
    settings = manifest["settings"]
    if not manifest.get("complete"):
        total = len(shards.shard_ranges(settings["num_examples"], settings["examples_per_shard"]))
        raise ConfigError(
            f"Invalid value for `cache.path`: the sharded cache {path!r} is incomplete ({len(manifest['shards'])} "
            f"of {total} shards). Run `tfdistill cache` with the same config again: it computes only the missing shards."
        )
    examples = data.examples(data.train)
    key = shards.sharded_cache_key(teacher, examples, config.distill.views, config.distill.seed, config.cache.dtype)
    if manifest["key"] != key:
        raise ConfigError(
            f"Invalid value for `cache.path`: {path!r} holds the outputs of another teacher, training data or "
            f"settings ({manifest['examples']}, views={settings['views']}, seed={settings['seed']}, "
            f"dtype={settings['dtype']}); the run's training split is {examples.describe()}"
            f"{_pool(data)}. Run `tfdistill cache` with this config into another folder."
        )
    return offline.read_sharded_cache(path, key=key)
