"""`Distiller`: trains a student against a frozen teacher with `model.fit`."""

import keras
import numpy as np
import tensorflow as tf

from tfdistill import losses as losses_module
from tfdistill import validation

_HARD_LOSS_NAMES = ("sparse_categorical_crossentropy", "scce")
TEACHER_LOGITS_KEY = "teacher_logits"


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

    def __init__(self, teacher, student, views=False, name="distiller", **kwargs):
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
        self.hard_loss_tracker = keras.metrics.Mean(name="hard_loss")
        self.soft_loss_tracker = keras.metrics.Mean(name="soft_loss")
        self.hard_loss = None
        self.soft_loss = None
        self.hard_weight = None
        self.soft_weight = None
        if student.built:
            self.built = True

    # ----------------------------------------------------------------- compile
    def compile(
        self,
        optimizer="adam",
        loss="sparse_categorical_crossentropy",
        soft_loss="kd",
        hard_weight=0.5,
        soft_weight=0.5,
        metrics=None,
        **kwargs,
    ):
        """Configures the optimizer, both losses, their weights and metrics.

        Args:
            optimizer: optimizer name or instance.
            loss: the hard loss on the labels: `"sparse_categorical_crossentropy"`
                (from logits) or a `keras.losses.Loss`.
            soft_loss: the loss against the teacher: a name in
                `tfdistill.losses.SOFT_LOSSES` (`"kd"` is Hinton's `T²·KL` at
                `T=4`), a config dict or a `tfdistill.losses.DistillationLoss`.
            hard_weight: weight of the hard loss, >= 0.
            soft_weight: weight of the soft loss, >= 0.
            metrics: metrics on `(y, student logits)`, e.g. `["accuracy"]`.
            **kwargs: passed to `keras.Model.compile` (e.g. `jit_compile`,
                `steps_per_execution`).
        """
        self.hard_loss = get_hard_loss(loss)
        self.soft_loss = losses_module.get(soft_loss)
        self.hard_weight = validation.check_weight("hard_weight", hard_weight)
        self.soft_weight = validation.check_weight("soft_weight", soft_weight)
        if self.hard_weight == 0 and self.soft_weight == 0:
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

    def teacher_logits(self, teacher_x, cached=None):
        """The teacher's logits (from the cache when given), never trained."""
        if cached is not None:
            return tf.cast(cached, "float32")
        return tf.stop_gradient(tf.cast(self.teacher(teacher_x, training=False), "float32"))

    # ------------------------------------------------------------------ losses
    def compute_distillation_losses(self, y, teacher_logits, student_logits, sample_weight=None):
        """Returns `(total, hard, soft)`, each scaled for the replica count.

        Follows Keras's conventions: each term is the sum over the local batch
        divided by its size and by the number of replicas, so that summing
        gradients across replicas gives the global-batch mean.
        """
        student_logits = tf.cast(student_logits, "float32")
        hard = self.hard_loss(y, student_logits, sample_weight=sample_weight)
        soft = self.soft_loss(teacher_logits, student_logits, sample_weight=sample_weight)
        total = self.hard_weight * hard + self.soft_weight * soft
        regularization = self.student.losses
        if regularization:
            total += _scale_for_distribution(
                tf.add_n([tf.cast(r, "float32") for r in regularization])
            )
        return total, hard, soft

    def _update_loss_trackers(self, student_x, total, hard, soft):
        batch_size = tf.shape(keras.tree.flatten(student_x)[0])[0]
        for tracker, value in (
            (self._loss_tracker, total),
            (self.hard_loss_tracker, hard),
            (self.soft_loss_tracker, soft),
        ):
            tracker.update_state(_unscale_for_distribution(value), sample_weight=batch_size)

    # ------------------------------------------------------------------- steps
    def train_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        student_x, teacher_x, cached = self.split_views(x)
        teacher_logits = self.teacher_logits(teacher_x, cached)
        with tf.GradientTape() as tape:
            student_logits = self.student(student_x, training=True)
            with tf.control_dependencies(self._assert_valid_labels(y, student_logits)):
                total, hard, soft = self.compute_distillation_losses(
                    y, teacher_logits, student_logits, sample_weight
                )
            scaled_total = self.optimizer.scale_loss(total)
        variables = self.trainable_variables
        gradients = tape.gradient(scaled_total, variables)
        self.optimizer.apply_gradients(zip(gradients, variables))
        self._update_loss_trackers(student_x, total, hard, soft)
        return self.compute_metrics(student_x, y, student_logits, sample_weight)

    def test_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        student_x, teacher_x, cached = self.split_views(x)
        teacher_logits = self.teacher_logits(teacher_x, cached)
        student_logits = self.student(student_x, training=False)
        with tf.control_dependencies(self._assert_valid_labels(y, student_logits)):
            total, hard, soft = self.compute_distillation_losses(
                y, teacher_logits, student_logits, sample_weight
            )
        self._update_loss_trackers(student_x, total, hard, soft)
        return self.compute_metrics(student_x, y, student_logits, sample_weight)

    def predict_step(self, data):
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        return self(x, training=False)

    # --------------------------------------------------------------- pre-flight
    def fit(self, x=None, y=None, batch_size=None, epochs=1, **kwargs):
        """Checks the data and models on one batch, then runs `keras.Model.fit`.

        The checks (label dtype, rank and range; sample weights; teacher and
        student output shapes; the data's structure) run before any training
        step, so a mistake costs seconds, not an epoch (see `check_data`).
        """
        self.check_data(x, y, kwargs.get("sample_weight"))
        validation_data = kwargs.get("validation_data")
        if validation_data is not None:
            if isinstance(validation_data, tuple):
                self.check_data(*validation_data[:2], *validation_data[2:3])
            else:
                self.check_data(validation_data)
        return super().fit(x, y, batch_size=batch_size, epochs=epochs, **kwargs)

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
        validation.check_output_shapes(teacher_out, student_out)
        self._num_classes = int(student_out.shape[-1])

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
            "name": self.name,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["teacher"] = keras.saving.deserialize_keras_object(config["teacher"])
        config["student"] = keras.saving.deserialize_keras_object(config["student"])
        return cls(**config)
