"""Draws the site's figures that come from measured tables (not from a run folder).

    python docs/figures/make_figures.py      # writes docs/images/*.png

Every number here is copied from a table on the results pages, which gives
the command that measured it. `docs/images/learning_curves.png` is not made
here: it is the plot a `tfdistill distill` run wrote (see the command line
page).
"""

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from tfdistill.app.reports import plot_tradeoff  # noqa: E402

IMAGES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "images")

# results/main-job.md: what `tfdistill demo` printed (seed 0, 12 epochs).
DEMO = [
    ("teacher", 3_568_788, 94.08),
    ("student alone", 111_690, 89.63),
    ("student distilled", 111_690, 89.81),
    ("student float32 TFLite", 60_968, 89.81),
    ("student int8 TFLite", 21_032, 89.89),
]

# results/gains.md, "Every loss on the same budget": test accuracy, mean and std over 3 seeds, 8 epochs.
LOSS_ZOO = [
    ("teacher", 94.08, 0.00),
    ("student alone", 88.49, 0.18),
    ("KD (T=4, 0.5/0.5)", 88.02, 0.23),
    ("KD (T=1, soft only)", 88.73, 0.07),
    ("soft MSE (T=4, 1 + 10)", 88.45, 0.15),
    ("KD + logit std. (T=2, 0.1 + 9)", 87.88, 0.23),
    ("DKD (T=4, a=1, b=8, warm-up)", 85.67, 0.19),
    ("DIST (T=4, b=g=2)", 88.52, 0.22),
    ("FitNets hint (1 + 100)", 86.66, 0.13),
    ("attention transfer (1 + 1000)", 88.07, 0.15),
    ("keras.distillation.Distiller (KD T=4, 0.5)", 87.85, 0.11),
]


def accuracy_vs_size(path):
    points = [{"name": name, "bytes": size, "accuracy": accuracy / 100} for name, size, accuracy in DEMO]
    plot_tradeoff(points, path, "bytes", "file size (bytes, log)", "Fashion-MNIST: test accuracy against file size")


def loss_zoo(path):
    """A dot per loss with its standard deviation (dots, not bars: the axis does not start at 0)."""
    rows = [row for row in LOSS_ZOO if row[0] != "teacher"][::-1]
    alone = next(mean for name, mean, _ in LOSS_ZOO if name == "student alone")
    fig, axis = plt.subplots(figsize=(8, 5))
    for position, (name, mean, std) in enumerate(rows):
        color = "C1" if name == "student alone" else "C0"
        axis.errorbar(mean, position, xerr=std, fmt="o", color=color, capsize=3)
    axis.set_yticks(range(len(rows)), [name for name, _, _ in rows])
    axis.axvline(alone, color="C1", linestyle="--", linewidth=1, label="student alone")
    axis.set(xlabel="test accuracy (%), mean ± std over 3 seeds", title="Fashion-MNIST, 8 epochs, every loss")
    axis.grid(alpha=0.3, axis="x")
    axis.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    accuracy_vs_size(os.path.join(IMAGES, "accuracy_vs_size.png"))
    loss_zoo(os.path.join(IMAGES, "loss_zoo.png"))
