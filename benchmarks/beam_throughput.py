"""Throughput of the teacher's pass on Apache Beam against the in-process pass, on one image folder.

Both passes read the same PNG files (`tfdistill.offline.ImageFiles`) and run
the shipped Fashion-MNIST teacher over them in batches of 256 into a
float16 cache: the in-process pass with `write_teacher_logits` (one `.npy`),
the Beam pass with `write_sharded_cache` on the `DirectRunner` in
multi-processing mode with `--workers` worker processes (a sharded cache).
Each measurement runs in a fresh process, the passes taking turns, and
times the whole call: loading the teacher, and for Beam starting and
stopping its workers and loading the teacher in each (the measuring
process's own imports of TensorFlow and Beam are not timed). Printed: the
median examples per second of each pass over `--repeats` runs and their
ratio; Beam's fixed cost (the median time of a pass over one batch) and its
rate besides it; the same Beam pass with every worker a new process that
imports TensorFlow itself (`TFDISTILL_BEAM_FORK_SERVER=0`) instead of a fork
of the fork server (`tfdistill.offline.beam.fork_server`); the peak resident
memory of every Beam worker process and of the fork server (Linux's `VmHWM`,
polled) beside the in-process pass's.

    python benchmarks/beam_throughput.py                   # 200,000 images, 3 runs of each
    python benchmarks/beam_throughput.py --images 3000 --repeats 2 --examples-per-shard 512   # a smoke test

The image folder is Fashion-MNIST's training images, then flipped and
shifted copies of them (`benchmarks/streaming_scale.py` writes it; kept for
the next run); every file is read once before the first pass, so that no
pass pays for reading the disk (a first pass over a folder not read for a
while took twice as long).
"""

import argparse
import glob
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _peak_rss(pid):
    """A process's peak resident memory in bytes (`VmHWM`), or `None` once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:"))
    except (OSError, StopIteration, ValueError):
        return None


def _descendants(pid):
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    parent = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry))
    found, stack = [], [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def _cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().split(b"\0")
    except OSError:
        return []


def _parent(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def _role(pid):
    """`"worker"`, `"fork server"` or `None` (the stand-ins Beam starts, shells, anything else)."""
    argv = _cmdline(pid)
    if not argv or b"python" not in os.path.basename(argv[0]):
        return None
    command = b" ".join(argv)
    if b"beam_fork_server" in command:  # the server, or a worker forked from it (its command line is the server's)
        return "worker" if b"beam_fork_server" in b" ".join(_cmdline(_parent(pid))) else "fork server"
    if b"sdk_worker_main" in command or b"beam_worker()" in command:  # Beam's worker, or tfdistill's started directly
        return "worker"
    return None


def _watch_workers(peaks, stop):
    """Records the peak memory of every Beam worker process (and fork server) under this one until `stop` is set."""
    roles = {}
    while not stop.is_set():
        for pid in _descendants(os.getpid()):
            if roles.get(pid) is None:  # a shell may yet become a worker: looked at again
                roles[pid] = _role(pid)
            rss = _peak_rss(pid) if roles[pid] else None
            if rss is not None:
                peaks[pid] = (roles[pid], max(peaks.get(pid, (None, 0))[1], rss))
        stop.wait(0.2)


def _pass(kind, folder, teacher, workers, batch_size, examples_per_shard, output):
    """One measured pass, in this (fresh) process; returns its figures as a dict."""
    from tfdistill import offline
    from tfdistill.export import load_exported_model
    from tfdistill.offline import beam  # noqa: F401  (imported before the clock starts, as TensorFlow is)

    paths = sorted(glob.glob(os.path.join(folder, "train", "*", "*.png")))
    if kind == "beam_fixed":  # one batch: what Beam's pass costs besides the examples
        paths = paths[:batch_size]
    examples = offline.ImageFiles(paths, (28, 28), channels=1)
    peaks, stop = {}, threading.Event()
    start = time.perf_counter()
    if kind == "in_process":
        model = load_exported_model(teacher, role="teacher")
        offline.write_teacher_logits(model, examples.load_example(), len(examples), os.path.join(output, "logits.npy"),
                                     batch_size=batch_size, verbose=0)
    else:
        watcher = threading.Thread(target=_watch_workers, args=(peaks, stop), daemon=True)
        watcher.start()
        options = ["--runner=DirectRunner", "--direct_running_mode=multi_processing", f"--direct_num_workers={workers}"]
        offline.write_sharded_cache(teacher, examples, os.path.join(output, "cache"), batch_size=batch_size,
                                    examples_per_shard=examples_per_shard, pipeline_options=options, verbose=0)
        stop.set()
        watcher.join()
    seconds = time.perf_counter() - start
    return {"kind": kind, "examples": len(examples), "seconds": seconds, "examples_per_second": len(examples) / seconds,
            "peak_rss_bytes": _peak_rss(os.getpid()),
            "worker_peak_rss_bytes": sorted(rss for role, rss in peaks.values() if role == "worker"),
            "fork_server_peak_rss_bytes": [rss for role, rss in peaks.values() if role == "fork server"]}


def _measure(kind, args):
    """Runs one pass in a fresh process (the same interpreter, this checkout's tfdistill) and returns its figures."""
    output = tempfile.mkdtemp(prefix=f"beam_throughput_{kind}_")
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""), TF_CPP_MIN_LOG_LEVEL="3")
    if kind == "beam_no_fork_server":  # each worker a new process that imports TensorFlow itself
        env["TFDISTILL_BEAM_FORK_SERVER"] = "0"
    command = [sys.executable, os.path.abspath(__file__), "--child", kind, "--output", output,
               "--folder", args.folder, "--teacher", args.teacher, "--workers", str(args.workers),
               "--batch-size", str(args.batch_size), "--examples-per-shard", str(args.examples_per_shard)]
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=REPO)
        if done.returncode:
            raise RuntimeError(f"The {kind} pass failed:\n{done.stderr[-4000:]}")
        return json.loads(done.stdout.strip().splitlines()[-1])
    finally:
        shutil.rmtree(output, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200_000, help="training images in the folder (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each pass; medians are reported (default: %(default)s)")
    parser.add_argument("--workers", type=int, default=2, help="Beam worker processes (default: %(default)s)")
    parser.add_argument("--folder", default=None,
                        help="the image folder, written once and kept (default: /tmp/tfdistill_png_IMAGES)")
    parser.add_argument("--teacher", default=os.path.join(REPO, "saved_models", "fashion_mnist_teacher"))
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--examples-per-shard", type=int, default=10_240)
    parser.add_argument("--child", choices=["in_process", "beam", "beam_fixed", "beam_no_fork_server"],
                        help=argparse.SUPPRESS)
    parser.add_argument("--output", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.folder = args.folder or os.path.join(tempfile.gettempdir(), f"tfdistill_png_{args.images}")

    if args.child:
        result = _pass(args.child, args.folder, args.teacher, args.workers, args.batch_size, args.examples_per_shard,
                       args.output)
        print(json.dumps(result))
        return

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from streaming_scale import write_folder

    start = time.time()
    write_folder(args.folder, args.images)
    print(f"Image folder {args.folder}: {args.images:,} training PNGs ({time.time() - start:.0f} s)")
    start = time.time()
    for path in glob.glob(os.path.join(args.folder, "train", "*", "*.png")):
        with open(path, "rb") as f:  # into the page cache: no pass pays for reading the disk first
            f.read()
    print(f"Read every file once ({time.time() - start:.0f} s)")
    runs = {"in_process": [], "beam": [], "beam_fixed": [], "beam_no_fork_server": []}
    for repeat in range(args.repeats):
        for kind in runs:  # taking turns, so a change in the machine's load reaches both
            result = _measure(kind, args)
            runs[kind].append(result)
            print(f"  run {repeat + 1} {kind:<10} {result['examples_per_second']:>9,.0f} examples/s "
                  f"({result['seconds']:.1f} s)", flush=True)
    median = {kind: statistics.median(r["examples_per_second"] for r in results) for kind, results in runs.items()}
    fixed = statistics.median(r["seconds"] for r in runs["beam_fixed"])
    beam_seconds = statistics.median(r["seconds"] for r in runs["beam"])
    workers = [[round(rss / 2**20) for rss in r["worker_peak_rss_bytes"]] for r in runs["beam"]]
    summary = {
        "images": args.images, "repeats": args.repeats, "workers": args.workers, "batch_size": args.batch_size,
        "examples_per_shard": args.examples_per_shard,
        "in_process_examples_per_second": round(median["in_process"]),
        "beam_examples_per_second": round(median["beam"]),
        "beam_over_in_process": round(median["beam"] / median["in_process"], 3),
        "beam_over_in_process_per_run": [round(b["examples_per_second"] / i["examples_per_second"], 3)
                                         for b, i in zip(runs["beam"], runs["in_process"])],
        "beam_without_fork_server_examples_per_second": round(median["beam_no_fork_server"]),
        "beam_without_fork_server_over_in_process": round(median["beam_no_fork_server"] / median["in_process"], 3),
        # Starting and stopping the workers, loading the teacher in each: a Beam pass over one batch.
        "beam_fixed_seconds": round(fixed, 1),
        "beam_examples_per_second_besides_fixed": round(args.images / max(beam_seconds - fixed, 1e-9)),
        "in_process_peak_rss_mib": round(max(r["peak_rss_bytes"] for r in runs["in_process"]) / 2**20),
        "beam_driver_peak_rss_mib": round(max(r["peak_rss_bytes"] for r in runs["beam"]) / 2**20),
        "beam_worker_peak_rss_mib": workers,  # per run, one figure per worker process
        "beam_fork_server_peak_rss_mib": [[round(rss / 2**20) for rss in r["fork_server_peak_rss_bytes"]]
                                          for r in runs["beam"]],
    }
    print(f"Median of {args.repeats}: in-process {summary['in_process_examples_per_second']:,} examples/s, "
          f"Beam ({args.workers} workers) {summary['beam_examples_per_second']:,} examples/s, ratio "
          f"{summary['beam_over_in_process']:.2f} (target >= 0.9); Beam's fixed cost {fixed:.0f} s (one batch), "
          f"{summary['beam_examples_per_second_besides_fixed']:,} examples/s besides it; peak memory per Beam worker "
          f"{max((rss for run in workers for rss in run), default=0):,} MiB at most, in-process "
          f"{summary['in_process_peak_rss_mib']:,} MiB; without the fork server "
          f"{summary['beam_without_fork_server_examples_per_second']:,} examples/s, ratio "
          f"{summary['beam_without_fork_server_over_in_process']:.2f}")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
