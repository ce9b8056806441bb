"""What a run needs before any work: the teacher, the data and the students' initial weights, checked together."""

import dataclasses
from typing import Callable

import keras

from tfdistill.app import data_sources, model_sources
from tfdistill.app.datasets import Data
from tfdistill.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class RunInputs:
    """The loaded inputs of a run.

    Attributes:
        teacher: the teacher, frozen; it outputs logits.
        data: the `tfdistill.app.datasets.Data`, its unlabeled examples in
            the training split.
        make_student: `make_student(name)` returns a fresh student with the
            run's initial weights.
    """

    teacher: keras.Model
    data: Data
    make_student: Callable[..., keras.Model]


def load_inputs(config, same_weights=True):
    """The teacher, the data and the student factory of a `RunConfig`, checked together.

    Everything is loaded and checked here, before any folder is written or
    the teacher runs: a missing file, a signature or data the models cannot
    take, labels or class names that do not match the outputs, unlabeled
    examples of another form than the labeled ones.

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
    return RunInputs(teacher, data, make_student)
