"""The ``cnnlens`` command line (docs/algorithms.md §8, §9).

One module per command in this package, each with a ``register(subparsers)`` function that adds
its parser and sets ``func`` (a callable taking the parsed ``argparse.Namespace`` and returning an
exit code); the options they share are spelled once in :mod:`cnnlens.cli.options`. The command
line only parses options and calls the library; nothing outside this package imports it.
Bad usage or bad input exits with code 2 and a one-line message (``--debug`` shows the traceback).
"""
from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from contextlib import nullcontext

from .._cpu import tune_cpu_malloc
from .._progress import quiet_progress
from ..errors import CnnlensError

__all__ = ["main", "build_parser"]

# module of every command, in the order ``--help`` lists them
_COMMAND_MODULES = (
    "predict",
    "models",
    "datasets",
    "explain",
    "evaluate",
    "ablate",
    "represent",
    "fold",  # fold train / predict / explain
    "nesy",  # nesy train / extract / predict / justify / label
    "demo",
    "report",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cnnlens",
        description="Explain CNN image classifiers and measure how good the explanations are.",
    )
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMAND_MODULES:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return parser


def _write_command_report(args: argparse.Namespace) -> None:
    """``--report``: the same kind of page as ``cnnlens demo`` from the command's output folder."""
    from ..report.outputs import report_from_outputs

    skip = {"func", "debug", "report", "command"}
    params = {k: v for k, v in sorted(vars(args).items()) if k not in skip and isinstance(v, (str, int, float, bool, list, type(None)))}
    data = getattr(args, "dataset", None) or getattr(args, "images", None) or getattr(args, "files", None) or "image files"
    path = report_from_outputs(args.out, title=f"cnnlens {args.command}", command=args.command,
                               model=str(getattr(args, "model", "")), data=str(data), params=params,
                               seed=getattr(args, "seed", None))
    print(f"report: {path}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    tune_cpu_malloc()  # batched CPU forwards without a page fault per activation (BENCHMARKS.md)
    try:
        with quiet_progress() if getattr(args, "quiet", False) else nullcontext():
            code = int(args.func(args) or 0)
        if code == 0 and getattr(args, "report", False):
            _write_command_report(args)
        return code
    except (CnnlensError, FileNotFoundError, PermissionError, IsADirectoryError) as exc:
        if args.debug:
            raise
        print(f"cnnlens {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("cnnlens: interrupted", file=sys.stderr)
        return 130
