"""``cnnlens ablate``: Dynamic Ablation from the command line (docs/algorithms.md §4, §8).

Per image it writes the original, the minimal region (Pos-R: only the region kept; Neg-R: the
region blacked out), the attribution heatmap over the image, and the rule text; plus the MAR
summary (``summary.json``, ``mar.csv``) and every mask and cam in ``ablation.npz``.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
from pathlib import Path

from . import options as opt

__all__ = ["register"]

_MIN_SIDE = 112  # small images (MNIST, faces) are enlarged (nearest) in the PNGs for viewing


def _cmd_ablate(args: argparse.Namespace) -> int:
    import numpy as np

    from .._imaging import png_bytes, safe_name, to_rgb_uint8
    from .._io import atomic_write_bytes, atomic_write_text
    from ..ablation.core import dynamic_ablation
    from ..explanation import jet
    from .inputs import check_image_source, classifier_from_args, load_image_source

    check_image_source(args)  # --out is checked by cnnlens.cli.main before the command starts
    clf = classifier_from_args(args)
    data = load_image_source(args, clf)
    images, names = data.images, list(data.names)
    res = dynamic_ablation(clf, images, rule=args.rule, iterations=args.iterations, k=args.k,
                           alpha_step=args.alpha_step, fc=args.fc, superpixels=args.superpixels,
                           seed=args.seed, batch_size=args.batch_size, sequential=args.sequential,
                           progress=not args.quiet)
    out = Path(args.out)
    written: list[Path] = []

    def write(name: str, data: bytes | str) -> None:
        (atomic_write_text if isinstance(data, str) else atomic_write_bytes)(out / name, data)
        written.append(out / name)

    x = images.detach().float().cpu().numpy()
    masks = res.mask.cpu().numpy()
    cams = res.cam.float().cpu().numpy()
    rows = []
    for i, name in enumerate(names):
        stem = f"{i:04d}_{safe_name(Path(str(name)).stem)}"
        keep = masks[i] if res.rule == "pos" else ~masks[i]
        region = x[i] * keep[None].astype(np.float32)
        original = to_rgb_uint8(x[i])
        heat = 0.5 * jet(cams[i]) + 0.5 * original.astype(np.float64) / 255.0
        write(f"{stem}_original.png", png_bytes(original, min_side=_MIN_SIDE))
        write(f"{stem}_region.png", png_bytes(to_rgb_uint8(region), min_side=_MIN_SIDE))
        write(f"{stem}_heatmap.png", png_bytes(np.round(heat * 255).astype(np.uint8), min_side=_MIN_SIDE))
        write(f"{stem}_rule.txt", res.rule_text[i] + "\n")
        rows.append({"index": i, "name": str(name), "class": clf.class_name(int(res.targets[i])),
                     "mar": float(res.mar[i]), "accepted": int(res.accepted[i]),
                     "evaluations": int(res.evaluations[i]), "rule": res.rule_text[i]})
        print(f"{name}: {res.rule_text[i]}")
    summary = {"rule": res.rule, "mar": res.mar_summary(), "params": res.params,
               "model": args.model, "seconds": res.seconds, "images": rows}
    write("summary.json", json.dumps(summary, indent=2))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    write("mar.csv", buf.getvalue())
    npz = io.BytesIO()
    np.savez_compressed(npz, mask=masks, cam=cams, mar=res.mar.cpu().numpy(),
                        targets=res.targets.cpu().numpy(), accepted=res.accepted.cpu().numpy())
    write("ablation.npz", npz.getvalue())
    opt.record_outputs(args, written)
    s = res.mar_summary()
    label = "MAR" if res.rule == "pos" else "Neg-R MAR"
    print(f"{label}: {s['mean']:.2%} ± {s['std']:.2%} over {s['n']} images "
          f"(accepted steps: mean {float(res.accepted.double().mean()):.1f}); wrote {out}")
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
    opt.add_quiet(p)
    opt.add_out(p)
    opt.add_report(p)
    p.set_defaults(func=_cmd_ablate)
