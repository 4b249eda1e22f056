"""``cnnlens ablate``: Dynamic Ablation from the command line (SPEC §4, §8).

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

import numpy as np

from ..commands import add_model_arguments, classifier_from_args, prepare_images
from ..errors import CnnlensError

__all__ = ["register"]

_MIN_SIDE = 112  # small images (MNIST, faces) are enlarged (nearest) in the PNGs for viewing


def _png(arr: np.ndarray) -> bytes:
    from PIL import Image

    img = Image.fromarray(arr)
    if min(img.size) < _MIN_SIDE:
        f = int(np.ceil(_MIN_SIDE / min(img.size)))
        img = img.resize((img.size[0] * f, img.size[1] * f), Image.NEAREST)
    bio = io.BytesIO()
    img.save(bio, format="PNG")
    return bio.getvalue()


def _rgb(img: np.ndarray) -> np.ndarray:
    """(C, H, W) in [0, 1] → (H, W, 3) uint8."""
    if img.shape[0] == 1:
        img = np.repeat(img, 3, axis=0)
    return np.round(np.clip(img.transpose(1, 2, 0), 0, 1) * 255).astype(np.uint8)


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in str(name))[:60]


def _cmd_ablate(args: argparse.Namespace) -> int:
    from .. import zoo
    from .._io import atomic_write_bytes, atomic_write_text
    from ..explanation import jet
    from .core import dynamic_ablation

    if bool(args.images) == bool(args.dataset):
        raise CnnlensError("give exactly one of --images FILE|DIR ... or --dataset NAME")
    if args.limit is not None and args.limit < 1:
        raise CnnlensError(f"--limit must be >= 1, got {args.limit}")
    clf = classifier_from_args(args)
    if args.dataset:
        data = zoo.load_dataset(args.dataset, **({"split": args.split} if args.split else {}))
        images, names = data.images, list(data.names)
        if args.limit is not None:
            images, names = images[: args.limit], names[: args.limit]
    else:
        if len(args.images) == 1 and Path(args.images[0]).is_dir():
            data = prepare_images(clf, folder=args.images[0], skip_bad=args.skip_bad)
        else:
            data = prepare_images(clf, files=args.images, skip_bad=args.skip_bad)
        for bad in data.skipped:
            print(f"skipped unreadable image {bad}")
        images, names = data.images, list(data.names)
        if args.limit is not None:
            images, names = images[: args.limit], names[: args.limit]
    res = dynamic_ablation(clf, images, rule=args.rule, iterations=args.iterations, k=args.k,
                           alpha_step=args.alpha_step, fc=args.fc, superpixels=args.superpixels,
                           seed=args.seed, batch_size=args.batch_size, sequential=args.sequential,
                           progress=True)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise CnnlensError(f"--out {out} exists and is not a folder")
    x = images.detach().float().cpu().numpy()
    masks = res.mask.cpu().numpy()
    cams = res.cam.float().cpu().numpy()
    rows = []
    for i, name in enumerate(names):
        stem = f"{i:04d}_{_safe(Path(str(name)).stem)}"
        keep = masks[i] if res.rule == "pos" else ~masks[i]
        region = x[i] * keep[None].astype(np.float32)
        heat = 0.5 * jet(cams[i]) + 0.5 * _rgb(x[i]).astype(np.float64) / 255.0
        atomic_write_bytes(out / f"{stem}_original.png", _png(_rgb(x[i])))
        atomic_write_bytes(out / f"{stem}_region.png", _png(_rgb(region)))
        atomic_write_bytes(out / f"{stem}_heatmap.png", _png(np.round(heat * 255).astype(np.uint8)))
        atomic_write_text(out / f"{stem}_rule.txt", res.rule_text[i] + "\n")
        rows.append({"index": i, "name": str(name), "class": clf.class_name(int(res.targets[i])),
                     "mar": float(res.mar[i]), "accepted": int(res.accepted[i]),
                     "evaluations": int(res.evaluations[i]), "rule": res.rule_text[i]})
        print(f"{name}: {res.rule_text[i]}")
    summary = {"rule": res.rule, "mar": res.mar_summary(), "params": res.params,
               "model": args.model, "seconds": res.seconds, "images": rows}
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(out / "mar.csv", buf.getvalue())
    npz = io.BytesIO()
    np.savez_compressed(npz, mask=masks, cam=cams, mar=res.mar.cpu().numpy(),
                        targets=res.targets.cpu().numpy(), accepted=res.accepted.cpu().numpy())
    atomic_write_bytes(out / "ablation.npz", npz.getvalue())
    s = res.mar_summary()
    label = "MAR" if res.rule == "pos" else "Neg-R MAR"
    print(f"{label}: {s['mean']:.2%} ± {s['std']:.2%} over {s['n']} images "
          f"(accepted steps: mean {float(res.accepted.double().mean()):.1f}); wrote {out}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ablate", help="Dynamic Ablation: minimal region + if-then rule per image (Pos-R/Neg-R)",
                       description="Rule-guided Dynamic Ablation (SPEC §4): per image the original, the minimal "
                                   "region, the heatmap and the rule text; plus the MAR summary.")
    add_model_arguments(p)
    p.add_argument("--images", nargs="+", metavar="PATH", help="image files, or one folder of images")
    p.add_argument("--dataset", metavar="NAME", help="a bundled dataset (see `cnnlens datasets`)")
    p.add_argument("--split", help="dataset split (e.g. train/test)")
    p.add_argument("--limit", type=int, default=None, help="use only the first N images")
    p.add_argument("--rule", choices=("pos", "neg"), default="pos", help="Pos-R (default) or Neg-R")
    p.add_argument("--iterations", type=int, default=500, help="proposals per image (default 500)")
    p.add_argument("--k", type=int, default=4, help="dynamic circles (default 4)")
    p.add_argument("--alpha-step", type=float, default=0.2, help="step rate α (default 0.2)")
    p.add_argument("--fc", type=float, default=0.95, help="area shrink factor f_c in (0, 1] (default 0.95)")
    p.add_argument("--superpixels", type=int, default=500, help="SLIC segments; 0 = pixel mode (default 500)")
    p.add_argument("--sequential", action="store_true", help="literal Algorithm 1 (one model call per iteration)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--skip-bad", action="store_true", help="skip unreadable image files instead of failing")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.set_defaults(func=_cmd_ablate)
