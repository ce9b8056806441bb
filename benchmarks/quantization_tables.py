"""The tables of `benchmarks/quantization.py`'s results: a task per table, mean ± sd over seeds, paired differences.

`python benchmarks/quantization_tables.py [RESULTS.json]` prints them in Markdown.
"""

import json
import os
import sys

import numpy as np

from tfdistill.stats import paired_difference

def _mean_sd(values, scale=100.0, digits=2):
    values = np.asarray(values, float) * scale
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{values.mean():.{digits}f} ± {values.std(ddof=1):.{digits}f}"


def table(name, seeds, methods):
    """One task's Markdown table: mean ± sd over seeds, and each of `methods` − PTQ paired per seed."""
    bits = "" if "4bit" not in name else ", 4-bit weights: 15 levels per channel, TFLite INT4 tensors"
    rows = [f"### {name} ({len(seeds)} seed{'s' * (len(seeds) > 1)}: {', '.join(seeds)}{bits})", "",
            "| model | accuracy (%) | vs float (points) | agreement with float (%) | bytes | latency (ms) | "
            "operators vs PTQ | agreement allowed by the output's rounding (%) |",
            "| --- | ---: | ---: | ---: | ---: | ---: | --- | ---: |"]
    results = list(seeds.values())
    for method in ["float", "PTQ", *methods]:
        runs = [r[method] for r in results]
        gap = [run["accuracy"] - r["float"]["accuracy"] for run, r in zip(runs, results)]
        differences = sorted({run["operators_vs_ptq"] for run in runs if run["operators_vs_ptq"] is not None})
        rows.append(
            f"| {'float32 (the float student)' if method == 'float' else 'int8 ' + method} | "
            f"{_mean_sd([run['accuracy'] for run in runs])} | "
            f"{'—' if method == 'float' else _mean_sd(gap, digits=2)} | "
            f"{'—' if method == 'float' else _mean_sd([run['float_agreement'] for run in runs])} | "
            f"{int(np.mean([run['bytes'] for run in runs])):,} | {_mean_sd([run['latency_ms'] for run in runs], 1, 3)} | "
            f"{', '.join(differences) or '—'} | "
            f"{'—' if method == 'float' else _mean_sd([run['output_grid_agreement'] for run in runs])} |"
        )
    rows.append("")
    for method in methods:
        for key, label in (("accuracy", "accuracy"), ("float_agreement", "agreement with float")):
            difference = paired_difference([100 * (r[method][key] - r["PTQ"][key]) for r in results])
            rows.append(f"- {method} − PTQ, {label}: {difference} points (paired per seed, 95 % t-interval)")
    return rows


INTRODUCTION = """Each table gives one task: the float student, then its int8 TFLite models, each run by LiteRT
(batch 1, 1 thread) on the test set (per token for the language model, padding weighted out). "vs float" is
the int8 model's accuracy minus the float student's, "agreement with float" the share of test examples
(tokens) where their top-1 classes are the same; mean ± standard deviation over seeds (each seed a float
student of its own), and below each table the differences to PTQ paired per seed. Bytes are the `.tflite`
file; the int8 files differ from PTQ's in tensor names and, for `Dense` layers, in one weight scale per
tensor instead of per channel (TensorFlow 2.21's converter rejects per-channel fake-quantized `MatMul`
weights); their int8 tensors are the same. Latency is the median over the test examples. The last column
rounds the float student's own logits to each int8 model's output grid (its scale and zero point) and
measures their agreement with the float student: what rounding the logits alone costs, the most
agreement an int8 model with that output range can reach. QAT and QAD set the logits' range over each
example's two largest logits (`quantize_model(..., output_top_k=2)`), PTQ over every logit."""


def markdown(results, methods):
    """The tables of every task in `results` (the benchmark's JSON), with the commands, as one Markdown page."""
    lines = ["# Int8 students: post-training quantization, quantization-aware training and distillation", "",
             INTRODUCTION, ""]
    for name, task in results.items():
        lines += table(name, task["seeds"], methods)
        lines += ["", "```", task["command"], "```", ""] + ([task["note"], ""] if task.get("note") else [])
        first = next(iter(task["seeds"].values()))
        lines += [f"Operators of every int8 model: `{' '.join(first['PTQ']['operators'])}`.", ""]
    return "\n".join(lines)


METHODS = ["QAT on labels", "QAD from the teacher", "QAD from the float student"]  # as `quantization.METHODS`

if __name__ == "__main__":
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "results_quantization.json")
    with open(path) as f:
        print(markdown(json.load(f), METHODS))
