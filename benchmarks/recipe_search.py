"""Choose the distillation recipe on a validation split carved from the training data.

The last 10,000 images of a fixed shuffle of the 60,000 training images are held
out; the teacher's logits are cached for the other 50,000 (and their views);
every configuration trains the same student from the same initial weights on the
same data order and views. The test set is never looked at.

    python benchmarks/recipe_search.py --epochs 15 --views 4
"""

import argparse
import json
import time

import keras
import numpy as np

from common import shipped_teacher, validation_split
from tfdistill import offline
from tfdistill.app import config, training
from tfdistill.app.model_sources import with_initial_weights
from tfdistill.app.models import build_student

# name: (temperature, hard_weight, soft_weight); soft_weight 0 is the student alone.
CONFIGS = {
    "alone": (4.0, 1.0, 0.0),
    "kd_t4_a0.5": (4.0, 0.5, 0.5),
    "kd_t2_a0.5": (2.0, 0.5, 0.5),
    "kd_t4_a0.9": (4.0, 0.1, 0.9),
    "kd_t1_soft_only": (1.0, 0.0, 1.0),
    "kd_t4_soft_only": (4.0, 0.0, 1.0),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--saved-models", default="saved_models")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--views", type=int, default=4)
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--learning-rate", type=float, default=3e-3)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--out", default=None, help="JSON file for the results")
    args = parser.parse_args()

    (x_train, y_train), (x_val, y_val), _ = validation_split()
    teacher = shipped_teacher(args.saved_models)
    print(f"teacher validation accuracy (seen in its training): {training.accuracy(teacher, x_val, y_val):.2%}")
    logits = offline.compute_teacher_logits(teacher, x_train, views=args.views, verbose=0)
    results = {}
    for seed in args.seeds:
        keras.utils.set_random_seed(seed)
        make_student = with_initial_weights(lambda name: build_student(width=args.width, name=name),
                                            build_student(width=args.width))
        for name in args.configs:
            temperature, hard, soft = CONFIGS[name]
            settings = config.section(
                "distill", epochs=args.epochs, temperature=temperature, hard_weight=hard,
                soft_weight=soft if soft else 0.5, seed=seed, learning_rate=args.learning_rate,
                precise_batch_norm=False,
            )
            start = time.time()
            # A new pipeline per configuration: each sees the same order and views.
            train = offline.offline_dataset(x_train, y_train, logits, seed=seed)
            student, _ = training.train_student(teacher, make_student, train, settings, distil=soft > 0, verbose=0)
            acc = training.accuracy(student, x_val, y_val)
            results.setdefault(name, []).append(acc)
            print(f"seed {seed} {name:<18} val {acc:.2%}  ({time.time() - start:.0f} s)", flush=True)
    print("\nconfig              mean val accuracy")
    for name, accs in results.items():
        print(f"{name:<20}{np.mean(accs):.2%} ± {np.std(accs):.2%} (n={len(accs)})")
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"args": vars(args), "results": results}, f, indent=2)


if __name__ == "__main__":
    main()
