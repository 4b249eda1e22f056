"""Evaluation metrics for explanations (SPEC §3, §9).

- :func:`evaluate` — IAUC, DAUC, IC, DC, AD, IIC (alias AI), insertion game, MAR of one
  explanation, under the ``rise`` or ``gomez`` preset.
- :func:`compare` — methods × metrics on one model and image set, in OVERVIEW's layout, with a
  random-map baseline row.
- :func:`average_drop_increase` — AD and AI/IIC per image (soft or keep masking).
- :func:`insertion_game` — DA's insertion game (accuracy vs. kept fraction).
"""
from __future__ import annotations

from ._common import MetricResult
from .compare import ComparisonTable, compare
from .evaluate import DEFAULT_METRICS, METRICS, PROTOCOLS, evaluate
from .insertion_game import DEFAULT_FRACTIONS, InsertionGameResult, insertion_game
from .single_step import average_drop_increase

__all__ = [
    "MetricResult",
    "evaluate",
    "compare",
    "ComparisonTable",
    "average_drop_increase",
    "insertion_game",
    "InsertionGameResult",
    "DEFAULT_FRACTIONS",
    "DEFAULT_METRICS",
    "METRICS",
    "PROTOCOLS",
]
