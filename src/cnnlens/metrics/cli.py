"""``cnnlens evaluate``: methods × metrics on a model and an image set (SPEC §3, §8).

Writes into ``--out``: ``results/<method>.json`` as soon as each method is done (every metric's
per-image values, mean, std and parameters), then ``table.md`` (OVERVIEW's layout with ↑/↓),
``table.csv``, ``per_image.csv``, ``table.json`` and ``curves.png`` (mean insertion/deletion
curves). All files are written atomically; a re-run with the same settings skips the methods
whose results are already there, so an interrupted run never loses finished work.

Example::

    cnnlens evaluate --model mnist_cnn --dataset mnist --n 50 \\
        --methods saliency,gradcam,deeplift --protocol gomez --out runs/eval
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ..errors import CnnlensError

__all__ = ["register", "run_evaluate"]


def _split(text: str | None) -> list[str] | None:
    if text is None:
        return None
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise CnnlensError(f"expected a comma-separated list, got {text!r}")
    return items


def _method_params(items: list[str] | None, methods: list[str]) -> dict[str, dict[str, Any]]:
    """``--param METHOD.KEY=VALUE`` (VALUE parsed as JSON, else kept as a string)."""
    out: dict[str, dict[str, Any]] = {}
    for item in items or []:
        if "=" not in item or "." not in item.split("=", 1)[0]:
            raise CnnlensError(f"--param expects METHOD.KEY=VALUE (e.g. gradcam.layer=model.20), got {item!r}")
        key, value = item.split("=", 1)
        method, name = key.rsplit(".", 1)
        method, name = method.strip(), name.strip().replace("-", "_")
        if method not in methods:
            raise CnnlensError(f"--param {item!r}: method {method!r} is not in --methods ({', '.join(methods)})")
        if not name.isidentifier():
            raise CnnlensError(f"--param {item!r}: {name!r} is not a parameter name")
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            parsed = value
        out.setdefault(method, {})[name] = parsed
    return out


def _safe(label: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else ("p" if c == "+" else "_") for c in label)


def run_evaluate(clf: Any, images: Any, labels: Any, out: Path, *, methods: list[str], metrics: list[str],
                 protocol: str, seed: int, batch_size: int, method_params: dict[str, dict[str, Any]],
                 evaluate_params: dict[str, Any], source: dict[str, Any], random_baseline: bool = True,
                 progress: bool = True) -> Any:
    """Compare ``methods`` on ``images`` and write the outputs described in the module
    docstring into ``out``; rows already in ``out/results`` with the same settings are reused."""
    from .._io import atomic_write_text
    from .compare import RANDOM_LABEL, compare, result_from_dict

    results_dir = out / "results"
    config = {"source": source, "metrics": metrics, "protocol": protocol, "seed": seed,
              "n_images": int(images.shape[0]),
              **{k: v for k, v in evaluate_params.items() if k != "labels"}}
    done: dict[str, Any] = {}
    for label in [*methods, *([RANDOM_LABEL] if random_baseline else [])]:
        path = results_dir / f"{_safe(label)}.json"
        if not path.exists():
            continue
        try:
            stored = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue  # unreadable: recompute
        want = json.loads(json.dumps({**config, "method_params": method_params.get(label, {})}, default=str))
        if stored.get("config") == want:
            done[label] = {m: result_from_dict(r) for m, r in stored["results"].items()}
    if done:
        print(f"reusing finished results of {', '.join(done)} from {results_dir}")

    def save(label: str, res: dict[str, Any], seconds: float) -> None:
        payload = {"config": {**config, "method_params": method_params.get(label, {})}, "seconds": seconds,
                   "results": {m: r.to_dict() for m, r in res.items()}}
        atomic_write_text(results_dir / f"{_safe(label)}.json", json.dumps(payload, indent=1, default=str))

    table = compare(clf, images, methods=methods, metrics=metrics, protocol=protocol, seed=seed,
                    batch_size=batch_size, method_params=method_params, random_baseline=random_baseline,
                    progress=progress, on_result=save, done=done, labels=labels, **evaluate_params)
    table.params["source"] = source
    atomic_write_text(out / "table.md", table.to_markdown())
    table.to_csv(out / "table.csv")
    table.to_csv(out / "per_image.csv", per_image=True)
    table.to_json(out / "table.json")
    if any(m in ("iauc", "dauc", "ic", "dc") for m in metrics):
        table.plot_curves(out / "curves.png")
    return table


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from .. import zoo
    from ..attribution import methods as registered
    from ..commands import classifier_from_args, prepare_images
    from .evaluate import DEFAULT_METRICS, canonical_metric

    if (args.dataset is None) == (args.images is None):
        raise CnnlensError("give exactly one of --dataset NAME or --images DIR")
    if args.batch_size < 1:
        raise CnnlensError(f"--batch-size must be >= 1, got {args.batch_size}")
    if args.n is not None and args.n < 1:
        raise CnnlensError(f"--n must be >= 1, got {args.n}")
    methods = _split(args.methods) or registered()
    metrics = _split(args.metrics) or list(DEFAULT_METRICS)
    metrics = [canonical_metric(m) for m in metrics]
    if "mar" in metrics:
        raise CnnlensError("mar is a Dynamic Ablation metric: use `cnnlens ablate`")
    method_params = _method_params(args.param, methods)
    clf = classifier_from_args(args)
    if args.dataset:
        data = zoo.load_dataset(args.dataset, **({"split": args.split} if args.split else {}))
        source = {"model": args.model, "dataset": args.dataset, "split": args.split}
    else:
        data = prepare_images(clf, folder=args.images, skip_bad=args.skip_bad)
        source = {"model": args.model, "images": str(Path(args.images).resolve())}
        for bad in data.skipped:
            print(f"skipped unreadable image {bad}")
    images, labels = data.images, data.labels
    if args.n is not None and args.sample is not None:
        raise CnnlensError("give --n (the first N images) or --sample (a seeded random sample), not both")
    if args.n is not None:
        images, labels = images[: args.n], labels[: args.n]
        source["first_n"] = int(images.shape[0])
    elif args.sample is not None:
        if args.sample < 1:
            raise CnnlensError(f"--sample must be >= 1, got {args.sample}")
        import torch

        g = torch.Generator().manual_seed(args.seed)
        idx = torch.randperm(images.shape[0], generator=g)[: args.sample].sort().values
        images, labels = images[idx], labels[idx]
        source["sample"] = idx.tolist()
    evaluate_params: dict[str, Any] = {"score": args.score, "mode": args.mode, "clip": not args.no_clip,
                                       "deletion_substrate": args.deletion_substrate,
                                       "insertion_substrate": args.insertion_substrate}
    if args.step is not None:
        evaluate_params["step"] = args.step
    if args.mode == "keep":
        evaluate_params["keep"] = args.keep
    lab = labels if "insertion_game" in metrics and bool((labels >= 0).all()) else None
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise CnnlensError(f"--out {out} exists and is not a folder")
    table = run_evaluate(clf, images, lab, out, methods=methods, metrics=metrics, protocol=args.protocol,
                         seed=args.seed, batch_size=args.batch_size, method_params=method_params,
                         evaluate_params=evaluate_params, source=source, random_baseline=not args.no_random,
                         progress=not args.quiet)
    print(table.to_markdown(), end="")
    print(f"wrote {out / 'table.md'}, table.csv, per_image.csv, table.json, results/")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    from ..commands import add_model_arguments

    p = sub.add_parser(
        "evaluate",
        help="compare attribution methods with IAUC, DAUC, IC, DC, AD, IIC (SPEC §3)",
        description="Explain the images with each method and score the maps with the faithfulness "
                    "metrics (rows methods + a random-map baseline, columns metrics). Per-method results "
                    "are written to OUT/results/ as they complete; a re-run skips finished methods.",
    )
    add_model_arguments(p)
    p.add_argument("--dataset", metavar="NAME", help="a bundled dataset (see `cnnlens datasets`)")
    p.add_argument("--split", help="dataset split (e.g. test)")
    p.add_argument("--images", metavar="DIR", help="a folder of images (or root/<class>/<image> layout)")
    p.add_argument("--skip-bad", action="store_true", help="skip unreadable image files instead of failing")
    p.add_argument("--n", type=int, default=None, help="use the first N images (default: all)")
    p.add_argument("--sample", type=int, default=None, metavar="N",
                   help="use a random sample of N images (seeded by --seed, kept in dataset order)")
    p.add_argument("--methods", help="comma-separated method names (default: every registered method)")
    p.add_argument("--metrics", help="comma-separated: iauc,dauc,ic,dc,ad,iic (default), ai, insertion_game")
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
    p.add_argument("--param", action="append", metavar="METHOD.KEY=VALUE",
                   help="a method option, e.g. gradcam.layer=model.20 or lime.num_samples=500 (repeatable)")
    p.add_argument("--no-random", action="store_true", help="leave out the random-map baseline row")
    p.add_argument("--seed", type=int, default=0, help="seed of the methods, tie breaking and random maps")
    p.add_argument("--batch-size", type=int, default=64, help="images per forward pass")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(func=_cmd_evaluate)
