"""Beam's `RunInference` with a Keras teacher: `TeacherModelHandler` and the batches it takes (`ShardBatch`)."""

import os
import shutil
import tempfile

import tensorflow as tf
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.ml.inference.base import ModelHandler, PredictionResult

from tfdistill.export.saved_model import load_exported_model
from tfdistill.losses.logits import top_k_logits

# The namespace of the pipeline's metrics (RunInference's and the shards').
METRICS = "tfdistill"


class ShardBatch:
    """One inference batch: `images` are view `view` of the examples `start .. start + len - 1` of shard `shard`."""

    __slots__ = ("shard", "view", "start", "images")

    def __init__(self, shard, view, start, images):
        self.shard, self.view, self.start, self.images = shard, view, start, images

    def __len__(self):
        return len(self.images)


def _local_copy(path):
    """`path` itself when local; a file or folder on another file system (`gs://...`) is copied to a local folder first."""
    if "://" not in path:
        return path
    local = tempfile.mkdtemp(prefix="tfdistill-teacher-")
    name = path.rstrip("/").rsplit("/", 1)[-1]
    files = [m.path for m in FileSystems.match([path])[0].metadata_list]
    if not files:  # a folder: every file under it
        prefix = path.rstrip("/") + "/"
        files = [m.path for m in FileSystems.match([prefix + "**"])[0].metadata_list]
        destinations = [os.path.join(local, name, f[len(prefix):]) for f in files]
    else:
        destinations = [os.path.join(local, name)]
    for source, destination in zip(files, destinations):
        os.makedirs(os.path.dirname(destination), exist_ok=True)
        with FileSystems.open(source, compression_type=CompressionTypes.UNCOMPRESSED) as f, open(destination, "wb") as out:
            shutil.copyfileobj(f, out)
    return os.path.join(local, name)


def load_teacher(path, load=None):
    """The teacher at `path` (copied locally first from `gs://` and the like), loaded by `load`.

    Args:
        path: a `.keras` file or a model folder.
        load: a function `path -> keras.Model`; `None` reads a `.keras` file
            or a folder `tfdistill.export.export_saved_model` wrote
            (`tfdistill.export.load_exported_model`).
    """
    return (load or _load_exported_teacher)(_local_copy(path))


def _load_exported_teacher(path):
    return load_exported_model(path, role="teacher")


class _Teacher:
    """The loaded teacher and its compiled pass: images -> dict of numpy outputs."""

    def __init__(self, model, top_k, temperature):
        self.model = model
        if top_k is None:
            self.outputs = tf.function(lambda images: {"logits": model(images, training=False)})
        else:
            def compress(images):
                values, classes = top_k_logits(model(images, training=False), top_k, temperature)
                return {"values": values, "classes": classes}

            self.outputs = tf.function(compress)

    def __call__(self, images):
        return {name: value.numpy() for name, value in self.outputs(images).items()}


class TeacherModelHandler(ModelHandler):
    """A Beam `ModelHandler` for a Keras teacher: a `.keras` file or a SavedModel, loaded once per worker.

    Each element is a `ShardBatch`, already one inference batch, so Beam's
    batching is skipped (`should_skip_batching`): the teacher runs on
    exactly the batches the pipeline made, each as soon as it is made (one
    batch in memory). Beam's own `TFModelHandler*` are not
    used; the teacher is loaded by `load` (the command line passes
    `tfdistill.app.model_sources.load_teacher`, which reads any SavedModel
    through its serving signature and TF Serving model folders).

    Args:
        path: the teacher's `.keras` file or model folder; paths on other
            file systems (`gs://...`) are copied to the worker first.
        load: a picklable function `path -> keras.Model`; `None` reads a
            `.keras` file or a folder tfdistill exported.
        top_k: keep only the `k` largest logits and a remainder logit.
        temperature: with `top_k`, the remainder's temperature.

    Example:
        >>> handler = TeacherModelHandler("teacher.keras")  # doctest: +SKIP
        >>> batches | apache_beam.ml.inference.RunInference(handler)  # doctest: +SKIP

    Reference:
        Apache Beam, "RunInference" and "ModelHandler":
        https://beam.apache.org/documentation/ml/about-ml/
    """

    def __init__(self, path, load=None, top_k=None, temperature=None):
        super().__init__()
        self.path, self.load, self.top_k, self.temperature = path, load, top_k, temperature

    def load_model(self):
        return _Teacher(load_teacher(self.path, self.load), self.top_k, self.temperature)

    def should_skip_batching(self):
        return True  # every element is one inference batch already

    def run_inference(self, batch, model, inference_args=None):
        """`batch`: one `ShardBatch`. Returns its `PredictionResult`: `(shard, view, start)` and the outputs by name."""
        return [PredictionResult((batch.shard, batch.view, batch.start), model(batch.images))]

    def get_num_bytes(self, batch):
        return batch.images.nbytes  # not Beam's default, which pickles the batch to count its bytes

    def get_metrics_namespace(self):
        return METRICS
