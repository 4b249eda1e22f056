"""Every method on every torchvision architecture (issue 21, "How it is checked"): each cell runs
— a finite map of the input's size, the oracle agreeing where one applies, the model untouched —
or refuses with a one-line CnnlensError naming the reason; any other exception fails. The
default run holds ``matrix.SUBSET`` (every architecture and every method at least once);
``CNNLENS_FULL_MATRIX=1`` (``make test-architectures``) runs the whole matrix. The cells and
oracles are described in ``matrix.py``; the last full run's table is docs/architectures.md."""
from __future__ import annotations

import os

import pytest

import cnnlens

from .matrix import ARCHS, SUBSET, cells, run_cell

pytestmark = pytest.mark.architectures

pytest.importorskip("torchvision")
pytest.importorskip("captum.attr")
pytest.importorskip("zennit")
pytest.importorskip("pytorch_grad_cam")

FULL = os.environ.get("CNNLENS_FULL_MATRIX", "") not in ("", "0")


@pytest.mark.parametrize(("arch", "method"), cells(FULL), ids=[f"{a}-{m}" for a, m in cells(FULL)])
def test_method_runs_or_refuses_with_a_reason(arch: str, method: str) -> None:
    cell = run_cell(arch, method)
    assert cell.status != "error", f"{method} on {arch}: not a CnnlensError: {cell.reason}"
    if cell.status == "refused":
        assert cell.reason.strip() and "\n" not in cell.reason, f"refusal is not one line: {cell.reason!r}"
    assert not cell.failure, f"{method} on {arch}: {cell.failure}"


def test_the_default_subset_covers_every_architecture_and_method() -> None:
    assert set(SUBSET) == set(ARCHS)
    covered = {m for methods in SUBSET.values() for m in methods}
    assert covered == set(cnnlens.methods())
