"""Image files and ImageFolder-layout datasets (docs/algorithms.md §7).

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
from typing import Any

import numpy as np
import torch

from .._imaging import IMAGE_EXTENSIONS
from ..errors import CnnlensError, ImageReadError, one_line
from .imageset import ImageDataset, resize_center_crop

__all__ = [
    "IMAGE_EXTENSIONS",
    "load_image_folder",
    "load_images",
    "read_image",
    "is_class_folder",
    "is_image_file",
    "IGNORED_FOLDERS",
]



# folders that are never classes: concept masks, tool/OS debris (Jupyter, macOS zips, caches)
IGNORED_FOLDERS = frozenset({"masks", "__MACOSX", "__pycache__", "@eaDir", "$RECYCLE.BIN", "System Volume Information"})


def is_class_folder(path: Path) -> bool:
    """True for a sub-folder that names a class: not hidden (``.ipynb_checkpoints``, ``.git``)
    and not one of :data:`IGNORED_FOLDERS` (``masks``, ``__MACOSX`` …)."""
    return path.is_dir() and not path.name.startswith(".") and path.name not in IGNORED_FOLDERS


def is_image_file(path: Path) -> bool:
    """True for a visible file with an image extension (macOS ``._name.png`` companions and other
    hidden files are not images)."""
    return path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".") and path.is_file()


def _pixels(im: Any, mode: str, p: Path) -> np.ndarray:
    """``(H, W)`` or ``(H, W, 3)`` float32 in [0, 1] from a PIL image, scaled by its real bit
    depth: 8-bit modes by 255, 16-bit integer images (``I;16``, 16-bit PNG/TIFF) by 65535,
    other integer depths by ``2**bits - 1``; float images must already lie in [0, 1]."""
    if im.mode.startswith("I;16") or im.mode == "I":
        a = np.asarray(im)
        bits = 16 if im.mode.startswith("I;16") or im.format == "PNG" else _tiff_bits(im)
        if bits is None:
            raise ImageReadError(
                f"cannot read image {p}: 32-bit integer pixels of unknown bit depth; "
                "save it as an 8- or 16-bit image"
            )
        grey = a.astype(np.float64) / float(2**bits - 1)
        lo, hi = float(grey.min()), float(grey.max())
        if lo < 0 or hi > 1:
            raise ImageReadError(f"cannot read image {p}: integer pixels outside the {bits}-bit range")
        grey = grey.astype(np.float32)
    elif im.mode == "F":
        grey = np.asarray(im, dtype=np.float32)
        if not np.isfinite(grey).all():
            raise ImageReadError(f"cannot read image {p}: float pixels contain NaN or inf")
        lo, hi = float(grey.min()), float(grey.max())
        if lo < -1e-6 or hi > 1 + 1e-6:
            raise ImageReadError(
                f"cannot read image {p}: float pixels lie in [{lo:.4g}, {hi:.4g}]; cnnlens needs "
                "float images in [0, 1] (rescale it, or save it as an 8/16-bit image)"
            )
        grey = np.clip(grey, 0.0, 1.0)
    else:
        return np.asarray(im.convert(mode), dtype=np.float32) / 255.0
    if mode == "RGB":
        return np.repeat(grey[:, :, None], 3, axis=2)
    return grey


def _tiff_bits(im: Any) -> int | None:
    tags = getattr(im, "tag_v2", None)
    if tags is None:
        return None
    bits = tags.get(258)
    if isinstance(bits, tuple):
        bits = bits[0] if bits else None
    return int(bits) if isinstance(bits, int) and 1 <= bits <= 32 else None


def read_image(path: str | os.PathLike[str], mode: str | None = "RGB") -> torch.Tensor:
    """Read one image file as ``(C, H, W)`` float in [0, 1]. ``mode``: ``"RGB"`` (3 channels),
    ``"L"`` (1 channel) or ``None`` (grey files give 1 channel, all others 3).

    The EXIF orientation is applied (a phone photo comes out upright). Pixels are scaled by the
    file's real bit depth: 16-bit PNG/TIFF by 65535 (not clipped to white), float TIFFs must
    hold values in [0, 1] (else a clear error). Decompression bombs (more pixels than PIL's
    ``Image.MAX_IMAGE_PIXELS``), truncated and corrupt files raise
    :class:`~cnnlens.errors.ImageReadError` naming the file, so ``skip_bad`` can skip them.
    """
    import warnings

    from PIL import Image, ImageOps

    if mode not in ("RGB", "L", None):
        raise CnnlensError(f"mode must be 'RGB', 'L' or None, got {mode!r}")
    p = Path(path)
    if not p.exists():
        raise ImageReadError(f"image file not found: {p}")
    if p.is_dir():
        raise ImageReadError(f"{p} is a folder, not an image file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(p) as im:
                im.load()
                im = ImageOps.exif_transpose(im) or im
                if mode is None:
                    mode = "L" if im.mode in ("L", "I", "F", "1", "LA") or im.mode.startswith("I;16") else "RGB"
                arr = _pixels(im, mode, p)
    except ImageReadError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageReadError(f"cannot read image {p}: too many pixels, refused as a decompression bomb ({one_line(exc)})") from None
    except MemoryError:
        raise ImageReadError(f"cannot read image {p}: not enough memory to decode it") from None
    except Exception as exc:  # UnidentifiedImageError, OSError, SyntaxError, struct/zlib errors …
        raise ImageReadError(f"cannot read image {p}: {one_line(exc)}") from None
    t = torch.from_numpy(np.ascontiguousarray(arr))
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
    """Read ``root/<class>/<image>`` (§7). Classes are the sorted sub-folder names; files
    with an image extension are read in sorted order. A corrupt file raises
    :class:`ImageReadError` naming it, or is skipped and listed in ``.skipped`` with
    ``skip_bad=True``. ``size``/``resize_to`` as in :func:`load_images`. Folders named ``masks`` (concept masks),
    hidden folders (``.ipynb_checkpoints``) and ``__MACOSX`` are not classes; hidden files
    (``._x.png``) are not images."""
    root = Path(root)
    if not root.is_dir():
        raise CnnlensError(f"image folder not found: {root}")
    classes = sorted(d.name for d in root.iterdir() if is_class_folder(d))
    if not classes:
        raise CnnlensError(f"{root} has no class sub-folders; expected root/<class>/<image files>")
    images: list[torch.Tensor] = []
    labels: list[int] = []
    names: list[str] = []
    skipped: list[str] = []
    for label, cls in enumerate(classes):
        for f in sorted((root / cls).iterdir()):
            if not is_image_file(f):
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
