"""Finding registered extensions: every module of a package, then an entry-point group.

The method registry (:mod:`cnnlens.attribution`) and the metric registry
(:mod:`cnnlens.metrics.registry`) both fill themselves this way, so a new method or metric is one
new module (or one entry point of a third-party package), never an edit of a central list.
"""
from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable
from importlib.metadata import entry_points

__all__ = ["import_all"]


def import_all(package: str, group: str, skip: Iterable[str] = ()) -> None:
    """Import every module of ``package`` whose name does not start with ``_`` and is not in
    ``skip``, then load every entry point of the group ``group``."""
    skipped = set(skip)
    for mod in pkgutil.iter_modules(importlib.import_module(package).__path__):
        if not mod.name.startswith("_") and mod.name not in skipped:
            importlib.import_module(f"{package}.{mod.name}")
    for ep in entry_points(group=group):
        ep.load()
