"""The table side of FOLD-SE-M (docs/algorithms.md §6.5): columns → kinds (0/1, numeric, categorical),
predicate names, the encoded training table the search runs on (indicator block, ranked numeric
block with its thresholds), and the columns a fitted model's rules read at predict time.

What a cell means (missing, number, value) is :mod:`cnnlens.nesy.cells`; how each kind of column
is treated is the module docstring of :mod:`cnnlens.nesy.fold`, "Columns".
"""
from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from ..errors import CnnlensError
from .cells import categorical_constants, parse_cells
from .rules import EXAMPLE, TARGET

__all__ = ["predicate_name"]

KINDS = ("binary", "numeric", "categorical")
"""Column kinds, as ``FoldSEM.feature_kinds_`` reports them."""


# ------------------------------------------------------------------------------------------
# names
# ------------------------------------------------------------------------------------------

_RESERVED = re.compile(rf"^(?:{TARGET}|{EXAMPLE}|not|ab\d+)$")


def predicate_name(name: Any) -> str:
    """ASP predicate for a column name: ``3`` → ``f3``, ``"Cell size"`` → ``cell_size``;
    reserved names (``target``, ``example``, ``not``, ``abN``) get a trailing ``_``."""
    s = re.sub(r"[^A-Za-z0-9_]", "_", str(name).strip())
    if not s or not s[0].isalpha():
        s = "f" + s if s[:1].isdigit() else "f_" + s
    s = s[0].lower() + s[1:]
    if _RESERVED.match(s):
        s += "_"
    return s


def _unique_predicates(names: Sequence[Any]) -> list[str]:
    out: list[str] = []
    seen: set[str] = set()
    for n in names:
        p = predicate_name(n)
        base, k = p, 2
        while p in seen:
            p = f"{base}_{k}"
            k += 1
        seen.add(p)
        out.append(p)
    return out


def _sort_key(v: Any) -> tuple:
    return (0, v, "") if isinstance(v, int) else (1, 0, str(v))


def _few(values: Sequence[Any], counts: Sequence[int] | None = None, k: int = 5) -> str:
    items = [repr(v) + (f" ×{c}" if counts is not None else "") for v, c in
             zip(values, counts if counts is not None else [None] * len(values))]
    return ", ".join(items[:k]) + (" …" if len(items) > k else "")


# ------------------------------------------------------------------------------------------
# encoded training table
# ------------------------------------------------------------------------------------------

@dataclass
class _Encoded:
    """The training table in the form the learner searches."""

    n: int
    # indicator block (0/1 columns, one-hot categorical values, string values of mixed columns)
    ind: np.ndarray  # (n, m) uint8
    ind_f32: np.ndarray | None  # (n, m) float32 (for the matrix-product counts), or None
    ind_feature: np.ndarray  # (m,) column index of the feature
    ind_value: list  # None for 0/1 columns, the categorical value otherwise
    # numeric block (NaN = no number in that cell: missing or a string of a mixed column)
    num_vals: np.ndarray  # (n, q) float64
    num_rank: np.ndarray  # (n, q) int64, dense rank + global offset; T (= len(thr)) for NaN cells
    num_present: np.ndarray | None  # (n, q) uint8: cell holds a number; None when all do
    num_feature: np.ndarray  # (q,) column index
    thr: np.ndarray  # (T,) thresholds, per numeric column ascending, concatenated
    thr_col: np.ndarray  # (T,) which numeric block column (0..q-1) a threshold belongs to
    seg_start: np.ndarray  # (q,) offset of each column's thresholds in thr
    seg_len: np.ndarray  # (q,)


@dataclass
class _Columns:
    """What :func:`encode` found out about the columns (``FoldSEM``'s fitted attributes)."""

    names: np.ndarray  # column names as str (object array): feature_names_in_
    predicates: list[str]  # feature_predicates_
    kinds: list[str]  # feature_kinds_
    report: list[dict]  # column_report_

    @property
    def notes(self) -> list[str]:
        """fit_report_: one line per column with a note."""
        return [f"column {e['column']!r}: {e['note']}" for e in self.report if "note" in e]


def _refuse_sparse(X: Any) -> None:
    if sp.issparse(X):
        raise CnnlensError(f"sparse input is not supported: FoldSEM reads a dense table (got a "
                           f"{type(X).__name__}); convert it with X.toarray()")


def _refuse_complex(cols: Sequence[np.ndarray], names: Sequence[Any]) -> None:
    for name, col in zip(names, cols):
        if col.dtype.kind == "c":
            raise CnnlensError(f"Complex data not supported: column {str(name)!r} holds complex "
                               "numbers; give the real and imaginary parts as two columns")


def split_columns(X: Any, feature_names: Sequence[Any] | None) -> tuple[list[Any], list[np.ndarray], bool]:
    """Split X into named 1-D columns. Returns (names, columns, is_dataframe)."""
    _refuse_sparse(X)
    if hasattr(X, "columns") and hasattr(X, "to_numpy"):
        names = list(X.columns) if feature_names is None else list(feature_names)
        if len(names) != X.shape[1]:
            raise CnnlensError(f"feature_names has {len(names)} names for {X.shape[1]} columns")
        cols = [X.iloc[:, j].to_numpy() for j in range(X.shape[1])]
        _refuse_complex(cols, names)
        return names, cols, True
    try:
        arr = np.asarray(X)
    except (TypeError, ValueError) as exc:
        raise CnnlensError(f"X is not a table (2-D array or DataFrame): {exc}") from None
    if arr.ndim != 2:
        raise CnnlensError(f"X must be 2-D (examples × features), got shape {arr.shape}")
    names = [f"f{j}" for j in range(arr.shape[1])] if feature_names is None else list(feature_names)
    if len(names) != arr.shape[1]:
        raise CnnlensError(f"feature_names has {len(names)} names for {arr.shape[1]} columns")
    cols = [arr[:, j] for j in range(arr.shape[1])]
    _refuse_complex(cols, names)
    return names, cols, False


def _n_rows(X: Any) -> int | str:
    shape = getattr(X, "shape", None)
    return int(shape[0]) if shape else "?"


def encode(X: Any, feature_names: Sequence[Any] | None,
           categorical: Sequence[Any] | None) -> tuple[_Encoded, _Columns]:
    """The training table ``X`` in the form the search runs on, and the column facts."""
    names, cols, _ = split_columns(X, feature_names)
    if not names:
        raise CnnlensError(f"X has no columns: 0 feature(s) (shape=({_n_rows(X)}, 0)) while a "
                           "minimum of 1 is required.")
    n = len(cols[0])
    if n == 0:
        raise CnnlensError("X has no rows")
    str_names = [str(x) for x in names]
    if len(set(str_names)) != len(str_names):
        seen: set[str] = set()
        dup = sorted({s for s in str_names if s in seen or seen.add(s)})  # type: ignore[func-returns-value]
        raise CnnlensError(f"duplicate column name(s): {', '.join(dup[:10])}")
    forced: set[int] = set()
    index_of = {nm: j for j, nm in enumerate(names)}
    for c in (categorical or ()):
        if isinstance(c, (int, np.integer)) and not isinstance(c, bool) and c not in index_of:
            if not 0 <= int(c) < len(names):
                raise CnnlensError(f"categorical column index {c} is out of range (0..{len(names) - 1})")
            forced.add(int(c))
        elif c in index_of:
            forced.add(index_of[c])
        else:
            raise CnnlensError(
                f"categorical column {c!r} is not a column of X; columns: "
                f"{', '.join(map(str, names[:30]))}{' …' if len(names) > 30 else ''}"
            )
    kinds: list[str] = []
    report: list[dict] = []
    ind_cols: list[np.ndarray] = []
    ind_feature: list[int] = []
    ind_value: list[Any] = []
    num_cols: list[np.ndarray] = []
    num_feature: list[int] = []

    def add_values(j: int, consts: np.ndarray) -> None:
        present = [v for v in consts if v is not None]
        uniq = sorted(set(present), key=_sort_key)
        pos = {v: i for i, v in enumerate(uniq)}
        codes = np.fromiter((-1 if v is None else pos[v] for v in consts), dtype=np.int64, count=n)
        for i, v in enumerate(uniq):
            ind_cols.append((codes == i).astype(np.uint8))
            ind_feature.append(j)
            ind_value.append(v)

    for j, (name, col) in enumerate(zip(names, cols)):
        entry: dict[str, Any] = {"column": str(name)}
        if j in forced:
            consts = categorical_constants(col)
            nmiss = int(sum(v is None for v in consts))
            kinds.append("categorical")
            entry.update(kind="categorical", missing=nmiss, declared=True)
            if nmiss:
                entry["note"] = (f"categorical (declared); {nmiss} empty/NaN cell(s) match no value "
                                 "(f == v false, f != v true)")
            add_values(j, consts)
            report.append(entry)
            continue
        num, miss, other = parse_cells(col)
        nmiss = int(miss.sum())
        is_num = ~np.isnan(num)
        n_num = int(is_num.sum())
        n_other = 0 if other is None else int(sum(v is not None for v in other))
        entry.update(missing=nmiss)
        if n_other:
            vals, cnts = np.unique(np.array([str(v) for v in other if v is not None]), return_counts=True)
            order = np.argsort(-cnts, kind="stable")
            entry["non_numeric"] = {str(vals[i]): int(cnts[i]) for i in order[:20]}
        if n_num and n_other == 0 and np.all((num[is_num] == 0) | (num[is_num] == 1)):
            kinds.append("binary")
            entry["kind"] = "binary"
            if nmiss:
                entry["note"] = (f"0/1 column; {nmiss} empty/NaN cell(s) count as not 1 "
                                 "(f(X) false, not f(X) true)")
            ind_cols.append((num == 1).astype(np.uint8))
            ind_feature.append(j)
            ind_value.append(None)
        elif n_num and n_num >= n_other:
            kinds.append("numeric")
            entry["kind"] = "numeric"
            notes = []
            if nmiss:
                notes.append(f"{nmiss} empty/NaN cell(s) are missing: both f =< t and f > t are false there")
            if n_other:
                notes.append(
                    f"{n_other} non-numeric cell(s) ({_few(list(entry['non_numeric']), list(entry['non_numeric'].values()))}) "
                    "are compared as values (f == v / f != v) and make f =< t and f > t false "
                    "(FOLD-R++ mixed column)")
            if notes:
                entry["note"] = "numeric; " + "; ".join(notes)
            num_cols.append(num)
            num_feature.append(j)
            if n_other:
                add_values(j, other)  # type: ignore[arg-type]
        else:
            kinds.append("categorical")
            entry["kind"] = "categorical"
            consts = categorical_constants(col)
            notes = []
            if n_num:
                notes.append(f"only {n_num} of {n - nmiss} filled cell(s) are numbers, so the numbers "
                             "are values too (declare nothing to change: clean the column)")
            if nmiss:
                notes.append(f"{nmiss} empty/NaN cell(s) match no value (f == v false, f != v true)")
            if notes:
                entry["note"] = "categorical; " + "; ".join(notes)
            add_values(j, consts)
        report.append(entry)
    columns = _Columns(np.array(str_names, dtype=object), _unique_predicates(names), kinds, report)

    ind = np.stack(ind_cols, axis=1) if ind_cols else np.zeros((n, 0), dtype=np.uint8)
    ind = np.ascontiguousarray(ind)
    ind_f32 = ind.astype(np.float32) if ind.size and ind.size <= 200_000_000 else None
    if num_cols:
        vals = np.stack(num_cols, axis=1)
        thr_list, rank_cols, lens = [], [], []
        off = 0
        present = ~np.isnan(vals)
        for q in range(vals.shape[1]):
            col = vals[:, q]
            ok = present[:, q]
            u, inv = np.unique(col[ok], return_inverse=True)
            r = np.full(n, -1, dtype=np.int64)
            r[ok] = inv.reshape(-1) + off
            thr_list.append(u)
            rank_cols.append(r)
            lens.append(len(u))
            off += len(u)
        thr = np.concatenate(thr_list)
        rank = np.stack(rank_cols, axis=1)
        rank[rank < 0] = len(thr)  # NaN sentinel, outside every threshold
        seg_len = np.array(lens, dtype=np.int64)
        seg_start = np.concatenate([[0], np.cumsum(seg_len)[:-1]]).astype(np.int64)
        thr_col = np.repeat(np.arange(len(lens)), seg_len)
        num_present = None if present.all() else present.astype(np.uint8)
    else:
        vals = np.zeros((n, 0))
        rank = np.zeros((n, 0), dtype=np.int64)
        thr = np.zeros(0)
        thr_col = np.zeros(0, dtype=np.int64)
        seg_start = np.zeros(0, dtype=np.int64)
        seg_len = np.zeros(0, dtype=np.int64)
        num_present = None
    enc = _Encoded(n, ind, ind_f32, np.array(ind_feature, dtype=np.int64), ind_value,
                   vals, rank, num_present, np.array(num_feature, dtype=np.int64), thr, thr_col,
                   seg_start, seg_len)
    return enc, columns


# ------------------------------------------------------------------------------------------
# predict time
# ------------------------------------------------------------------------------------------

def prediction_columns(X: Any, feature_names: Sequence[str], predicates: Sequence[str],
                       kinds: Sequence[str], used: set[str], *, one_row: bool = False) -> dict[str, np.ndarray]:
    """Map X's columns to the predicates the rules use (``used``), parsed as in training: 0/1
    columns become booleans (a cell other than 1 — 0, 2, missing — makes ``f(X)`` false, with a
    warning), numeric columns floats (NaN where there is no number; string cells kept for
    ``f == v``), categorical columns their constants (None where missing; unseen values match
    nothing). ``one_row``: a 1-D array is one row (else it is refused, as scikit-learn does)."""
    names = [str(x) for x in feature_names]
    _refuse_sparse(X)
    if hasattr(X, "columns") and hasattr(X, "to_numpy"):
        have = {str(c): j for j, c in enumerate(X.columns)}
        missing = [n for n in names if n not in have]
        if missing:
            raise CnnlensError(
                f"X lacks the column(s) {', '.join(missing[:10])} the model was fitted on"
            )
        cols = [X.iloc[:, have[n]].to_numpy() for n in names]
        nrows = int(X.shape[0])
        _refuse_complex(cols, names)
    else:
        try:
            arr = np.asarray(X)
        except (TypeError, ValueError) as exc:
            raise CnnlensError(f"X is not a table (2-D array or DataFrame): {exc}") from None
        if arr.ndim == 1 and one_row:
            arr = arr.reshape(1, -1)
        elif arr.ndim == 1:
            raise CnnlensError(f"X must be a 2-D table, got a 1-D array of shape {arr.shape}; Reshape "
                               "your data with X.reshape(1, -1) if it is one row")
        if arr.ndim != 2 or arr.shape[1] != len(names):
            got = f"X has {arr.shape[1]} features, but FoldSEM is expecting {len(names)} features " \
                  "as input: " if arr.ndim == 2 else ""
            raise CnnlensError(
                f"{got}X must have {len(names)} columns like the training data, got shape {arr.shape}"
            )
        cols = [arr[:, j] for j in range(arr.shape[1])]
        nrows = int(arr.shape[0])
        _refuse_complex(cols, names)
    out: dict[str, np.ndarray] = {}
    for name, pred, kind, col in zip(names, predicates, kinds, cols):
        if pred not in used:
            continue
        if kind == "categorical":
            out[pred] = categorical_constants(col)
            continue
        num, miss, other = parse_cells(col)
        if kind == "binary":
            odd = ~miss & (num != 0) & (num != 1)
            if odd.any():
                r = int(np.flatnonzero(odd)[0])
                warnings.warn(
                    f"column {name!r} was 0/1 in training but holds {num[r]:g} (row {r}, "
                    f"{int(odd.sum())} such cell(s)); {pred}(X) is false there (only 1 makes it true)",
                    stacklevel=4)
            out[pred] = num == 1
        elif other is None:
            out[pred] = num
        else:
            mixed = np.array(num, dtype=object)
            has = np.array([v is not None for v in other])
            mixed[has] = other[has]
            mixed[miss] = None
            out[pred] = mixed
    if not out:
        out["__n__"] = np.zeros(nrows)
    return out
