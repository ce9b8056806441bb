"""A run's config as typed, frozen sections: `RunConfig.from_dict(config.resolve(...))`.

Each section is a frozen dataclass with the keys of `tfdistill.app.config.DEFAULTS`
(the one source of the keys and their defaults) and the checks on its values;
`RunConfig` checks what spans sections. The resolved config itself stays plain
data (a dict of dicts, as written to `config.json`); the stages of a run take
the sections they need.

A new section is a dataclass here, its keys and defaults in `DEFAULTS`, their
meaning in `HELP`, and a field of `RunConfig`.
"""

import dataclasses
import difflib
from typing import Any, Dict, List, Optional, Union

from tfdistill.errors import ConfigError

DATASETS = ("fashion_mnist",)
TEACHER_OUTPUTS = ("logits", "probabilities")
CACHE_DTYPES = ("float16", "float32")
QAT_TEACHERS = ("teacher", "student")


def closest(key, valid):
    """`" Did you mean 'x'?"` for the closest of `valid`, or `""`."""
    match = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
    return f" Did you mean {match[0]!r}?" if match else ""


def _at_least(section, key, minimum):
    value = getattr(section, key)
    if value < minimum:
        raise ConfigError(f"Invalid value for `{section.NAME}.{key}`: expected an integer >= {minimum}. Received: {value}")


def _positive(section, key):
    value = getattr(section, key)
    if not value > 0:
        raise ConfigError(f"Invalid value for `{section.NAME}.{key}`: expected a number > 0. Received: {value}")


class _Section:
    NAME = ""

    def __post_init__(self):
        self.check()

    def check(self):
        """Raises `ConfigError` for a value out of range."""

    @classmethod
    def from_dict(cls, values):
        return cls(**values)

    def to_dict(self):
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class DataSection(_Section):
    """`data`: which examples, how they are split, which labels are kept, the unlabeled pool."""

    NAME = "data"
    dataset: str
    arrays: Optional[str]
    image_folder: Optional[str]
    image_size: Optional[List[int]]
    class_names: Optional[List[str]]
    test_size: Union[int, float]
    tfds: Optional[str]
    tfds_train_split: str
    tfds_test_split: str
    data_dir: Optional[str]
    train_subset: Optional[int]
    test_subset: Optional[int]
    validation_size: Optional[Union[int, float]]
    seed: int
    unlabeled: Optional[str]
    labels_per_class: Optional[int]

    @property
    def form(self):
        """The key that names the labeled data: `arrays`, `image_folder`, `tfds`, or `dataset`."""
        return next((key for key in ("arrays", "image_folder", "tfds") if getattr(self, key) is not None), "dataset")

    @property
    def has_pool(self):
        """Whether the training split gets unlabeled examples (`unlabeled` or `labels_per_class`)."""
        return self.unlabeled is not None or self.labels_per_class is not None

    def check(self):
        if self.dataset not in DATASETS:
            raise ConfigError(
                f"Invalid value for `data.dataset`: expected one of {list(DATASETS)} (the "
                f"demo models take 28x28 grey images). Received: {self.dataset!r}"
            )
        chosen = [key for key in ("arrays", "image_folder", "tfds") if getattr(self, key) is not None]
        if len(chosen) > 1:
            raise ConfigError(f"Invalid config: give one of `data.arrays`, `data.image_folder`, `data.tfds`. Received: {chosen}")
        subset, validation_size = self.train_subset, self.validation_size
        if subset is not None and (not isinstance(subset, int) or (isinstance(validation_size, int) and subset <= validation_size)):
            raise ConfigError(
                "Invalid value for `data.train_subset`: expected null or an integer larger than "
                f"`data.validation_size` ({validation_size}). Received: {subset!r}"
            )
        if self.test_subset is not None and (not isinstance(self.test_subset, int) or isinstance(self.test_subset, bool)
                                             or self.test_subset < 1):
            raise ConfigError(
                "Invalid value for `data.test_subset`: expected null (the whole test split) or an integer >= 1. "
                f"Received: {self.test_subset!r}"
            )
        per_class = self.labels_per_class
        if per_class is not None and (not isinstance(per_class, int) or per_class < 1):
            raise ConfigError(
                "Invalid value for `data.labels_per_class`: expected null (every label) or an integer >= 1. "
                f"Received: {per_class!r}"
            )
        if self.unlabeled is not None and not isinstance(self.unlabeled, str):
            raise ConfigError(
                "Invalid value for `data.unlabeled`: expected the path of an .npz file or of a folder of images. "
                f"Received: {self.unlabeled!r}"
            )


@dataclasses.dataclass(frozen=True)
class TeacherSection(_Section):
    """`teacher`: the model that teaches, and how a missing one is trained."""

    NAME = "teacher"
    path: str
    outputs: str
    output_key: Optional[str]
    epochs: int
    cache_dir: Optional[str]

    def check(self):
        _at_least(self, "epochs", 1)
        if self.outputs not in TEACHER_OUTPUTS:
            raise ConfigError(
                "Invalid value for `teacher.outputs`: expected 'logits' or 'probabilities'."
                f"{closest(self.outputs, list(TEACHER_OUTPUTS))} Received: {self.outputs!r}"
            )


@dataclasses.dataclass(frozen=True)
class StudentSection(_Section):
    """`student`: a `.keras` file, a builder function, or the built-in CNN."""

    NAME = "student"
    path: Optional[str]
    builder: Optional[str]
    args: Dict[str, Any]
    width: int

    def check(self):
        _at_least(self, "width", 1)
        if self.path is not None and self.builder is not None:
            raise ConfigError("Invalid config: give `student.path` or `student.builder`, not both.")
        if self.builder is not None and (not isinstance(self.builder, str) or self.builder.count(":") != 1):
            raise ConfigError(
                "Invalid value for `student.builder`: expected 'package.module:function'. "
                f"Received: {self.builder!r}"
            )


@dataclasses.dataclass(frozen=True)
class DistillSection(_Section):
    """`distill`: the recipe both students train with (the student alone with soft weight 0)."""

    NAME = "distill"
    soft_loss: str
    temperature: float
    hard_weight: float
    soft_weight: float
    epochs: int
    batch_size: int
    learning_rate: float
    views: int
    seed: int
    train_scratch: bool
    precise_batch_norm: bool
    labeled_share: Optional[float]

    def check(self):
        for key in ("epochs", "batch_size", "views"):
            _at_least(self, key, 1)
        for key in ("temperature", "learning_rate"):
            _positive(self, key)
        for key in ("hard_weight", "soft_weight"):
            if getattr(self, key) < 0:
                raise ConfigError(f"Invalid value for `distill.{key}`: expected a number >= 0. Received: {getattr(self, key)}")
        from tfdistill.losses import SOFT_LOSSES

        if self.soft_loss not in SOFT_LOSSES:
            raise ConfigError(
                f"Invalid value for `distill.soft_loss`: expected one of {sorted(SOFT_LOSSES)}."
                f"{closest(self.soft_loss, list(SOFT_LOSSES))} Received: {self.soft_loss!r}"
            )
        share = self.labeled_share
        if share is not None and (isinstance(share, (bool, str)) or not 0 < share < 1 or self.batch_size < 2):
            raise ConfigError(
                "Invalid value for `distill.labeled_share`: expected null (batches as they come) or a number in "
                f"(0, 1), the share of labeled examples in each batch of `distill.batch_size` >= 2. Received: {share!r}"
            )


@dataclasses.dataclass(frozen=True)
class CacheSection(_Section):
    """`cache`: the sharded cache of the teacher's outputs that `tfdistill cache` writes and runs read."""

    NAME = "cache"
    path: Optional[str]
    batch_size: int
    examples_per_shard: int
    dtype: str

    def check(self):
        _at_least(self, "batch_size", 1)
        _at_least(self, "examples_per_shard", 1)
        if self.examples_per_shard % self.batch_size:
            raise ConfigError(
                "Invalid value for `cache.examples_per_shard`: expected a multiple of `cache.batch_size` "
                f"({self.batch_size}), so that shards hold whole inference batches. Received: {self.examples_per_shard}"
            )
        if self.dtype not in CACHE_DTYPES:
            raise ConfigError(
                f"Invalid value for `cache.dtype`: expected 'float16' or 'float32'. Received: {self.dtype!r}"
            )
        if self.path is not None and not isinstance(self.path, str):
            raise ConfigError(f"Invalid value for `cache.path`: expected a folder's path. Received: {self.path!r}")


@dataclasses.dataclass(frozen=True)
class QatSection(_Section):
    """`qat`: quantization-aware distillation of the int8 student, after distilling (0 epochs: none)."""

    NAME = "qat"
    epochs: int
    learning_rate: float
    teacher: str
    hard_weight: float
    soft_weight: float
    per_channel: bool
    weight_bits: int
    output_top_k: int

    def check(self):
        _at_least(self, "epochs", 0)
        _at_least(self, "output_top_k", 0)
        _positive(self, "learning_rate")
        for key in ("hard_weight", "soft_weight"):
            if getattr(self, key) < 0:
                raise ConfigError(f"Invalid value for `qat.{key}`: expected a number >= 0. Received: {getattr(self, key)}")
        if self.weight_bits not in (4, 8):
            raise ConfigError(f"Invalid value for `qat.weight_bits`: expected 8 or 4. Received: {self.weight_bits}")
        if self.teacher not in QAT_TEACHERS:
            raise ConfigError(
                "Invalid value for `qat.teacher`: expected 'teacher' or 'student'."
                f"{closest(self.teacher, list(QAT_TEACHERS))} Received: {self.teacher!r}"
            )


@dataclasses.dataclass(frozen=True)
class ExportSection(_Section):
    """`export`: where the distilled student goes and how its TFLite files are verified."""

    NAME = "export"
    saved_model: bool
    tflite: List[str]
    min_agreement: float
    calibration_examples: int
    verify_examples: int
    serving_dir: Optional[str]

    def check(self):
        _at_least(self, "calibration_examples", 1)
        _at_least(self, "verify_examples", 1)
        from tfdistill.export.tflite import QUANTIZATIONS

        for quantization in self.tflite:
            if quantization not in QUANTIZATIONS:
                raise ConfigError(
                    f"Invalid value in `export.tflite`: expected items of {list(QUANTIZATIONS)}. Received: {quantization!r}"
                )
        if self.serving_dir is not None and not isinstance(self.serving_dir, str):
            raise ConfigError(f"Invalid value for `export.serving_dir`: expected a folder's path. Received: {self.serving_dir!r}")


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """A resolved config, section by section (`tfdistill.app.config.DEFAULTS` names the keys)."""

    data: DataSection
    teacher: TeacherSection
    student: StudentSection
    distill: DistillSection
    cache: CacheSection
    qat: QatSection
    export: ExportSection

    def __post_init__(self):
        if self.distill.labeled_share is not None and not self.data.has_pool:
            raise ConfigError(
                "Invalid value for `distill.labeled_share`: it mixes labeled examples with unlabeled ones, but the "
                "run has none (give `data.unlabeled` or `data.labels_per_class`). "
                f"Received: {self.distill.labeled_share!r}"
            )

    @classmethod
    def from_dict(cls, resolved):
        """The sections of a resolved config (`tfdistill.app.config.resolve`'s dict)."""
        return cls(**{field.name: SECTIONS[field.name].from_dict(resolved[field.name])
                      for field in dataclasses.fields(cls)})

    def to_dict(self):
        """The plain data again: `RunConfig.from_dict(config).to_dict() == config`."""
        return {field.name: getattr(self, field.name).to_dict() for field in dataclasses.fields(self)}


SECTIONS = {cls.NAME: cls for cls in (DataSection, TeacherSection, StudentSection, DistillSection, CacheSection,
                                      QatSection, ExportSection)}
