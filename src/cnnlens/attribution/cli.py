"""``cnnlens explain``: attribution heatmaps for images or a bundled dataset (SPEC §2, §8).

Writes into ``--out``: one overlay PNG per image and method (``<index>_<name>_<method>.png``, ``+`` written as ``p``), a
grid PNG (rows: images; columns: the image, then one overlay per method), ``maps.npz`` with the
raw maps (``<method>`` → ``(N, H, W)``, ``<method>__targets``, ``names``) and ``params.json``
(model, inputs, every method's recorded parameters). All files are written atomically.

Example::

    cnnlens explain --model mobilenet_v2_imagenet --dataset photos --limit 2 \\
        --method gradcam,scorecam,lime --out runs/explain
"""
from __future__ import annotations

import argparse
import io
import json
from pathlib import Path
from typing import Any

from ..errors import CnnlensError

__all__ = ["register", "run_explain"]


def _parse_params(items: list[str] | None) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for item in items or []:
        if "=" not in item:
            raise CnnlensError(f"--param expects KEY=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        key = key.strip().replace("-", "_")
        if not key.isidentifier():
            raise CnnlensError(f"--param {item!r}: {key!r} is not a parameter name")
        try:
            params[key] = json.loads(value)
        except json.JSONDecodeError:
            params[key] = value  # a bare string such as slic
    return params


def _stem(name: str) -> str:
    """``digit0.png`` → ``digit0`` (image names from files keep their extension)."""
    p = Path(name)
    return p.stem if p.suffix.lower() in {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"} else name


def _png(array: Any) -> bytes:
    from PIL import Image

    bio = io.BytesIO()
    Image.fromarray(array).save(bio, format="PNG")
    return bio.getvalue()


def _grid(images: Any, overlays: dict[str, Any], names: list[str]) -> bytes:
    """Rows = images, columns = the image then each method's overlay; a header row names them."""
    import numpy as np
    from PIL import Image, ImageDraw

    n, h, w = len(names), images.shape[1], images.shape[2]
    scale = max(1, -(-96 // max(h, w)))  # small images (28×28) are enlarged for viewing
    ch, cw = h * scale, w * scale
    columns = ["image", *overlays]
    header = 16
    canvas = Image.new("RGB", (cw * len(columns), header + ch * n), "white")
    draw = ImageDraw.Draw(canvas)
    for j, title in enumerate(columns):
        draw.text((j * cw + 3, 2), title[: max(4, cw // 7)], fill="black")
    for i in range(n):
        cells = [images[i], *(ov[i] for ov in overlays.values())]
        for j, cell in enumerate(cells):
            pic = Image.fromarray(np.ascontiguousarray(cell)).resize((cw, ch), Image.NEAREST)
            canvas.paste(pic, (j * cw, header + i * ch))
    bio = io.BytesIO()
    canvas.save(bio, format="PNG")
    return bio.getvalue()


def run_explain(clf: Any, images: Any, names: list[str], methods: list[str], out: Path, *, target: Any = None,
                seed: int = 0, batch_size: int = 64, layer: str | None = None,
                params: dict[str, Any] | None = None, source: dict[str, Any] | None = None) -> list[Path]:
    """Explain ``images`` with every method and write the outputs described in the module
    docstring into ``out``. ``params`` are passed to the methods that accept them (a method that
    does not know a parameter ignores it only if another listed method uses it; otherwise the
    error says which). Returns the written paths."""
    import inspect

    import numpy as np
    from tqdm import tqdm

    from .._io import atomic_write_bytes, atomic_write_text
    from ..explanation import _safe
    from . import explain, method_info

    params = dict(params or {})
    infos = [method_info(m) for m in methods]
    accepted: dict[str, set[str]] = {}
    for info in infos:
        sig = inspect.signature(info.fn)
        accepted[info.name] = {p.name for p in sig.parameters.values() if p.kind is p.KEYWORD_ONLY} - {
            "seed", "batch_size", "layer"}
    unused = set(params) - set().union(*accepted.values())
    if unused:
        raise CnnlensError(f"--param {', '.join(sorted(unused))} is not an option of {', '.join(methods)}")
    if layer is not None and not any(i.uses_layer for i in infos):
        raise CnnlensError(f"--layer is only read by layer methods; none of {', '.join(methods)} reads a layer")
    pixels = (images.detach().float().clamp(0, 1).cpu())
    rgb = pixels.expand(-1, 3, -1, -1) if pixels.shape[1] == 1 else pixels
    base = np.round(rgb.permute(0, 2, 3, 1).numpy() * 255).astype(np.uint8)
    written: list[Path] = []
    overlays: dict[str, Any] = {}
    arrays: dict[str, Any] = {"names": np.array(names)}
    record: dict[str, Any] = {"source": source or {}, "names": names, "methods": {}}
    for info in tqdm(infos, desc="explain", disable=len(infos) < 2):
        own = {k: v for k, v in params.items() if k in accepted[info.name]}
        exp = explain(clf, images, info.name, target=target, seed=seed, batch_size=batch_size,
                      layer=layer if info.uses_layer else None, **own)
        pics = exp.overlay(pixels)
        overlays[info.name] = pics
        for i, pic in enumerate(pics):
            path = out / f"{i:04d}_{_safe(_stem(names[i]))}_{_safe(info.name.replace('+', 'p'))}.png"
            atomic_write_bytes(path, _png(pic))
            written.append(path)
        arrays[info.name] = exp.maps.detach().cpu().numpy()
        arrays[f"{info.name}__targets"] = exp.targets.cpu().numpy()
        record["methods"][info.name] = {
            "params": exp.params, "info": exp.info,
            "targets": [clf.class_name(int(t)) for t in exp.targets.tolist()],
        }
    grid = out / "grid.png"
    atomic_write_bytes(grid, _grid(base, overlays, names))
    bio = io.BytesIO()
    np.savez_compressed(bio, **arrays)
    atomic_write_bytes(out / "maps.npz", bio.getvalue())
    atomic_write_text(out / "params.json", json.dumps(record, indent=2, default=str, sort_keys=True))
    return [*written, grid, out / "maps.npz", out / "params.json"]


def _cmd_explain(args: argparse.Namespace) -> int:
    from .. import zoo
    from ..commands import classifier_from_args, prepare_images
    from . import methods as all_methods

    sources = sum(bool(s) for s in (args.files, args.images, args.dataset))
    if sources != 1:
        raise CnnlensError("give exactly one of: image files, --images DIR, --dataset NAME")
    if args.batch_size < 1:
        raise CnnlensError(f"--batch-size must be >= 1, got {args.batch_size}")
    if args.limit is not None and args.limit < 1:
        raise CnnlensError(f"--limit must be >= 1, got {args.limit}")
    names_m = [m.strip() for m in args.method.split(",") if m.strip()]
    if not names_m:
        raise CnnlensError(f"--method is empty; available: {', '.join(all_methods())}")
    unknown = [m for m in names_m if m not in all_methods()]
    if unknown:
        raise CnnlensError(f"unknown method {unknown[0]!r}; available: {', '.join(all_methods())}")
    params = _parse_params(args.param)
    for opt, key in (("num_samples", "num_samples"), ("n_masks", "n_masks"), ("segmenter", "segmenter")):
        value = getattr(args, opt)
        if value is not None:
            params[key] = value
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise CnnlensError(f"--out {out} exists and is not a folder")
    clf = classifier_from_args(args)
    if args.dataset:
        data = zoo.load_dataset(args.dataset, **({"split": args.split} if args.split else {}))
        source = {"model": args.model, "dataset": args.dataset, "split": data.split}
    else:
        data = prepare_images(clf, files=args.files or None, folder=args.images, skip_bad=args.skip_bad)
        source = {"model": args.model, "images": args.images or args.files}
    for bad in data.skipped:
        print(f"skipped unreadable image {bad}")
    images, names = data.images, list(data.names)
    if args.limit is not None:
        images, names = images[: args.limit], names[: args.limit]
    written = run_explain(clf, images, names, names_m, out, target=args.target, seed=args.seed,
                          batch_size=args.batch_size, layer=args.layer, params=params, source=source)
    print(f"wrote {len(written)} files to {out} ({len(names)} images × {len(names_m)} methods; grid: {out / 'grid.png'})")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    from ..commands import add_model_arguments

    p = sub.add_parser(
        "explain", help="attribution heatmaps (saliency, Grad-CAM, Score-CAM, LIME, RISE, …) for images",
        description="Explain a model's decisions on images with one or more attribution methods (SPEC §2). "
                    "Writes overlay PNGs, a grid PNG, maps.npz (raw maps) and params.json into --out.",
    )
    p.add_argument("files", nargs="*", help="image files")
    add_model_arguments(p)
    p.add_argument("--images", metavar="DIR", help="a folder of images (or root/<class>/<image> layout)")
    p.add_argument("--dataset", metavar="NAME", help="a bundled dataset (see `cnnlens datasets`)")
    p.add_argument("--split", help="dataset split (e.g. train/test)")
    p.add_argument("--limit", type=int, help="explain only the first N images")
    p.add_argument("--method", default="gradcam",
                   help="comma-separated method names, e.g. gradcam,scorecam,lime (default gradcam)")
    p.add_argument("--target", type=int, default=None, help="class index to explain (default: the predicted class)")
    p.add_argument("--layer", default=None, help="layer for CAM methods, overriding the feature layer for this run")
    p.add_argument("--num-samples", dest="num_samples", type=int, help="LIME samples (default 1000)")
    p.add_argument("--n-masks", dest="n_masks", type=int, help="RISE masks (default 4000)")
    p.add_argument("--segmenter", choices=("quickshift", "slic"), help="LIME superpixels (default quickshift)")
    p.add_argument("--param", action="append", metavar="KEY=VALUE",
                   help="any other method option (JSON value), e.g. --param channel_softmax=false; repeatable")
    p.add_argument("--seed", type=int, default=0, help="seed of stochastic methods (default 0)")
    p.add_argument("--batch-size", type=int, default=64, help="images/perturbations per forward pass (default 64)")
    p.add_argument("--skip-bad", action="store_true", help="skip unreadable image files instead of failing")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.set_defaults(func=_cmd_explain)
