"""The ``cnnlens`` command line (SPEC §8, §9).

Each subcommand lives in a module with a ``register(subparsers)`` function that adds its parser
and sets ``func`` (a callable taking the parsed ``argparse.Namespace`` and returning an exit code).
Bad usage or bad input exits with code 2 and a one-line message (``--debug`` shows the traceback).
"""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

from .errors import CnnlensError

# module path of every subcommand group, in the order ``--help`` lists them
_SUBCOMMAND_MODULES = (
    "cnnlens.commands",  # predict, models, datasets
    "cnnlens.attribution.cli",  # explain
    "cnnlens.metrics.cli",  # evaluate
    "cnnlens.ablation.cli",  # ablate
    "cnnlens.representative.cli",  # represent
    "cnnlens.nesy.fold_cli",  # fold train / predict / explain
    "cnnlens.nesy.cli",  # nesy train / extract / predict / justify / label
    "cnnlens.report.cli",  # report, demo
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cnnlens",
        description="Explain CNN image classifiers and measure how good the explanations are.",
    )
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:  # a part not built yet (development only)
            if exc.name not in (name, name.rsplit(".", 1)[0]):
                raise
            continue
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (CnnlensError, FileNotFoundError, PermissionError, IsADirectoryError) as exc:
        if args.debug:
            raise
        print(f"cnnlens {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("cnnlens: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
