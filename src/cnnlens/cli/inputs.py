"""Turning command-line options into a model and images: ``--device``, the model options
(:func:`classifier_from_args`) and the image source (:func:`prepare_images`, :func:`load_image_source`)."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .. import validation
from ..errors import CnnlensError, one_line

__all__ = ["device", "classifier_from_args", "prepare_images", "check_image_source", "check_split", "load_image_source"]


def device(name: str | None):
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


def classifier_from_args(args: argparse.Namespace):
    """Build the :class:`~cnnlens.Classifier` that ``add_model_options`` options describe."""
    from .. import zoo
    from ..classifier import Classifier
    from ..modelfile import load_model_file

    dev = device(args.device)
    if args.model in zoo.list_models():
        user_only = [o for o in ("weights", "model_kwargs", "mean", "std", "input_shape", "class_names")
                     if getattr(args, o, None) is not None]
        if user_only:
            raise CnnlensError(f"--{user_only[0].replace('_', '-')} is for user models; {args.model!r} is bundled")
        return zoo.load_classifier(args.model, device=dev, feature_layer=args.feature_layer)
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
                            map_location=dev or "cpu", model_kwargs=_model_kwargs(getattr(args, "model_kwargs", None)),
                            allow_no_weights=no_weights or from_run)
    return Classifier(model, mean=mean, std=std, feature_layer=args.feature_layer, class_names=names, input_shape=shape)


def _fit(clf) -> dict[str, Any]:
    shape = clf.input_shape
    mode = None if shape is None else ("L" if shape[0] == 1 else "RGB")
    size = None if shape is None else tuple(shape[1:])
    resize_to = round(size[0] * 256 / 224) if size is not None and size[0] >= 64 else None
    return dict(size=size, mode=mode, resize_to=resize_to)


def prepare_images(clf, files=None, folder=None, skip_bad: bool = False, stream: bool = False, num_workers: int = 0):
    """Read image files, or a folder (flat, or ``root/<class>/<image>``), fitted to the
    classifier's ``input_shape``: ImageNet-size inputs (≥ 64 px) are resized so the short side is
    256/224 of the crop, then centre-cropped (the torchvision convention); small inputs are
    resized to the crop. Returns an :class:`~cnnlens.data.ImageDataset`, or with ``stream`` a lazy
    :class:`~cnnlens.data.ImageStream` (decoded by ranges, ``num_workers`` processes)."""
    from ..data.folder import is_class_folder, is_image_file, load_image_folder, load_images
    from ..data.stream import ImageStream

    kw = dict(**_fit(clf), skip_bad=skip_bad)
    if folder is not None and not Path(folder).is_dir():
        raise CnnlensError(f"--images {folder}: not a folder")
    if stream:
        return ImageStream(files if folder is None else folder, num_workers=num_workers, **kw)
    if folder is None:
        return load_images(files, **kw)
    folder = Path(folder)
    entries = list(folder.iterdir())
    # root/<class>/<image> when there are class sub-folders (hidden folders such as
    # .ipynb_checkpoints, __MACOSX and masks/ are not classes); otherwise a flat folder
    if any(is_class_folder(d) for d in entries):
        return load_image_folder(folder, **kw)
    found = sorted(p for p in entries if is_image_file(p))
    if not found:
        raise CnnlensError(f"--images {folder}: no image files found")
    return load_images(found, **kw)


def check_image_source(args: argparse.Namespace, *, files: bool = True) -> None:
    """Exactly one of the image sources that ``add_image_source`` options name, and ``--limit`` >= 1
    (checked before the model loads)."""
    from .options import at_least_one

    given = getattr(args, "files", None) if files else None
    if sum(bool(s) for s in (given, args.images, args.dataset)) != 1:
        names = ("image files, " if files else "") + "--images DIR, --dataset NAME"
        raise CnnlensError(f"give exactly one of: {names}")
    check_split(args)
    if args.limit is not None:
        at_least_one("--limit", args.limit)


def check_split(args: argparse.Namespace) -> None:
    """``--split`` picks a split of ``--dataset``; with image files or a folder it would be ignored."""
    if getattr(args, "split", None) is not None and not getattr(args, "dataset", None):
        raise CnnlensError(f"--split {args.split} is a split of --dataset; it does not apply to image files or --images")


def load_image_source(args: argparse.Namespace, clf: Any, *, files: bool = True, first_n: bool = True,
                      stream: bool = False) -> Any:
    """The images that ``add_image_source`` options name: positional image files, ``--images``
    (a folder, or — for ``ablate`` — files or one folder) or ``--dataset`` (``--split``); exactly
    one of them. Unreadable files are reported (``--skip-bad``) or refused. With ``first_n`` the
    first ``--limit`` images are kept. Returns an :class:`~cnnlens.data.ImageDataset`; with
    ``stream`` files and folders come as a lazy :class:`~cnnlens.data.ImageStream`
    (``--num-workers`` decoding processes; bundled datasets stay in memory)."""
    from .. import zoo

    check_image_source(args, files=files)
    given = getattr(args, "files", None) if files else None
    skip_bad = getattr(args, "skip_bad", False)
    kw: dict[str, Any] = {"skip_bad": skip_bad}
    if stream:
        kw.update(stream=True, num_workers=validation.integer("--num-workers", getattr(args, "num_workers", 0),
                                                               minimum=0))
    if args.dataset:
        kw = {"split": args.split} if args.split else {}
        if args.dataset in zoo.PHOTO_DATASETS and getattr(args, "model", None) in zoo.IMAGENET_MODELS:
            kw["model"] = args.model  # photos cropped as this zoo model expects (260² for Lite2)
        data = zoo.load_dataset(args.dataset, **kw)
    elif isinstance(args.images, list):  # ablate: --images FILE ... or --images DIR
        if len(args.images) == 1 and Path(args.images[0]).is_dir():
            data = prepare_images(clf, folder=args.images[0], **kw)
        else:
            data = prepare_images(clf, files=args.images, **kw)
    else:
        data = prepare_images(clf, files=given or None, folder=args.images, **kw)
    for bad in data.skipped:
        print(f"skipped unreadable image {bad}")
    if first_n and args.limit is not None:
        data = data.subset(slice(0, args.limit))
    return data
