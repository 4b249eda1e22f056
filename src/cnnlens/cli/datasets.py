"""``cnnlens datasets``: the bundled datasets and whether they are installed (docs/algorithms.md §8)."""
from __future__ import annotations

import argparse

from .models import print_catalog

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:
    d = sub.add_parser("datasets", help="list the bundled datasets and whether they are installed",
                       description="List the bundled datasets and whether they are installed.")
    d.set_defaults(func=lambda a: print_catalog("dataset"))
