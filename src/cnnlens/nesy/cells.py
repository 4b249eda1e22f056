"""Cell semantics: what a table cell means, for :class:`~cnnlens.nesy.FoldSEM` and for the rule
interpreter alike (one implementation, used by both).

* A cell is *missing* when it is None, NaN, pandas.NA / NaT or an empty / blank string
  (:func:`is_missing`); every literal on it is false except the negated ones, as an absent
  ASP fact.
* A cell is a *number* when it is a finite bool / integer / float (numpy ones too) or a string
  that parses as a finite number (:func:`parse_cells`, :func:`as_numbers`). ``inf`` / ``-inf``
  and every other non-missing cell are *values*: constants compared by ``f == v`` / ``f != v``
  (:func:`normalize_constant` gives the constant of a cell, :func:`equals` compares).
* A 0/1 feature used as ``f(X)`` by a rule must hold 0/1 (or booleans) only (:func:`flags`).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..errors import CnnlensError

__all__ = ["is_missing", "normalize_constant", "parse_cells", "as_numbers", "categorical_constants",
           "equals", "flags"]


def normalize_constant(value: Any) -> int | str:
    """Map a class label or categorical value to the constant stored in a rule (int or str).

    Python/numpy integers stay integers (``target(X,3)``), everything else becomes its ``str``.
    """
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value)).lower()
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return int(value)
    return str(value)


def is_missing(v: Any) -> bool:
    """None, NaN, pandas.NA / NaT, an empty or blank string."""
    if v is None:
        return True
    if isinstance(v, (float, np.floating)):
        return bool(np.isnan(v))
    if isinstance(v, str):
        return not v.strip()
    return type(v).__name__ in ("NAType", "NaTType")


def _inf_const(f: float) -> str:
    return "inf" if f > 0 else "-inf"


def parse_cells(col: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Split a column into (numbers: float64 with NaN where the cell is not a number, missing:
    bool mask of empty / NaN / None cells, other: object array with the constant of every
    non-numeric, non-missing cell — a string, or ``'inf'`` / ``'-inf'`` — or None if there is
    none). Strings that parse as finite numbers count as numbers."""
    col = np.asarray(col)
    if col.ndim != 1:
        col = col.reshape(-1)
    if col.dtype.kind in "biuf":
        num = col.astype(np.float64)
        miss = np.isnan(num)
        inf = np.isinf(num)
        other = None
        if inf.any():
            other = np.full(len(num), None, dtype=object)
            other[inf] = np.where(num[inf] > 0, "inf", "-inf")
            num = np.where(inf, np.nan, num)
        return num, miss, other
    n = len(col)
    num = np.full(n, np.nan)
    miss = np.zeros(n, dtype=bool)
    other: np.ndarray | None = None
    for i, v in enumerate(col):
        const: Any
        if isinstance(v, str):
            s = v.strip()
            if not s:
                miss[i] = True
                continue
            try:
                f = float(s)
            except ValueError:
                const = s
            else:
                if f != f:
                    miss[i] = True
                    continue
                if math.isinf(f):
                    const = _inf_const(f)
                else:
                    num[i] = f
                    continue
        elif is_missing(v):
            miss[i] = True
            continue
        elif isinstance(v, (bool, np.bool_)):
            num[i] = float(v)
            continue
        elif isinstance(v, (int, float, np.integer, np.floating)):
            f = float(v)
            if math.isinf(f):
                const = _inf_const(f)
            else:
                num[i] = f
                continue
        else:
            const = normalize_constant(v)
        if other is None:
            other = np.full(n, None, dtype=object)
        other[i] = const
    return num, miss, other


def categorical_constants(col: Any) -> np.ndarray:
    """Constants of a categorical column (None for missing cells)."""
    col = np.asarray(col, dtype=object).reshape(-1)
    return np.array([None if is_missing(v) else normalize_constant(v) for v in col], dtype=object)


def as_numbers(col: np.ndarray) -> np.ndarray:
    """Float view of a column for numeric comparisons: NaN where a cell holds no number
    (missing, ``±inf``, or a string of a mixed column) — both ``=<`` and ``>`` are then false
    there, as in FOLD-R++ and as in ASP, where such a row has no ``name(X,N)`` fact. The numbers
    are those of :func:`parse_cells`."""
    return parse_cells(col)[0]


def equals(col: np.ndarray, value: int | str) -> np.ndarray:
    """``col == value`` for a categorical literal: a numeric column matches the number the
    constant denotes (``3`` or ``'0.5'``, as :func:`normalize_constant` prints numbers); other
    columns compare the constant of every cell; missing cells (None, NaN, empty) match nothing."""
    if col.dtype.kind in "iuf":
        if isinstance(value, int):
            return col == value
        try:
            f = float(value)
        except ValueError:
            return np.zeros(len(col), dtype=bool)
        if normalize_constant(f) != value:  # e.g. '1e3' or '00.5' name other constants
            return np.zeros(len(col), dtype=bool)
        return col == f
    if col.dtype == bool:
        return col == value if isinstance(value, int) else np.array(
            [normalize_constant(v) == value for v in col], dtype=bool)
    return np.fromiter((not is_missing(v) and normalize_constant(v) == value for v in col),
                       dtype=bool, count=len(col))


def flags(name: str, col: np.ndarray) -> np.ndarray:
    """A feature column used as ``name(X)`` (0/1) as booleans; anything but 0/1 (or booleans)
    raises :class:`CnnlensError` naming the feature."""
    if col.dtype == bool:
        return col
    try:
        vals = col.astype(float)
    except (TypeError, ValueError):
        raise CnnlensError(
            f"feature {name!r} is used as {name}(X) (0/1) but its column holds non-numeric values"
        ) from None
    if np.isnan(vals).any():
        raise CnnlensError(f"feature {name!r} has NaN cells; fill or drop them first")
    bad = (vals != 0) & (vals != 1)
    if bad.any():
        raise CnnlensError(
            f"feature {name!r} is used as {name}(X) (0/1) but holds the value {float(vals[bad][0]):g}"
        )
    return vals == 1
