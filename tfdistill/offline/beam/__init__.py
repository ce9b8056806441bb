"""The teacher's pass over a dataset of any size on Apache Beam, into a sharded cache.

    shard ranges -> Reshuffle -> ShardBatches ------------------> RunInference -> WriteShards --+
                                   | the views of a shard's           (TeacherModelHandler)     |
                                   | examples, a batch at a time                                 +-> manifest
                                   +- a shard already complete: its manifest entry -------------+

Each shard holds whole inference batches that start where the in-process
pass's batches start, made by the same `load_example` and `view_image`, so
the teacher sees the very batches `write_teacher_logits` gives it and the
two caches hold the same bits. A shard is written front to back by the
worker that computed it, one batch in memory at a time, under temporary
names, then renamed, its integrity record last (see
`tfdistill.offline.shards`); the manifest lists the shards complete at the
end. A worker that dies leaves no shard; a run of the same pass skips the
complete shards (each verified against its record) and computes the rest.

Apache Beam is optional: `pip install 'tfdistill[beam]'`.
"""

try:
    import apache_beam  # noqa: F401
except ImportError as error:  # pragma: no cover - exercised in a process without Beam
    raise ImportError(
        "The teacher's pass on Apache Beam needs the `apache-beam` package: pip install 'tfdistill[beam]'"
    ) from error

from tfdistill.offline.beam.handler import ShardBatch, TeacherModelHandler, load_teacher  # noqa: E402
from tfdistill.offline.beam.pipeline import write_sharded_cache  # noqa: E402

__all__ = ["ShardBatch", "TeacherModelHandler", "load_teacher", "write_sharded_cache"]
