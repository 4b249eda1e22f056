"""``cnnlens models``: the bundled pretrained models and whether they are installed (docs/algorithms.md §8)."""
from __future__ import annotations

import argparse

__all__ = ["register", "print_catalog"]


def print_catalog(kind: str) -> int:
    """One line per zoo entry of ``kind`` (``model`` or ``dataset``): name, description, state."""
    from .. import zoo

    entries = [e for e in zoo.catalog() if e.kind == kind]
    width = max(len(e.name) for e in entries)
    for e in entries:
        state = "installed" if e.installed else f"missing — install: {e.install_command}"
        print(f"{e.name:<{width}}  {e.description}  [{state}]")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    m = sub.add_parser("models", help="list the bundled pretrained models and whether they are installed",
                       description="List the bundled pretrained models and whether they are installed.")
    m.set_defaults(func=lambda a: print_catalog("model"))
