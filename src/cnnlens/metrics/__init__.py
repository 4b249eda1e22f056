"""Evaluation metrics for explanations (SPEC §3, §9).

- :func:`average_drop_increase` — AD and AI/IIC per image (soft or keep masking).
- :func:`insertion_game` — DA's insertion game (accuracy vs. kept fraction).
"""
from __future__ import annotations

from ._common import MetricResult
from .insertion_game import DEFAULT_FRACTIONS, InsertionGameResult, insertion_game
from .single_step import average_drop_increase

__all__ = [
    "MetricResult",
    "average_drop_increase",
    "insertion_game",
    "InsertionGameResult",
    "DEFAULT_FRACTIONS",
]
