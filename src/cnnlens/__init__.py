"""cnnlens — explain CNN image classifiers and measure how good the explanations are."""
from __future__ import annotations

from .classifier import Classifier
from .errors import AssetMissingError, CnnlensError, ImageReadError
from .explanation import Explanation

__version__ = "0.1.0"

__all__ = [
    "AssetMissingError",
    "Classifier",
    "CnnlensError",
    "Explanation",
    "ImageReadError",
    "__version__",
]
