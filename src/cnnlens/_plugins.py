"""Finding registered extensions: every module of a package, then an entry-point group.

The method registry (:mod:`cnnlens.attribution`) and the metric registry
(:mod:`cnnlens.metrics.registry`) both fill themselves with a :class:`Loader`, so a new method or
metric is one new module (or one entry point of a third-party package), never an edit of a
central list.
"""
from __future__ import annotations

import importlib
import pkgutil
import warnings
from collections.abc import Iterable
from importlib.metadata import entry_points

__all__ = ["Loader"]


class Loader:
    """Imports, once, every module of ``package`` whose name does not start with ``_`` and is not
    in ``skip``, then every entry point of ``group``. A failed import leaves it unloaded (the next
    call retries) rather than half-loaded."""

    def __init__(self, package: str, group: str, skip: Iterable[str] = ()) -> None:
        self.package = package
        self.group = group
        self.skip = frozenset(skip)
        self.loaded = False

    def __call__(self) -> None:
        if self.loaded:
            return
        self.loaded = True  # set first: the modules imported below register themselves
        try:
            for mod in pkgutil.iter_modules(importlib.import_module(self.package).__path__):
                if not mod.name.startswith("_") and mod.name not in self.skip:
                    importlib.import_module(f"{self.package}.{mod.name}")
        except BaseException:
            self.loaded = False  # the package's own modules: retried on the next call
            raise
        for ep in entry_points(group=self.group):
            try:
                ep.load()
            except Exception as exc:  # a broken third-party plugin must not take the built-ins down
                warnings.warn(f"cnnlens: entry point {ep.name!r} of {self.group!r} failed to load and is skipped: "
                              f"{type(exc).__name__}: {exc}", RuntimeWarning, stacklevel=2)
