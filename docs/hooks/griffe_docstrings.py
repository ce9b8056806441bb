"""Griffe extension: reads two habits of tfdistill's Google-style docstrings.

- The section title `Example:` (singular). Griffe reads only `Examples:` as
  an examples section; the singular would render as a note, with its `>>>`
  lines as nested quotes.
- Several arguments on one line of `Args:`, `a, b, c: what they are`. Griffe
  reads that as one argument named `a, b, c`, which is not in the signature.
  Each name gets the line (and its continuation lines) of its own.

The docstrings stay as they are in the code; only their rendering changes.
"""

import re

import griffe

_EXAMPLE = re.compile(r"^(\s*)Example:\s*$", re.MULTILINE)
_SECTION = re.compile(r"^\s*[A-Z][\w ]*:\s*$")
_GROUPED = re.compile(r"^(?P<indent>\s+)(?P<names>\*{0,2}\w+(?:, \*{0,2}\w+)+): (?P<text>.*)$")


def _indent(line):
    return len(line) - len(line.lstrip())


def split_grouped_arguments(text):
    """Writes each argument of a grouped `Args:` line on a line of its own.

    Example:
        >>> print(split_grouped_arguments("Args:\\n    a, b: weights.\\n        More.\\n    c: d."))
        Args:
            a: weights.
                More.
            b: weights.
                More.
            c: d.
    """
    lines, out, in_args, index = text.split("\n"), [], False, 0
    while index < len(lines):
        line = lines[index]
        if _SECTION.match(line) and _indent(line) == 0:
            in_args = line.strip() in ("Args:", "Arguments:")
        match = _GROUPED.match(line) if in_args else None
        if not match:
            out.append(line)
            index += 1
            continue
        continuation = []
        index += 1
        while index < len(lines) and lines[index].strip() and _indent(lines[index]) > len(match["indent"]):
            continuation.append(lines[index])
            index += 1
        for name in match["names"].split(", "):
            out += [f"{match['indent']}{name}: {match['text']}", *continuation]
    return "\n".join(out)


class DocstringHabits(griffe.Extension):
    def on_instance(self, *, obj, **kwargs):
        if obj.docstring is not None:
            obj.docstring.value = split_grouped_arguments(_EXAMPLE.sub(r"\1Examples:", obj.docstring.value))
