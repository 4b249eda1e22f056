"""Subcommands ``predict``, ``models`` and ``datasets`` of the ``cnnlens`` command line (SPEC §8)."""
from __future__ import annotations

import argparse
from pathlib import Path

from .errors import CnnlensError, one_line

__all__ = ["register", "prepare_images", "add_model_arguments", "classifier_from_args"]


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


def _floats(text: str | None, what: str) -> list[float] | None:
    if text is None:
        return None
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise CnnlensError(f"{what} must be comma-separated numbers, got {text[:80]!r}") from None


def _ints(text: str | None, what: str) -> list[int] | None:
    """Comma-separated whole numbers (``3,224,224``); ``3.9`` is an error, never truncated."""
    if text is None:
        return None
    parts = [v.strip() for v in text.split(",")]
    if not all(v.isdigit() for v in parts):
        raise CnnlensError(f"{what} must be comma-separated whole numbers, got {text[:80]!r}")
    return [int(v) for v in parts]


def _model_kwargs(text: str | None) -> dict | None:
    import json

    if text is None:
        return None
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise CnnlensError(f"--model-kwargs must be a JSON object such as '{{\"num_classes\": 10}}': {one_line(exc)}") from None
    if not isinstance(value, dict):
        raise CnnlensError(f"--model-kwargs must be a JSON object such as '{{\"num_classes\": 10}}', got a JSON {type(value).__name__}")
    return value


def _read_class_names(text: str) -> list[str]:
    path = Path(text)
    if not path.is_file():
        raise CnnlensError(f"--class-names file not found: {path}")
    try:
        raw = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise CnnlensError(f"--class-names {path} is not UTF-8 text (one class name per line)") from None
    except OSError as exc:
        raise CnnlensError(f"--class-names {path}: cannot read it ({one_line(exc)})") from None
    names = [line.strip() for line in raw.splitlines() if line.strip()]
    if not names:
        raise CnnlensError(f"--class-names {path} holds no names (one class name per line)")
    return names


def add_model_arguments(p: argparse.ArgumentParser) -> None:
    """The options that pick a model: a bundled name, or a user model file (SPEC §1)."""
    p.add_argument("--model", default="mobilenet_v2_imagenet",
                   help="bundled model name (`cnnlens models`), a TorchScript file, a pickled model "
                        "(needs --trust-pickle), or package.module:factory with --weights")
    p.add_argument("--weights", help="state-dict file for a package.module:factory model (weights_only loading); "
                                     "'none' uses the factory's own weights (random for torchvision factories)")
    p.add_argument("--model-kwargs", metavar="JSON", help="keyword arguments for a package.module:factory model, "
                                                          "e.g. '{\"num_classes\": 10}' for a fine-tuned head")
    p.add_argument("--trust-pickle", action="store_true", help="allow loading a pickled nn.Module (runs code from the file)")
    p.add_argument("--mean", help="user model: per-channel mean, e.g. 0.485,0.456,0.406 (pixel space)")
    p.add_argument("--std", help="user model: per-channel std, e.g. 0.229,0.224,0.225")
    p.add_argument("--input-shape", help="user model: C,H,W the model takes, e.g. 3,224,224 (image files are fitted to it)")
    p.add_argument("--class-names", metavar="FILE", help="user model: text file with one class name per line")
    p.add_argument("--feature-layer", default="auto", help="feature layer name, or 'auto' (default)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 … (default: cpu)")


def classifier_from_args(args: argparse.Namespace):
    """Build the :class:`~cnnlens.Classifier` that ``add_model_arguments`` options describe."""
    from . import zoo
    from .classifier import Classifier
    from .modelfile import load_model_file

    device = _device(args.device)
    if args.model in zoo.list_models():
        user_only = [o for o in ("weights", "model_kwargs", "mean", "std", "input_shape", "class_names")
                     if getattr(args, o, None) is not None]
        if user_only:
            raise CnnlensError(f"--{user_only[0].replace('_', '-')} is for user models; {args.model!r} is bundled")
        return zoo.load_classifier(args.model, device=device, feature_layer=args.feature_layer)
    shape = None
    if args.input_shape is not None:
        shape = _ints(args.input_shape, "--input-shape")
        if shape is None or len(shape) != 3 or min(shape) < 1:
            raise CnnlensError(f"--input-shape must be C,H,W with positive sizes, got {args.input_shape!r}")
    mean, std = _floats(args.mean, "--mean"), _floats(args.std, "--std")
    names = _read_class_names(args.class_names) if args.class_names is not None else None
    weights = args.weights
    no_weights = isinstance(weights, str) and weights.lower() == "none"
    # subcommands that load their own trained weights afterwards (`nesy … --trained RUN/`)
    from_run = weights is None and getattr(args, "trained", None) is not None
    model = load_model_file(args.model, weights=None if no_weights else weights, trust_pickle=args.trust_pickle,
                            map_location=device or "cpu", model_kwargs=_model_kwargs(getattr(args, "model_kwargs", None)),
                            allow_no_weights=no_weights or from_run)
    return Classifier(model, mean=mean, std=std, feature_layer=args.feature_layer, class_names=names, input_shape=shape)


def prepare_images(clf, files=None, folder=None, skip_bad: bool = False):
    """Read image files, or a folder (flat, or ``root/<class>/<image>``), fitted to the
    classifier's ``input_shape``: ImageNet-size inputs (≥ 64 px) are resized so the short side is
    256/224 of the crop, then centre-cropped (the torchvision convention); small inputs are
    resized to the crop. Returns an :class:`~cnnlens.data.folder.ImageSet`."""
    from .data.folder import is_class_folder, is_image_file, load_image_folder, load_images

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
    entries = list(folder.iterdir())
    # root/<class>/<image> when there are class sub-folders (hidden folders such as
    # .ipynb_checkpoints, __MACOSX and masks/ are not classes); otherwise a flat folder
    if any(is_class_folder(d) for d in entries):
        return load_image_folder(folder, **kw)
    found = sorted(p for p in entries if is_image_file(p))
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
    clf = classifier_from_args(args)
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
    p = sub.add_parser("predict", help="top-k classes of images with a bundled or user model")
    p.add_argument("files", nargs="*", help="image files")
    add_model_arguments(p)
    p.add_argument("--images", metavar="DIR", help="a folder of images (or root/<class>/<image> layout)")
    p.add_argument("--dataset", metavar="NAME", help="a bundled dataset (see `cnnlens datasets`)")
    p.add_argument("--split", help="dataset split (e.g. train/test)")
    p.add_argument("--top", type=int, default=5, help="how many classes to print per image (default 5)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--skip-bad", action="store_true", help="skip unreadable image files instead of failing")
    p.set_defaults(func=_cmd_predict)

    m = sub.add_parser("models", help="list the bundled pretrained models and whether they are installed")
    m.set_defaults(func=lambda a: _print_catalog("model"))
    d = sub.add_parser("datasets", help="list the bundled datasets and whether they are installed")
    d.set_defaults(func=lambda a: _print_catalog("dataset"))
