"""Evaluation metrics for explanations (docs/algorithms.md §3, §9).

- :func:`evaluate` — the registered metrics of one explanation (IAUC, DAUC, IC, DC, AD, IIC
  (alias AI), insertion game, MAR built in), under the ``rise`` or ``gomez`` preset.
- :func:`compare` — methods × metrics on one model and image set, in OVERVIEW's layout, with a
  random-map baseline row.
- :func:`register`, :func:`list_metrics`, :func:`metric_info` — the metric registry: a new
  metric is one decorated function ``fn(ctx: MetricContext) -> MetricResult`` (docs/extending.md).
- :func:`average_drop_increase` — AD and AI/IIC per image (soft or keep masking).
- :func:`insertion_game` — DA's insertion game (accuracy vs. kept fraction).
"""
from __future__ import annotations

from typing import Any

from ._common import MetricResult
from .compare import ComparisonTable, compare
from .context import MetricContext
from .evaluate import PROTOCOLS, evaluate
from .insertion_game import DEFAULT_FRACTIONS, InsertionGameResult, insertion_game
from .registry import MetricInfo, default_metrics, list_metrics, metric_info, register, unregister
from .single_step import average_drop_increase

__all__ = [
    "MetricResult",
    "MetricContext",
    "MetricInfo",
    "evaluate",
    "compare",
    "register",
    "unregister",
    "list_metrics",
    "metric_info",
    "default_metrics",
    "ComparisonTable",
    "average_drop_increase",
    "insertion_game",
    "InsertionGameResult",
    "DEFAULT_FRACTIONS",
    "PROTOCOLS",
]


def __getattr__(name: str) -> Any:
    """``METRICS`` / ``DEFAULT_METRICS``: the registry's names at the time of asking."""
    if name == "METRICS":
        return tuple(list_metrics())
    if name == "DEFAULT_METRICS":
        return default_metrics()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
