"""Subcommands ``demo`` and ``report`` (SPEC §8; issue 15), and the ``--report`` option that the
``explain``/``evaluate``/``ablate``/``represent`` commands share."""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ..errors import CnnlensError

__all__ = ["register", "add_report_argument", "report_from_outputs"]


def add_report_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--report", action="store_true",
                   help="also write OUT/report.html, a self-contained page of the results")


def report_from_outputs(out: str | Path, *, title: str, command: str, model: str, data: str,
                        params: dict[str, Any], seed: int | None) -> Path:
    """Build ``out/report.html`` from what a command wrote into ``out``: its pictures (grids and
    galleries first), its markdown tables, its small JSON records (parameters, image names and
    their class folders) and its rule/text files. The page shows the files; it
    computes nothing."""
    from . import ReportBuilder, write_report

    out = Path(out)
    b = ReportBuilder(out, title=title)
    sec = b.section(command, title, model=model, data=data, params=params, seed=seed)
    pictures = sorted(p for p in out.rglob("*.png") if "figures" not in p.parts)
    firsts = [p for p in pictures if p.stem in ("grid", "curves", "summary") or p.stem.endswith("_grid")]
    for p in firsts:
        sec.image_file(p.relative_to(out).as_posix(), caption=p.relative_to(out).as_posix())
    rest = [p for p in pictures if p not in firsts]
    if rest:
        sec.gallery([(p.relative_to(out).as_posix(), p.stem) for p in rest[:400]],
                    caption=f"{len(rest)} pictures" + (" (first 400 shown)" if len(rest) > 400 else ""))
    for p in sorted(out.rglob("*.md")):
        sec.pre(p.read_text(encoding="utf-8"), caption=p.relative_to(out).as_posix())
    for p in sorted(out.rglob("*.json")):
        if p.name != "manifest.json" and p.stat().st_size <= 50_000:
            sec.pre(p.read_text(encoding="utf-8", errors="replace"), caption=p.relative_to(out).as_posix())
    for p in sorted(list(out.rglob("*.txt")) + list(out.rglob("*.lp"))):
        sec.pre(p.read_text(encoding="utf-8", errors="replace")[:20000], caption=p.relative_to(out).as_posix())
    b.save()
    return write_report(out)


def _cmd_report(args: argparse.Namespace) -> int:
    from . import write_report

    folder = Path(args.results)
    if not folder.is_dir():
        raise CnnlensError(f"results folder {folder} not found")
    path = write_report(folder, args.out)
    print(f"report: {path}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from ..commands import _device
    from .demo import run_demo

    if args.batch_size < 1:
        raise CnnlensError(f"--batch-size must be >= 1, got {args.batch_size}")
    path = run_demo(args.out, quick=args.quick, seed=args.seed, batch_size=args.batch_size,
                    device=_device(args.device), progress=not args.no_progress)
    print(f"report: {path.resolve()}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run every part on the bundled real models and data into an HTML report",
                       description="Run attribution, metrics, Dynamic Ablation, Representative Interpretations and "
                                   "neuro-symbolic rules on the bundled real models and data; write OUT/report.html "
                                   "and the raw results.")
    p.add_argument("--out", default="cnnlens-demo", help="results folder (default: cnnlens-demo)")
    p.add_argument("--quick", action="store_true", help="small budgets: about two minutes on two CPU cores")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--device", default=None, help="cpu, cuda, ... (default: cpu)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_demo)

    r = sub.add_parser("report", help="rebuild report.html from a saved results folder",
                       description="Render RESULTS (a folder with manifest.json, from `cnnlens demo` or a command "
                                   "with --report) into one self-contained HTML page. Computes nothing.")
    r.add_argument("results", help="results folder")
    r.add_argument("--out", default=None, help="page path (default: RESULTS/report.html)")
    r.set_defaults(func=_cmd_report)


