"""Choose the distillation recipe on a validation split carved from the training data.

The last 10,000 images of a fixed shuffle of the 60,000 training images are held
out; the teacher's logits are cached for the other 50,000 (and their views);
every configuration trains the same student from the same initial weights on the
same data order and views. The test set is never looked at.

    python benchmarks/recipe_search.py --epochs 15 --views 4
"""

import argparse
import dataclasses
import json
import os
import time

import keras
import numpy as np

from tfdistill import demo, offline
from tfdistill.data import load_fashion_mnist, to_float_images
from tfdistill.export import KERAS_COPY, latest_version_dir
from tfdistill.models import build_student

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

    (x, y), _ = load_fashion_mnist()
    order = np.random.default_rng(1234).permutation(len(x))
    train_idx, val_idx = order[:50_000], order[50_000:]
    x_train, y_train = x[train_idx], y[train_idx]
    x_val, y_val = to_float_images(x[val_idx]), y[val_idx]
    teacher = keras.models.load_model(
        os.path.join(latest_version_dir(os.path.join(args.saved_models, demo.TEACHER_NAME)), KERAS_COPY)
    )
    print(f"teacher validation accuracy (seen in its training): {demo.accuracy(teacher, x_val, y_val):.2%}")
    logits = offline.compute_teacher_logits(teacher, x_train, views=args.views, verbose=0)
    results = {}
    for seed in args.seeds:
        train = offline.offline_dataset(x_train, y_train, logits, seed=seed)
        keras.utils.set_random_seed(seed)
        initial = build_student(width=args.width).get_weights()
        for name in args.configs:
            temperature, hard, soft = CONFIGS[name]
            recipe = dataclasses.replace(
                demo.Recipe(), epochs=args.epochs, temperature=temperature, hard_weight=hard,
                soft_weight=soft if soft else 0.5, seed=seed, learning_rate=args.learning_rate,
                student_width=args.width,
            )
            start = time.time()
            student, _ = demo.distill_student(teacher, train, recipe, initial, soft=soft > 0, verbose=0)
            acc = demo.accuracy(student, x_val, y_val)
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
