"""Writes the matrix's outcome table when ``CNNLENS_MATRIX_REPORT`` names a file
(``make test-architectures MATRIX_REPORT=docs/architectures.md``)."""
from __future__ import annotations

import os
import time

_START = time.perf_counter()


def pytest_sessionstart(session) -> None:
    global _START
    _START = time.perf_counter()


def pytest_sessionfinish(session, exitstatus) -> None:
    path = os.environ.get("CNNLENS_MATRIX_REPORT")
    if not path:
        return
    from .matrix import RESULTS, report

    if RESULTS:
        with open(path, "w", encoding="utf-8") as f:
            f.write(report(time.perf_counter() - _START))
