"""The ``cnnlens`` command line (docs/algorithms.md §8, §9).

One module per command in this package, each with a ``register(subparsers)`` function that adds
its parser and sets ``func`` (a callable taking the parsed ``argparse.Namespace`` and returning an
exit code); the options they share are spelled once in :mod:`cnnlens.cli.options`. The command
line only parses options and calls the library; nothing outside this package imports it.

Every failure is one line on stderr and exit code 2: bad input (:class:`CnnlensError`), a file
system error (any ``OSError``: permission, a file where a folder is needed, a full disk …), an
unexpected internal error (named as such), and bad usage — an argparse usage error is one line
``cnnlens CMD: error: MESSAGE (see `cnnlens CMD --help`)``, not a usage block. ``--debug`` shows
the traceback of errors raised while the command runs. ``--out`` is checked
(:func:`cnnlens.cli.options.check_out`) before the command does any work.
"""
from __future__ import annotations

import argparse
import importlib
import sys
import warnings
from collections.abc import Sequence
from contextlib import nullcontext
from typing import NoReturn

from .._cpu import tune_cpu_malloc
from .._progress import quiet_progress
from ..errors import CnnlensError, one_line

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


class _Parser(argparse.ArgumentParser):
    """argparse with one-line usage errors (subcommand parsers are of the same class)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {_one_line(message)} (see `{self.prog} --help`)\n")


def _one_line(text: str) -> str:
    return " ".join(ln.strip() for ln in str(text).splitlines() if ln.strip())


def _message(exc: BaseException) -> str:
    """One line for the user: a cnnlens message as it is; an ``OSError`` as its reason and file."""
    if isinstance(exc, CnnlensError):
        return _one_line(str(exc))
    if isinstance(exc, OSError):
        files = [str(f) for f in (exc.filename, exc.filename2) if f is not None]
        return _one_line((exc.strerror or one_line(exc)) + (f": {' -> '.join(files)}" if files else ""))
    return f"internal error: {one_line(exc)} (run with --debug for the traceback)"


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="cnnlens",
        description="Explain CNN image classifiers and measure how good the explanations are.",
    )
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMAND_MODULES:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return parser


def _write_command_report(args: argparse.Namespace) -> None:
    """``--report``: the same kind of page as ``cnnlens demo`` from the files this run wrote
    (recorded by the command with :func:`cnnlens.cli.options.record_outputs`)."""
    from ..report.outputs import report_from_outputs

    files = getattr(args, "outputs", None)
    if files is None:
        raise RuntimeError(f"cnnlens {args.command} recorded no output files for --report")
    skip = {"func", "debug", "report", "command", "out_kind", "outputs"}
    params = {k: v for k, v in sorted(vars(args).items()) if k not in skip and isinstance(v, (str, int, float, bool, list, type(None)))}
    data = getattr(args, "dataset", None) or getattr(args, "images", None) or getattr(args, "files", None) or "image files"
    path = report_from_outputs(args.out, files=files, title=f"cnnlens {args.command}", command=args.command,
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
    format_before = warnings.formatwarning
    if not args.debug:
        warnings.formatwarning = _one_line_warning
    try:
        if getattr(args, "out_kind", None) and getattr(args, "out", None) is not None:
            from .options import check_out

            check_out(args.out, args.out_kind)  # before any work
        with quiet_progress() if getattr(args, "quiet", False) else nullcontext():
            code = int(args.func(args) or 0)
        if code == 0 and getattr(args, "report", False):
            _write_command_report(args)
        return code
    except KeyboardInterrupt:
        print("cnnlens: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # every failure: one line, exit 2 (CnnlensError, OSError, internal errors)
        if args.debug:
            raise
        print(f"cnnlens {args.command}: error: {_message(exc)}", file=sys.stderr)
        return 2
    finally:
        warnings.formatwarning = format_before


def _one_line_warning(message, category, filename, lineno, line=None) -> str:  # noqa: ANN001
    """CLI warnings as one line (``cnnlens: warning: …``), without Python's file:line and source line."""
    return "cnnlens: warning: " + " ".join(str(message).split()) + "\n"
