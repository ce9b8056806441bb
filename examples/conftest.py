"""pytest in examples/: the `tasks` package, its doctests and `tests/`; never the scripts.

The scripts do their work when imported, so `--doctest-modules` must not
import them. `examples/` goes first on the path, as `python examples/x.py`
puts it, so the tests import `tasks` as the scripts do.
"""

import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, _HERE)

collect_ignore = sorted(name for name in os.listdir(_HERE) if name.endswith(".py") and name != "conftest.py")
