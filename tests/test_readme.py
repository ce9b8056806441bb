"""The README's quick start runs as written, and the documentation shows the same code."""

import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def quick_start():
    """The first ```python block under the README's "## Quick start" heading."""
    with open(os.path.join(ROOT, "README.md")) as f:
        readme = f.read()
    section = readme.split("\n## Quick start\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.DOTALL)
    assert blocks, "the README's Quick start section has no ```python block"
    return blocks[0]


def test_the_getting_started_page_shows_the_readme_quick_start():
    with open(os.path.join(ROOT, "docs", "getting-started.md")) as f:
        assert quick_start() in f.read()


@pytest.mark.slow
def test_the_readme_quick_start_runs_as_written(tmp_path):
    # Its own process and folder: it writes student_int8.tflite where it runs.
    paths = [ROOT, *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    result = subprocess.run(
        [sys.executable, "-c", quick_start()], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "top-1 agreement" in result.stdout, result.stdout[-3000:]
    assert (tmp_path / "student_int8.tflite").stat().st_size > 0
    assert os.listdir(tmp_path) == ["student_int8.tflite"]


def test_ci_runs_the_readme_test_command():
    with open(os.path.join(ROOT, "README.md")) as f:
        command = next(line for line in f if "python3 -m pytest" in line).strip()
    with open(os.path.join(ROOT, ".ci", "run")) as f:
        ci = [line.strip().replace("$SUDO ", "") for line in f if "python3 -m pytest" in line]
    assert ci == [command]
