"""The docstring examples of cnnlens.metrics and the usage block of notes/metrics-readme.md run."""
import doctest
import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("module", ["cnnlens.metrics.single_step", "cnnlens.metrics.insertion_game",
                                    "cnnlens.metrics.evaluate", "cnnlens.metrics.compare"])
def test_metrics_docstring_examples(module):
    mod = importlib.import_module(module)
    result = doctest.testmod(mod, optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0


def test_readme_section_runs():
    note = ROOT / "notes" / "metrics-readme.md"
    if not note.exists():  # merged into README.md by the integrator (test_docs runs it there)
        pytest.skip("notes/metrics-readme.md merged into README.md")
    blocks = re.findall(r"```python\n(.*?)```", note.read_text(), flags=re.S)
    assert blocks
    for block in blocks:
        exec(compile(block, str(note), "exec"), {})
