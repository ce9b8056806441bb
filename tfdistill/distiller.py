"""`Distiller`: trains a student against a frozen teacher with `model.fit`."""

from typing import NamedTuple

import keras
import numpy as np
import tensorflow as tf

from tfdistill import callbacks as callbacks_module
from tfdistill import features as features_module
from tfdistill import guard
from tfdistill import losses as losses_module
from tfdistill import validation
from tfdistill.losses.base import is_schedule

_HARD_LOSS_NAMES = ("sparse_categorical_crossentropy", "scce")
TEACHER_LOGITS_KEY = "teacher_logits"
# With a top-k cache (`tfdistill.offline.TopKLogits`) the batch also carries:
TEACHER_CLASSES_KEY = "teacher_classes"
TEACHER_TEMPERATURE_KEY = "teacher_temperature"
# Cached intermediate features: a dict from teacher layer name to features.
TEACHER_FEATURES_KEY = "teacher_features"


class CachedTeacher(NamedTuple):
    """Cached teacher logits with cached intermediate features (by layer name)."""

    logits: object
    features: dict


def _cached_logits(cached):
    """Cached logits in float32; a top-k cache (a dict) stays a dict for the soft loss."""
    if isinstance(cached, dict):
        return {**cached, "values": tf.cast(cached["values"], "float32")}
    return tf.cast(cached, "float32")


def _unscale_for_distribution(value):
    """Undoes Keras's per-replica loss scaling, for logging (as Keras does)."""
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    return value * tf.cast(replicas, value.dtype) if replicas > 1 else value


def _scale_for_distribution(value):
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    return value / tf.cast(replicas, value.dtype) if replicas > 1 else value


def get_hard_loss(identifier):
    """Returns the hard (label) loss for a logits student.

    Args:
        identifier: `"sparse_categorical_crossentropy"` (computed from logits,
            which is what the name means for a logits student) or a
            `keras.losses.Loss` instance.

    Returns:
        A `keras.losses.Loss`.
    """
    if isinstance(identifier, str):
        if identifier.lower() not in _HARD_LOSS_NAMES:
            raise ValueError(
                "Invalid value for argument `loss`. Expected one of "
                f"{list(_HARD_LOSS_NAMES)} or a `keras.losses.Loss` instance. "
                f"Received: loss={identifier!r}"
            )
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    if isinstance(identifier, dict):
        identifier = keras.saving.deserialize_keras_object(identifier)
    if not isinstance(identifier, keras.losses.Loss):
        raise ValueError(
            "Invalid value for argument `loss`. Expected a name in "
            f"{list(_HARD_LOSS_NAMES)} or a `keras.losses.Loss` instance. "
            f"Received: loss={identifier!r} of type {type(identifier).__name__}"
        )
    if getattr(identifier, "from_logits", True) is False:
        raise ValueError(
            "Invalid value for argument `loss`: it was built with "
            "`from_logits=False`, but the student outputs logits. Use "
            "`from_logits=True` or pass the name "
            "'sparse_categorical_crossentropy'. "
            f"Received: loss={identifier.__class__.__name__}(from_logits=False)"
        )
    return identifier


def get_weight(name, value):
    """A loss weight: a number >= 0 or a step -> weight schedule."""
    if isinstance(value, dict):
        value = keras.saving.deserialize_keras_object(value)
    if isinstance(value, keras.optimizers.schedules.LearningRateSchedule):
        return value
    return validation.check_weight(name, value)


def _is_zero(weight):
    return not callable(weight) and weight == 0


def _for_multi_worker(logs):
    """Logs as shape-(1,) tensors under MultiWorkerMirroredStrategy.

    Keras reduces each per-replica log with `strategy.reduce("MEAN", v, axis=0)`
    there, which fails on scalars (keras-team/keras#20585); on shape `(1,)` it
    gives the scalar mean over replicas, which is what the other strategies log.
    """
    if isinstance(tf.distribute.get_strategy(), tf.distribute.MultiWorkerMirroredStrategy):
        return {name: tf.reshape(value, (1,)) for name, value in logs.items()}
    return logs


@keras.saving.register_keras_serializable(package="tfdistill")
class Distiller(keras.Model):
    """Distils a frozen teacher into a student through `fit`.

    The teacher runs in inference mode (`training=False`) and its weights
    never change; only the student trains. `call`, `predict` and `evaluate`
    are the student's. The loss is

        loss = hard_weight · hard_loss(y, student) +
               soft_weight · soft_loss(teacher, student) + student regularizers

    which covers the convex form `(1 − α) · L_hard + α · L_soft`
    (`hard_weight=1 − α`, `soft_weight=α`) and the additive form
    `L_hard + λ · L_soft` (`hard_weight=1`, `soft_weight=λ`). `fit` logs
    `loss`, the unweighted `hard_loss` and `soft_loss`, and compiled metrics.

    Args:
        teacher: a built `keras.Model` that outputs logits, shape
            `(batch, num_classes)`.
        student: a `keras.Model` with the same output shape, logits too.
        views: if `True`, every `x` is a dict `{"student": ..., "teacher": ...}`
            giving each model its own view of the batch (e.g. a 224 px image for
            the teacher and a 96 px one for the student); `predict` then takes
            either that dict or the student's input alone.
        features: optional list of `tfdistill.FeaturePair`: intermediate
            layers to match (FitNets hints, attention transfer), added to the
            loss and logged as `feature_loss`. The student's logits and
            features come from one forward pass; learned adapters are kept in
            `distiller.adapters`, not in the student.
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

    def __init__(self, teacher, student, views=False, features=None, name="distiller", **kwargs):
        super().__init__(name=name, **kwargs)
        for argument, model in (("teacher", teacher), ("student", student)):
            if not isinstance(model, keras.Model):
                raise ValueError(
                    f"Invalid value for argument `{argument}`. Expected a "
                    f"`keras.Model`. Received: {argument}={model!r}"
                )
            validation.check_logits_model(model, argument)
        validation.check_built(teacher, "teacher")
        teacher.trainable = False
        self.teacher = teacher
        self.student = student
        self.views = bool(views)
        self.feature_pairs = features_module.get_feature_pairs(features)
        self.hard_loss_tracker = keras.metrics.Mean(name="hard_loss")
        self.soft_loss_tracker = keras.metrics.Mean(name="soft_loss")
        self.adapters = []
        if self.feature_pairs:
            self._build_feature_models()
            self.feature_loss_tracker = keras.metrics.Mean(name="feature_loss")
        self.hard_loss = None
        self.soft_loss = None
        self.hard_weight = None
        self.soft_weight = None
        if student.built:
            self.built = True

    def _build_feature_models(self):
        pairs = self.feature_pairs
        # Functional views of the same layers: they add no variables of their own.
        self._teacher_with_features = features_module.with_features(
            self.teacher, [p.teacher_layer for p in pairs], "teacher"
        )
        self._student_with_features = features_module.with_features(
            self.student, [p.student_layer for p in pairs], "student"
        )
        self._adapter_of_pair = [
            features_module.make_adapter(pair, t.shape, s.shape, index)
            for index, (pair, t, s) in enumerate(
                zip(pairs, self._teacher_with_features.outputs[1:], self._student_with_features.outputs[1:])
            )
        ]
        self.adapters = [a for a in self._adapter_of_pair if a is not None]

    # ----------------------------------------------------------------- compile
    def compile(
        self,
        optimizer="adam",
        loss="sparse_categorical_crossentropy",
        soft_loss=None,
        hard_weight=0.0,
        soft_weight=1.0,
        metrics=None,
        **kwargs,
    ):
        """Configures the optimizer, both losses, their weights and metrics.

        The defaults train the student on the teacher's probabilities alone
        (KD at `T=1`, `hard_weight=0`, `soft_weight=1`): in the README's suite
        of tasks it never lost to the student trained alone, where Hinton's
        usual `T=4` with 0.5/0.5 lost on Fashion-MNIST.

        Args:
            optimizer: optimizer name or instance.
            loss: the hard loss on the labels: `"sparse_categorical_crossentropy"`
                (from logits) or a `keras.losses.Loss`.
            soft_loss: the loss against the teacher: a name in
                `tfdistill.losses.SOFT_LOSSES` (`"kd"` is Hinton's `T²·KL` at
                `T=4`), a config dict or a `tfdistill.losses.DistillationLoss`;
                `None` (the default) is `KnowledgeDistillation(temperature=1.0)`.
            hard_weight: weight of the hard loss, >= 0, or a schedule
                (`tfdistill.schedules.LinearWarmup`, any
                `keras.optimizers.schedules.LearningRateSchedule`) evaluated at
                the optimizer's step.
            soft_weight: weight of the soft loss, >= 0, or a schedule.
            metrics: metrics on `(y, student logits)`, e.g. `["accuracy"]`.
            **kwargs: passed to `keras.Model.compile` (e.g. `jit_compile`,
                `steps_per_execution`). A `mixed_float16` student gets a
                `keras.optimizers.LossScaleOptimizer` (dynamic loss scaling)
                unless `auto_scale_loss=False`.
        """
        self.hard_loss = get_hard_loss(loss)
        if soft_loss is None:
            soft_loss = losses_module.KnowledgeDistillation(temperature=1.0)
        self.soft_loss = losses_module.get(soft_loss)
        self.hard_weight = get_weight("hard_weight", hard_weight)
        self.soft_weight = get_weight("soft_weight", soft_weight)
        if _is_zero(self.hard_weight) and _is_zero(self.soft_weight) and not self.feature_pairs:
            raise ValueError(
                "Invalid values for arguments `hard_weight` and `soft_weight`: "
                "at least one must be > 0. Received: hard_weight=0, soft_weight=0"
            )
        if "loss_weights" in kwargs:
            raise ValueError(
                "Invalid argument `loss_weights`: the Distiller weighs its two "
                "losses with `hard_weight` and `soft_weight`."
            )
        super().compile(optimizer=optimizer, metrics=metrics, **kwargs)
        if (
            kwargs.get("auto_scale_loss", True)
            and self.student.dtype_policy.name == "mixed_float16"
            and not isinstance(self.optimizer, keras.optimizers.LossScaleOptimizer)
        ):
            # Keras wraps the optimizer only when the Distiller's own policy is
            # mixed_float16; a float16 student needs loss scaling either way.
            self.optimizer = keras.optimizers.LossScaleOptimizer(self.optimizer)
        self._distiller_compile_config = {
            "optimizer": self.optimizer,
            "loss": self.hard_loss,
            "soft_loss": self.soft_loss,
            "hard_weight": self.hard_weight,
            "soft_weight": self.soft_weight,
            "metrics": metrics,
            **kwargs,
        }

    def get_compile_config(self):
        if not self.compiled:
            return {}
        return {
            key: keras.saving.serialize_keras_object(value)
            for key, value in self._distiller_compile_config.items()
        }

    def compile_from_config(self, config):
        config = {
            key: keras.saving.deserialize_keras_object(value)
            for key, value in config.items()
        }
        self.compile(**config)
        if self.built:
            self.optimizer.build(self.trainable_variables)

    # -------------------------------------------------------------------- call
    def split_views(self, x):
        """Returns `(student_input, teacher_input, cached_teacher_logits)`.

        `cached_teacher_logits` is not `None` when the batch carries the
        teacher's outputs (offline distillation); the teacher is then skipped.
        """
        cached = None
        if isinstance(x, dict) and TEACHER_LOGITS_KEY in x:
            x = dict(x)
            cached = x.pop(TEACHER_LOGITS_KEY)
            if TEACHER_CLASSES_KEY in x:
                cached = {
                    "values": cached,
                    "classes": x.pop(TEACHER_CLASSES_KEY),
                    "temperature": x.pop(TEACHER_TEMPERATURE_KEY),
                }
            if TEACHER_FEATURES_KEY in x:
                cached = CachedTeacher(cached, x.pop(TEACHER_FEATURES_KEY))
            if set(x) == {"x"}:
                x = x["x"]
        if self.views:
            if not (isinstance(x, dict) and set(x) == {"student", "teacher"}):
                raise ValueError(
                    "Invalid input: with `views=True` every `x` must be a dict "
                    "with exactly the keys 'student' and 'teacher'. Received: "
                    f"{type(x).__name__} with keys {sorted(x) if isinstance(x, dict) else None}"
                )
            return x["student"], x["teacher"], cached
        return x, x, cached

    def student_input(self, x):
        """The student's part of `x`: without cached teacher logits or the teacher's view."""
        if isinstance(x, dict) and (
            TEACHER_LOGITS_KEY in x or (self.views and set(x) >= {"student", "teacher"})
        ):
            return self.split_views(x)[0]
        return x

    def call(self, inputs, training=None):
        return self.student(self.student_input(inputs), training=training)

    def teacher_outputs(self, teacher_x, cached=None):
        """`(logits, features)` of the teacher (logits from the cache when given), never trained."""
        if isinstance(cached, CachedTeacher):
            features = [tf.cast(cached.features[p.teacher_layer], "float32") for p in self.feature_pairs]
            return _cached_logits(cached.logits), features
        if cached is not None:
            if self.feature_pairs:
                raise ValueError(
                    "Invalid input: feature distillation needs the teacher's "
                    "intermediate features, but this batch carries cached teacher "
                    "logits only. Cache the features too "
                    "(`tfdistill.offline.compute_teacher_outputs` and "
                    "`offline_dataset(..., teacher_features=...)`), or train on the "
                    "images without cached logits (the teacher then runs online)."
                )
            return _cached_logits(cached), []
        if self.feature_pairs:
            logits, *features = self._teacher_with_features(teacher_x, training=False)
            features = [tf.stop_gradient(f) for f in features]
        else:
            logits, features = self.teacher(teacher_x, training=False), []
        return tf.stop_gradient(tf.cast(logits, "float32")), features

    def student_outputs(self, student_x, training):
        """`(logits, features)` of the student, from one forward pass."""
        if self.feature_pairs:
            logits, *features = self._student_with_features(student_x, training=training)
            return logits, features
        return self.student(student_x, training=training), []

    # ------------------------------------------------------------------ losses
    def current_weights(self):
        """`(hard_weight, soft_weight)` at the optimizer's current step."""
        step = self.optimizer.iterations
        return tuple(
            tf.cast(w(step), "float32") if callable(w) else w
            for w in (self.hard_weight, self.soft_weight)
        )

    def compute_distillation_losses(
        self,
        y,
        teacher_logits,
        student_logits,
        sample_weight=None,
        teacher_features=(),
        student_features=(),
    ):
        """Returns `(total, terms)`, each scaled for the replica count.

        `terms` maps `"hard_loss"`, `"soft_loss"` (and `"feature_loss"` with
        feature pairs) to the unweighted terms. Follows Keras's conventions:
        each term is the sum over the local batch divided by its size and by
        the number of replicas, so that summing gradients across replicas
        gives the global-batch mean.
        """
        student_logits = tf.cast(student_logits, "float32")
        hard_weight, soft_weight = self.current_weights()
        hard = self.hard_loss(y, student_logits, sample_weight=sample_weight)
        if isinstance(teacher_logits, dict):
            teacher_logits = self._top_k_teacher(teacher_logits, int(student_logits.shape[-1]))
        soft = self.soft_loss(
            teacher_logits, student_logits, sample_weight=sample_weight, labels=y, step=self.optimizer.iterations
        )
        total = hard_weight * hard + soft_weight * soft
        terms = {"hard_loss": hard, "soft_loss": soft}
        if self.feature_pairs:
            feature = self.compute_feature_loss(teacher_features, student_features, sample_weight)
            total += feature
            terms["feature_loss"] = feature
        regularization = self.student.losses
        if regularization:
            total += _scale_for_distribution(
                tf.add_n([tf.cast(r, "float32") for r in regularization])
            )
        return total, terms

    def _top_k_teacher(self, cached, num_classes):
        """Checks that the soft loss can read a top-k cache at its temperature."""
        self._check_top_k_loss()
        temperature = self.soft_loss.temperature
        classes = tf.cast(cached["classes"], tf.int64)
        class_message = (
            f"Invalid data: the top-k teacher cache holds class ids outside [0, "
            f"{num_classes - 1}], but the student outputs {num_classes} "
            "classes; the cache belongs to another teacher or label set."
        )
        class_checks = [
            tf.debugging.assert_non_negative(classes, message=class_message),
            tf.debugging.assert_less(classes, tf.constant(num_classes, tf.int64), message=class_message),
        ]
        cached_temperature = tf.cast(cached["temperature"], tf.float32)
        check = tf.debugging.Assert(
            tf.reduce_all(tf.abs(cached_temperature - temperature) <= 1e-5 * temperature),
            [
                f"Invalid data: the top-k teacher cache was computed for another "
                f"temperature than the soft loss's T={temperature}; compute it with "
                f"`temperature={temperature}`. The cache's temperature:",
                cached_temperature[:1],
            ],
            summarize=1,
        )
        with tf.control_dependencies([check, *class_checks]):
            return {"values": tf.identity(cached["values"]), "classes": tf.identity(cached["classes"])}

    def _check_top_k_loss(self):
        if is_schedule(getattr(self.soft_loss, "temperature", None)):
            raise ValueError(
                "Invalid value for argument `soft_loss`: a top-k teacher cache holds its "
                "remainder at one temperature, so the KD temperature cannot follow a "
                "schedule. Cache every logit (`top_k=None`) to schedule the temperature."
            )
        if not getattr(self.soft_loss, "supports_top_k", False):
            raise ValueError(
                "Invalid value for argument `soft_loss`: the data carries the teacher "
                "as cached top-k logits, which only the KD loss (`'kd'`, "
                "`KnowledgeDistillation`) reads exactly. Cache every logit "
                "(`top_k=None`) to use "
                f"{type(self.soft_loss).__name__}."
            )
        if getattr(self.soft_loss, "standardize", False):
            raise ValueError(
                "Invalid value for argument `soft_loss`: logit standardization needs "
                "every logit, but the data carries the teacher's top-k logits only. "
                "Cache every logit (`top_k=None`)."
            )

    def compute_feature_loss(self, teacher_features, student_features, sample_weight=None):
        """The weighted sum of the feature pairs' losses (adapters applied)."""
        total = 0.0
        for pair, adapter, t, s in zip(
            self.feature_pairs, self._adapter_of_pair, teacher_features, student_features
        ):
            if adapter is not None:
                s = adapter(s)
            total += pair.weight * pair.loss(t, s, sample_weight=sample_weight)
        return total

    def _update_loss_trackers(self, student_x, total, terms):
        batch_size = tf.shape(keras.tree.flatten(student_x)[0])[0]
        trackers = [(self._loss_tracker, total)] + [
            (getattr(self, f"{name}_tracker"), value) for name, value in terms.items()
        ]
        for tracker, value in trackers:
            tracker.update_state(_unscale_for_distribution(value), sample_weight=batch_size)

    # ------------------------------------------------------------------- steps
    def train_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        student_x, teacher_x, cached = self.split_views(x)
        step = self.optimizer.iterations
        # The batch is checked before the forward pass, which already changes BatchNorm statistics.
        with tf.control_dependencies(guard.assert_finite(step, self._data_checks(student_x, teacher_x, y, sample_weight))):
            student_x = keras.tree.map_structure(tf.identity, student_x)
        teacher_logits, teacher_features = self.teacher_outputs(teacher_x, cached)
        with tf.GradientTape() as tape:
            student_logits, student_features = self.student_outputs(student_x, training=True)
            with tf.control_dependencies(self._assert_valid_labels(y, student_logits)):
                total, terms = self.compute_distillation_losses(
                    y, teacher_logits, student_logits, sample_weight,
                    teacher_features, student_features,
                )
            scaled_total = self.optimizer.scale_loss(total)
        variables = self.trainable_variables
        gradients = tape.gradient(scaled_total, variables)
        checks = self._update_checks(cached, teacher_logits, teacher_features, total, terms, gradients)
        with tf.control_dependencies(guard.assert_finite(step, checks)):
            gradients = [None if g is None else tf.identity(g) for g in gradients]
        self.optimizer.apply_gradients(zip(gradients, variables))
        self._update_loss_trackers(student_x, total, terms)
        return _for_multi_worker(self.compute_metrics(student_x, y, student_logits, sample_weight))

    def _data_checks(self, student_x, teacher_x, y, sample_weight):
        """The batch's `(name, finite flag)` pairs for `guard.assert_finite`."""
        inputs = student_x if teacher_x is student_x else [student_x, teacher_x]
        return [
            ("inputs", guard.finite_flag(inputs)),
            ("labels", guard.finite_flag(y)),
            ("sample_weight", guard.finite_flag(sample_weight)),
        ]

    def _update_checks(self, cached, teacher_logits, teacher_features, total, terms, gradients):
        """What must be finite before the update, in the order the data flows."""
        prefix = "cached_" if cached is not None else ""
        if isinstance(teacher_logits, dict):
            # A top-k cache's remainder logit is -inf when every class is kept; NaN and +inf are not.
            values = teacher_logits["values"]
            teacher_logits = [values[..., :-1], tf.maximum(values[..., -1], values.dtype.min)]
        checks = [
            (f"{prefix}teacher_logits", guard.finite_flag(teacher_logits)),
            (f"{prefix}teacher_features", guard.finite_flag(teacher_features)),
            *terms.items(),
            ("loss", total),
        ]
        # A LossScaleOptimizer expects non-finite gradients at times: it skips
        # those steps and lowers the scale, so they never reach the student.
        if not isinstance(self.optimizer, keras.optimizers.LossScaleOptimizer):
            checks.append(("gradients", guard.finite_flag(gradients)))
        return checks

    def test_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        student_x, teacher_x, cached = self.split_views(x)
        teacher_logits, teacher_features = self.teacher_outputs(teacher_x, cached)
        student_logits, student_features = self.student_outputs(student_x, training=False)
        with tf.control_dependencies(self._assert_valid_labels(y, student_logits)):
            total, terms = self.compute_distillation_losses(
                y, teacher_logits, student_logits, sample_weight,
                teacher_features, student_features,
            )
        self._update_loss_trackers(student_x, total, terms)
        return _for_multi_worker(self.compute_metrics(student_x, y, student_logits, sample_weight))

    def predict_step(self, data):
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        return self(x, training=False)

    # --------------------------------------------------------------- pre-flight
    def fit(self, x=None, y=None, batch_size=None, epochs=1, **kwargs):
        """Checks the data and models on one batch, then runs `keras.Model.fit`.

        The checks (label dtype, rank and range; sample weights; teacher and
        student output shapes; the data's structure) run before any training
        step, so a mistake costs seconds, not an epoch (see `check_data`).

        When a `tfdistill.callbacks.BackupAndRestore` resumes an interrupted
        run at epoch `E`, a `tf.data.Dataset` `x` is first advanced by `E`
        epochs (the iterators the interrupted run created are created again,
        one element drawn from each it read; see
        `tfdistill.callbacks.advance_to_resumed_epoch`), so a seeded pipeline
        that reshuffles or re-augments every epoch yields epoch `E`'s order,
        as in the uninterrupted run.
        """
        self.check_data(x, y, kwargs.get("sample_weight"))
        if isinstance(x, (tf.data.Dataset, tf.distribute.DistributedDataset)):
            callbacks_module.advance_to_resumed_epoch(
                x, kwargs.get("callbacks"), kwargs.get("initial_epoch", 0), kwargs.get("steps_per_epoch")
            )
        validation_data = kwargs.get("validation_data")
        if validation_data is not None:
            if isinstance(validation_data, tuple):
                self.check_data(*validation_data[:2], *validation_data[2:3])
            else:
                self.check_data(validation_data)
        with guard.raising_non_finite_errors():
            return super().fit(x, y, batch_size=batch_size, epochs=epochs, **kwargs)

    def train_on_batch(self, *args, **kwargs):
        with guard.raising_non_finite_errors():
            return super().train_on_batch(*args, **kwargs)

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # Keras averages the first distributed batch with an eager
        # `strategy.reduce`, which fails under MultiWorkerMirroredStrategy
        # (keras-team/keras#20585). The build needs the batch's structure only:
        # one replica's local batch has it.
        strategy = self._distribute_strategy
        if iterator is not None and isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
            for _, _, batches in iterator:
                batch = next(batches)
                data_batch = keras.tree.map_structure(
                    lambda v: strategy.experimental_local_results(v)[0]
                    if isinstance(v, tf.distribute.DistributedValues)
                    else v,
                    batch,
                )
                break
            iterator = None
        return super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)

    def check_data(self, x, y=None, sample_weight=None):
        """Validates the data's structure, labels and shapes against both models.

        A `tf.data.Dataset` is checked from its `element_spec` alone, without
        drawing a batch (which would advance a seeded reshuffle and change the
        data order); its label values are checked in the first step, before
        any weight changes. Arrays are checked in full.

        Args:
            x: a `tf.data.Dataset` of `(x, y)` / `(x, y, sample_weight)`
                batches, or inputs as arrays.
            y: labels when `x` is not a dataset.
            sample_weight: weights when `x` is not a dataset.

        Raises:
            ValueError: naming the argument, what was expected and received.
        """
        if not self.compiled:
            raise ValueError(
                "The Distiller must be compiled before `fit`: call "
                "`distiller.compile(optimizer, soft_loss=..., metrics=...)`."
            )
        if isinstance(x, tf.data.Dataset):
            element = x.element_spec
            if not isinstance(element, tuple) or len(element) not in (2, 3):
                raise ValueError(
                    "Invalid dataset: expected it to yield `(x, y)` or `(x, y, "
                    "sample_weight)` tuples. Received elements with spec: "
                    f"{element}"
                )
            x_spec, y_spec = element[:2]
            validation.check_label_spec(y_spec.shape, y_spec.dtype.as_numpy_dtype)
            self._check_models(
                keras.tree.map_structure(
                    lambda spec: keras.KerasTensor(spec.shape, spec.dtype.name), x_spec
                )
            )
        elif isinstance(x, (np.ndarray, tf.Tensor)) or keras.tree.is_nested(x):
            if y is None:
                raise ValueError(
                    "Invalid data: `y` is missing. Expected integer labels with "
                    "one class id per example."
                )
            validation.check_sample_weight(sample_weight)
            self._check_models(keras.tree.map_structure(lambda a: a[:64], x))
            validation.check_labels(np.asarray(y), self._num_classes)
        # A generator or PyDataset cannot be inspected without consuming it.

    def _check_models(self, x):
        student_x, teacher_x, cached = self.split_views(x)
        if isinstance(cached, CachedTeacher):
            self._check_cached_features(cached.features)
            cached = cached.logits
        teacher_out = cached if cached is not None else self.teacher(teacher_x, training=False)
        try:
            student_out = self.student(student_x, training=False)
        except Exception as error:
            raise ValueError(
                "Invalid value for argument `student`: it could not be called "
                "on the training data, so its shapes cannot be inferred. Build "
                f"it with `keras.Input` matching the data. Error: {error}"
            ) from error
        self.built = True
        if isinstance(teacher_out, dict):
            self._check_top_k_loss()
            validation.check_top_k_shapes(teacher_out["values"], teacher_out["classes"], student_out)
        else:
            validation.check_output_shapes(teacher_out, student_out)
        self._num_classes = int(student_out.shape[-1])

    def _check_cached_features(self, features):
        if not self.feature_pairs:
            return  # Cached features without feature pairs are simply not used.
        for pair, expected in zip(self.feature_pairs, self._teacher_with_features.outputs[1:]):
            if pair.teacher_layer not in features:
                raise ValueError(
                    f"Invalid data: the `FeaturePair` reads the teacher layer {pair.teacher_layer!r}, "
                    f"but the cached teacher features hold only {sorted(features)}. Cache it with "
                    "`tfdistill.offline.compute_teacher_outputs(teacher, x, features=[...])`."
                )
            received = tuple(features[pair.teacher_layer].shape[1:])
            if received != tuple(expected.shape[1:]):
                raise ValueError(
                    f"Invalid data: cached features of teacher layer {pair.teacher_layer!r} have "
                    f"shape {received} per example, but the layer outputs {tuple(expected.shape[1:])}."
                )

    def _assert_valid_labels(self, y, student_logits):
        """In-graph check of label values, run before the weights change."""
        num_classes = student_logits.shape[-1]
        labels = tf.cast(y, tf.int64)
        message = (
            f"Invalid labels `y`: expected class ids in [0, {num_classes - 1}] "
            f"(the models output {num_classes} classes); this batch has one outside."
        )
        return [
            tf.debugging.assert_non_negative(labels, message=message),
            tf.debugging.assert_less(labels, tf.constant(num_classes, tf.int64), message=message),
        ]

    # ---------------------------------------------------------- serialization
    def get_config(self):
        return {
            "teacher": keras.saving.serialize_keras_object(self.teacher),
            "student": keras.saving.serialize_keras_object(self.student),
            "views": self.views,
            "features": [keras.saving.serialize_keras_object(p) for p in self.feature_pairs],
            "name": self.name,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["teacher"] = keras.saving.deserialize_keras_object(config["teacher"])
        config["student"] = keras.saving.deserialize_keras_object(config["student"])
        return cls(**config)
