"""Training a teacher and a student: the optimizer, the soft loss a config names, `fit`.

Shared by runs, the demo, the examples' task comparison and the benchmarks.
"""

import keras
import numpy as np

from tfdistill import losses
from tfdistill.batch_norm import PreciseBatchNorm
from tfdistill.distiller import Distiller


def cosine_adam(learning_rate, total_steps, warmup_steps=0):
    """Adam with a linear warm-up and cosine decay to zero.

    Example:
        >>> optimizer = cosine_adam(3e-3, total_steps=4000)
    """
    schedule = keras.optimizers.schedules.CosineDecay(
        0.0 if warmup_steps else learning_rate,
        total_steps,
        warmup_target=learning_rate if warmup_steps else None,
        warmup_steps=warmup_steps,
    )
    return keras.optimizers.Adam(schedule)


def soft_loss_from_settings(settings):
    """The soft loss a `distill` section names, at its temperature."""
    soft_loss = losses.get(settings.soft_loss)
    if hasattr(soft_loss, "temperature"):
        soft_loss.temperature = float(settings.temperature)
    return soft_loss


def train_teacher(model, train, epochs, learning_rate=2e-3, seed=0, verbose=2, callbacks=()):
    """Trains `model` on the labels of `train` with Adam, a one-epoch warm-up and cosine decay; returns it.

    Args:
        model: an uncompiled `keras.Model` that outputs logits.
        train: a `tf.data.Dataset` of `(x, y)` or `(x, y, sample_weight)`
            batches that shuffles (and augments) itself.
        epochs: epochs of training.
        learning_rate: Adam's peak rate.
        seed: Keras's global seed, set first.
        verbose: Keras verbosity of `fit`.
        callbacks: passed to `fit` (e.g. `keras.callbacks.ModelCheckpoint`).
    """
    keras.utils.set_random_seed(seed)
    model.compile(
        optimizer=cosine_adam(learning_rate, epochs * len(train), warmup_steps=len(train)),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        weighted_metrics=["accuracy"],
    )
    model.fit(train, epochs=epochs, verbose=verbose, callbacks=list(callbacks), shuffle=False)
    return model


def train_image_teacher(x_train, y_train, epochs=24, seed=0, verbose=2, callbacks=(), num_classes=None):
    """Trains the built-in teacher CNN (`tfdistill.app.models.build_teacher`) on images, flipped and shifted.

    24 epochs take 25-35 minutes on 2 CPU cores; the shipped teacher reached
    94.08 % on the Fashion-MNIST test set. The teacher takes the images' shape
    (a channel axis added to grey ones) and has `num_classes` outputs
    (default: one per class in `y_train`).
    """
    from tfdistill.app.models import build_teacher
    from tfdistill.data.pipelines import make_dataset

    keras.utils.set_random_seed(seed)
    train = make_dataset(x_train, y_train, batch_size=128, shuffle=True, augment=True, seed=seed)
    input_shape = tuple(train.element_spec[0].shape[1:])
    teacher = build_teacher(input_shape=input_shape, num_classes=num_classes or int(np.max(y_train)) + 1)
    return train_teacher(teacher, train, epochs, seed=seed, verbose=verbose, callbacks=callbacks)


def train_student(teacher, make_student, train, settings, distil=True, name="student", callbacks=(), verbose=2,
                  validation_data=None, batch_norm_data=None):
    """Trains a fresh `make_student(name)` with the recipe of `settings`; `distil=False` trains it alone.

    Training alone uses the same `Distiller` and recipe with the hard weight 1
    and the soft weight 0, so the two students differ in the teacher's signal
    only. With `batch_norm_data` (training examples without augmentation) and
    `settings.precise_batch_norm`, the student's BatchNorm statistics are
    recomputed over it when training ends (`PreciseBatchNorm`), so it
    evaluates as it trained.

    Args:
        teacher: the teacher `keras.Model`.
        make_student: `name -> ` a fresh student with the run's initial weights.
        train: the training `tf.data.Dataset` (a new one for each student,
            `tfdistill.app.teacher_pass.TeacherPass.batches`).
        settings: the `distill` section (`tfdistill.app.sections.DistillSection`).
        distil: distil (`True`) or train on the labels alone.
        name: the student model's name.
        callbacks: more callbacks for `fit`, run before `PreciseBatchNorm`.
        verbose: Keras verbosity of `fit`.
        validation_data: passed to `fit`.
        batch_norm_data: see above.

    Returns:
        `(student, history dict)`.
    """
    keras.utils.set_random_seed(settings.seed)
    student = make_student(name)
    distiller = Distiller(teacher, student)
    distiller.compile(
        optimizer=cosine_adam(settings.learning_rate, settings.epochs * len(train)),
        soft_loss=soft_loss_from_settings(settings),
        hard_weight=settings.hard_weight if distil else 1.0,
        soft_weight=settings.soft_weight if distil else 0.0,
        metrics=["accuracy"],
    )
    callbacks = list(callbacks)
    if settings.precise_batch_norm and batch_norm_data is not None:
        # After a backup callback, so a resumed run recomputes them too.
        callbacks.append(PreciseBatchNorm(batch_norm_data))
    history = distiller.fit(
        train, epochs=settings.epochs, validation_data=validation_data, callbacks=callbacks, verbose=verbose
    )
    return student, history.history


def accuracy(model, x, y):
    """Top-1 accuracy of a logits model on arrays."""
    logits = model.predict(x, batch_size=1024, verbose=0)
    return float(np.mean(np.argmax(logits, axis=-1) == y))
