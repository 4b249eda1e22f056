"""``cnnlens predict``: top-k classes of images with a bundled or user model (docs/algorithms.md §8)."""
from __future__ import annotations

import argparse

from . import options as opt

__all__ = ["register"]


def _cmd_predict(args: argparse.Namespace) -> int:
    import torch

    from .._progress import bar
    from .inputs import check_image_source, classifier_from_args, load_image_source

    check_image_source(args)
    opt.at_least_one("--top", args.top)
    opt.at_least_one("--batch-size", args.batch_size)
    clf = classifier_from_args(args)
    data = load_image_source(args, clf)
    images, names = data.images, data.names
    chunks = images.split(args.batch_size)
    bars = bar(chunks, desc="predict", progress=None, min_total=1)
    probs = torch.cat([clf.probs(c, batch_size=args.batch_size) for c in bars])
    values, indices = probs.topk(min(args.top, probs.shape[1]), dim=1)
    for name, vals, idx in zip(names, values.tolist(), indices.tolist()):
        print(name)
        for rank, (v, i) in enumerate(zip(vals, idx), 1):
            print(f"  {rank}. {clf.class_name(i):<30s} {v:.4f}")
    labelled = data.labels >= 0
    if bool(labelled.any()) and args.dataset:
        hits = (indices[:, 0] == data.labels.to(indices.device))[labelled.to(indices.device)]
        print(f"top-1 accuracy on {int(labelled.sum())} labelled images: {hits.float().mean().item():.2%}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="top-k classes of images with a bundled or user model",
                       description="Print the top-k classes of each image (and the top-1 accuracy on a "
                                   "labelled --dataset).")
    opt.add_image_source(p)
    opt.add_model_options(p)
    opt.add_device(p)
    p.add_argument("--top", type=int, default=5, help="how many classes to print per image (default 5)")
    opt.add_batch_size(p, 32, "images per forward pass")
    opt.add_quiet(p)
    p.set_defaults(func=_cmd_predict)
