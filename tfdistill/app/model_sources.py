"""The teacher and the student a config names, and the checks on them and the data before any training.

A teacher is a `.keras` file, a SavedModel folder or a TF Serving model
folder (its highest version). A student is a `.keras` file (its weights are
the initial weights), a builder function named `package.module:function`, or
the built-in CNN for images.
"""

import difflib
import importlib
import os
import sys
import warnings

import keras
import numpy as np
import tensorflow as tf

from tfdistill import compat, validation
from tfdistill.errors import ConfigError
from tfdistill.export.saved_model import KERAS_COPY, existing_versions
from tfdistill.labels import UNLABELED
from tfdistill.model_files import load_model


class SavedModelSignature(keras.layers.TFSMLayer):
    """A SavedModel's serving signature as a frozen Keras layer (`keras.layers.TFSMLayer`).

    The SavedModel is loaded once, by `TFSMLayer`; its `serving_default`
    signature says the rest. The layer takes the float inputs tfdistill's
    pipelines make and converts them to what the signature takes: a `uint8`
    signature gets the images back in `[0, 255]`, and one without a channel
    axis gets it removed.

    Args:
        filepath: the SavedModel folder.
        output_key: the signature's output to return; `None` when it has one.

    Attributes:
        input_shape_per_example: the shape the layer takes per example.

    Raises:
        ConfigError: no `serving_default` signature, not exactly one input,
            or an `output_key` that is missing (or needed and not given).
    """

    def __init__(self, filepath, output_key=None, **kwargs):
        kwargs.pop("call_endpoint", None)
        kwargs.pop("trainable", None)
        try:
            super().__init__(filepath, call_endpoint="serving_default", trainable=False, **kwargs)
        except ValueError as error:  # TFSMLayer's: the endpoint does not exist, with the ones that do
            raise ConfigError(f"Invalid value for `teacher.path`: the SavedModel {filepath!r} cannot be used: {error}") from None
        # The endpoint may be a restored function; the signature of the same name describes it.
        signatures = compat.loaded_signatures(self)
        if "serving_default" not in signatures:
            raise ConfigError(
                f"Invalid value for `teacher.path`: the SavedModel {filepath!r} has no `serving_default` "
                f"signature. Its signatures: {sorted(signatures)}"
            )
        signature = signatures["serving_default"]
        inputs = signature.structured_input_signature[1]
        if len(inputs) != 1:
            raise ConfigError(
                f"Invalid value for `teacher.path`: the SavedModel {filepath!r}'s serving signature takes "
                f"{len(inputs)} inputs ({sorted(inputs)}); a teacher takes one."
            )
        (self.input_name, spec), = inputs.items()
        self.output_key = _output_key(filepath, output_key, sorted(signature.structured_outputs))
        self.uint8_input = spec.dtype == tf.uint8
        shape = list(spec.shape[1:])
        self.drop_channel = self.uint8_input and len(shape) == 2  # grey images sent without a channel axis
        self.input_shape_per_example = shape + [1] if self.drop_channel else shape

    def call(self, inputs, training=False):
        x = inputs
        if self.drop_channel:
            x = tf.squeeze(x, -1)
        if self.uint8_input:
            x = tf.cast(tf.clip_by_value(tf.round(x * 255.0), 0, 255), tf.uint8)
        return tf.cast(self.call_endpoint_fn(**{self.input_name: x})[self.output_key], tf.float32)

    def get_config(self):
        return {**super().get_config(), "output_key": self.output_key}


def _output_key(folder, output_key, outputs):
    if output_key is None:
        if len(outputs) != 1:
            raise ConfigError(
                f"Invalid config: the SavedModel {folder!r} returns several outputs {outputs}; set "
                "`teacher.output_key` to the one that holds the logits (or probabilities, with "
                "`teacher.outputs: probabilities`)."
            )
        return outputs[0]
    if output_key not in outputs:
        match = difflib.get_close_matches(output_key, outputs, n=1)
        raise ConfigError(
            f"Invalid value for `teacher.output_key`: the SavedModel {folder!r} has no output {output_key!r}."
            + (f" Did you mean {match[0]!r}?" if match else "") + f" Its outputs: {outputs}"
        )
    return output_key


def _saved_model_teacher(folder, output_key):
    layer = SavedModelSignature(folder, output_key, name="saved_model_teacher")
    image = keras.Input(layer.input_shape_per_example, name=layer.input_name)
    return keras.Model(image, layer(image), name="teacher")


def load_teacher(path, output_key=None, outputs="logits"):
    """The teacher at `path`: a `.keras` file, a SavedModel folder, or a TF Serving model folder.

    A model folder in TF Serving's layout (`NAME/VERSION/`) is read at its
    highest version; a version exported by tfdistill is read from its `.keras`
    copy, any other SavedModel through its `serving_default` signature.
    With `outputs="probabilities"` the teacher's outputs are replaced by their
    logarithm: the same softmax at every temperature, so every loss reads
    them as logits.

    Raises:
        ConfigError: nothing to load at `path`, or a signature it cannot use.
    """
    if path is None or not os.path.exists(path):
        raise ConfigError(
            f"Invalid value for `teacher.path`: no file or folder at {path!r}. Expected a .keras file, a "
            "SavedModel folder or a TF Serving model folder. Train one with `tfdistill train-teacher`."
        )
    folder = path
    versions = existing_versions(path) if os.path.isdir(path) else []
    if versions and not os.path.isfile(os.path.join(path, "saved_model.pb")):
        folder = os.path.join(path, str(versions[-1]))
    if os.path.isfile(path):
        teacher = load_model(path, role="teacher")
    elif os.path.isfile(os.path.join(folder, KERAS_COPY)):
        teacher = load_model(os.path.join(folder, KERAS_COPY), role="teacher")
    elif os.path.isfile(os.path.join(folder, "saved_model.pb")):
        teacher = _saved_model_teacher(folder, output_key)
    else:
        raise ConfigError(
            f"Invalid value for `teacher.path`: {path!r} holds no .keras file, SavedModel (saved_model.pb) "
            "or numbered version folder."
        )
    if outputs == "probabilities":
        log = keras.layers.Lambda(lambda p: keras.ops.log(keras.ops.maximum(p, 1e-12)), name="log_probabilities")
        teacher = keras.Model(teacher.inputs, log(teacher.outputs[0]), name="teacher")
    return teacher


def _builder(text):
    """The function `package.module:function` names; the current folder is searched too, as `python -m` does."""
    module_name, _, function_name = text.partition(":")
    added = os.getcwd() not in sys.path
    if added:
        sys.path.append(os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ConfigError(f"Invalid value for `student.builder`: cannot import {module_name!r} ({error}).") from None
    finally:
        if added:
            sys.path.remove(os.getcwd())
    if not callable(getattr(module, function_name, None)):
        names = [n for n in dir(module) if not n.startswith("_") and callable(getattr(module, n))]
        match = difflib.get_close_matches(function_name, names, n=1)
        raise ConfigError(
            f"Invalid value for `student.builder`: module {module_name!r} has no function {function_name!r}."
            + (f" Did you mean {match[0]!r}?" if match else "")
        )
    return getattr(module, function_name)


def student_factory(section, input_shape, num_classes, seed, same_weights=True):
    """A function that returns a fresh student with the same initial weights at every call.

    Args:
        section: the run's `student` section (`tfdistill.app.sections.StudentSection`).
        input_shape: one example's shape as the models take it.
        num_classes: the number of classes.
        seed: seed of the initial weights of a built student.
        same_weights: `False` builds a student from a builder (or the
            built-in one) with new initial weights at every call, drawn from
            Keras's global seed (a `.keras` student always starts from its
            file's weights).
    """
    if section.path is not None:
        path = section.path
        if not os.path.isfile(path):
            raise ConfigError(f"Invalid value for `student.path`: no file at {path!r}. Expected a .keras file.")
        load_model(path, role="student")  # fails now, not after the teacher's pass

        def make(name="student"):
            return load_model(path, role="student")

        return make
    if section.builder is not None:
        build = _builder(section.builder)
        args = section.args
    else:
        if len(input_shape) != 3:
            raise ConfigError(
                f"Invalid config: the built-in student is a CNN for images (height, width, channels), but the "
                f"data's examples have shape {input_shape}. Give `student.path` or `student.builder`."
            )
        from tfdistill.app.models import build_student

        def build(**kwargs):
            return build_student(input_shape=input_shape, num_classes=num_classes, **kwargs)

        args = {"width": section.width}
    keras.utils.set_random_seed(seed)
    try:
        first = build(**args)
    except TypeError as error:
        raise ConfigError(f"Invalid value for `student.args`: the builder refused them ({error}).") from None
    if not isinstance(first, keras.Model):
        raise ConfigError(f"Invalid value for `student.builder`: expected it to return a keras.Model. Received: {first!r}")
    if not same_weights:
        return lambda name="student": build(**args)
    return with_initial_weights(lambda name: build(**args), first)


def with_initial_weights(build, first):
    """`build(name)` made to return students that all start from the weights of `first` (one it built).

    Both students of a comparison start from the same weights, so they differ
    in what they learn from only.
    """
    initial = first.get_weights()

    def make(name="student"):
        student = build(name)
        student.set_weights(initial)
        return student

    return make


def check_models_and_data(teacher, student, data):
    """Everything that must hold before the teacher's pass and training; raises `ConfigError` saying what to change."""
    validation.check_logits_model(student, "student.path", remedy=(
        "Save `tfdistill.strip_softmax(student)` to a .keras file and pass that file."))
    if teacher.inputs:
        validation.check_logits_model(teacher, "teacher.path", remedy=(
            "Save `tfdistill.strip_softmax(teacher)` to a .keras file and pass that, or set "
            "`teacher.outputs: probabilities`."))
    # One random sample of the training split (at most 512 examples, read once) serves every check.
    some = data.train.subset(np.random.default_rng(0).permutation(len(data.train))[:512])
    sample, labels = data.arrays(some)
    for role, model in (("teacher", teacher), ("student", student)):
        expected = tuple(model.inputs[0].shape[1:])
        if len(expected) != len(sample.shape[1:]) or any(
            e is not None and e != r for e, r in zip(expected, sample.shape[1:])
        ):
            raise ConfigError(
                f"Invalid config: the {role} takes inputs of shape {expected}, but the data "
                f"({data.description}) gives examples of shape {tuple(sample.shape[1:])}. Change the "
                f"{role} or the data (for an image folder, `data.image_size`)."
            )
    teacher_out = np.asarray(teacher.predict(sample, verbose=0))
    student_out = np.asarray(student(sample[:8], training=False))
    if teacher_out.shape[1:] != student_out.shape[1:]:
        raise ConfigError(
            f"Invalid config: the teacher outputs shape {teacher_out.shape[1:]} per example and the student "
            f"{student_out.shape[1:]}; distillation needs the same classes. Change the student's output layer."
        )
    num_outputs = teacher_out.shape[-1]
    if len(data.class_names) != num_outputs:
        raise ConfigError(
            f"Invalid data {data.description}: it names {len(data.class_names)} classes "
            f"({data.class_names[:5]}{'...' if len(data.class_names) > 5 else ''}) but the models output "
            f"{num_outputs}. Give one class name per output (`class_names` in an .npz, one folder per class)."
        )
    for name, split in (("training", data.train), ("validation", data.validation), ("test", data.test)):
        y = split.y[split.labeled]  # the training split's unlabeled examples are -1
        if len(y) and (y.min() < 0 or y.max() >= num_outputs):
            raise ConfigError(
                f"Invalid data {data.description}: {name} labels range over [{y.min()}, {y.max()}], "
                f"but the models output {num_outputs} classes (labels 0 to {num_outputs - 1})."
            )
    if np.all(teacher_out >= 0) and np.allclose(teacher_out.sum(-1), 1.0, atol=1e-3):
        raise ConfigError(
            "Invalid config: the teacher's outputs are non-negative and sum to 1, so they look like "
            "probabilities, not logits. Set `teacher.outputs: probabilities` (they are then distilled as "
            "their logarithm), or give a teacher without its final softmax."
        )
    labeled = labels != UNLABELED
    agreement = float(np.mean(teacher_out.argmax(-1)[labeled] == labels[labeled])) if labeled.any() else 1.0
    if agreement <= 1.5 / num_outputs:
        warnings.warn(
            f"The teacher's predictions match the labels of only {agreement:.1%} of {int(labeled.sum())} training "
            f"examples (chance: {1 / num_outputs:.1%}). Are the classes in the teacher's order? An image "
            "folder's classes are its sub-folders sorted by name; set `data.class_names` to the folder names "
            "in the order of the teacher's outputs.", stacklevel=2,
        )
