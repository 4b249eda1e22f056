"""``cnnlens ablate``: Dynamic Ablation from the command line (docs/algorithms.md §4, §8).

Per image it writes the original, the minimal region (Pos-R: only the region kept; Neg-R: the
region blacked out), the attribution heatmap over the image, and the rule text; plus the MAR
summary (``summary.json``, ``mar.csv``) and every mask and cam in ``ablation.npz``.
"""
from __future__ import annotations

import argparse
import io
from pathlib import Path

from . import options as opt

__all__ = ["register"]

def _cmd_ablate(args: argparse.Namespace) -> int:
    from .inputs import check_image_source, classifier_from_args, load_image_source

    check_image_source(args)  # --out is checked by cnnlens.cli.main before the command starts
    if opt.check_shards(args):
        return _sharded(args)
    import numpy as np

    from ..ablation.core import dynamic_ablation
    from ..ablation.files import image_row, write_image_files, write_run_files

    clf = classifier_from_args(args)
    data = load_image_source(args, clf)
    images, names = data.images, list(data.names)
    res = dynamic_ablation(clf, images, rule=args.rule, iterations=args.iterations, k=args.k,
                           alpha_step=args.alpha_step, fc=args.fc, superpixels=args.superpixels,
                           seed=args.seed, batch_size=args.batch_size, sequential=args.sequential,
                           progress=not args.quiet)
    out = Path(args.out)
    x = images.detach().float().cpu().numpy()
    masks = res.mask.cpu().numpy()
    cams = res.cam.float().cpu().numpy()
    written = write_image_files(out, x, masks, cams, res.rule, res.rule_text, names)
    rows = []
    for i, name in enumerate(names):
        rows.append(image_row(i, name, clf.class_name(int(res.targets[i])), float(res.mar[i]), int(res.accepted[i]),
                              int(res.evaluations[i]), res.rule_text[i]))
        print(f"{name}: {res.rule_text[i]}")
    summary = {"rule": res.rule, "mar": res.mar_summary(), "params": res.params,
               "model": args.model, "seconds": res.seconds}
    npz = io.BytesIO()
    np.savez_compressed(npz, mask=masks, cam=cams, mar=res.mar.cpu().numpy(),
                        targets=res.targets.cpu().numpy(), accepted=res.accepted.cpu().numpy())
    written += write_run_files(out, summary, rows, npz.getvalue())
    opt.record_outputs(args, written)
    s = res.mar_summary()
    label = "MAR" if res.rule == "pos" else "Neg-R MAR"
    print(f"{label}: {s['mean']:.2%} ± {s['std']:.2%} over {s['n']} images "
          f"(accepted steps: mean {float(res.accepted.double().mean()):.1f}); wrote {out}")
    return 0


def _sharded(args: argparse.Namespace) -> int:
    from ..shards.ablate import ablate_sharded
    from .inputs import classifier_from_args, load_image_source

    clf = classifier_from_args(args)
    data = load_image_source(args, clf, stream=True)
    out = Path(args.out)
    res, written = ablate_sharded(clf, data.images, list(data.names), out, shard_size=args.shard_size,
                                  rule=args.rule, iterations=args.iterations, k=args.k, alpha_step=args.alpha_step,
                                  fc=args.fc, superpixels=args.superpixels, seed=args.seed,
                                  batch_size=args.batch_size, sequential=args.sequential, model=args.model,
                                  progress=not args.quiet, **opt.engine_kw(args))
    opt.record_outputs(args, written)
    s = res["mar"]
    label = "MAR" if args.rule == "pos" else "Neg-R MAR"
    print(f"{label}: {s['mean']:.2%} ± {s['std']:.2%} over {s['n']} images "
          f"(accepted steps: mean {res['accepted_mean']:.1f}); wrote {out}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ablate", help="Dynamic Ablation: minimal region + if-then rule per image (Pos-R/Neg-R)",
                       description="Rule-guided Dynamic Ablation (§4): per image the original, the minimal "
                                   "region, the heatmap and the rule text; plus the MAR summary.")
    opt.add_image_source(p, images_paths=True)
    opt.add_model_options(p)
    opt.add_device(p)
    p.add_argument("--rule", choices=("pos", "neg"), default="pos", help="Pos-R (default) or Neg-R")
    p.add_argument("--iterations", type=int, default=500, help="proposals per image (default 500)")
    p.add_argument("--k", type=int, default=4, help="dynamic circles (default 4)")
    p.add_argument("--alpha-step", type=float, default=0.2, help="step rate α (default 0.2)")
    p.add_argument("--fc", type=float, default=0.95, help="area shrink factor f_c in (0, 1] (default 0.95)")
    p.add_argument("--superpixels", type=int, default=500, help="SLIC segments; 0 = pixel mode (default 500)")
    p.add_argument("--sequential", action="store_true", help="literal Algorithm 1 (one model call per iteration)")
    opt.add_seed(p)
    opt.add_batch_size(p, 64)
    opt.add_shards(p)
    opt.add_quiet(p)
    opt.add_out(p)
    opt.add_report(p)
    p.set_defaults(func=_cmd_ablate)
