"""CSV tables for FOLD-SE-M (``cnnlens fold``; docs/algorithms.md §6.5–6.6).

CSV rules: UTF-8 (a byte-order mark is dropped); the first line is the header (names must be
distinct); every row must have as many fields as the header. A header cell that is empty (or only
spaces) names its column ``Unnamed: J``, J its 0-based position — the name pandas' ``read_csv``
gives it — with ``.1``, ``.2`` … appended in the rare case another column already has that name;
a warning names every column so named. A label cell must not be empty.
Labels are read as integers only when every label is a plain integer written canonically
(``01`` and ``1`` stay two distinct string labels).
"""
from __future__ import annotations

import csv
import gc
import io
import re
import warnings
from collections import Counter

import numpy as np

from ..errors import CnnlensError
from .fold import FoldSEM

__all__ = ["read_csv", "label_column", "columns", "model_table"]


def read_csv(path: str) -> tuple[list[str], list[list[str]]]:
    """Header and rows of a CSV file (cells stripped; empty cells kept as ``""`` = missing);
    ragged rows and duplicate header names raise with the line number; an empty header name
    becomes ``Unnamed: J`` (module docstring) with a warning. Linear time."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            text = fh.read()
    except UnicodeDecodeError as exc:
        raise CnnlensError(f"{path}: not a UTF-8 text file (byte {exc.start}: {exc.reason})") from None
    except OSError as exc:
        raise CnnlensError(f"{path}: cannot read the CSV file ({exc.strerror or exc})") from None
    if "\x00" in text:
        raise CnnlensError(f"{path}: contains NUL bytes; not a CSV text file")
    # hundreds of thousands of small row lists: CPython's cyclic GC would rescan them again and
    # again (measured ~4x the parse time at 250k rows, growing with the file); they hold only strings
    paused = gc.isenabled()
    gc.disable()
    try:
        return _parse_csv(path, text)
    finally:
        if paused:
            gc.enable()


def _parse_csv(path: str, text: str) -> tuple[list[str], list[list[str]]]:
    reader = csv.reader(io.StringIO(text))
    try:
        rows = list(reader)
    except csv.Error as exc:
        raise CnnlensError(f"{path}: line {reader.line_num}: malformed CSV ({exc})") from None
    # csv.reader counts physical lines; keep the line of each record for messages
    if not rows or not rows[0]:
        raise CnnlensError(f"{path}: the file is empty; expected a header line and data rows")
    header = [h.strip() for h in rows[0]]
    counts = Counter(h for h in header if h)
    dup = sorted(h for h, k in counts.items() if k > 1)
    if dup:
        shown = ", ".join(repr(h) for h in dup[:10]) + (" …" if len(dup) > 10 else "")
        raise CnnlensError(f"{path}: duplicate column name(s) in the header: {shown}")
    unnamed = [j for j, h in enumerate(header) if not h]
    if unnamed:
        _name_unnamed(path, header, unnamed, set(counts))
    data: list[list[str]] = []
    for i, row in enumerate(rows[1:], start=2):
        if not row:  # blank line
            continue
        if len(row) != len(header):
            raise CnnlensError(
                f"{path}: line {i} has {len(row)} fields but the header has {len(header)}; "
                "every row needs one value per column"
            )
        data.append([c.strip() for c in row])
    if not data:
        raise CnnlensError(f"{path}: no data rows after the header")
    return header, data


def _name_unnamed(path: str, header: list[str], unnamed: list[int], taken: set[str]) -> None:
    """Name each empty header cell ``Unnamed: J`` (pandas' name; ``.1``, ``.2`` … appended while
    the name is taken) in place, and say so in one warning."""
    given = []
    for j in unnamed:
        name = base = f"Unnamed: {j}"
        k = 0
        while name in taken:
            k += 1
            name = f"{base}.{k}"
        header[j] = name
        taken.add(name)
        given.append(f"column {j + 1} -> {name!r}")
    shown = ", ".join(given[:10]) + (f" … ({len(given)} in all)" if len(given) > 10 else "")
    first = " (an unnamed first column is often a pandas index: write it with to_csv(index=False))" if unnamed[0] == 0 else ""
    warnings.warn(f"{path}: header cell(s) without a name; named as pandas does: {shown}{first}",
                  UserWarning, stacklevel=4)


_CANONICAL_INT = re.compile(r"(?:0|-?[1-9][0-9]{0,17})\Z")


def label_column(values: list[str], path: str, name: str) -> np.ndarray:
    """Label column: integers when every cell is a canonically written integer (so ``01`` and
    ``1`` are never merged), else strings; an empty label is an error."""
    for i, v in enumerate(values):
        if v == "":
            raise CnnlensError(f"{path}: data row {i}: the label column {name!r} is empty; "
                               "drop unlabelled rows first")
    if all(_CANONICAL_INT.match(v) for v in values):
        return np.array([int(v) for v in values], dtype=np.int64)
    return np.array(values, dtype=object).astype(str)


def columns(header: list[str], rows: list[list[str]]) -> dict[str, list[str]]:
    """Column name → its cells."""
    return {h: [r[j] for r in rows] for j, h in enumerate(header)}


def model_table(model: FoldSEM, header: list[str], rows: list[list[str]], path: str) -> np.ndarray:
    """The feature matrix (object cells) in the column order ``model`` was trained on."""
    import_cols = columns(header, rows)
    names = [str(n) for n in model.feature_names_in_]
    missing = [n for n in names if n not in import_cols]
    if missing:
        raise CnnlensError(f"{path}: lacks the column(s) {', '.join(missing[:10])} the model was trained on")
    X = np.empty((len(rows), len(names)), dtype=object)
    for j, n in enumerate(names):
        X[:, j] = import_cols[n]
    return X
