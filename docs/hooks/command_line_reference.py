"""MkDocs hook: the command line's reference, generated from the code at every build.

Two markers in a page's Markdown are replaced (so the reference cannot go
stale):

- `<!-- config-reference -->`: a table per config section of every key in
  `tfdistill.app.config.DEFAULTS`, its default and, from `HELP`, what it is;
- `<!-- help: tfdistill SUBCOMMAND -->`: the output of
  `tfdistill SUBCOMMAND --help` (or `tfdistill --help`), from
  `tfdistill.app.cli.build_parser`.

Importing `tfdistill.app` imports TensorFlow, so this runs only for pages
that hold a marker. Any failure (a removed subcommand, a renamed module)
stops the build.
"""

import contextlib
import io
import json
import os
import re
import sys

# `mkdocs build` from the repository root imports this checkout's tfdistill, installed or not.
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

CONFIG_MARKER = "<!-- config-reference -->"
HELP_MARKER = re.compile(r"<!-- help: tfdistill(?P<command>(?: [a-z-]+)?) -->")
HELP_WIDTH = "88"  # argparse wraps at $COLUMNS


def _cell(text):
    return str(text).replace("|", "\\|").replace("\n", " ")


def config_reference():
    from tfdistill.app.config import DEFAULTS, HELP

    unknown = sorted(set(HELP) - {f"{s}.{k}" for s, keys in DEFAULTS.items() for k in keys})
    if unknown:
        raise ValueError(f"HELP describes keys that DEFAULTS lacks: {unknown}")
    lines = []
    for section, keys in DEFAULTS.items():
        lines += [f"### `{section}`", "", "| key | default | what it is |", "| --- | --- | --- |"]
        for key, default in keys.items():
            path = f"{section}.{key}"
            lines.append(f"| `{path}` | `{_cell(json.dumps(default))}` | {_cell(HELP.get(path, ''))} |")
        lines.append("")
    return "\n".join(lines)


def command_help(command):
    from tfdistill.app.cli import build_parser

    os.environ["COLUMNS"] = HELP_WIDTH
    argv = [*command.split(), "--help"]
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        try:
            build_parser().parse_args(argv)
        except SystemExit as exit_:
            if exit_.code not in (0, None):
                raise RuntimeError(f"`tfdistill {' '.join(argv)}` failed with status {exit_.code}") from None
    return f"```text\n$ tfdistill {' '.join(argv)}\n{output.getvalue().rstrip()}\n```"


def on_page_markdown(markdown, page, config, files):
    if CONFIG_MARKER in markdown:
        markdown = markdown.replace(CONFIG_MARKER, config_reference())
    return HELP_MARKER.sub(lambda match: command_help(match.group("command").strip()), markdown)
