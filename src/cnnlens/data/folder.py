"""Image files and ImageFolder-layout datasets (SPEC §7).

``load_image_folder(root)`` reads ``root/<class>/<file>``; ``load_images(paths)`` reads a list of
files. Images come back as float tensors in ``[0, 1]``, shape ``(N, C, H, W)``. A corrupt or
unreadable file raises :class:`~cnnlens.errors.ImageReadError` naming it, or, with
``skip_bad=True``, is skipped and counted in ``.skipped``.

Example::

    >>> import tempfile, pathlib, numpy as np
    >>> from PIL import Image
    >>> from cnnlens.data.folder import load_image_folder
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> for cls in ("cat", "dog"):
    ...     (root / cls).mkdir()
    ...     Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(root / cls / "a.png")
    >>> ds = load_image_folder(root)
    >>> ds.images.shape, ds.labels.tolist(), ds.class_names
    (torch.Size([2, 3, 8, 8]), [0, 1], ['cat', 'dog'])
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ..errors import CnnlensError, ImageReadError
from .imageset import ImageDataset, resize_center_crop

__all__ = [
    "IMAGE_EXTENSIONS",
    "load_image_folder",
    "load_images",
    "read_image",
]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


def read_image(path: str | os.PathLike[str], mode: str | None = "RGB") -> torch.Tensor:
    """Read one image file as ``(C, H, W)`` float in [0, 1]. ``mode``: ``"RGB"`` (3 channels),
    ``"L"`` (1 channel) or ``None`` (grey files give 1 channel, all others 3)."""
    from PIL import Image, UnidentifiedImageError

    if mode not in ("RGB", "L", None):
        raise CnnlensError(f"mode must be 'RGB', 'L' or None, got {mode!r}")
    p = Path(path)
    if not p.exists():
        raise ImageReadError(f"image file not found: {p}")
    if p.is_dir():
        raise ImageReadError(f"{p} is a folder, not an image file")
    try:
        with Image.open(p) as im:
            im.load()
            if mode is None:
                mode = "L" if im.mode in ("L", "I", "I;16", "F", "1") else "RGB"
            arr = np.asarray(im.convert(mode), dtype=np.float32) / 255.0
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ImageReadError(f"cannot read image {p}: {exc.__class__.__name__}: {exc}") from exc
    t = torch.from_numpy(arr.copy())
    return t.unsqueeze(0) if t.dim() == 2 else t.permute(2, 0, 1).contiguous()


def _stack(
    images: list[torch.Tensor], names: list[str], size: int | tuple[int, int] | None, resize_to: int | None = None
) -> torch.Tensor:
    if size is not None:
        images = [resize_center_crop(im, size, resize_to) for im in images]
    shapes = {tuple(im.shape) for im in images}
    if len(shapes) > 1:
        examples = ", ".join(f"{n}: {tuple(im.shape[-2:])}" for n, im in list(zip(names, images))[:3])
        raise CnnlensError(f"images have different sizes ({examples}, ...); pass size=(H, W) to resize them")
    return torch.stack(images)


def load_images(
    paths: Sequence[str | os.PathLike[str]],
    size: int | tuple[int, int] | None = None,
    mode: str | None = "RGB",
    skip_bad: bool = False,
    resize_to: int | None = None,
) -> ImageDataset:
    """Read image files into one unlabelled image set (labels −1). With ``size``, each image is
    resized (short side ``resize_to``, default the crop size) and centre-cropped to ``size``."""
    images: list[torch.Tensor] = []
    names: list[str] = []
    skipped: list[str] = []
    for p in paths:
        try:
            images.append(read_image(p, mode))
            names.append(Path(p).name)
        except ImageReadError:
            if not skip_bad:
                raise
            skipped.append(str(p))
    if not images:
        raise CnnlensError("no readable images" + (f" ({len(skipped)} bad files skipped)" if skipped else ""))
    batch = _stack(images, names, size, resize_to)
    labels = torch.full((len(images),), -1, dtype=torch.long)
    return ImageDataset("files", "all", batch, labels, [], names, skipped)


def load_image_folder(
    root: str | os.PathLike[str],
    size: int | tuple[int, int] | None = None,
    mode: str | None = "RGB",
    skip_bad: bool = False,
    resize_to: int | None = None,
) -> ImageDataset:
    """Read ``root/<class>/<image>`` (SPEC §7). Classes are the sorted sub-folder names; files
    with an image extension are read in sorted order. A corrupt file raises
    :class:`ImageReadError` naming it, or is skipped and listed in ``.skipped`` with
    ``skip_bad=True``. ``size``/``resize_to`` as in :func:`load_images`. Folders named ``masks`` are not classes (they hold concept masks)."""
    root = Path(root)
    if not root.is_dir():
        raise CnnlensError(f"image folder not found: {root}")
    classes = sorted(d.name for d in root.iterdir() if d.is_dir() and d.name != "masks" and not d.name.startswith("."))
    if not classes:
        raise CnnlensError(f"{root} has no class sub-folders; expected root/<class>/<image files>")
    images: list[torch.Tensor] = []
    labels: list[int] = []
    names: list[str] = []
    skipped: list[str] = []
    for label, cls in enumerate(classes):
        for f in sorted((root / cls).iterdir()):
            if f.suffix.lower() not in IMAGE_EXTENSIONS or not f.is_file():
                continue
            try:
                images.append(read_image(f, mode))
            except ImageReadError:
                if not skip_bad:
                    raise
                skipped.append(str(f))
                continue
            labels.append(label)
            names.append(f"{cls}/{f.name}")
    if not images:
        raise CnnlensError(
            f"no readable images under {root} (extensions: {', '.join(IMAGE_EXTENSIONS)})"
            + (f"; {len(skipped)} bad files skipped" if skipped else "")
        )
    batch = _stack(images, names, size, resize_to)
    return ImageDataset(root.name, "all", batch, torch.tensor(labels, dtype=torch.long), classes, names, skipped)
