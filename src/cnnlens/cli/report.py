"""``cnnlens report``: rebuild ``report.html`` from a saved results folder (docs/algorithms.md §8; issue 15).
The page is built by :mod:`cnnlens.report`; this module only parses and calls."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import CnnlensError
from . import options as opt

__all__ = ["register"]


def _cmd_report(args: argparse.Namespace) -> int:
    from ..report import write_report

    folder = Path(args.results)
    if not folder.is_dir():
        raise CnnlensError(f"results folder {folder} not found")
    if args.out is None:  # the default page: checked like a given --out
        opt.check_out(folder / "report.html", "file", option="the page")
    path = write_report(folder, args.out)
    print(f"report: {path}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    r = sub.add_parser("report", help="rebuild report.html from a saved results folder",
                       description="Render RESULTS (a folder with manifest.json, from `cnnlens demo` or a command "
                                   "with --report) into one self-contained HTML page. Computes nothing.")
    r.add_argument("results", help="results folder")
    opt.add_out(r, "page path (default: RESULTS/report.html)", required=False, metavar="FILE", kind="file")
    r.set_defaults(func=_cmd_report)
