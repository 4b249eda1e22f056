"""``cnnlens represent``: Representative Interpretations on the command line (docs/algorithms.md §5, §8).

For each input image: its RI heatmap, the top similar reference images (Eq. 6) with the same
reused heatmap next to the Euclidean nearest neighbours in ψ-space (RI Fig. 2), each with its
20 %-kept score, and the counts |C|, |C∖D|, |C ∩ D|, δ, |P|. ``--evaluate`` runs the reuse
evaluation (RI Table 1) and prints/saves the table.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from .. import validation
from ..errors import CnnlensError
from . import options as opt

__all__ = ["register"]


def _parse_classes(text: str | None) -> list[Any] | None:
    if not text:
        return None
    return [int(v) if v.strip().lstrip("-").isdigit() else v.strip() for v in text.split(",")]


def _dataset(name: str, split: str | None, classes: list[Any] | None):
    from .. import zoo

    kw: dict[str, Any] = {}
    if split:
        kw["split"] = split
    if classes:
        kw["classes"] = classes
    return zoo.load_dataset(name, **kw)


def _subsample(n_total: int, n: int | None, seed: int):
    import torch

    perm = torch.randperm(n_total, generator=torch.Generator().manual_seed(seed))
    return perm if n is None or n >= n_total else perm[:n]


# the options of --evaluate and their defaults
_EVALUATE_OPTIONS: dict[str, Any] = {"unseen": None, "unseen_split": None, "seeds": 5, "per_class": 2500,
                                     "n_unseen": 1000, "n_centres": None}


def _count_or_all(text: str) -> int | None:
    """``--n-unseen``: a count, or ``all`` for every unseen image."""
    if text.strip().lower() == "all":
        return None
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number or 'all', got {text!r}") from None


def _kept_scores(clf, images, maps, classes, batch_size: int, seed: int):
    """Softmax score of ``classes`` on the images with the top 20 % pixels of ``maps`` kept."""
    import torch

    from ..metrics.single_step import keep_masks

    m = keep_masks(maps, tuple(images.shape[-2:]), 0.2, seed=seed)
    probs = clf.probs(images * m[:, None].to(images.dtype), batch_size=batch_size)
    return probs.gather(1, torch.as_tensor(classes, device=probs.device).view(-1, 1)).squeeze(1)


def _cmd_represent(args: argparse.Namespace) -> int:
    import torch

    from .._imaging import png_bytes, safe_name, stack_rows, tile_row
    from .._io import atomic_write_bytes, atomic_write_text
    from ..explanation import Explanation
    from ..representative.core import RepresentativeInterpreter
    from .inputs import check_split, classifier_from_args, prepare_images

    for option in ("batch_size", "n_boundaries", "top"):
        opt.at_least_one(f"--{option.replace('_', '-')}", getattr(args, option))
    validation.integer("--cell", args.cell, minimum=16, maximum=1024, hint="pixels per gallery cell")
    if args.limit is not None:
        opt.at_least_one("--limit", args.limit)
    check_split(args)
    given = [o for o in _EVALUATE_OPTIONS if hasattr(args, o)]
    if given and not args.evaluate:
        shown = ", ".join("--" + o.replace("_", "-") for o in given)
        raise CnnlensError(f"{shown}: option(s) of the reuse evaluation; add --evaluate or drop them")
    for option, value in _EVALUATE_OPTIONS.items():
        if not hasattr(args, option):
            setattr(args, option, value)
    if args.evaluate:  # checked before the reference set is loaded (minutes for a large one)
        for option in ("seeds", "per_class", "n_unseen", "n_centres"):
            if getattr(args, option) is not None:
                value = getattr(args, option)
                if option == "n_unseen" and value == 0:
                    raise CnnlensError("--n-unseen must be >= 1, got 0 (give --n-unseen all for every unseen image)")
                opt.at_least_one(f"--{option.replace('_', '-')}", value)
    sources = sum(bool(s) for s in (args.files, args.images, args.dataset))
    if sources > 1:
        raise CnnlensError("give at most one of: image files, --images DIR, --dataset NAME")
    if sources == 0 and not args.evaluate:
        raise CnnlensError("give images to interpret (files, --images DIR or --dataset NAME) and/or --evaluate")
    clf = classifier_from_args(args)
    classes = _parse_classes(args.classes)
    ref = _dataset(args.reference, args.reference_split, classes)
    ref_idx = _subsample(len(ref.labels), args.reference_size, args.seed)
    ref_images, ref_labels = ref.images[ref_idx], ref.labels[ref_idx]
    ri = RepresentativeInterpreter(clf, ref_images, n_boundaries=args.n_boundaries, seed=args.seed,
                                   layer=args.layer, batch_size=args.batch_size, progress=not args.quiet)
    out = Path(args.out)  # checked by cnnlens.cli.main before the command starts
    written: list[Path] = []
    summary: dict[str, Any] = {"model": args.model, "reference": args.reference, "layer": ri.layer_name,
                               "n_reference": int(ref_idx.numel()), "n_boundaries": ri.n_boundaries,
                               "n_distinct_boundaries": ri.n_distinct_boundaries, "seed": args.seed, "inputs": []}
    if sources:
        if args.dataset:
            data = _dataset(args.dataset, args.split, classes)
            pick = _subsample(len(data.labels), args.limit, args.seed + 1)
            x, names = data.images[pick], [data.names[i] for i in pick.tolist()]
        else:
            data = prepare_images(clf, files=args.files or None, folder=args.images, skip_bad=args.skip_bad)
            for bad in data.skipped:
                print(f"skipped unreadable image {bad}")
            x, names = data.images, list(data.names)
        it = ri.interpret(x, k=args.top)
        assert it.maps is not None
        written += Explanation(maps=it.maps, targets=it.targets, method="ri",
                               params={"n_boundaries": ri.n_boundaries, "seed": args.seed, "layer": ri.layer_name},
                               info={"counts": it.counts}).save(out / "heatmaps", images=x, names=names)
        lab = ref_labels.to(ri.reference_images.device)
        for i, name in enumerate(names):
            cls = int(it.targets[i])
            top_ri = it.covered[i][: args.top]
            top_eu = it.neighbours[i]
            rows = []
            for kind, idx in (("RI (Eq. 6)", top_ri), ("Euclidean", top_eu)):
                imgs = torch.cat([x[i:i + 1], ri.reference_images[idx]])
                maps = it.heatmap(imgs, index=i)
                scores = _kept_scores(clf, imgs, maps, [cls] * imgs.shape[0], args.batch_size, args.seed)
                probs = clf.probs(imgs, batch_size=args.batch_size)[:, cls]
                overlay = Explanation(maps=maps, targets=torch.full((imgs.shape[0],), cls), method="ri").overlay(imgs)
                caps = [f"{kind.split()[0]} p{probs[0]:.2f}"] + [
                    f"{ref.class_names[int(lab[j])] if int(lab[j]) >= 0 else '?'} p{p:.2f}" for j, p in
                    zip(idx.tolist(), probs[1:].tolist())]
                caps_k = [f"{'x' if j == 0 else ''}kept {s:.2f}" for j, s in enumerate(scores.tolist())]
                rows.append(tile_row(imgs, caps, args.cell))
                rows.append(tile_row(list(overlay), caps_k, args.cell))
            stem = f"{i:04d}_{safe_name(name)}"
            atomic_write_bytes(out / f"{stem}_gallery.png", png_bytes(stack_rows(rows)))
            written.append(out / f"{stem}_gallery.png")
            c = it.counts[i]
            entry = {"name": name, "class": clf.class_name(cls), "counts": c,
                     "boundaries": it.boundaries[i].tolist(), "ri_top": top_ri.tolist(),
                     "euclidean_top": top_eu.tolist(),
                     "ri_top_labels": [int(lab[j]) for j in top_ri.tolist()],
                     "euclidean_top_labels": [int(lab[j]) for j in top_eu.tolist()]}
            summary["inputs"].append(entry)
            print(f"{name}: class {clf.class_name(cls)}  |C|={c['C']} |C\\D|={c['C_minus_D']} "
                  f"|C∩D|={c['C_and_D']} δ={c['delta']} |P|={c['P']}  gallery {out / (stem + '_gallery.png')}")
    if args.evaluate:
        unseen_name = args.unseen or args.reference
        unseen = _dataset(unseen_name, args.unseen_split, classes)
        table = ri.evaluate_reuse(unseen.images, seeds=args.seeds, reference_labels=ref_labels,
                                  per_class=args.per_class, n_unseen=args.n_unseen, n_centres=args.n_centres,
                                  model_name=args.model, dataset_name=unseen_name, progress=not args.quiet)
        md = table.to_markdown()
        print(md)
        atomic_write_text(out / "reuse_table.md", md)
        table.to_json(out / "reuse_table.json")
        written += [out / "reuse_table.md", out / "reuse_table.json"]
        summary["reuse"] = table.to_dict()
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2, default=str))
    written.append(out / "summary.json")
    opt.record_outputs(args, written)
    print(f"wrote {out}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("represent", help="Representative Interpretations: shared decision regions, reused heatmaps, "
                                         "similar images, reuse evaluation (§5)",
                       description="Representative Interpretations (§5): per input image its heatmap, the "
                                   "similar reference images and the counts; --evaluate runs the reuse evaluation.")
    opt.add_image_source(p, images_help="a folder of images to interpret",
                         dataset_help="interpret images drawn from a bundled dataset",
                         limit_help="images drawn (seeded) from --dataset", limit_default=4)
    opt.add_model_options(p)
    opt.add_device(p)
    p.add_argument("--reference", required=True, metavar="DATASET", help="bundled dataset used as reference set R")
    p.add_argument("--reference-split", help="split of the reference dataset (e.g. train)")
    p.add_argument("--reference-size", type=int, default=5000,
                   help="number of reference images drawn (seeded) from the dataset (default 5000)")
    p.add_argument("--classes", help="comma-separated class indices/names of the datasets to keep (e.g. 0,6)")
    p.add_argument("--layer", default=None, help="ψ's layer (default: the feature layer)")
    p.add_argument("--n-boundaries", type=int, default=50, help="|Q|, sampled boundaries (default 50)")
    p.add_argument("--top", type=int, default=5, help="similar images shown per input (default 5)")
    p.add_argument("--cell", type=int, default=96, help="pixel size of one gallery cell (default 96)")
    p.add_argument("--evaluate", action="store_true", help="run the reuse evaluation (RI Table 1)")
    # options of --evaluate only: absent unless given (refused without --evaluate; _EVALUATE_OPTIONS
    # holds their defaults)
    none = argparse.SUPPRESS
    p.add_argument("--unseen", metavar="DATASET", default=none, help="dataset of unseen images (default: --reference)")
    p.add_argument("--unseen-split", default=none, help="split of the unseen dataset (e.g. test)")
    p.add_argument("--seeds", type=int, default=none, help="evaluation seeds (default 5)")
    p.add_argument("--per-class", type=int, default=none, help="references per class per seed (default 2500)")
    p.add_argument("--n-unseen", type=_count_or_all, default=none,
                   help="|S| per seed, or 'all' for every unseen image (default 1000)")
    p.add_argument("--n-centres", type=int, default=none, help="|V| (default 10 × classes)")
    opt.add_seed(p)
    opt.add_batch_size(p, 64)
    opt.add_quiet(p)
    opt.add_out(p)
    opt.add_report(p)
    p.set_defaults(func=_cmd_represent)
