"""What a run needs before any work: the teacher, the data and the students' initial weights, checked together."""

import dataclasses
from typing import Callable, Optional

import keras

from tfdistill.app import data_sources, model_sources, teacher_cache
from tfdistill.app.datasets import Data
from tfdistill.errors import ConfigError
from tfdistill.offline import ShardedArray


@dataclasses.dataclass(frozen=True)
class RunInputs:
    """The loaded inputs of a run.

    Attributes:
        teacher: the teacher, frozen; it outputs logits.
        data: the `tfdistill.app.datasets.Data`, its unlabeled examples in
            the training split.
        make_student: `make_student(name)` returns a fresh student with the
            run's initial weights.
        teacher_outputs: the teacher's outputs on the training split read
            from `cache.path` (`tfdistill cache`), `(views, n, ..., classes)`;
            `None`: the run computes them.
    """

    teacher: keras.Model
    data: Data
    make_student: Callable[..., keras.Model]
    teacher_outputs: Optional[ShardedArray] = None


def load_inputs(config, same_weights=True):
    """The teacher, the data and the student factory of a `RunConfig`, checked together.

    Everything is loaded and checked here, before any folder is written or
    the teacher runs: a missing file, a signature or data the models cannot
    take, labels or class names that do not match the outputs, unlabeled
    examples of another form than the labeled ones, a `cache.path` that is
    incomplete, damaged or of another teacher, training split or settings.

    Args:
        config: a `tfdistill.app.sections.RunConfig`.
        same_weights: `False` gives students new initial weights at each
            call, drawn from Keras's global seed (a recipe search).

    Returns:
        A `RunInputs`.
    """
    teacher = model_sources.load_teacher(config.teacher.path, config.teacher.output_key, config.teacher.outputs)
    data = data_sources.from_config(config.data, tuple(teacher.inputs[0].shape[1:]))
    if config.distill.labeled_share is not None and not (len(data.train.labeled) < len(data.train) and len(data.train.labeled)):
        raise ConfigError(
            "Invalid value for `distill.labeled_share`: it mixes labeled examples with unlabeled ones, but the "
            f"training split has {len(data.train.labeled):,} labeled and {len(data.train) - len(data.train.labeled):,} "
            f"unlabeled examples. Received: {config.distill.labeled_share!r}"
        )
    make_student = model_sources.student_factory(
        config.student, data.input_shape, int(teacher.outputs[0].shape[-1]), config.distill.seed,
        same_weights=same_weights,
    )
    model_sources.check_models_and_data(teacher, make_student(), data)
    outputs = None if config.cache.path is None else teacher_cache.read(config, teacher, data)
    return RunInputs(teacher, data, make_student, outputs)
