"""``cnnlens demo``: every part on the bundled real models and data, into one HTML report
(docs/algorithms.md §8; issue 15). The work is :func:`cnnlens.report.demo.run_demo`."""
from __future__ import annotations

import argparse

from . import options as opt

__all__ = ["register"]


def _cmd_demo(args: argparse.Namespace) -> int:
    from ..report.demo import run_demo
    from .inputs import device

    opt.at_least_one("--batch-size", args.batch_size)
    path = run_demo(args.out, quick=args.quick, seed=args.seed, batch_size=args.batch_size,
                    device=device(args.device), progress=not args.quiet)
    print(f"report: {path.resolve()}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run every part on the bundled real models and data into an HTML report",
                       description="Run attribution, metrics, Dynamic Ablation, Representative Interpretations and "
                                   "neuro-symbolic rules on the bundled real models and data; write OUT/report.html "
                                   "and the raw results.")
    p.add_argument("--quick", action="store_true", help="small budgets: about two minutes on two CPU cores")
    opt.add_device(p)
    opt.add_seed(p)
    opt.add_batch_size(p, 32, "images per forward pass")
    opt.add_quiet(p)
    opt.add_out(p, "results folder (default: cnnlens-demo)", required=False, default="cnnlens-demo")
    p.set_defaults(func=_cmd_demo)
