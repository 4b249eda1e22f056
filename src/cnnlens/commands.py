"""Subcommands ``predict``, ``models`` and ``datasets`` of the ``cnnlens`` command line (SPEC §8)."""
from __future__ import annotations

import argparse
from pathlib import Path

from .errors import CnnlensError

__all__ = ["register", "prepare_images"]


def _device(name: str | None):
    import torch

    if name is None:
        return None
    try:
        dev = torch.device(name)
    except RuntimeError as exc:
        raise CnnlensError(f"--device {name!r} is not a valid device: {exc}") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise CnnlensError(f"--device {name}: CUDA is not available on this machine")
    return dev


def prepare_images(clf, files=None, folder=None, skip_bad: bool = False):
    """Read image files, or a folder (flat, or ``root/<class>/<image>``), fitted to the
    classifier's ``input_shape``: ImageNet-size inputs (≥ 64 px) are resized so the short side is
    256/224 of the crop, then centre-cropped (the torchvision convention); small inputs are
    resized to the crop. Returns an :class:`~cnnlens.data.folder.ImageSet`."""
    from .data.folder import IMAGE_EXTENSIONS, load_image_folder, load_images

    shape = clf.input_shape
    mode = None if shape is None else ("L" if shape[0] == 1 else "RGB")
    size = None if shape is None else tuple(shape[1:])
    resize_to = round(size[0] * 256 / 224) if size is not None and size[0] >= 64 else None
    kw = dict(size=size, mode=mode, skip_bad=skip_bad, resize_to=resize_to)
    if folder is None:
        return load_images(files, **kw)
    folder = Path(folder)
    if not folder.is_dir():
        raise CnnlensError(f"--images {folder}: not a folder")
    if any(d.is_dir() and d.name != "masks" for d in folder.iterdir()):
        return load_image_folder(folder, **kw)
    found = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
    if not found:
        raise CnnlensError(f"--images {folder}: no image files found")
    return load_images(found, **kw)


def _cmd_predict(args: argparse.Namespace) -> int:
    import torch
    from tqdm import tqdm

    from . import zoo

    sources = sum(bool(s) for s in (args.files, args.images, args.dataset))
    if sources != 1:
        raise CnnlensError("give exactly one of: image files, --images DIR, --dataset NAME")
    if args.top < 1:
        raise CnnlensError(f"--top must be >= 1, got {args.top}")
    if args.batch_size < 1:
        raise CnnlensError(f"--batch-size must be >= 1, got {args.batch_size}")
    clf = zoo.load_classifier(args.model, device=_device(args.device))
    if args.dataset:
        data = zoo.load_dataset(args.dataset, **({"split": args.split} if args.split else {}))
    else:
        data = prepare_images(clf, files=args.files or None, folder=args.images, skip_bad=args.skip_bad)
    for bad in data.skipped:
        print(f"skipped unreadable image {bad}")
    images, names = data.images, data.names
    chunks = images.split(args.batch_size)
    probs = torch.cat([clf.probs(c, batch_size=args.batch_size) for c in tqdm(chunks, desc="predict", disable=len(chunks) < 2)])
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


def _print_catalog(kind: str) -> int:
    from . import zoo

    entries = [e for e in zoo.catalog() if e.kind == kind]
    width = max(len(e.name) for e in entries)
    for e in entries:
        state = "installed" if e.installed else f"missing — install: {e.install_command}"
        print(f"{e.name:<{width}}  {e.description}  [{state}]")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="top-k classes of image files with a bundled model")
    p.add_argument("files", nargs="*", help="image files")
    p.add_argument("--model", default="mobilenet_v2_imagenet", help="model name (see `cnnlens models`)")
    p.add_argument("--images", metavar="DIR", help="a folder of images (or root/<class>/<image> layout)")
    p.add_argument("--dataset", metavar="NAME", help="a bundled dataset (see `cnnlens datasets`)")
    p.add_argument("--split", help="dataset split (e.g. train/test)")
    p.add_argument("--top", type=int, default=5, help="how many classes to print per image (default 5)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 … (default: where the model is)")
    p.add_argument("--skip-bad", action="store_true", help="skip unreadable image files instead of failing")
    p.set_defaults(func=_cmd_predict)

    m = sub.add_parser("models", help="list the bundled pretrained models and whether they are installed")
    m.set_defaults(func=lambda a: _print_catalog("model"))
    d = sub.add_parser("datasets", help="list the bundled datasets and whether they are installed")
    d.set_defaults(func=lambda a: _print_catalog("dataset"))
