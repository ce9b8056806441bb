"""Recipe search: which loss, temperature, weights and learning rate pay on your task.

`tune_recipe` searches distillation recipes with KerasTuner's Hyperband on a
validation split, always with "student alone" (no teacher signal) among the
candidates, then trains the best recipe and the best student-alone recipe
from the same initial weights and data order over several seeds and reports
the paired gain with its 95 % interval. When nothing beats training alone on
validation it says so and returns the student trained alone.
"""

import dataclasses
from typing import Callable, Optional, Sequence

import keras
import numpy as np

from tfdistill.distiller import Distiller
from tfdistill.losses import DIST, DecoupledKD, KnowledgeDistillation
from tfdistill.stats import PairedDifference, paired_difference

__all__ = ["FAMILIES", "TuningResult", "recipe_compile_kwargs", "tune_recipe"]

# Loss families a search draws from; "alone" trains on the labels only.
FAMILIES = ("alone", "kd", "ls_kd", "dkd", "dist")
TEMPERATURES = (1.0, 2.0, 4.0)
SOFT_SHARES = (0.5, 0.9, 1.0)


def recipe_compile_kwargs(recipe: dict) -> dict:
    """`Distiller.compile` keyword arguments (without the optimizer) of a recipe dict.

    A recipe has `"loss"` (one of `FAMILIES`) and, unless it is `"alone"`,
    `"temperature"` and `"soft_share"`: the soft loss's weight, the hard
    loss's being `1 - soft_share`.

    Example:
        >>> kwargs = recipe_compile_kwargs({"loss": "kd", "temperature": 2.0, "soft_share": 0.9})
        >>> kwargs["soft_loss"].temperature, kwargs["hard_weight"], kwargs["soft_weight"]
        (2.0, 0.1, 0.9)
    """
    family = recipe["loss"]
    if family not in FAMILIES:
        raise ValueError(f"Invalid value for recipe key `loss`: expected one of {list(FAMILIES)}. Received: {family!r}")
    if family == "alone":
        return dict(soft_loss=KnowledgeDistillation(1.0), hard_weight=1.0, soft_weight=0.0)
    temperature = float(recipe["temperature"])
    share = float(recipe["soft_share"])
    soft_loss = {
        "kd": lambda: KnowledgeDistillation(temperature),
        "ls_kd": lambda: KnowledgeDistillation(temperature, standardize=True),
        "dkd": lambda: DecoupledKD(temperature),
        "dist": lambda: DIST(temperature),
    }[family]()
    return dict(soft_loss=soft_loss, hard_weight=round(1.0 - share, 6), soft_weight=share)


@dataclasses.dataclass
class TuningResult:
    """What a recipe search found.

    Attributes:
        best: the best recipe on validation (a dict with `"loss"`,
            `"learning_rate"` and, for a teacher recipe, `"temperature"` and
            `"soft_share"`).
        alone: the best student-alone recipe (its learning rate).
        validation_gain: accuracy points, best - alone, per seed on the
            validation split, with its 95 % interval.
        test_gain: the same on the test split, when one was given.
        distilled: whether the returned student is the distilled one (the
            mean validation gain is > 0); otherwise it is the student alone.
        student: the returned student (trained with the first seed).
        summary: a paragraph saying what was found.
    """

    best: dict
    alone: dict
    validation_gain: Optional[PairedDifference]
    test_gain: Optional[PairedDifference]
    distilled: bool
    student: keras.Model
    summary: str


def _accuracy(model, x, y):
    return float(np.mean(np.argmax(model.predict(x, batch_size=1024, verbose=0), -1) == np.asarray(y).reshape(-1)))


def _train(teacher, student_fn, initial, recipe, train, epochs, steps, validation=None, callbacks=None, verbose=0):
    student = student_fn()
    student.set_weights(initial)
    schedule = keras.optimizers.schedules.CosineDecay(float(recipe["learning_rate"]), epochs * steps)
    distiller = Distiller(teacher, student)
    distiller.compile(keras.optimizers.Adam(schedule), metrics=["accuracy"], **recipe_compile_kwargs(recipe))
    distiller.fit(train, epochs=epochs, validation_data=validation, callbacks=callbacks or [], verbose=verbose)
    return student


def tune_recipe(
    teacher: keras.Model,
    student_fn: Callable[[], keras.Model],
    train,
    validation,
    epochs: int,
    directory: str,
    test=None,
    families: Sequence[str] = FAMILIES,
    seeds: Sequence[int] = (0, 1, 2),
    learning_rates: tuple = (3e-4, 1e-2),
    temperatures: Sequence[float] = TEMPERATURES,
    soft_shares: Sequence[float] = SOFT_SHARES,
    factor: int = 3,
    overwrite: bool = False,
    verbose: int = 1,
) -> TuningResult:
    """Searches distillation recipes on `validation`, then measures the winner against training alone.

    Hyperband (KerasTuner) trains candidates for a few epochs, keeps the best
    third, trains those longer, up to `epochs`; every candidate starts from
    the same initial weights. Candidates: the loss family (`families`,
    always including `"alone"`), the temperature (`temperatures`), the soft
    loss's share of the weight (`soft_shares`) and the learning rate (log-uniform in
    `learning_rates`, Adam with cosine decay). Then the best recipe and the
    best student-alone recipe each train for `epochs` from the same initial
    weights for every seed in `seeds`; their paired difference on
    `validation` (and `test`) is the gain.

    Args:
        teacher: the frozen teacher (logits out); not called for batches that
            carry cached teacher outputs (`tfdistill.offline`).
        student_fn: returns a new, untrained student (logits out).
        train: a `tf.data.Dataset` of training batches, `(x, y)` or offline
            batches, in the same order on every pass that starts afresh.
        validation: `(x, y)` arrays of the validation split (chooses).
        epochs: the full training budget of one recipe.
        directory: folder of the search's trials (a search there resumes
            unless `overwrite`).
        test: optional `(x, y)` arrays, only reported.
        families: loss families to search; `"alone"` is added if missing.
        seeds: seeds of the final comparison (initial weights).
        learning_rates: `(low, high)` of the learning rate.
        temperatures: temperatures to try (default 1, 2, 4).
        soft_shares: soft-loss weights to try, the hard loss weighing
            `1 - share` (default 0.5, 0.9, 1.0).
        factor: Hyperband's reduction factor.
        overwrite: start the search afresh.
        verbose: 1 prints progress; 0 is silent.

    Returns:
        A `TuningResult`.

    Example:
        >>> result = tune_recipe(teacher, build_student, train, (x_val, y_val), epochs=20,  # doctest: +SKIP
        ...                      directory="runs/tune")
        >>> print(result.summary)  # doctest: +SKIP

    Reference:
        Li et al., "Hyperband: A Novel Bandit-Based Approach to
        Hyperparameter Optimization", JMLR 2018.
    """
    import keras_tuner

    families = tuple(dict.fromkeys(("alone",) + tuple(families)))
    for family in families:
        if family not in FAMILIES:
            raise ValueError(f"Invalid value in argument `families`: expected items of {list(FAMILIES)}. Received: {family!r}")
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"Invalid value for argument `epochs`: expected an int >= 1. Received: epochs={epochs!r}")
    if not seeds:
        raise ValueError("Invalid value for argument `seeds`: expected at least one seed. Received: []")
    x_val, y_val = validation
    steps = len(train)
    keras.utils.set_random_seed(int(seeds[0]))
    initial = student_fn().get_weights()

    class _HyperModel(keras_tuner.HyperModel):
        def build(self, hp):
            recipe = {
                "loss": hp.Choice("loss", list(families)),
                "learning_rate": hp.Float("learning_rate", *learning_rates, sampling="log"),
            }
            with hp.conditional_scope("loss", [f for f in families if f != "alone"]):
                if recipe["loss"] != "alone":
                    recipe["temperature"] = hp.Choice("temperature", [float(t) for t in temperatures])
                    recipe["soft_share"] = hp.Choice("soft_share", [float(v) for v in soft_shares])
            student = student_fn()
            student.set_weights(initial)
            schedule = keras.optimizers.schedules.CosineDecay(recipe["learning_rate"], epochs * steps)
            distiller = Distiller(teacher, student)
            distiller.compile(keras.optimizers.Adam(schedule), metrics=["accuracy"], **recipe_compile_kwargs(recipe))
            return distiller

    tuner = keras_tuner.Hyperband(
        _HyperModel(),
        objective="val_accuracy",
        max_epochs=epochs,
        factor=factor,
        seed=int(seeds[0]),
        directory=directory,
        project_name="search",
        overwrite=overwrite,
    )
    if verbose:
        print(f"Recipe search: Hyperband over {list(families)}, up to {epochs} epochs per candidate, in {directory}")
    tuner.search(train, validation_data=(x_val, y_val), verbose=max(0, verbose - 1))

    trials = tuner.oracle.get_best_trials(num_trials=10_000)
    best = dict(trials[0].hyperparameters.values)
    alone_trials = [t for t in trials if t.hyperparameters.values.get("loss") == "alone"]
    alone = dict(alone_trials[0].hyperparameters.values) if alone_trials else {"loss": "alone", "learning_rate": best["learning_rate"]}
    best = {k: v for k, v in best.items() if k in ("loss", "learning_rate", "temperature", "soft_share")}
    alone = {"loss": "alone", "learning_rate": alone["learning_rate"]}

    if best["loss"] == "alone":
        student = _train(teacher, student_fn, initial, alone, train, epochs, steps)
        summary = (
            f"No distillation recipe beat the student alone on the validation split: the best candidate of "
            f"{len(trials)} was the student alone (learning rate {alone['learning_rate']:.2g}). "
            "Returning the student trained alone."
        )
        return TuningResult(best, alone, None, None, False, student, summary)

    val_diffs, test_diffs, students = [], [], {}
    for seed in seeds:
        keras.utils.set_random_seed(int(seed))
        seed_initial = student_fn().get_weights()
        pair = {}
        for name, recipe in (("alone", alone), ("best", best)):
            keras.utils.set_random_seed(int(seed))
            pair[name] = _train(teacher, student_fn, seed_initial, recipe, train, epochs, steps)
        if seed == seeds[0]:
            students = pair
        val_diffs.append(100 * (_accuracy(pair["best"], x_val, y_val) - _accuracy(pair["alone"], x_val, y_val)))
        if test is not None:
            test_diffs.append(100 * (_accuracy(pair["best"], *test) - _accuracy(pair["alone"], *test)))
        if verbose:
            print(f"seed {seed}: best - alone = {val_diffs[-1]:+.2f} points on validation"
                  + (f", {test_diffs[-1]:+.2f} on test" if test_diffs else ""))
    validation_gain = paired_difference(val_diffs)
    test_gain = paired_difference(test_diffs) if test_diffs else None
    distilled = validation_gain.mean > 0
    described = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in best.items())
    summary = f"Best recipe on validation: {described}. Gain over the student alone (learning rate " \
              f"{alone['learning_rate']:.2g}), {len(seeds)} seed(s), validation: {validation_gain} points"
    if test_gain is not None:
        summary += f"; test: {test_gain} points"
    summary += ". "
    if not distilled:
        summary += "It does not beat training alone on validation: returning the student trained alone."
    elif not validation_gain.beyond_noise:
        summary += "Returning the distilled student; its interval includes zero, so the gain is within seed noise."
    else:
        summary += "Returning the distilled student."
    return TuningResult(best, alone, validation_gain, test_gain, distilled,
                        students["best" if distilled else "alone"], summary)
