"""`Distiller`: trains a student against a frozen teacher with `model.fit`.

The class keeps the training concerns: compile, the loss and the steps. What
the teacher gives the student is parsed in `tfdistill.teacher_outputs`, the
loss's pieces are in `tfdistill.objective`, missing labels in
`tfdistill.labels`, pre-flight checks in `tfdistill.preflight`, the NaN/Inf
guard in `tfdistill.guard`, what a step logs in `tfdistill.step_logs`,
resuming in `tfdistill.callbacks` and private-API workarounds in
`tfdistill.compat`.

The Distiller writes its own `train_step` rather than overriding
`compute_loss` (as `keras.distillation.Distiller` does): the guard must see
every value the update depends on, the gradients included, and decide
whether to apply it, and Keras's `train_step` exposes neither.
"""

from typing import Optional, Sequence, Union

import keras
import tensorflow as tf

from tfdistill import compat, guard, labels, objective, preflight, step_logs, tokens, validation
from tfdistill import feature_pairs as feature_pairs_module
from tfdistill import losses as losses_module
from tfdistill import teacher_outputs as teacher_outputs_module
from tfdistill.feature_pairs import FeaturePair
from tfdistill.losses.base import DistillationLoss
from tfdistill.teacher_outputs import TeacherOutputs

# A loss weight: a number >= 0, or a schedule of the optimizer's step.
Weight = Union[float, keras.optimizers.schedules.LearningRateSchedule]


@keras.saving.register_keras_serializable(package="tfdistill")
class Distiller(compat.MultiWorkerBuild, keras.Model):
    """Distils a frozen teacher into a student through `fit`.

    The teacher runs in inference mode (`training=False`) and its weights
    never change; only the student trains. `call`, `predict` and `evaluate`
    are the student's. The loss is

        loss = hard_weight · hard_loss(y, student) +
               soft_weight · soft_loss(teacher, student) + student regularizers

    `fit` logs `loss`, the unweighted `hard_loss` and `soft_loss`,
    `teacher_agreement` (the share of examples where the student's top class
    is the teacher's) and compiled metrics.

    Labels are optional: `fit(x)` trains on the teacher alone
    (`hard_weight=0`); examples labeled `tfdistill.labels.UNLABELED` (-1)
    count in the soft loss only, and the hard loss and label metrics are
    means over the labeled ones (`tfdistill.labels`). Logits with positions,
    `(batch, ..., num_classes)`, train per position, padding weighted 0 or
    masked (`tfdistill.tokens`).

    Args:
        teacher: a built `keras.Model` that outputs logits, shape
            `(batch, num_classes)` or `(batch, ..., num_classes)`.
        student: a `keras.Model` with the same output shape, logits too.
        separate_inputs: if `True`, every `x` is a dict `{"student": ...,
            "teacher": ...}` giving each model its own input (e.g. a 224 px
            image for the teacher and a 96 px one for the student); `predict`
            then takes either that dict or the student's input alone.
        features: optional list of `tfdistill.FeaturePair`: intermediate
            layers to match (FitNets hints, attention transfer), logged as
            `feature_loss`; learned adapters stay in `distiller.adapters`.
        name: model name.

    Example:
        >>> distiller = Distiller(teacher, student)  # doctest: +SKIP
        >>> distiller.compile("adam", soft_loss="kd", metrics=["accuracy"])  # doctest: +SKIP
        >>> distiller.fit(train_ds, epochs=10)  # doctest: +SKIP
        >>> distiller.student.save("student.keras")  # doctest: +SKIP

    Reference:
        Hinton, Vinyals and Dean, "Distilling the Knowledge in a Neural
        Network", 2015.
    """

    def __init__(
        self,
        teacher: keras.Model,
        student: keras.Model,
        separate_inputs: bool = False,
        features: Optional[Sequence[FeaturePair]] = None,
        name: str = "distiller",
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        validation.check_teacher_and_student(teacher, student)
        teacher.trainable = False
        self.teacher = teacher
        self.student = student
        self.separate_inputs = bool(separate_inputs)
        self.feature_pairs = feature_pairs_module.get_feature_pairs(features)
        self.hard_loss_tracker = keras.metrics.Mean(name="hard_loss")
        self.soft_loss_tracker = keras.metrics.Mean(name="soft_loss")
        self.agreement_tracker = keras.metrics.Mean(name="teacher_agreement")
        self._guard = guard.GuardState()
        self.feature_matching = None
        self.adapters = []
        if self.feature_pairs:
            self.feature_matching = feature_pairs_module.FeatureMatching(teacher, student, self.feature_pairs)
            self.adapters = self.feature_matching.adapters  # tracked here, so the Distiller trains and saves them
            self.feature_loss_tracker = keras.metrics.Mean(name="feature_loss")
        self.hard_loss = None
        self.soft_loss = None
        self.hard_weight = None
        self.soft_weight = None
        if student.built:
            self.built = True

    # ----------------------------------------------------------------- compile
    def compile(
        self,
        optimizer: Union[str, keras.optimizers.Optimizer] = "adam",
        loss: Union[str, keras.losses.Loss] = "sparse_categorical_crossentropy",
        soft_loss: Union[None, str, dict, DistillationLoss] = None,
        hard_weight: Weight = 0.0,
        soft_weight: Weight = 1.0,
        metrics: Optional[list] = None,
        token_reduction: str = "mean_over_tokens",
        guard: bool = True,
        **kwargs,
    ) -> None:
        """Configures the optimizer, both losses, their weights and metrics.

        The defaults train the student on the teacher's probabilities alone
        (KD at `T=1`, `hard_weight=0`, `soft_weight=1`; see the docs' results).

        Args:
            optimizer: optimizer name or instance.
            loss: the hard loss on the labels: `"sparse_categorical_crossentropy"`
                (from logits) or a `keras.losses.Loss`.
            soft_loss: the loss against the teacher: a name in
                `tfdistill.losses.SOFT_LOSSES` (`"kd"` is Hinton's `T²·KL` at
                `T=4`), a config dict or a `tfdistill.losses.DistillationLoss`;
                `None` (the default) is `KnowledgeDistillation(temperature=1.0)`.
            hard_weight: weight of the hard loss, >= 0, or a schedule
                (`tfdistill.schedules.LinearWarmup`, any `LearningRateSchedule`)
                evaluated at the optimizer's step.
            soft_weight: weight of the soft loss, >= 0, or a schedule.
            metrics: metrics on `(y, student logits)`, e.g. `["accuracy"]`;
                per position for logits with positions.
            token_reduction: for logits with positions, how the losses reduce
                over positions: `"mean_over_tokens"` (`Σ w·l / Σ w`, the mean
                over real tokens) or `"sum_over_batch_size"` (Keras's `Σ w·l /
                positions`, padding counted). See `tfdistill.tokens`.
            guard: skip (and report) any step whose data, teacher outputs,
                loss or gradients are not finite (`tfdistill.guard`); `False`
                trains without the checks.
            **kwargs: passed to `keras.Model.compile` (`jit_compile`, ...); a
                `mixed_float16` student gets a `LossScaleOptimizer` unless
                `auto_scale_loss=False`.
        """
        self.hard_loss = objective.get_hard_loss(loss)
        self.token_reduction = tokens.check_token_reduction(token_reduction)
        self.guard = bool(guard)
        if soft_loss is None:
            soft_loss = losses_module.KnowledgeDistillation(temperature=1.0)
        self.soft_loss = losses_module.get(soft_loss)
        self.hard_weight, self.soft_weight = objective.get_weights(
            hard_weight, soft_weight, has_features=bool(self.feature_pairs), compile_kwargs=kwargs
        )
        super().compile(optimizer=optimizer, metrics=metrics, **kwargs)
        self.optimizer = objective.with_loss_scaling(self.optimizer, self.student, kwargs.get("auto_scale_loss", True))
        self._distiller_compile_config = {
            "optimizer": self.optimizer,
            "loss": self.hard_loss,
            "soft_loss": self.soft_loss,
            "hard_weight": self.hard_weight,
            "soft_weight": self.soft_weight,
            "metrics": metrics,
            "token_reduction": token_reduction,
            "guard": self.guard,
            **kwargs,
        }

    def get_compile_config(self):
        if not self.compiled:
            return {}
        return {key: keras.saving.serialize_keras_object(v) for key, v in self._distiller_compile_config.items()}

    def compile_from_config(self, config):
        config = {key: keras.saving.deserialize_keras_object(value) for key, value in config.items()}
        self.compile(**config)
        if self.built:
            self.optimizer.build(self.trainable_variables)

    # -------------------------------------------------------------------- call
    def call(self, inputs, training=None):
        return self.student(teacher_outputs_module.student_input(inputs, self.separate_inputs), training=training)

    def _split_batch(self, x):
        return teacher_outputs_module.split_batch(x, self.separate_inputs)

    def _teacher_outputs(self, teacher_x, cached=None):
        """The teacher's `TeacherOutputs` for a batch (the cache's when given), never trained."""
        if cached is not None:
            return teacher_outputs_module.checked_cache(cached, self.soft_loss, bool(self.feature_pairs))
        return teacher_outputs_module.run_teacher(self.teacher, teacher_x, self.feature_matching)

    def _student_outputs(self, student_x, training):
        """`(logits, features)` of the student, from one forward pass."""
        if self.feature_matching:
            return self.feature_matching.student(student_x, training=training)
        return self.student(student_x, training=training), []

    # ------------------------------------------------------------------ losses
    def _loss_terms(self, y, teacher, student_logits, sample_weight=None, student_features=(), mask=None):
        """`(total, terms, weights)` of a batch, scaled for the replicas (see `tfdistill.objective`).

        `y` may be `None` (no labels) or hold `tfdistill.labels.UNLABELED`;
        `weights` is the batch's `tfdistill.labels.BatchWeights`.
        """
        if y is None:
            labels.check_no_labels_needed(self.hard_weight)
        if mask is None:
            mask = compat.keras_mask(student_logits)
        weights = labels.batch_weights(y, student_logits, sample_weight, mask, self.token_reduction)
        if not isinstance(teacher, TeacherOutputs):
            teacher = TeacherOutputs(tf.cast(teacher, "float32"))
        student_logits = tf.cast(tokens.without_mask(student_logits), "float32")
        if teacher.is_top_k:
            teacher = teacher_outputs_module.assert_top_k_cache(
                teacher, self.soft_loss.temperature, int(student_logits.shape[-1])
            )
        step = self.optimizer.iterations
        return (*objective.distillation_losses(
            self.hard_loss, self.soft_loss, objective.weight_at(self.hard_weight, step),
            objective.weight_at(self.soft_weight, step), teacher, student_logits, weights, step,
            feature_loss=self.feature_matching and (lambda: self.feature_matching.loss(
                teacher.features, student_features, weights.example)),
            regularization=self.student.losses,
        ), weights)

    # ------------------------------------------------------------------- steps
    def train_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        student_x, teacher_x, cached = self._split_batch(x)
        teacher = self._teacher_outputs(teacher_x, cached)
        saved = guard.snapshot(self.student) if self.guard else None
        with tf.GradientTape() as tape:
            student_logits, student_features = self._student_outputs(student_x, training=True)
            with tf.control_dependencies(preflight.assert_valid_labels(y, student_logits.shape[-1])):
                total, terms, weights = self._loss_terms(y, teacher, student_logits, sample_weight, student_features)
            scaled_total = self.optimizer.scale_loss(total)
        variables = self.trainable_variables
        gradients = tape.gradient(scaled_total, variables)
        checks = self.guard and guard.step_checks(
            student_x, teacher_x, y, sample_weight, teacher, terms, total, gradients, self.optimizer
        )
        self._guard.update(self.optimizer, gradients, variables, checks, self.student, saved)
        step_logs.update_trackers(self, student_x, total, terms, teacher, student_logits, weights)
        return step_logs.metric_logs(self, student_x, y, student_logits, weights)

    def test_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        student_x, teacher_x, cached = self._split_batch(x)
        teacher = self._teacher_outputs(teacher_x, cached)
        student_logits, student_features = self._student_outputs(student_x, training=False)
        with tf.control_dependencies(preflight.assert_valid_labels(y, student_logits.shape[-1])):
            total, terms, weights = self._loss_terms(y, teacher, student_logits, sample_weight, student_features)
        step_logs.update_trackers(self, student_x, total, terms, teacher, student_logits, weights)
        return step_logs.metric_logs(self, student_x, y, student_logits, weights)

    # --------------------------------------------------------------------- fit
    def fit(self, x=None, y=None, batch_size=None, epochs=1, **kwargs):
        """Checks the data and models on one batch, then runs `keras.Model.fit`.

        The checks (label dtype, rank and range; sample weights; teacher and
        student output shapes; the data's structure) run before any training
        step, so a mistake costs seconds, not an epoch (see
        `tfdistill.preflight.check_data`). `x` alone (no `y`), or a dataset
        that yields `x` alone, trains on the teacher alone (`hard_weight`
        must be 0); labels of `tfdistill.labels.UNLABELED` (-1) mark examples
        without one (see `tfdistill.labels`).

        When a `tfdistill.callbacks.BackupAndRestore` resumes an interrupted
        run at epoch `E`, a `tf.data.Dataset` `x` is first advanced by `E`
        epochs (see `tfdistill.callbacks.advance_to_resumed_epoch`), so a
        seeded pipeline that reshuffles or re-augments every epoch yields
        epoch `E`'s order, as in the uninterrupted run. A `tf.data.Dataset`
        keeps its own order (Keras's `shuffle` does not apply to it).
        """
        kwargs = preflight.before_fit(self, x, y, kwargs)
        self.built = True
        kwargs["callbacks"] = [guard.RaiseOnNonFinite(self._guard), *(kwargs.get("callbacks") or [])]
        return super().fit(x, y, batch_size=batch_size, epochs=epochs, **kwargs)

    def train_on_batch(self, *args, **kwargs):
        logs = super().train_on_batch(*args, **kwargs)
        self._guard.raise_if_failed()
        return logs

    # ---------------------------------------------------------- serialization
    def get_config(self):
        return {
            "teacher": keras.saving.serialize_keras_object(self.teacher),
            "student": keras.saving.serialize_keras_object(self.student),
            "separate_inputs": self.separate_inputs,
            "features": [keras.saving.serialize_keras_object(p) for p in self.feature_pairs],
            "name": self.name,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if "views" in config:  # saved before the argument was named `separate_inputs`
            config["separate_inputs"] = config.pop("views")
        config["teacher"] = keras.saving.deserialize_keras_object(config["teacher"])
        config["student"] = keras.saving.deserialize_keras_object(config["student"])
        return cls(**config)
