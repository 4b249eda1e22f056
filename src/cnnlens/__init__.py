"""cnnlens — explain CNN image classifiers and measure how good the explanations are.

The public names of docs/algorithms.md §9. The heavier parts (attribution methods, metrics, Dynamic Ablation,
Representative Interpretations) are imported on first use, so ``import cnnlens`` stays light.
"""
from __future__ import annotations

import importlib
from typing import Any

from .classifier import Classifier
from .errors import AssetMissingError, CnnlensError, ImageReadError
from .explanation import Explanation

__version__ = "0.1.0"

# public name -> module that defines it (imported lazily, PEP 562)
_LAZY = {
    "explain": "cnnlens.attribution",
    "methods": "cnnlens.attribution",
    "evaluate": "cnnlens.metrics",
    "compare": "cnnlens.metrics",
    "MetricResult": "cnnlens.metrics",
    "dynamic_ablation": "cnnlens.ablation",
    "AblationResult": "cnnlens.ablation",
    "RepresentativeInterpreter": "cnnlens.representative",
    "Interpretation": "cnnlens.representative",
    "tune_cpu_malloc": "cnnlens._cpu",
}

__all__ = [
    "AssetMissingError",
    "Classifier",
    "CnnlensError",
    "Explanation",
    "ImageReadError",
    "__version__",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'cnnlens' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
