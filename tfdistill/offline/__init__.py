"""Offline distillation: run the teacher once, train the student on its cached outputs.

The teacher's logits for every training example are computed once, in large
inference batches, and joined to the `tf.data` pipeline under the key
`"teacher_logits"`; `Distiller` then never calls the teacher while training.
Random augmentation stays possible through a fixed number of augmented *views*
per example: view `v` of example `i` is a deterministic function of
`(seed, i, v)`, so the pipeline rebuilds exactly the image the teacher saw.
For many classes, `top_k=` keeps the k largest logits and one remainder logit
(`TopKLogits`). Any other deterministic `tf.data` pipeline is cached with
`cache_dataset`, which refuses (and says why) a pipeline that changes between
passes, leaving the teacher online. Data that does not fit in memory is
streamed: `write_teacher_logits` writes the cache to disk and
`streaming_offline_dataset` reads it memory-mapped. Logits with positions (a
sequence's tokens) are cached the same way, as `(views, n, time, classes)`,
or with `top_k` as `(views, n, time, k + 1)` values and `(views, n, time, k)`
classes in a directory that `read_top_k_cache` opens memory-mapped.

A pass too large for one process runs on Apache Beam (`write_sharded_cache`,
`pip install 'tfdistill[beam]'`): any number of workers write a cache in
shards, each with its integrity record, listed in a manifest once complete;
`read_sharded_cache` and `streaming_offline_dataset` read it as they read the
single file. `ImageFiles` and `ArrayExamples` describe examples read by
index, the same in every process, and `ConcatenatedExamples` several of them
one after the other.
"""

from tfdistill.offline.datasets import distributed_offline_dataset, offline_dataset, shard_indices
from tfdistill.offline.disk_cache import cache_key, cache_size_bytes, cached_teacher_logits
from tfdistill.offline.examples import ArrayExamples, ConcatenatedExamples, ImageFiles
from tfdistill.offline.pipeline_cache import cache_dataset, pipeline_randomness
from tfdistill.offline.shards import ShardedArray, read_sharded_cache, sharded_cache_key
from tfdistill.offline.streaming import read_top_k_cache, streaming_offline_dataset, write_teacher_logits
from tfdistill.offline.teacher_runs import compute_teacher_logits, compute_teacher_outputs
from tfdistill.offline.views import view_image
from tfdistill.teacher_outputs import TopKLogits

# Apache Beam is optional: its pipeline is imported when first asked for.
_BEAM = ("TeacherModelHandler", "write_sharded_cache")


def __getattr__(name):
    if name in _BEAM:
        from tfdistill.offline import beam

        return getattr(beam, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ArrayExamples",
    "ConcatenatedExamples",
    "ImageFiles",
    "ShardedArray",
    "TopKLogits",
    "cache_dataset",
    "cache_key",
    "cache_size_bytes",
    "cached_teacher_logits",
    "compute_teacher_logits",
    "compute_teacher_outputs",
    "distributed_offline_dataset",
    "offline_dataset",
    "pipeline_randomness",
    "read_sharded_cache",
    "read_top_k_cache",
    "shard_indices",
    "sharded_cache_key",
    "streaming_offline_dataset",
    "view_image",
    "write_teacher_logits",
]
