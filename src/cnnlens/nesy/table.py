"""Column access for the rule interpreter (:mod:`cnnlens.nesy.program`): a DataFrame, a dict of
columns, a 2-D array (+ column names) or a set of true unary predicates."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import CnnlensError
from .cells import flags

__all__: list[str] = []


class _Table:
    """Column access for the interpreter: DataFrame, dict of columns, 2-D array (+ columns), or a
    set of true unary predicates (closed world: everything else is false / absent)."""

    def __init__(self, data: Any, columns: Sequence[str] | None = None) -> None:
        self.closed_world: set[str] | None = None
        self.cols: dict[str, np.ndarray] = {}
        if isinstance(data, (set, frozenset)):
            self.closed_world = {str(x) for x in data}
            self.n = 1
            return
        if hasattr(data, "columns") and hasattr(data, "to_numpy"):  # pandas DataFrame
            names = [str(c) for c in data.columns] if columns is None else list(columns)
            if len(names) != data.shape[1]:
                raise CnnlensError(f"columns has {len(names)} names for {data.shape[1]} DataFrame columns")
            for name, c in zip(names, data.columns):
                self.cols[name] = data[c].to_numpy()
            self.n = int(data.shape[0])
            return
        if isinstance(data, Mapping):
            lengths = set()
            for k, v in data.items():
                arr = np.asarray(v)
                if arr.ndim == 0:
                    arr = arr.reshape(1)
                self.cols[str(k)] = arr
                lengths.add(len(arr))
            if len(lengths) > 1:
                raise CnnlensError(f"columns have different lengths: {sorted(lengths)}")
            self.n = lengths.pop() if lengths else 1
            return
        arr = np.asarray(data)
        if arr.ndim == 1:
            arr = arr.reshape(1, -1)
        if arr.ndim != 2:
            raise CnnlensError(f"data must be 2-D (examples × columns), got shape {arr.shape}")
        if columns is None:
            columns = [f"f{j}" for j in range(arr.shape[1])]
        if len(columns) != arr.shape[1]:
            raise CnnlensError(f"columns has {len(columns)} names for {arr.shape[1]} data columns")
        for j, name in enumerate(columns):
            self.cols[str(name)] = arr[:, j]
        self.n = int(arr.shape[0])

    def has(self, name: str) -> bool:
        if self.closed_world is not None:
            return name in self.closed_world
        return name in self.cols

    def column(self, name: str) -> np.ndarray:
        if self.closed_world is not None:
            raise CnnlensError(
                f"predicate {name!r} needs a value (categorical or numeric); give the row as a dict "
                "or DataFrame instead of a set of true predicates"
            )
        if name not in self.cols:
            raise CnnlensError(
                f"the rules use feature {name!r} but the data has no such column "
                f"(columns: {', '.join(list(self.cols)[:20])}{' …' if len(self.cols) > 20 else ''})"
            )
        return self.cols[name]

    def unary(self, name: str) -> np.ndarray:
        if self.closed_world is not None:
            return np.full(self.n, name in self.closed_world)
        return flags(name, self.column(name))
