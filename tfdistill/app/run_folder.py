"""A run's folder: refusing to overwrite a finished run, resuming an unfinished one, its status file.

    RUN_DIR/
      config.json            the resolved config: `tfdistill distill --config RUN_DIR/config.json` repeats it
      run.json               status ("running" / "finished"), timings and results
      metrics/NAME.csv       loss terms and accuracies per epoch (scratch, distilled)
      tensorboard/NAME/      TensorBoard logs
      checkpoints/           backups while training (resume after a crash), final .keras students
      cache/                 a streamed training split's teacher logits (.npy, read memory-mapped); with
                             `cache.path` (`tfdistill cache`) read from there, only the rows of the labeled
                             examples the student alone trains on
      export/                the distilled student: SavedModel (NAME/VERSION) and verified .tflite files
      report.md, plots/      the report and its PNG plots
"""

import csv
import json
import os
import re
import shutil
import sys
import time

from tfdistill.errors import ConfigError

RUN_FILE = "run.json"
CONFIG_FILE = "config.json"


def _status(run_dir):
    with open(os.path.join(run_dir, RUN_FILE)) as f:
        return json.load(f).get("status")


def _same_config(run_dir, config):
    path = os.path.join(run_dir, CONFIG_FILE)
    if not os.path.exists(path):
        return True
    with open(path) as f:
        return json.load(f) == config


def check_output_dir(run_dir, config, overwrite=False):
    """Refuses a folder that holds a finished run (or anything but a run) unless `overwrite`.

    An unfinished run of the same config (a resolved config dict) is resumed:
    finished students are reloaded, an interrupted one continues from its
    last backup.
    """
    if not os.path.exists(run_dir):
        return
    status_path = os.path.join(run_dir, RUN_FILE)
    if overwrite:
        if not os.path.exists(status_path) and os.listdir(run_dir):
            raise ConfigError(
                f"Output folder {run_dir!r} is not empty and holds no tfdistill run; "
                "refusing to delete it even with --overwrite. Choose another folder."
            )
        shutil.rmtree(run_dir)
        return
    if not os.listdir(run_dir):
        return
    if not os.path.exists(status_path):
        raise ConfigError(f"Output folder {run_dir!r} is not empty and holds no tfdistill run. Choose another folder.")
    if _status(run_dir) == "finished":
        raise ConfigError(
            f"Output folder {run_dir!r} already holds a finished run. Choose another folder, "
            "or pass --overwrite to replace it."
        )
    if not _same_config(run_dir, config):
        raise ConfigError(
            f"Output folder {run_dir!r} holds an unfinished run of a different config; "
            "it can only be resumed with the same config (its config.json). Choose another "
            "folder, or pass --overwrite to replace it."
        )


def numbered_run_dir(parent, config):
    """`PARENT/N`: the highest-numbered run if it is unfinished with the same config (resumed), else the next number."""
    numbers = sorted(int(d) for d in os.listdir(parent) if re.fullmatch(r"\d+", d)) if os.path.isdir(parent) else []
    if numbers:
        latest = os.path.join(parent, str(numbers[-1]))
        if (not os.path.exists(os.path.join(latest, RUN_FILE))
                or (_status(latest) != "finished" and _same_config(latest, config))):
            return latest
    return os.path.join(parent, str(numbers[-1] + 1 if numbers else 1))


def write_json(path, data):
    """Writes `data` under a temporary name and renames it: a reader never sees half a file."""
    temporary = f"{path}.tmp"
    with open(temporary, "w") as f:
        json.dump(data, f, indent=2)
    os.replace(temporary, path)


def start(run_dir, config):
    """Creates the folder and writes `config.json` and a "running" `run.json`."""
    os.makedirs(run_dir, exist_ok=True)
    write_json(os.path.join(run_dir, CONFIG_FILE), config)
    write_json(os.path.join(run_dir, RUN_FILE), {"status": "running", "started": time.ctime()})


def finish(run_dir, results):
    write_json(os.path.join(run_dir, RUN_FILE), {"status": "finished", "finished": time.ctime(), **results})


def read_history(path):
    """A `CSVLogger` file as `{metric: [value per epoch]}`."""
    with open(path) as f:
        rows = list(csv.DictReader(f))
    return {key: [float(row[key]) for row in rows] for key in rows[0] if key != "epoch"}


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
