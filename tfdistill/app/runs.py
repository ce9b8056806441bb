"""A distillation run described by a config, written to its own folder.

    RUN_DIR/
      config.json            the resolved config: `tfdistill distill --config RUN_DIR/config.json` repeats it
      run.json               status ("running" / "finished"), timings and results
      metrics/NAME.csv       loss terms and accuracies per epoch (scratch, distilled)
      tensorboard/NAME/      TensorBoard logs
      checkpoints/           backups while training (resume after a crash), final .keras students
      cache/                 a streamed image folder's teacher logits (.npy, read memory-mapped)
      export/                the distilled student: SavedModel (NAME/VERSION) and verified .tflite files
      report.md, plots/      the report and its PNG plots
"""

import csv
import dataclasses
import json
import os
import shutil
import sys
import time

import keras
import numpy as np
import tensorflow as tf

from tfdistill import model_files, offline
from tfdistill.app import config as config_module
from tfdistill.app import data_sources, model_sources, quantization_stage, reports
from tfdistill.app.training import fidelity_on_train_and_test, keras_file_size, train_student
from tfdistill.callbacks import BackupAndRestore
from tfdistill.errors import ExportVerificationError
from tfdistill.export.atomic import save_keras
from tfdistill.export.saved_model import export_saved_model
from tfdistill.export.tflite import export_tflite
from tfdistill.stats import describe_gain, near_chance

RUN_FILE = "run.json"


def check_output_dir(run_dir, config, overwrite=False):
    """Refuses a folder that holds a finished run (or anything but a run) unless `overwrite`.

    An unfinished run of the same config is resumed: finished students are
    reloaded, an interrupted one continues from its last backup.
    """
    if not os.path.exists(run_dir):
        return
    status_path = os.path.join(run_dir, RUN_FILE)
    if overwrite:
        if not os.path.exists(status_path) and os.listdir(run_dir):
            raise config_module.ConfigError(
                f"Output folder {run_dir!r} is not empty and holds no tfdistill run; "
                "refusing to delete it even with --overwrite. Choose another folder."
            )
        shutil.rmtree(run_dir)
        return
    if not os.listdir(run_dir):
        return
    if not os.path.exists(status_path):
        raise config_module.ConfigError(
            f"Output folder {run_dir!r} is not empty and holds no tfdistill run. Choose another folder."
        )
    with open(status_path) as f:
        status = json.load(f).get("status")
    if status == "finished":
        raise config_module.ConfigError(
            f"Output folder {run_dir!r} already holds a finished run. Choose another folder, "
            "or pass --overwrite to replace it."
        )
    config_path = os.path.join(run_dir, "config.json")
    if os.path.exists(config_path):
        with open(config_path) as f:
            if json.load(f) != config:
                raise config_module.ConfigError(
                    f"Output folder {run_dir!r} holds an unfinished run of a different config; "
                    "it can only be resumed with the same config (its config.json). Choose another "
                    "folder, or pass --overwrite to replace it."
                )


def _write_json(path, data):
    temporary = f"{path}.tmp"
    with open(temporary, "w") as f:
        json.dump(data, f, indent=2)
    os.replace(temporary, path)


def keras_latency_ms(model, x, repeats=200):
    """Median time of one compiled batch-1 forward pass, in milliseconds."""
    forward = tf.function(lambda batch: model(batch, training=False))
    forward(x[:1])
    times = []
    for index in range(repeats):
        start = time.perf_counter()
        forward(x[index % len(x)][None]).numpy()
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1000)


def load_inputs(config, same_weights=True):
    """The teacher, the `Data` and the student factory of a resolved config, checked together.

    Everything a run needs is loaded and checked here, before any folder is
    written or the teacher runs: a missing file, a signature or data the
    models cannot take, labels or class names that do not match the outputs.

    Returns:
        `(teacher, data, make_student)`; `make_student(name)` returns a fresh
        student with the run's initial weights (with `same_weights=False`,
        new ones at each call, from Keras's global seed).
    """
    teacher = model_sources.load_teacher(config["teacher"]["path"], config["teacher"]["output_key"],
                                         config["teacher"]["outputs"])
    data = data_sources.from_config(config["data"], tuple(teacher.inputs[0].shape[1:]))
    make_student = model_sources.student_factory(
        config["student"], data.input_shape, int(teacher.outputs[0].shape[-1]), config["distill"]["seed"],
        same_weights=same_weights,
    )
    model_sources.check_models_and_data(teacher, make_student(), data)
    return teacher, data, make_student


def teacher_pass(teacher, data, settings, run_dir, verbose):
    """Runs the teacher once over the training split's views; returns `(train dataset, view-0 logits)`.

    Arrays are cached in memory (`offline.compute_teacher_logits`); a
    streamed image folder's cache is written to `RUN_DIR/cache/teacher_logits.npy`
    and read memory-mapped (`offline.write_teacher_logits`), so neither its
    images nor its logits are ever all in memory. A resumed run reuses the file.
    """
    if not data.streamed:
        logits = offline.compute_teacher_logits(teacher, data.train.x, views=settings["views"], seed=settings["seed"],
                                                verbose=verbose)
        train = offline.offline_dataset(data.train.x, data.train.y, logits, batch_size=settings["batch_size"],
                                        seed=settings["seed"], view_seed=settings["seed"])
        return train, logits[0]
    path = os.path.join(run_dir, "cache", "teacher_logits.npy")
    load = data.load_example(data.train)
    if not os.path.exists(path):  # written under a temporary name: present means complete
        os.makedirs(os.path.dirname(path), exist_ok=True)
        offline.write_teacher_logits(teacher, load, len(data.train), path, views=settings["views"],
                                     seed=settings["seed"], verbose=verbose)
    train = offline.streaming_offline_dataset(load, data.train.y, path, batch_size=settings["batch_size"],
                                              seed=settings["seed"], view_seed=settings["seed"])
    return train, np.load(path, mmap_mode="r")[0]


def peak_rss_bytes():
    """This process's peak resident memory so far, in bytes.

    Linux's `VmHWM` (the high-water mark of this program's memory); not
    `getrusage`, whose peak survives `exec` and so counts the parent's memory
    for a process started by another (the benchmark that runs the command).
    """
    try:
        with open("/proc/self/status") as f:
            line = next(line for line in f if line.startswith("VmHWM:"))
        return int(line.split()[1]) * 1024
    except (OSError, StopIteration):
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return int(peak if sys.platform == "darwin" else peak * 1024)


def _read_history(path):
    with open(path) as f:
        rows = list(csv.DictReader(f))
    return {key: [float(row[key]) for row in rows] for key in rows[0] if key != "epoch"}


def _train_student(name, teacher, train, validation, make_student, config, run_dir, soft, verbose, batch_norm_data=None):
    saved = os.path.join(run_dir, "checkpoints", f"student_{name}.keras")
    if os.path.exists(saved):  # finished before the run was interrupted
        print(f"Reusing {saved} from the interrupted run")
        return model_files.load_model(saved, role="student"), _read_history(os.path.join(run_dir, "metrics", f"{name}.csv"))
    os.makedirs(os.path.join(run_dir, "metrics"), exist_ok=True)
    callbacks = [
        keras.callbacks.CSVLogger(os.path.join(run_dir, "metrics", f"{name}.csv"), append=True),
        keras.callbacks.TensorBoard(os.path.join(run_dir, "tensorboard", name)),
        BackupAndRestore(os.path.join(run_dir, "checkpoints", f"backup_{name}")),
    ]
    student, _ = train_student(
        teacher, train, None, config["distill"], None, soft=soft, callbacks=callbacks,
        verbose=verbose, validation_data=validation, batch_norm_data=batch_norm_data, name=f"student_{name}",
        make_student=make_student,
    )
    save_keras(student, saved)  # atomic: a resumed run never reloads half a file
    return student, _read_history(os.path.join(run_dir, "metrics", f"{name}.csv"))


def run_distillation(config, run_dir, overwrite=False, verbose=1):
    """Runs a resolved config into `run_dir` and returns the results dict.

    Teacher outputs are cached for `distill.views` augmented views; the
    scratch student (same initial weights, data and views, soft weight 0) and
    the distilled student train with validation on a held-out split; both are
    tested on the test set; the distilled student is exported and verified;
    a report with plots is written.

    Args:
        config: from `tfdistill.app.config.resolve`.
        run_dir: the run's folder (see the module's docstring).
        overwrite: replace a finished run in `run_dir`.
        verbose: 1 for progress bars, 2 for a line per epoch, 0 for silence.

    Returns:
        A dict: `rows` (name, parameters, bytes, accuracy, latency_ms), `tflite`
        (verification reports as dicts), `fidelity` (the distilled student's
        to the teacher on the training and test images, as dicts),
        `histories` and `seconds`.
    """
    check_output_dir(run_dir, config, overwrite)
    teacher, data, make_student = load_inputs(config)  # raises before anything is written
    os.makedirs(run_dir, exist_ok=True)
    start = time.time()
    _write_json(os.path.join(run_dir, "config.json"), config)
    _write_json(os.path.join(run_dir, RUN_FILE), {"status": "running", "started": time.ctime()})

    settings = config["distill"]
    print(f"Data: {data.description}, {len(data.train):,} training, {len(data.validation):,} validation and "
          f"{len(data.test):,} test examples, {len(data.class_names)} classes"
          + (" (streamed from disk)" if data.streamed else ""))
    print(f"Caching the teacher's logits for {len(data.train):,} examples x {settings['views']} views")
    train, teacher_train_logits = teacher_pass(teacher, data, settings, run_dir, verbose)
    validation = data.batches(data.validation) if len(data.validation) else None
    x_test, y_test = data.arrays(data.test, limit=config["export"]["verify_examples"])
    y_test_all = data.test.y

    students, histories = {}, {}
    names = (["scratch"] if settings["train_scratch"] else []) + ["distilled"]
    for name in names:
        print(f"Training the {name} student: {settings['epochs']} epochs")
        students[name], histories[name] = _train_student(
            name, teacher, train, validation, make_student, config, run_dir, soft=name == "distilled",
            verbose=verbose, batch_norm_data=data.batches(data.train),
        )

    rows = []
    test_logits, predictions = {}, {}
    for name, model in [("teacher", teacher)] + [(f"student {n}", students[n]) for n in names]:
        test_logits[name] = model.predict(data.batches(data.test), verbose=0)
        predictions[name] = test_logits[name].argmax(-1)
        rows.append({
            "name": name,
            "parameters": model.count_params(),
            "bytes": keras_file_size(model),
            "accuracy": float(np.mean(predictions[name] == y_test_all)),
            "latency_ms": keras_latency_ms(model, x_test),
        })

    tflite_reports, refused = [], []
    export_dir = os.path.join(run_dir, "export")
    if config["export"]["saved_model"]:
        path = export_saved_model(students["distilled"], os.path.join(export_dir, "student"),
                                  raw_shape=(None, *data.raw_shape), raw_dtype=data.raw_dtype, scale=data.scale,
                                  class_names=data.class_names)
        print(f"SavedModel written to {path}")
    calibration = data.sample(data.train, config["export"]["calibration_examples"], settings["seed"])
    for quantization in config["export"]["tflite"]:
        print(f"TFLite {quantization}: converting and verifying on {len(y_test):,} test examples")
        try:
            report = export_tflite(
                students["distilled"], os.path.join(export_dir, f"student_{quantization}.tflite"), x_test, y_test,
                quantization, representative_data=calibration, min_agreement=config["export"]["min_agreement"],
                num_calibration=config["export"]["calibration_examples"], verbose=int(verbose == 1),
            )
        except ExportVerificationError as error:
            # The trained students are kept and the run still reports; only this file is not written.
            print(f"  refused: {error}")
            refused.append({"quantization": quantization, "reason": str(error),
                            "top1_agreement": error.report.top1_agreement if error.report else None})
            continue
        print(f"  {report}")
        tflite_reports.append(report)
        rows.append({
            "name": f"student TFLite {quantization}", "parameters": students["distilled"].count_params(),
            "bytes": report.file_bytes, "accuracy": report.accuracy, "latency_ms": report.median_latency_ms,
        })

    notes = []
    if config["qat"]["epochs"] and "int8" in config["export"]["tflite"]:
        print(f"Quantization-aware distillation of the int8 student: {config['qat']['epochs']} epochs")
        quantized = quantization_stage.distil_quantized(students["distilled"], teacher, train, calibration,
                                                        config["qat"], verbose=verbose)
        report, refusal = quantization_stage.export_quantized(
            quantized, students["distilled"], export_dir, x_test, y_test, config["export"]["min_agreement"],
            verbose=int(verbose == 1))
        notes.append(quantization_stage.note(config["qat"]))
        if refusal:
            print(f"  refused: {refusal['reason']}")
            refused.append(refusal)
        else:
            print(f"  {report}")
            tflite_reports.append(report)
            rows.append({"name": "student TFLite int8 QAD", "parameters": students["distilled"].count_params(),
                         "bytes": report.file_bytes, "accuracy": report.accuracy,
                         "latency_ms": report.median_latency_ms})

    fidelity = fidelity_on_train_and_test(
        students["distilled"], data.batches(data.train), data.train.y, teacher_train_logits,
        test_logits["teacher"], test_logits["student distilled"], y_test_all,
    )
    _write_report(run_dir, config, data, rows, tflite_reports, histories, teacher, predictions, fidelity, refused,
                  notes)
    results = {
        "rows": rows,
        "fidelity": {split: dataclasses.asdict(report) for split, report in fidelity.items()},
        "tflite": [vars(r) for r in tflite_reports],
        "refused_exports": refused,
        "histories": histories,
        "seconds": time.time() - start,
    }
    accuracies = {row["name"]: row["accuracy"] for row in rows}
    classes = len(data.class_names)
    if "student scratch" in accuracies:
        alone, distilled = accuracies["student scratch"], accuracies["student distilled"]
        results["gain"] = {
            "points": 100 * (distilled - alone),
            "near_chance": near_chance(alone, classes) or near_chance(distilled, classes),
            "summary": describe_gain(alone, distilled, classes),
        }
        print(results["gain"]["summary"])
    results["peak_rss_bytes"] = peak_rss_bytes()
    _write_json(os.path.join(run_dir, RUN_FILE), {"status": "finished", "finished": time.ctime(), **results})
    print(f"Run written to {run_dir} in {results['seconds']:.0f} s (peak memory {results['peak_rss_bytes'] / 2**20:,.0f} MiB); "
          f"report: {os.path.join(run_dir, 'report.md')}")
    return results


def _write_report(run_dir, config, data, rows, tflite_reports, histories, teacher, predictions, fidelity, refused=(),
                  extra_notes=()):
    plots_dir = os.path.join(run_dir, "plots")
    os.makedirs(plots_dir, exist_ok=True)
    plots = {}
    if len(data.validation):
        val_logits = teacher.predict(data.batches(data.validation), verbose=0)
        teacher_val = float(np.mean(val_logits.argmax(-1) == data.validation.y))
        reports.plot_learning_curves(histories, os.path.join(plots_dir, "learning_curves.png"), teacher_val)
        plots["Learning curves (validation split)"] = "plots/learning_curves.png"
    reports.plot_tradeoff(rows, os.path.join(plots_dir, "accuracy_vs_size.png"), "bytes", "file size (bytes, log)",
                          "Test accuracy against file size")
    plots["Accuracy against size"] = "plots/accuracy_vs_size.png"
    reports.plot_tradeoff(rows, os.path.join(plots_dir, "accuracy_vs_latency.png"), "latency_ms",
                          "median latency per image, batch 1 (ms, log)", "Test accuracy against latency")
    plots["Accuracy against latency"] = "plots/accuracy_vs_latency.png"
    classes = len(data.class_names)
    matrix = reports.confusion_matrix(data.test.y, predictions["student distilled"], classes)
    reports.plot_confusion_matrix(matrix, data.class_names, os.path.join(plots_dir, "confusion_matrix.png"),
                                  f"Distilled student, {data.description} test set")
    plots["Confusion matrix of the distilled student"] = "plots/confusion_matrix.png"
    by_name = {row["name"]: row for row in rows}
    notes = []
    if "student scratch" in by_name:
        notes.append(describe_gain(by_name["student scratch"]["accuracy"], by_name["student distilled"]["accuracy"],
                                   classes)
                     + " Same initial weights, data order, views and epochs; one seed, so differences of a few "
                     "tenths of a point are within seed-to-seed noise.")
    notes.append(f"Fidelity of the distilled student to the teacher: on its training images {fidelity['train']}; "
                 f"on the test images {fidelity['test']}. Low agreement on the training images means the student "
                 "does not fit the teacher's function (capacity or optimisation); high there but low on the test "
                 "images means it needs more transfer data (views, augmentation).")
    for export in refused:
        notes.append(f"Not exported: {export['reason']} Lower `export.min_agreement` to accept it, or train longer.")
    notes += list(extra_notes)
    notes.append("Latency: Keras models as one compiled forward pass (tf.function); TFLite models in the "
                 "interpreter, 1 thread.")
    reports.write_report(os.path.join(run_dir, "report.md"), "tfdistill run", config, rows, tflite_reports, plots, notes)


def run_tuning(config, run_dir, families=None, seeds=(0, 1, 2), overwrite=False, verbose=1):
    """Searches a distillation recipe for a resolved config (`tfdistill tune`) into `run_dir`.

    The teacher's logits are cached for `distill.views` views as in a run;
    `tfdistill.tuning.tune_recipe` searches loss family, temperature, weights
    and learning rate on the config's validation split (`data.validation_size`
    held-out training images), with the student alone as a candidate, then
    compares the best recipe with the student alone over `seeds`.

    Writes `config.json`, `run.json` (status, the recipes, the gains and the
    summary), `tuner/` (the search's trials: an interrupted search resumes) and
    `student.keras`, the returned student (the student alone when nothing beat it).

    Returns:
        The `tfdistill.tuning.TuningResult`.
    """
    from tfdistill import tuning

    check_output_dir(run_dir, config, overwrite)
    # The search sets a seed per candidate and per final seed: each gets its own initial weights.
    teacher, data, make_student = load_inputs(config, same_weights=False)
    if not len(data.validation):
        raise config_module.ConfigError(
            "Invalid value for `data.validation_size`: a recipe search chooses on a validation split, "
            "so it must be > 0. Received: 0"
        )
    os.makedirs(run_dir, exist_ok=True)
    start = time.time()
    _write_json(os.path.join(run_dir, "config.json"), config)
    _write_json(os.path.join(run_dir, RUN_FILE), {"status": "running", "started": time.ctime()})
    settings = config["distill"]
    train, _ = teacher_pass(teacher, data, settings, run_dir, verbose)
    test_limit = config["export"]["verify_examples"] if data.streamed else None
    result = tuning.tune_recipe(
        teacher, make_student, train, data.arrays(data.validation), settings["epochs"],
        os.path.join(run_dir, "tuner"), test=data.arrays(data.test, limit=test_limit),
        families=families or tuning.FAMILIES, seeds=tuple(seeds), verbose=verbose,
    )
    if settings["precise_batch_norm"]:
        from tfdistill.batch_norm import recompute_batch_norm_statistics

        recompute_batch_norm_statistics(result.student, data.batches(data.train))
    save_keras(result.student, os.path.join(run_dir, "student.keras"))
    gains = {
        name: None if gain is None else dataclasses.asdict(gain)
        for name, gain in (("validation_gain", result.validation_gain), ("test_gain", result.test_gain))
    }
    _write_json(os.path.join(run_dir, RUN_FILE), {
        "status": "finished", "finished": time.ctime(), "seconds": time.time() - start,
        "best": result.best, "alone": result.alone, "distilled": result.distilled, **gains,
        "summary": result.summary,
    })
    print(result.summary)
    print(f"Student written to {os.path.join(run_dir, 'student.keras')}")
    return result
