"""A distillation run described by a config, written to its own folder (see `tfdistill.app.run_folder`).

The config goes down once, stage by stage, each a function with its inputs
and outputs: the inputs (`inputs.load_inputs`: teacher, data, initial
weights) -> the teacher's pass (`teacher_pass.teacher_pass`) -> the two
students (`training.train_student`) -> their test (`evaluation`) -> the
export (`exports.export_student`) -> with int8 among the exports, the int8
student's quantization-aware distillation and export
(`quantization_stage.distil_and_export`) -> the report (`run_report`).
"""

import dataclasses
import os
import time

import keras

from tfdistill import model_files
from tfdistill.app import evaluation, quantization_stage, run_folder
from tfdistill.app.exports import export_student
from tfdistill.app.inputs import load_inputs
from tfdistill.app.run_report import print_summary, trained_on, write_run_report
from tfdistill.app.teacher_pass import TrainingExamples, teacher_pass
from tfdistill.app.training import train_student
from tfdistill.callbacks import BackupAndRestore
from tfdistill.export.atomic import save_keras


def run_distillation(config, run_dir, overwrite=False, verbose=1):
    """Runs a `RunConfig` into `run_dir` and returns the results dict.

    The teacher's outputs are computed once for `distill.views` augmented
    views, or read from `cache.path` (made by `tfdistill cache`); the student
    alone (the same initial weights and steps, soft weight 0, on the labeled
    examples only) and the distilled student (on the labeled and unlabeled
    ones) train with validation on a held-out labeled split;
    both are tested on the test split; the distilled student is exported and
    verified; with `qat.epochs` > 0 and int8 among `export.tflite`, its
    fake-quantized clone is distilled again and exported as
    `student_int8_qad.tflite`, verified like the others; the comparison is
    printed and a report with plots written.

    Args:
        config: a `tfdistill.app.sections.RunConfig`.
        run_dir: the run's folder (see `tfdistill.app.run_folder`).
        overwrite: replace a finished run in `run_dir`.
        verbose: 1 for progress bars, 2 for a line per epoch, 0 for silence.

    Returns:
        A dict: `rows` (name, parameters, bytes, accuracy, latency_ms and a
        student's `trained_on`; a row per verified `.tflite` file, `"student
        TFLite int8 QAD"` the quantization-aware one), `students` (labeled
        and unlabeled examples, steps per epoch and epochs of each), `tflite`
        (verification reports as dicts), `refused_exports`, `saved_model`, `fidelity` (the
        distilled student's to the teacher on the training and test images),
        `gain`, `histories`, `seconds` and `peak_rss_bytes`.
    """
    resolved = config.to_dict()
    run_folder.check_output_dir(run_dir, resolved, overwrite)
    inputs = load_inputs(config)  # raises before anything is written
    start = time.time()
    run_folder.start(run_dir, resolved)
    data, settings = inputs.data, config.distill
    print(f"Data: {data.description}, {len(data.train):,} training, {len(data.validation):,} validation and "
          f"{len(data.test):,} test examples, {len(data.class_names)} classes"
          + (f" ({len(data.train.labeled):,} training examples labeled)" if len(data.train.labeled) < len(data.train)
             else "") + (" (streamed from disk)" if data.streamed else ""))
    passed = _teacher_pass(config, inputs, run_dir, verbose)
    students, histories, seen = _train_students(run_dir, inputs, passed, settings, verbose)

    results, fidelity, predictions, exports = _test_and_export(config, inputs, passed, students, seen, run_dir, verbose)
    results["histories"] = histories
    write_run_report(run_dir, resolved, data, {**results, "fidelity_reports": fidelity, "export_notes": exports.notes},
                     inputs.teacher, predictions, exports.tflite)
    print_summary({**results, "fidelity_reports": fidelity}, inputs.teacher.count_params())
    results["seconds"] = time.time() - start
    results["peak_rss_bytes"] = run_folder.peak_rss_bytes()
    run_folder.finish(run_dir, results)
    print(f"Run written to {run_dir} in {results['seconds']:.0f} s (peak memory {results['peak_rss_bytes'] / 2**20:,.0f} "
          f"MiB); report: {os.path.join(run_dir, 'report.md')}")
    return results


def _test_and_export(config, inputs, passed, students, seen, run_dir, verbose):
    """Tests the teacher and students, exports the distilled student; `(results, fidelity, predictions, exports)`."""
    data, distilled = inputs.data, students["distilled"]
    x_test, y_test = data.arrays(data.test, limit=config.export.verify_examples)
    models = {"teacher": inputs.teacher, **{f"student {name}": model for name, model in students.items()}}
    rows, test_logits = evaluation.measure_models(models, data, x_test)
    for row in rows[1:]:
        row["trained_on"] = trained_on(seen[row["name"].split()[-1]])
    exports = export_student(distilled, data, config.export, os.path.join(run_dir, "export"), config.distill.seed,
                             x_test, y_test, verbose=int(verbose == 1))
    if quantization_stage.applies(config):
        quantization_stage.distil_and_export(distilled, inputs.teacher, passed, data, config, exports, x_test, y_test,
                                             verbose=verbose)
    rows += [{"name": f"student TFLite {report.quantization}", "parameters": distilled.count_params(),
              "bytes": report.file_bytes, "accuracy": report.accuracy, "latency_ms": report.median_latency_ms}
             for report in exports.tflite]
    fidelity = evaluation.fidelity_on_train_and_test(
        distilled, data.batches(data.train), data.train.y, passed.logits, test_logits["teacher"],
        test_logits["student distilled"], data.test.y,
    )
    results = {
        "rows": rows,
        "students": seen,
        "fidelity": {split: dataclasses.asdict(report) for split, report in fidelity.items()},
        "tflite": [vars(report) for report in exports.tflite],
        "refused_exports": exports.refused,
        "saved_model": exports.saved_model,
    }
    gain = evaluation.gain(rows, len(data.class_names))
    if gain is not None:
        results["gain"] = gain
    predictions = {name: logits.argmax(-1) for name, logits in test_logits.items()}
    return results, fidelity, predictions, exports


def _teacher_pass(config, inputs, run_dir, verbose):
    """The run's teacher pass (`RUN_DIR/cache/` for outputs on disk), or the outputs `cache.path` holds."""
    outputs = inputs.teacher_outputs
    if outputs is None:
        print(f"Caching the teacher's logits for {len(inputs.data.train):,} examples x {config.distill.views} views")
    else:
        print(f"Teacher logits: {config.cache.path} ({outputs.shape[1]:,} examples x {outputs.shape[0]} views, "
              "integrity checked)")
    return teacher_pass(inputs.teacher, _training_examples(inputs.data), config.distill,
                        cache_path=os.path.join(run_dir, "cache", "teacher_logits.npy"),
                        cache_dir=config.teacher.cache_dir, outputs=outputs, verbose=verbose)


def _training_examples(data):
    """The training split as the teacher's pass takes it: arrays in memory, or a function that reads one."""
    if data.train.in_memory:
        return TrainingExamples(data.train.y, x=data.train.x)
    return TrainingExamples(data.train.y, load=data.load_example(data.train))


def _train_students(run_dir, inputs, passed, settings, verbose):
    """The student alone (on the labeled examples) and the distilled one, each reused if a resumed run has it.

    Returns:
        `(students, histories, seen)`: `seen[name]` counts the labeled and
        unlabeled examples the student trained on, its steps per epoch and epochs.
    """
    data = inputs.data
    names = (["scratch"] if settings.train_scratch else []) + ["distilled"]
    validation = data.batches(data.validation) if len(data.validation) else None
    students, histories, seen = {}, {}, {}
    for name in names:
        alone = name == "scratch"
        seen[name] = {"labeled": passed.labeled, "unlabeled": 0 if alone else passed.unlabeled,
                      "steps_per_epoch": passed.steps_per_epoch, "epochs": settings.epochs}
        print(f"Training the {name} student: {settings.epochs} epochs of {passed.steps_per_epoch:,} steps on "
              f"{trained_on(seen[name])} examples")
        batch_norm_split = data.train.subset(data.train.labeled) if alone else data.train
        students[name], histories[name] = _train_or_reuse(
            run_dir, name, inputs, passed.batches(labeled_only=alone), settings, validation,
            data.batches(batch_norm_split), verbose,
        )
    return students, histories, seen


def _train_or_reuse(run_dir, name, inputs, train, settings, validation, batch_norm_data, verbose):
    saved = os.path.join(run_dir, "checkpoints", f"student_{name}.keras")
    metrics = os.path.join(run_dir, "metrics", f"{name}.csv")
    if os.path.exists(saved):  # finished before the run was interrupted
        print(f"Reusing {saved} from the interrupted run")
        return model_files.load_model(saved, role="student"), run_folder.read_history(metrics)
    os.makedirs(os.path.dirname(metrics), exist_ok=True)
    callbacks = [
        keras.callbacks.CSVLogger(metrics, append=True),
        keras.callbacks.TensorBoard(os.path.join(run_dir, "tensorboard", name)),
        BackupAndRestore(os.path.join(run_dir, "checkpoints", f"backup_{name}")),
    ]
    student, _ = train_student(
        inputs.teacher, inputs.make_student, train, settings, distil=name == "distilled", name=f"student_{name}",
        callbacks=callbacks, verbose=verbose, validation_data=validation, batch_norm_data=batch_norm_data,
    )
    save_keras(student, saved)  # atomic: a resumed run never reloads half a file
    return student, run_folder.read_history(metrics)


def run_tuning(config, run_dir, families=None, seeds=(0, 1, 2), overwrite=False, verbose=1):
    """Searches a distillation recipe for a `RunConfig` (`tfdistill tune`) into `run_dir`.

    The teacher's logits are cached for `distill.views` views (or read from
    `cache.path`) as in a run; `tfdistill.tuning.tune_recipe` searches loss
    family, temperature, weights and learning rate on the config's validation
    split (`data.validation_size` held-out training images), with the student
    alone as a candidate, then compares the best recipe with the student alone
    over `seeds`.

    Writes `config.json`, `run.json` (status, the recipes, the gains and the
    summary), `tuner/` (the search's trials: an interrupted search resumes) and
    `student.keras`, the returned student (the student alone when nothing beat it).

    Returns:
        The `tfdistill.tuning.TuningResult`.
    """
    from tfdistill import tuning
    from tfdistill.errors import ConfigError

    resolved = config.to_dict()
    run_folder.check_output_dir(run_dir, resolved, overwrite)
    # The search sets a seed per candidate and per final seed: each gets its own initial weights.
    inputs = load_inputs(config, same_weights=False)
    data, settings = inputs.data, config.distill
    if not len(data.validation):
        raise ConfigError(
            "Invalid value for `data.validation_size`: a recipe search chooses on a validation split, "
            "so it must be > 0. Received: 0"
        )
    start = time.time()
    run_folder.start(run_dir, resolved)
    passed = _teacher_pass(config, inputs, run_dir, verbose)
    test_limit = config.export.verify_examples if data.streamed else None
    result = tuning.tune_recipe(
        inputs.teacher, inputs.make_student, passed.batches(), data.arrays(data.validation), settings.epochs,
        os.path.join(run_dir, "tuner"), test=data.arrays(data.test, limit=test_limit),
        families=families or tuning.FAMILIES, seeds=tuple(seeds), verbose=verbose,
    )
    if settings.precise_batch_norm:
        from tfdistill.batch_norm import recompute_batch_norm_statistics

        recompute_batch_norm_statistics(result.student, data.batches(data.train))
    save_keras(result.student, os.path.join(run_dir, "student.keras"))
    gains = {
        name: None if gain is None else dataclasses.asdict(gain)
        for name, gain in (("validation_gain", result.validation_gain), ("test_gain", result.test_gain))
    }
    run_folder.finish(run_dir, {
        "seconds": time.time() - start, "best": result.best, "alone": result.alone, "distilled": result.distilled,
        **gains, "summary": result.summary,
    })
    print(result.summary)
    print(f"Student written to {os.path.join(run_dir, 'student.keras')}")
    return result
