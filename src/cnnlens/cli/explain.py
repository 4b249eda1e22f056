"""``cnnlens explain``: attribution heatmaps for images or a bundled dataset (docs/algorithms.md §2, §8).

Writes into ``--out`` what :func:`cnnlens.attribution.run.run_explain` describes: one overlay
PNG per image and method, ``grid.png``, ``maps.npz`` and ``params.json``.

Example::

    cnnlens explain --model mobilenet_v2_imagenet --dataset photos --limit 2 \\
        --method gradcam,scorecam,lime --out runs/explain
"""
from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import CnnlensError
from . import options as opt

__all__ = ["register"]


def _cmd_explain(args: argparse.Namespace) -> int:
    from ..attribution import methods as all_methods
    from ..attribution.run import run_explain
    from .inputs import check_image_source, classifier_from_args, load_image_source

    check_image_source(args)
    opt.at_least_one("--batch-size", args.batch_size)
    names_m = [m.strip() for m in args.method.split(",") if m.strip()]
    if not names_m:
        raise CnnlensError(f"--method is empty; available: {', '.join(all_methods())}")
    unknown = [m for m in names_m if m not in all_methods()]
    if unknown:
        raise CnnlensError(f"unknown method {unknown[0]!r}; available: {', '.join(all_methods())}")
    twice = sorted({m for m in names_m if names_m.count(m) > 1})
    if twice:
        raise CnnlensError(f"--method names {', '.join(map(repr, twice))} more than once; give each method once")
    shared = {"num_samples": args.num_samples, "n_masks": args.n_masks, "segmenter": args.segmenter}
    params = opt.method_params(args.param, names_m, shared=shared, option="--method")
    out = Path(args.out)  # checked by cnnlens.cli.main before the command starts
    sharded = opt.check_shards(args)
    clf = classifier_from_args(args)
    data = load_image_source(args, clf, stream=sharded)
    if args.dataset:
        source = {"model": args.model, "dataset": args.dataset, "split": data.split}
    else:
        source = {"model": args.model, "images": args.images or args.files}
    images, names = data.images, list(data.names)
    kw = dict(target=args.target, seed=args.seed, batch_size=args.batch_size, layer=args.layer, method_params=params,
              source=source, progress=not args.quiet)
    if sharded:
        from ..shards import explain_sharded

        written = explain_sharded(clf, images, names, names_m, out, shard_size=args.shard_size, **kw, **opt.engine_kw(args))
    else:
        written = run_explain(clf, images, names, names_m, out, **kw)
    opt.record_outputs(args, written)
    print(f"wrote {len(written)} files to {out} ({len(names)} images × {len(names_m)} methods; grid: {out / 'grid.png'})")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "explain", help="attribution heatmaps (saliency, Grad-CAM, Score-CAM, LIME, RISE, …) for images",
        description="Explain a model's decisions on images with one or more attribution methods (§2). "
                    "Writes overlay PNGs, a grid PNG, maps.npz (raw maps) and params.json into --out.",
    )
    opt.add_image_source(p, limit_help="explain only the first N images")
    opt.add_model_options(p)
    opt.add_device(p)
    p.add_argument("--method", default="gradcam",
                   help="comma-separated method names, e.g. gradcam,scorecam,lime (default gradcam)")
    p.add_argument("--target", type=int, default=None, help="class index to explain (default: the predicted class)")
    p.add_argument("--layer", default=None, help="layer for CAM methods, overriding the feature layer for this run")
    p.add_argument("--num-samples", dest="num_samples", type=int, help="LIME samples (default 1000)")
    p.add_argument("--n-masks", dest="n_masks", type=int, help="RISE masks (default 4000)")
    p.add_argument("--segmenter", choices=("quickshift", "slic"), help="LIME superpixels (default quickshift)")
    opt.add_param(p)
    opt.add_seed(p, "seed of stochastic methods")
    opt.add_batch_size(p, 64)
    opt.add_shards(p)
    opt.add_quiet(p)
    opt.add_out(p)
    opt.add_report(p)
    p.set_defaults(func=_cmd_explain)
