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
from ._cpu import tune_cpu_malloc

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
        importlib.import_module(name).register(sub)
    from .report.cli import add_report_argument

    for command in _REPORTING:  # `--report`: the same kind of page as `cnnlens demo` (SPEC §8)
        add_report_argument(sub.choices[command])
    return parser


# commands whose output folder can become an HTML report with --report
_REPORTING = ("explain", "evaluate", "ablate", "represent")


def _write_command_report(args: argparse.Namespace) -> None:
    from .report.cli import report_from_outputs

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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
