"""Training the Fashion-MNIST teacher and students, shared by the demo, runs and benchmarks."""

import os
import tempfile

import keras
import numpy as np
import tensorflow as tf

from tfdistill import losses
from tfdistill.batch_norm import PreciseBatchNorm
from tfdistill.distiller import Distiller
from tfdistill.app.models import build_student, build_teacher
from tfdistill.data.pipelines import make_dataset, to_float_images
from tfdistill.fidelity import fidelity_from_logits


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
    """The soft loss a config's `distill` section names, at its temperature."""
    soft_loss = losses.get(settings["soft_loss"])
    if hasattr(soft_loss, "temperature"):
        soft_loss.temperature = float(settings["temperature"])
    return soft_loss


def train_student(teacher, train, initial_weights, settings, width, soft=True, callbacks=(), verbose=2,
                  validation_data=None, batch_norm_data=None, name="student", make_student=None):
    """Trains a fresh `build_student(width)` from `initial_weights`; `soft=False` trains it alone.

    Training alone uses the same `Distiller`, data and views with the soft
    weight set to zero, so the two runs differ in the teacher's signal only.
    With `batch_norm_data` (training images without augmentation) and
    `settings["precise_batch_norm"]`, the student's BatchNorm statistics are
    recomputed over it when training ends (`PreciseBatchNorm`), so it
    evaluates as it trained.

    Args:
        teacher: the teacher `keras.Model`.
        train: the training `tf.data.Dataset`.
        initial_weights: the student's initial weights (the same for both runs).
        settings: a config's `distill` section (`tfdistill.app.config.DEFAULTS`).
        width: the student's width.
        soft: distil (`True`) or train on the labels alone.
        callbacks: more callbacks for `fit`, run before `PreciseBatchNorm`.
        verbose: Keras verbosity of `fit`.
        validation_data: passed to `fit`.
        batch_norm_data: see above.
        name: the student model's name.
        make_student: a function `name -> student` that returns a fresh
            student with its initial weights, used instead of
            `build_student(width)` and `initial_weights` (a user's student).

    Returns:
        `(student, history dict)`.
    """
    keras.utils.set_random_seed(settings["seed"])
    if make_student is not None:
        student = make_student(name)
    else:
        student = build_student(width=width, name=name)
        student.set_weights(initial_weights)
    distiller = Distiller(teacher, student)
    distiller.compile(
        optimizer=cosine_adam(settings["learning_rate"], settings["epochs"] * len(train)),
        soft_loss=soft_loss_from_settings(settings),
        hard_weight=settings["hard_weight"] if soft else 1.0,
        soft_weight=settings["soft_weight"] if soft else 0.0,
        metrics=["accuracy"],
    )
    callbacks = list(callbacks)
    if settings.get("precise_batch_norm", True) and batch_norm_data is not None:
        # After a backup callback, so a resumed run recomputes them too.
        callbacks.append(PreciseBatchNorm(batch_norm_data))
    history = distiller.fit(
        train, epochs=settings["epochs"], validation_data=validation_data, callbacks=callbacks, verbose=verbose
    )
    return student, history.history


def train_teacher(x_train, y_train, epochs=24, seed=0, verbose=2, callbacks=(), num_classes=None):
    """Trains `build_teacher()` with flip/shift augmentation and a cosine schedule.

    24 epochs take 25-35 minutes on 2 CPU cores; the shipped teacher reached 94.08 % on
    the Fashion-MNIST test set. `callbacks` go to `fit` (for example
    `keras.callbacks.ModelCheckpoint` to keep early-stopped teachers). The
    teacher takes the images' shape (a channel axis added to grey ones) and
    has `num_classes` outputs (default: one per class in `y_train`).
    """
    keras.utils.set_random_seed(seed)
    train = make_dataset(x_train, y_train, batch_size=128, shuffle=True, augment=True, seed=seed)
    input_shape = tuple(train.element_spec[0].shape[1:])
    teacher = build_teacher(input_shape=input_shape, num_classes=num_classes or int(np.max(y_train)) + 1)
    teacher.compile(
        optimizer=cosine_adam(2e-3, epochs * len(train), warmup_steps=len(train)),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    teacher.fit(train, epochs=epochs, verbose=verbose, callbacks=list(callbacks), shuffle=False)
    return teacher


def calibration_images(x_train, count, seed):
    """`count` training images drawn at random (reproducibly from `seed`), as floats: the int8 calibration set."""
    return to_float_images(x_train[np.random.default_rng(seed).permutation(len(x_train))[:count]])


def fidelity_on_train_and_test(student, train_inputs, y_train, teacher_train_logits, teacher_test_logits,
                               student_test_logits, y_test):
    """The student's `Fidelity` to its teacher on the training and the test examples.

    `teacher_train_logits` are view 0 of the teacher's cache, its outputs on
    the training examples themselves, so the teacher is not run again.
    `train_inputs` are those examples as the student takes them: an array,
    or a `tf.data.Dataset` of batches (streamed data).
    """
    batch_size = None if isinstance(train_inputs, tf.data.Dataset) else 1024
    student_train_logits = student.predict(train_inputs, batch_size=batch_size, verbose=0)
    return {
        "train": fidelity_from_logits(np.asarray(teacher_train_logits, np.float32), student_train_logits, y_train),
        "test": fidelity_from_logits(teacher_test_logits, student_test_logits, y_test),
    }


def keras_file_size(model):
    """Size in bytes of the model saved as a `.keras` file."""
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "model.keras")
        model.save(path)
        return os.path.getsize(path)


def accuracy(model, x, y):
    """Top-1 accuracy of a logits model on arrays."""
    logits = model.predict(x, batch_size=1024, verbose=0)
    return float(np.mean(np.argmax(logits, axis=-1) == y))
