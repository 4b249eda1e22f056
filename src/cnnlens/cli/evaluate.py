"""``cnnlens evaluate``: methods × metrics on a model and an image set (docs/algorithms.md §3, §8).

Writes into ``--out`` what :func:`cnnlens.metrics.run.run_evaluate` describes:
``results/<method>.json`` as each method finishes (a re-run with the same settings reuses them),
``table.md``, ``table.csv``, ``per_image.csv``, ``table.json`` and ``curves.png``.

Example::

    cnnlens evaluate --model mnist_cnn --dataset mnist --limit 50 \\
        --methods saliency,gradcam,deeplift --protocol gomez --out runs/eval
"""
from __future__ import annotations

import argparse
import warnings
from pathlib import Path
from typing import Any

from .. import validation
from ..errors import CnnlensError
from . import options as opt

__all__ = ["register"]


def _metric_names() -> tuple[list[str], dict[str, str], tuple[str, ...]]:
    """Registered metrics ``evaluate`` computes (those needing a Dynamic Ablation result belong
    to ``ablate``), their aliases, the defaults."""
    from ..metrics.registry import default_metrics, list_metrics, metric_info

    infos = [metric_info(m) for m in list_metrics()]
    names = [i.name for i in infos if "ablation" not in i.needs]
    return names, {a: i.name for i in infos for a in i.aliases}, default_metrics()


def _pick(idx: Any, sharded: bool, data: Any, images: Any, labels: Any, names: list, masks: Any) -> tuple:
    """The images ``idx`` (sorted indices) of the source, with their labels, names and masks; a
    streamed source is subset lazily."""
    if sharded:
        data = data.subset(idx)
        images, names = data.images, list(data.names)
    else:
        images = images[idx]
        names = [names[i] for i in idx.tolist()]
    return data, images, labels[idx], names, (masks[idx] if masks is not None else None)


def _load_masks(path: str) -> Any:
    """Ground-truth masks ``(N, H, W)`` from a ``.npy`` or ``.pt`` file (nonzero = inside)."""
    import numpy as np
    import torch

    p = Path(path)
    if not p.is_file():
        raise CnnlensError(f"--masks {path}: no such file")
    try:
        m = torch.from_numpy(np.load(p)) if p.suffix == ".npy" else torch.load(p, map_location="cpu", weights_only=True)
    except (OSError, ValueError, RuntimeError, EOFError) as exc:
        raise CnnlensError(f"--masks {path}: cannot read it ({type(exc).__name__}); give a .npy or .pt (N, H, W) array") from exc
    if not isinstance(m, torch.Tensor) or m.dim() not in (3, 4):
        raise CnnlensError(f"--masks {path}: expected one (N, H, W) array, got {type(m).__name__}")
    return m


def _cmd_evaluate(args: argparse.Namespace) -> int:
    import torch

    from ..attribution import methods as registered
    from ..metrics.registry import default_metrics, metric_info
    from ..metrics.run import run_evaluate
    from .inputs import check_image_source, classifier_from_args, load_image_source

    if (args.dataset is None) == (args.images is None):
        raise CnnlensError("give exactly one of --dataset NAME or --images DIR")
    check_image_source(args, files=False)
    opt.at_least_one("--batch-size", args.batch_size)
    validation.real("--keep", args.keep, 0, 1, open_low=True, hint="the kept fraction of --mode keep")
    methods = opt.split_list(args.methods) or registered()
    metrics = [metric_info(m) for m in opt.split_list(args.metrics) or default_metrics()]
    for info in metrics:
        if "ablation" in info.needs:
            raise CnnlensError(f"{info.name} is a Dynamic Ablation metric: use `cnnlens ablate`")
    metrics = [info.name for info in metrics]
    method_params = opt.method_params(args.param, methods)
    if args.limit is not None and args.sample is not None:
        raise CnnlensError("give --limit (the first N images) or --sample (a seeded random sample), not both")
    sharded = opt.check_shards(args)
    clf = classifier_from_args(args)
    data = load_image_source(args, clf, files=False, stream=sharded)
    if args.dataset:
        source = {"model": args.model, "dataset": args.dataset, "split": args.split}
    else:
        source = {"model": args.model, "images": str(Path(args.images).resolve())}
    images, labels, names = data.images, data.labels, list(data.names)
    masks = _load_masks(args.masks) if args.masks else None
    if masks is not None:
        if masks.shape[0] < images.shape[0]:
            raise CnnlensError(f"--masks holds {masks.shape[0]} masks for {images.shape[0]} images; "
                               "give one mask per image of the dataset (or of --limit N)")
        masks = masks[: images.shape[0]]  # --limit N: the first N, like the images
        source["masks"] = str(Path(args.masks).resolve())
    elif any("masks" in metric_info(m).needs for m in metrics):
        if not hasattr(data, "class_masks"):
            raise CnnlensError(f"{', '.join(m for m in metrics if 'masks' in metric_info(m).needs)} need ground-truth "
                               "masks: --masks FILE (.npy or .pt, (N, H, W), nonzero = inside)")
        masks = data.class_masks()  # texture_scenes: the concepts that define each scene's class
        source["masks"] = f"{args.dataset}: the concepts that define each image's labelled class"
    if args.limit is not None:
        source["first_n"] = len(names)
    elif args.sample is not None:
        opt.at_least_one("--sample", args.sample)
        g = torch.Generator().manual_seed(args.seed)
        idx = torch.randperm(len(names), generator=g)[: args.sample].sort().values
        data, images, labels, names, masks = _pick(idx, sharded, data, images, labels, names, masks)
        source["sample"] = idx.tolist()
    if masks is not None and not args.masks and not bool(masks.reshape(len(masks), -1).any(1).all()):
        keep = masks.reshape(len(masks), -1).any(1).nonzero().flatten()
        if len(keep) == 0:
            raise CnnlensError("no image has a ground-truth region (texture_scenes 'plain' scenes are defined by "
                               "absent concepts); pick other classes")
        warnings.warn(f"left out {len(masks) - len(keep)} of {len(masks)} images with no ground-truth region "
                      "(texture_scenes 'plain' scenes: defined by absent concepts)", stacklevel=1)
        source["no_region_left_out"] = len(masks) - len(keep)
        data, images, labels, names, masks = _pick(keep, sharded, data, images, labels, names, masks)
    evaluate_params: dict[str, Any] = {"score": args.score, "mode": args.mode, "clip": not args.no_clip,
                                       "deletion_substrate": args.deletion_substrate,
                                       "insertion_substrate": args.insertion_substrate}
    if args.step is not None:
        evaluate_params["step"] = args.step
    if args.mode == "keep":
        evaluate_params["keep"] = args.keep
    if masks is not None:
        evaluate_params["masks"] = masks
    if args.metric_param:
        evaluate_params["metric_params"] = opt.metric_params(args.metric_param, metrics)
    lab = labels if "insertion_game" in metrics and bool((labels >= 0).all()) else None
    out = Path(args.out)  # checked by cnnlens.cli.main before the command starts
    written: list[Path] = []
    kw = dict(methods=methods, metrics=metrics, protocol=args.protocol, seed=args.seed, batch_size=args.batch_size,
              method_params=method_params, evaluate_params=evaluate_params, source=source,
              random_baseline=not args.no_random, progress=not args.quiet)
    if sharded:
        from ..shards import evaluate_sharded

        table, files = evaluate_sharded(clf, images, names, out, shard_size=args.shard_size, labels=lab, **kw,
                                        **opt.engine_kw(args))
        written.extend(files)
    else:
        table = run_evaluate(clf, images, lab, out, outputs=written, **kw)
    opt.record_outputs(args, written)
    print(table.to_markdown(), end="")
    print(f"wrote {out / 'table.md'}, table.csv, per_image.csv, table.json, results/")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    names, aliases, default = _metric_names()
    p = sub.add_parser(
        "evaluate",
        help=f"compare attribution methods with {', '.join(m.upper() for m in default)} (§3)",
        description="Explain the images with each method and score the maps with the faithfulness "
                    "metrics (rows methods + a random-map baseline, columns metrics). Per-method results "
                    "are written to OUT/results/ as they complete; a re-run skips finished methods.",
    )
    opt.add_image_source(p, files=False)
    p.add_argument("--sample", type=int, default=None, metavar="N",
                   help="use a random sample of N images (seeded by --seed, kept in dataset order)")
    opt.add_model_options(p)
    opt.add_device(p)
    p.add_argument("--methods", help="comma-separated method names (default: every registered method)")
    alias_text = ", ".join(f"{a} = {c}" for a, c in aliases.items())
    p.add_argument("--metrics", help=f"comma-separated, from: {', '.join(names)} "
                                     f"(default {','.join(default)}; {alias_text})")
    p.add_argument("--protocol", choices=("rise", "gomez"), default="rise",
                   help="rise: Petsiuk 2018 (pixel cells, 224 steps, Gaussian blur); "
                        "gomez: Gomez et al. 2022 (native map, <= 196 steps, box blur)")
    p.add_argument("--score", choices=("prob", "logit"), default="prob", help="target softmax probability or logit")
    p.add_argument("--step", type=int, default=None, help="cells per step (default: the protocol's)")
    p.add_argument("--deletion-substrate", choices=("black", "blur", "mean"), default="black")
    p.add_argument("--insertion-substrate", choices=("black", "blur", "mean"), default="blur")
    p.add_argument("--mode", choices=("soft", "keep"), default="soft", help="AD/IIC masking mode")
    p.add_argument("--keep", type=float, default=0.2, help="fraction kept by --mode keep")
    p.add_argument("--no-clip", action="store_true", help="AD: signed drop instead of max(0, .)")
    opt.add_param(p)
    p.add_argument("--masks", metavar="FILE", help="ground-truth masks for pointing_game, relevance_mass_accuracy, "
                                                  "relevance_rank_accuracy: .npy or .pt (N, H, W), nonzero = inside, "
                                                  "one per image of the dataset in its order")
    p.add_argument("--metric-param", action="append", metavar="METRIC.KEY=VALUE",
                   help="an option of one metric (repeatable), e.g. max_sensitivity.radius=0.05, "
                        "avg_sensitivity.normalise=true, pointing_game.tolerance=15")
    p.add_argument("--no-random", action="store_true", help="leave out the random-map baseline row")
    opt.add_seed(p, "seed of the methods, tie breaking and random maps")
    opt.add_batch_size(p, 64, "images per forward pass")
    opt.add_shards(p)
    opt.add_quiet(p)
    opt.add_out(p)
    opt.add_report(p)
    p.set_defaults(func=_cmd_evaluate)
