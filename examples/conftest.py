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


import pytest  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def corpus_cache(tmp_path_factory):
    """Parsed manual pages are shared by the tests and the example scripts they start (and by
    pytest-xdist's workers: the folder is above each worker's own), never written to `~/.cache`."""
    from tasks.text_corpus import CACHE_ENV

    previous = os.environ.get(CACHE_ENV)
    os.environ[CACHE_ENV] = str(tmp_path_factory.getbasetemp().parent / "corpus-cache")
    yield
    if previous is None:
        del os.environ[CACHE_ENV]
    else:
        os.environ[CACHE_ENV] = previous
