"""The examples in README.md and in module docstrings run and print what they say."""
import doctest
import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_readme_python_examples_run():
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks, "README has no python example"
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {})


@pytest.mark.parametrize("guide", sorted(p.name for p in (ROOT / "docs").glob("*.md")))
def test_docs_guides_python_examples_run(guide):
    text = (ROOT / "docs" / guide).read_text()
    for block in re.findall(r"```python\n(.*?)```", text, flags=re.S):
        exec(compile(block, f"docs/{guide}", "exec"), {})


@pytest.mark.parametrize(
    "module",
    ["cnnlens.classifier", "cnnlens.fills", "cnnlens.explanation", "cnnlens.data.folder", "cnnlens.zoo",
     "cnnlens.nesy.program", "cnnlens.nesy.fold", "cnnlens.seeding", "cnnlens.metrics.registry",
     "cnnlens.validation", "cnnlens.sanity", "cnnlens.representative.ace", "cnnlens.attribution.ace"],
)
def test_module_docstring_examples(module):
    mod = importlib.import_module(module)
    result = doctest.testmod(mod, optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS)
    assert result.failed == 0
