"""Int8 students that lose nothing: post-training quantization against quantization-aware training and distillation.

For each task and seed a float student is distilled from the task's teacher
(the project's recipe for it), then exported four ways to full-int8 TFLite,
each run by LiteRT (batch 1, 1 thread) on the whole test set:

- `PTQ`: post-training quantization, the converter calibrated on 200
  training examples (what `tfdistill.export.convert(student, "int8")` gives);
- `QAT on labels`: the student fake-quantized (`quantize_model`: BatchNorm
  folded, weights per channel, activation ranges calibrated on the same 200
  examples, the logits' range over each example's two largest) and trained on
  the labels alone;
- `QAD from the teacher`: the same clone distilled from the teacher (KD at
  T=1, the teacher's cached outputs, no labels);
- `QAD from the float student`: distilled from the float student itself
  (self-distillation, online).

The three trained ones start from the same clone and take the same batches,
learning rate (cosine from 1e-4) and epochs. Each int8 model is compared
with the float student: accuracy, top-1 agreement (per token for the
language model), file bytes, latency, and whether its operators are PTQ's.

Tasks: `fashion_mnist` (the shipped teacher, the demo's 14,618-parameter CNN
distilled with the demo's recipe: 12 epochs, 4 views), `fashion_mnist_4bit`
(the same float students with 4-bit weights, stored two per byte as TFLite
INT4 tensors, where rounding costs points:
its PTQ is the clone's weights rounded to nearest without training, since
the converter calibrates 8 bits only), `keyword_spotting` and `byte_lm` (the
task examples' data, teachers and students: `examples/tasks/`; keyword
spotting needs espeak-ng and sox, the language model Debian's manual pages).
Float students are kept in `--work-dir` and shared by the tasks of one
dataset; a task's teacher is trained once and kept there too. Results go to
`--out` (JSON, after every seed: an interrupted run resumes; tasks run
separately, with their own options, add up there); the tables of every task
in it are printed (`quantization_tables.py`), and written to `--markdown`
when given.

    python benchmarks/quantization.py --tasks fashion_mnist fashion_mnist_4bit
    python benchmarks/quantization.py --tasks keyword_spotting byte_lm
"""

import argparse
import collections
import dataclasses
import json
import os
import sys
import time

import keras
import numpy as np
import tensorflow as tf

from common import shipped_teacher
from quantization_tables import markdown
from tfdistill import losses, offline
from tfdistill.app import quantization_stage
from tfdistill.app.config import DEFAULTS, section
from tfdistill.app.models import build_student
from tfdistill.app.training import cosine_adam, train_teacher
from tfdistill.data import load_fashion_mnist, to_float_images
from tfdistill.distiller import Distiller
from tfdistill.batch_norm import recompute_batch_norm_statistics
from tfdistill.export import convert, operators, verify
from tfdistill.quantization import quantize_model

METHODS = {  # name: the `qat` settings that differ from `QAD_SETTINGS`
    "QAT on labels": {"teacher": "teacher", "hard_weight": 1.0, "soft_weight": 0.0},
    "QAD from the teacher": {"teacher": "teacher"},
    "QAD from the float student": {"teacher": "student"},
}
QAD_SETTINGS = {**DEFAULTS["qat"], "learning_rate": 1e-4, "output_top_k": 2, "hard_weight": 0.0, "soft_weight": 1.0}
CALIBRATION = 200
EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")


def task_code():
    """The keyword-spotting and byte-language-model data and models (`examples/tasks/`): imported from here only."""
    sys.path.insert(0, EXAMPLES)
    from tasks import speech_corpus, speech_models, text_corpus, text_models

    return speech_models, text_models, speech_corpus, text_corpus


@dataclasses.dataclass
class Budget:
    """A task's float training: the teacher's (when it is trained) and the float student's."""

    epochs: int
    teacher_epochs: int
    learning_rate: float
    teacher_learning_rate: float
    batch_size: int


@dataclasses.dataclass
class Task:
    """One benchmark task: its data, teacher and float student, and its QAD budget."""

    name: str
    data: dict  # x_train, y_train, x_test, y_test (and w_train, w_test per token)
    teacher: keras.Model
    train_float: callable  # seed -> the float student
    make_train: callable  # seed -> the training batches, with the teacher's cached outputs
    qat_epochs: int
    weight_bits: int = 8


# ----------------------------------------------------------------------------- tasks
def _distil(teacher, student, train, epochs, learning_rate, hard_weight=0.0, temperature=1.0):
    distiller = Distiller(teacher, student)
    distiller.compile(cosine_adam(learning_rate, epochs * len(train)),
                      soft_loss=losses.KnowledgeDistillation(temperature=temperature), hard_weight=hard_weight,
                      soft_weight=1.0)
    distiller.fit(train, epochs=epochs, verbose=2)
    return student


def _cached_student(path, train):
    """The float student at `path`, or `train()`'s, saved there (tasks of one family share them)."""
    if os.path.exists(path):
        print(f"Float student: {path} (reused)")
        return keras.models.load_model(path)
    student = train()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    student.save(path)
    return student


def fashion_mnist(args, weight_bits=8):
    (x_train, y_train), (x_test, y_test) = load_fashion_mnist()
    x_train, y_train = x_train[: args.train_examples], y_train[: args.train_examples]
    teacher = shipped_teacher()
    settings = DEFAULTS["distill"]
    print(f"Caching the teacher's logits: {len(x_train):,} images x {settings['views']} views")
    logits = offline.compute_teacher_logits(teacher, x_train, views=settings["views"], seed=0, verbose=0)

    def make_train(seed):
        return offline.offline_dataset(x_train, y_train, logits, batch_size=settings["batch_size"], seed=seed,
                                       view_seed=0)

    epochs = args.float_epochs or settings["epochs"]

    def train_float(seed):
        def train():
            keras.utils.set_random_seed(seed)
            student = _distil(teacher, build_student(name="student"), make_train(seed), epochs,
                              settings["learning_rate"])
            return _precise_batch_norm(student, to_float_images(x_train))

        name = f"student_{len(x_train)}_{epochs}_seed{seed}.keras"
        return _cached_student(os.path.join(args.work_dir, "fashion_mnist", name), train)

    data = {"x_train": x_train, "y_train": y_train, "x_test": to_float_images(x_test), "y_test": y_test,
            "calibration": to_float_images(x_train)}
    name = "fashion_mnist" if weight_bits == 8 else f"fashion_mnist_{weight_bits}bit"
    return Task(name, data, teacher, train_float, make_train, args.qat_epochs or 3, weight_bits=weight_bits)


def _precise_batch_norm(model, x):
    """BatchNorm's statistics over the training inputs: a few hundred steps leave moving averages behind."""
    recompute_batch_norm_statistics(model, [x[start:start + 256] for start in range(0, len(x), 256)])
    return model


def _task_teacher(path, make, data, budget):
    if os.path.exists(path):
        print(f"Teacher: {path} (reused)")
        return keras.models.load_model(path)
    print(f"Training the teacher ({budget.teacher_epochs} epochs)")
    arrays = (data["x_train"], data["y_train"]) + ((data["w_train"],) if "w_train" in data else ())
    train = tf.data.Dataset.from_tensor_slices(arrays).shuffle(len(data["x_train"]), seed=0).batch(budget.batch_size)
    teacher = train_teacher(make(), train, budget.teacher_epochs, budget.teacher_learning_rate, seed=0)
    teacher = _precise_batch_norm(teacher, data["x_train"])
    os.makedirs(os.path.dirname(path), exist_ok=True)
    teacher.save(path)
    return teacher


def keyword_spotting(args):
    speech_models, _, speech, _ = task_code()
    clips = args.clips_per_word or 300
    corpus = speech.synthesize_keywords(clips_per_word=clips, seed=0, snr_db=(-5.0, 20.0),
                                        cache_dir=os.path.join(args.work_dir, "keyword_spotting"))
    data = {"x_train": speech.log_mel_features(corpus.x_train), "y_train": corpus.y_train,
            "x_test": speech.log_mel_features(corpus.x_test), "y_test": corpus.y_test}
    classes = len(corpus.class_names)
    recipe = Budget(epochs=args.float_epochs or 20, teacher_epochs=args.teacher_epochs or 15,
                    learning_rate=3e-3, teacher_learning_rate=2e-3, batch_size=64)
    teacher = _task_teacher(
        os.path.join(args.work_dir, "keyword_spotting", f"teacher_{clips}.keras"),
        lambda: speech_models.keyword_cnn(num_classes=classes, widths=(32, 64, 128), features=data["x_train"]),
        data, recipe)
    logits = offline.compute_teacher_logits(teacher, data["x_train"], batch_size=512, verbose=0)

    def make_train(seed):
        return offline.offline_dataset(data["x_train"], data["y_train"], logits, batch_size=recipe.batch_size,
                                       seed=seed)

    def train_float(seed):
        keras.utils.set_random_seed(seed)
        student = speech_models.ds_cnn(num_classes=classes, features=data["x_train"], name="student")
        student = _distil(teacher, student, make_train(seed), recipe.epochs, recipe.learning_rate)
        return _precise_batch_norm(student, data["x_train"])

    data["calibration"] = data["x_train"]
    return Task("keyword_spotting", data, teacher, train_float, make_train, args.qat_epochs or 20)


def byte_lm(args):
    _, text_models, _, text = task_code()
    length, sequences = 64, args.sequences or 20000
    corpus = text.language_model_data("en", length=length, sequences=sequences, seed=0)
    data = {"x_train": corpus.x_train, "y_train": corpus.y_train, "w_train": corpus.w_train,
            "x_test": corpus.x_test, "y_test": corpus.y_test, "w_test": corpus.w_test}
    recipe = Budget(epochs=args.float_epochs or 15, teacher_epochs=args.teacher_epochs or 15,
                    learning_rate=3e-3, teacher_learning_rate=1e-3, batch_size=64)
    folder = os.path.join(args.work_dir, "byte_lm")
    teacher = _task_teacher(os.path.join(folder, f"teacher_{sequences}.keras"),
                            lambda: text_models.byte_transformer_language_model(length), data, recipe)
    cache = os.path.join(folder, f"teacher_top8_{sequences}")
    table = tf.constant(data["x_train"])
    load = lambda index: tf.gather(table, index)  # noqa: E731
    if not os.path.exists(cache):
        offline.write_teacher_logits(teacher, load, len(data["x_train"]), cache, batch_size=256, verbose=0, top_k=8,
                                     temperature=1.0)

    def make_train(seed):
        return offline.streaming_offline_dataset(load, data["y_train"], cache, batch_size=recipe.batch_size,
                                                 seed=seed, sample_weight=data["w_train"])

    def train_float(seed):
        keras.utils.set_random_seed(seed)
        student = text_models.byte_tcn_language_model(length, name="student")
        return _distil(teacher, student, make_train(seed), recipe.epochs, recipe.learning_rate, hard_weight=1.0)

    data["calibration"] = data["x_train"]
    return Task("byte_lm", data, teacher, train_float, make_train, args.qat_epochs or 3)


TASKS = {"fashion_mnist": fashion_mnist, "fashion_mnist_4bit": lambda args: fashion_mnist(args, weight_bits=4),
         "keyword_spotting": keyword_spotting, "byte_lm": byte_lm}


# ------------------------------------------------------------------------ measuring
def output_grid_agreement(content, float_logits, weights=None):
    """The float student's own logits rounded to the int8 model's output grid: their top-1 agreement with it.

    What rounding the logits alone costs, the rest of the network exact: the
    most agreement any int8 model with that output range can have.
    """
    from tfdistill.export.tflite import _make_interpreter

    interpreter = _make_interpreter(content, 1)
    dequantize = [op for op in interpreter._get_ops_details() if op["op_name"] == "DEQUANTIZE"][-1]
    scale, zero_point = interpreter._get_tensor_details(dequantize["inputs"][0], 0)["quantization"]
    rounded = np.clip(np.round(float_logits / scale) + zero_point, -128, 127)
    hits = rounded.argmax(-1) == float_logits.argmax(-1)
    weights = np.ones(hits.shape) if weights is None else np.asarray(weights).reshape(hits.shape)
    return float(np.sum(hits * weights) / np.sum(weights))


def operator_difference(ops, reference):
    """`"same"`, or the operators `ops` has beyond `reference` (`+NAME`) and lacks (`−NAME`)."""
    ops, reference = collections.Counter(ops), collections.Counter(reference)
    more, fewer = ops - reference, reference - ops
    changes = [f"+{name}" for name in more.elements()] + [f"−{name}" for name in fewer.elements()]
    return " ".join(changes) or "same"


def _measure(content, model, float_student, data, subset, name, reference_ops=None):
    x, y = data["x_test"][subset], data["y_test"][subset]
    weights = data["w_test"][subset] if "w_test" in data else None
    report = verify(content, model, x, y, name, sample_weight=weights, float_model=float_student)
    ops = operators(content)
    float_logits = np.asarray(float_student.predict(x, batch_size=512, verbose=0), "float64")
    return {
        "output_grid_agreement": None if name == "float32" else output_grid_agreement(content, float_logits, weights),
        "accuracy": report.accuracy,
        "float_agreement": report.float_agreement,
        "keras_agreement": report.top1_agreement,  # with the model it was converted from
        "bytes": report.file_bytes,
        "latency_ms": report.median_latency_ms,
        "operators": ops,
        "operators_vs_ptq": None if reference_ops is None else operator_difference(ops, reference_ops),
    }


def run_seed(task, seed, args):
    data = task.data
    subset = np.arange(len(data["x_test"]))
    if args.test_examples and args.test_examples < len(subset):
        subset = np.sort(np.random.default_rng(seed).permutation(len(subset))[: args.test_examples])
    calibration = data["calibration"][np.random.default_rng(seed).permutation(len(data["calibration"]))[:CALIBRATION]]
    start = time.perf_counter()
    student = task.train_float(seed)
    result = {"seconds": {"float": time.perf_counter() - start}}
    result["float"] = _measure(convert(student, "float32"), student, student, data, subset, "float32")
    if task.weight_bits == 8:
        ptq = convert(student, "int8", representative_data=calibration, num_calibration=CALIBRATION)
        result["PTQ"] = _measure(ptq, student, student, data, subset, "int8 PTQ")
    else:  # the converter has no low-bit calibration: the clone's weights rounded to nearest, no training
        rounded = quantize_model(student, calibration, weight_bits=task.weight_bits)
        result["PTQ"] = _measure(convert(rounded, "int8"), rounded, student, data, subset, "int8 PTQ")
    for method, changes in METHODS.items():
        start = time.perf_counter()
        settings = section("qat", **{**QAD_SETTINGS, **changes, "epochs": task.qat_epochs,
                                     "weight_bits": task.weight_bits})
        quantized = quantization_stage.distil_quantized(student, task.teacher, task.make_train(seed), calibration,
                                                        settings, verbose=2)
        result["seconds"][method] = time.perf_counter() - start
        result[method] = _measure(convert(quantized, "int8"), quantized, student, data, subset, method,
                                  result["PTQ"]["operators"])
        print(f"{task.name} seed {seed} {method}: " + ", ".join(
            f"{key} {value:.4f}" for key, value in result[method].items() if isinstance(value, float)))
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=["fashion_mnist", "fashion_mnist_4bit"], choices=list(TASKS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--qat-epochs", type=int, default=None, help="QAT/QAD epochs (default: per task)")
    parser.add_argument("--float-epochs", type=int, default=None, help="float student epochs (default: per task)")
    parser.add_argument("--teacher-epochs", type=int, default=None, help="a trained teacher's epochs (default: per task)")
    parser.add_argument("--clips-per-word", type=int, default=None, help="keyword spotting: clips per word (300)")
    parser.add_argument("--sequences", type=int, default=None, help="byte LM: sequences of 64 bytes (20,000)")
    parser.add_argument("--train-examples", type=int, default=None, help="Fashion-MNIST: the first N training images")
    parser.add_argument("--test-examples", type=int, default=None, help="a random subset of the test set (default: all)")
    parser.add_argument("--work-dir", default="runs/quantization_benchmark", help="teachers, corpora and caches")
    parser.add_argument("--out", default="benchmarks/results_quantization.json",
                        help="results of every task run so far (a task's seeds there are reused)")
    parser.add_argument("--markdown", default=None, help="also write the tables of every task in --out to this file "
                        "(they are printed either way)")
    parser.add_argument("--note", default="", help="a line under the tasks' command (the machine, a reduced run, ...)")
    args = parser.parse_args()

    results = {}
    if os.path.exists(args.out):
        with open(args.out) as f:
            results = json.load(f)
    options = " ".join(
        f"--{key.replace('_', '-')} {' '.join(map(str, value)) if isinstance(value, list) else value}"
        for key, value in vars(args).items()
        if value not in (None, "") and key not in ("tasks", "out", "markdown", "note", "work_dir"))
    for name in args.tasks:
        task = TASKS[name](args)
        entry = results.setdefault(name, {"seeds": {}})
        entry.update(command=f"python benchmarks/quantization.py --tasks {name} {options}", note=args.note)
        for seed in args.seeds:
            if str(seed) in entry["seeds"]:
                print(f"{name} seed {seed}: in {args.out} (reused)")
                continue
            entry["seeds"][str(seed)] = run_seed(task, seed, args)
            with open(args.out, "w") as f:
                json.dump(results, f, indent=1)
    page = markdown(results, list(METHODS))
    print(page)
    if args.markdown:
        os.makedirs(os.path.dirname(args.markdown) or ".", exist_ok=True)
        with open(args.markdown, "w") as f:
            f.write(page)
    print(f"Wrote {args.out}" + (f" and {args.markdown}" if args.markdown else ""))


if __name__ == "__main__":
    main()
