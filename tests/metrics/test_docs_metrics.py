"""The docstring examples of cnnlens.metrics run (the docs/ guides run in tests/test_docs.py)."""
import doctest
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("module", ["cnnlens.metrics.single_step", "cnnlens.metrics.insertion_game",
                                    "cnnlens.metrics.evaluate", "cnnlens.metrics.compare",
                                    "cnnlens.metrics.localisation", "cnnlens.metrics.complexity"])
def test_metrics_docstring_examples(module):
    mod = importlib.import_module(module)
    result = doctest.testmod(mod, optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0
