"""The Beam pipeline of the teacher's pass: shard ranges in, a sharded cache out (`write_sharded_cache`)."""

import re

import apache_beam as beam
import numpy as np
from apache_beam.ml.inference.base import RunInference
from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions, StandardOptions
from apache_beam.portability import python_urns
from apache_beam.runners.portability.fn_api_runner import fn_runner

from tfdistill.offline import shards
from tfdistill.offline.beam.fork_server import ForkServer, fork_server_enabled
from tfdistill.offline.beam.handler import METRICS, ShardBatch, TeacherModelHandler, load_teacher
from tfdistill.offline.beam.shard_files import (
    Plan,
    ShardWriter,
    join,
    prepare_folder,
    read_json,
    verify_shard,
    write_manifest,
)
from tfdistill.offline.streaming import check_pass_arguments, class_dtype, view_batches, view_loader


class _ShardBatches(beam.DoFn):
    """A shard's range -> its inference batches (view by view), or its manifest entry when it is complete."""

    COMPLETE = "complete"

    def __init__(self, examples, plan):
        self.examples, self.plan = examples, plan

    def setup(self):
        self.load = view_loader(self.examples.load_example(), self.plan.views, self.plan.seed)
        self.reused = beam.metrics.Metrics.counter(METRICS, "shards_reused")

    def process(self, index):
        plan = self.plan
        if verify_shard(plan.folder(index), shards.shard_key(plan.key, index)):
            self.reused.inc()
            yield beam.pvalue.TaggedOutput(self.COMPLETE, plan.entry(index))
            return
        start, stop = plan.ranges[index]
        for view in range(plan.views):
            batch_start = start
            for images in view_batches(self.load, view, plan.batch_size, start, stop):
                images = images.numpy()
                yield ShardBatch(index, view, batch_start, images)
                batch_start += len(images)


class _WriteShards(beam.DoFn):
    """Teacher outputs of a shard's batches -> the shard on disk; yields its manifest entry when complete."""

    def __init__(self, plan):
        self.plan = plan

    def setup(self):
        self.written = beam.metrics.Metrics.counter(METRICS, "shards_written")

    def start_bundle(self):
        self.open = {}

    def process(self, result):
        index, view, start = result.example
        writer = self.open.get(index)
        if writer is None:
            writer = self.open[index] = ShardWriter(self.plan, index)
        if writer.add(view, start, result.inference):
            del self.open[index]
            self.written.inc()
            yield writer.finish()

    def finish_bundle(self):
        # A shard whose batches did not all reach this bundle is left to the next run; never listed.
        for writer in self.open.values():
            writer.abandon()
        self.open = {}


def write_sharded_cache(teacher, examples, path, views=1, seed=0, batch_size=256, dtype="float16",
                        examples_per_shard=10_240, top_k=None, temperature=None, load=None,
                        pipeline_options=None, verbose=1):
    """Runs the teacher over every view of `examples` on Apache Beam into a sharded cache.

    The examples are cut into shards of `examples_per_shard`; Beam's
    workers each take whole shards, make their views exactly as
    `write_teacher_logits` does, run the teacher through Beam's
    `RunInference` (`TeacherModelHandler`) and write the shard, verified by
    its integrity record. The same pass run again skips the complete
    shards and computes the rest: after a worker died, or to finish a cache
    another run left incomplete. Local runs use Beam's `DirectRunner`
    (`--direct_running_mode=multi_processing --direct_num_workers=N` for N
    processes); clusters `DataflowRunner`, `FlinkRunner`, `SparkRunner`,
    with a `path` every worker writes to (`gs://...`, a shared folder).

    Args:
        teacher: the teacher's `.keras` file or model folder, which every
            worker loads (see `TeacherModelHandler`); this process loads it
            once too, for the checks and the cache's key.
        examples: an `ImageFiles`, `ArrayExamples` or other description of
            examples read by index (see `tfdistill.offline.examples`).
        path: the cache's folder: new, empty, or a cache of the same pass to
            finish. Anything else is refused, and nothing is written.
        views: views per example, as `write_teacher_logits`.
        seed: seed of the augmented views.
        batch_size: inference batch size.
        dtype: storage dtype, `"float16"` or `"float32"`.
        examples_per_shard: examples per shard, a multiple of `batch_size`
            (so shards hold the in-process pass's batches).
        top_k: keep only the `k` largest logits and a remainder logit.
        temperature: with `top_k`, the remainder's temperature.
        load: a picklable function `path -> keras.Model` (default: a
            `.keras` file or a folder tfdistill exported).
        pipeline_options: Beam's `PipelineOptions`, or their command-line
            form (`["--runner=DataflowRunner", "--project=..."]`); `None`
            runs the `DirectRunner` in this process. The `DirectRunner`
            runs on Beam's Python engine, the one its options
            (`--direct_running_mode`, `--direct_num_workers`) configure,
            never on the Prism binary it would download.
        verbose: 1 prints what was computed and reused.

    Returns:
        `path`, complete: read it with `read_sharded_cache` or pass it to
        `streaming_offline_dataset` as `logits_path`.

    Raises:
        ValueError: bad arguments, with the errors `write_teacher_logits`
            gives for the same ones.
        FileExistsError: `path` holds something else.
        RuntimeError: the pipeline finished with shards missing (the runner
            split a shard's batches across workers); running it again
            computes them.

    Example:
        >>> files = ImageFiles(paths, image_size=(224, 224))  # doctest: +SKIP
        >>> write_sharded_cache("teacher.keras", files, "gs://bucket/cache", views=4,  # doctest: +SKIP
        ...                     pipeline_options=["--runner=DataflowRunner", "--project=my-project"])

    Reference:
        Apache Beam, "RunInference": https://beam.apache.org/documentation/ml/about-ml/
    """
    num_examples = len(examples)
    if num_examples < 1:
        raise ValueError(f"Invalid value for argument `examples`. Expected at least one example. Received: {examples!r}")
    if not isinstance(pipeline_options, PipelineOptions):
        pipeline_options = PipelineOptions(list(pipeline_options or []))
    # Local worker processes are forked from a server that imports TensorFlow while this one goes on.
    fork_server = ForkServer() if _runs_local_processes(pipeline_options) else None
    try:
        return _write(teacher, examples, path, views, seed, batch_size, dtype, examples_per_shard, top_k,
                      temperature, load, pipeline_options, verbose, fork_server)
    finally:
        if fork_server is not None:
            fork_server.close()


def _write(teacher, examples, path, views, seed, batch_size, dtype, examples_per_shard, top_k, temperature, load,
           pipeline_options, verbose, fork_server):
    num_examples = len(examples)
    model = load_teacher(teacher, load)
    output_shape, top_k, temperature = check_pass_arguments(model, views, batch_size, dtype, top_k, temperature)
    if (isinstance(examples_per_shard, bool) or not isinstance(examples_per_shard, (int, np.integer))
            or examples_per_shard < 1 or examples_per_shard % batch_size):
        raise ValueError(
            "Invalid value for argument `examples_per_shard`. Expected a multiple of `batch_size` "
            f"({batch_size}), so that shards hold whole inference batches. Received: {examples_per_shard!r}"
        )
    dtype = np.dtype(dtype).name
    key = shards.sharded_cache_key(model, examples, views, seed, dtype, top_k, temperature)
    ranges = tuple(shards.shard_ranges(num_examples, examples_per_shard))
    classes = None if top_k is None else class_dtype(output_shape[-1]).name
    header = {
        "format": shards.FORMAT, "key": key,
        "settings": {"num_examples": num_examples, "views": views, "seed": seed, "dtype": dtype,
                     "batch_size": batch_size, "examples_per_shard": examples_per_shard, "top_k": top_k,
                     "temperature": temperature, "output_shape": list(output_shape), "class_dtype": classes},
        "examples": examples.describe(),
    }
    del model
    prepare_folder(path, header)
    plan = Plan(path, key, views, seed, batch_size, dtype, ranges, output_shape, top_k, classes)
    handler = TeacherModelHandler(teacher, load, top_k, temperature)
    pipeline = beam.Pipeline(runner=_local_runner(pipeline_options, fork_server), options=pipeline_options)
    split = (
        pipeline
        | "Shards" >> beam.Create(range(len(ranges)))
        | "Spread" >> beam.Reshuffle()
        | "Batches" >> beam.ParDo(_ShardBatches(examples, plan)).with_outputs(_ShardBatches.COMPLETE, main="batches")
    )
    written = (
        split.batches
        | "Teacher" >> RunInference(handler)
        | "Write" >> beam.ParDo(_WriteShards(plan))
    )
    (
        (written, split[_ShardBatches.COMPLETE])
        | "Entries" >> beam.Flatten()
        | "All" >> beam.combiners.ToList()
        | "Manifest" >> beam.Map(write_manifest, path, header, len(ranges))
    )
    result = pipeline.run()
    result.wait_until_finish()
    manifest = read_json(join(path, shards.MANIFEST))
    if verbose:
        print(f"Teacher cache {path}: {len(manifest['shards'])} of {len(ranges)} shards complete"
              f"{_counts(result)}, {num_examples:,} examples x {views} views")
    if not manifest["complete"]:
        missing = sorted(set(range(len(ranges))) - {entry["index"] for entry in manifest["shards"]})
        raise RuntimeError(
            f"The teacher's pass into {path!r} finished with {len(missing)} shards missing ({missing[:10]}): their "
            "batches did not all reach one worker. Run it again: it computes only the missing shards."
        )
    return path


def _counts(result):
    """` (N computed now, M reused)` from the pipeline's metrics, or nothing where the runner reports none."""
    counts = {}
    try:
        for counter in result.metrics().query(beam.metrics.MetricsFilter().with_namespace(METRICS))["counters"]:
            counts[counter.key.metric.name] = counts.get(counter.key.metric.name, 0) + counter.committed
    except Exception:  # a runner without metrics
        return ""
    return f" ({counts.get('shards_written', 0)} computed now, {counts.get('shards_reused', 0)} reused)"


def _runs_local_processes(options):
    """Whether `options` run the pipeline on Beam's Python runner with local worker processes (on Linux)."""
    return (options.view_as(StandardOptions).runner in (None, "DirectRunner")
            and options.view_as(DirectOptions).direct_running_mode == "multi_processing"
            and fork_server_enabled())


def _local_runner(options, fork_server=None):
    """For the `DirectRunner` (or no runner), the engine its options configure; else `None` (Beam's choice).

    Beam's `DirectRunner` first tries its Prism runner, a Go binary it
    downloads at run time, which ignores `--direct_running_mode` and
    `--direct_num_workers`; it runs this pipeline, as it stands, on its
    Python `FnApiRunner`, given here directly with the options the
    `DirectRunner` would give it (which its worker processes read).
    `--runner=PrismRunner` still chooses Prism.
    """
    if options.view_as(StandardOptions).runner not in (None, "DirectRunner"):
        return None
    from apache_beam.portability.api import beam_provision_api_pb2
    from apache_beam.runners.portability.portable_runner import JobServiceHandle

    encoded = JobServiceHandle.encode_pipeline_options(options.get_all_options())
    runner = _FnApiRunner(provision_info=fn_runner.ExtendedProvisionInfo(
        beam_provision_api_pb2.ProvisionInfo(pipeline_options=encoded)))
    runner.fork_server = fork_server
    return runner


# How Beam's Python runner starts its local worker processes, and how they are started instead:
# `tfdistill_command.beam_worker` imports TensorFlow as the `tfdistill` command does, then runs
# `tfdistill.offline.beam.worker` (`-m` would import the package, and TensorFlow with it, first);
# given a fork server's socket, it stands in for a worker forked from that server (`fork_server`).
_BEAM_WORKER = " -m apache_beam.runners.worker.sdk_worker_main"


def _worker_command(python, fork_server=None):
    # The socket's path goes into a shell command: one with characters a shell would read is left out.
    if fork_server is not None and re.fullmatch(r"[\w./-]+", fork_server.path):
        return fork_server.worker_command(python)
    return f'{python} -c "import tfdistill_command; tfdistill_command.beam_worker()"'


def _fast_exit_workers(pipeline_proto, fork_server=None):
    """Starts the pipeline's local worker processes through `tfdistill_command.beam_worker` (see `worker`)."""
    for environment in pipeline_proto.components.environments.values():
        if environment.urn == python_urns.SUBPROCESS_SDK:
            command = environment.payload.decode("utf-8")
            if command.endswith(_BEAM_WORKER):
                environment.payload = _worker_command(command[: -len(_BEAM_WORKER)], fork_server).encode("utf-8")


class _FnApiRunner(fn_runner.FnApiRunner):
    """Beam's Python runner, its worker processes started through `tfdistill_command.beam_worker`."""

    fork_server = None

    def run_via_runner_api(self, pipeline_proto, options):
        _fast_exit_workers(pipeline_proto, self.fork_server)
        return super().run_via_runner_api(pipeline_proto, options)
