"""Pictures and file names for the command line and the report: PNG bytes, image grids and
captioned tiles, and safe file-name parts.

One rule for file names (:func:`safe_name`): ASCII letters, digits, ``-`` and ``_`` are kept,
every other character becomes ``_``, and the result is cut to 50 characters. It is the strictest
of the rules the command line used before (ASCII only; the shortest length cap, the gallery's
50) and keeps every name the tests and goldens write. Method labels in file names write ``+`` as
``p`` first (:func:`method_slug`: ``gradcam++`` → ``gradcampp``), as ``explain`` and
``evaluate`` always did.

Example::

    >>> safe_name("a cat/dog.png")
    'a_cat_dog_png'
    >>> method_slug("gradcam++")
    'gradcampp'
    >>> file_stem("digit0.png"), file_stem("n0001")
    ('digit0', 'n0001')
"""
from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

import numpy as np

from .errors import CnnlensError

__all__ = ["safe_name", "method_slug", "file_stem", "png_bytes", "data_uri", "to_rgb_uint8", "grid_png", "tile_row",
           "stack_rows", "NAME_LIMIT"]

NAME_LIMIT = 50  # characters of one safe file-name part
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")
#: file endings read as images (also cnnlens.data.folder's list)
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


def safe_name(text: Any, limit: int = NAME_LIMIT) -> str:
    """``text`` as one file-name part: ASCII letters/digits/``-``/``_`` kept, others ``_``, at most ``limit`` characters."""
    return "".join(c if c in _NAME_CHARS else "_" for c in str(text))[:limit]


def method_slug(name: str) -> str:
    """A method or row label in a file name: ``+`` written as ``p``, then :func:`safe_name`."""
    return safe_name(str(name).replace("+", "p"))


def file_stem(name: str) -> str:
    """``digit0.png`` → ``digit0`` (image names from files keep their extension; others are kept whole)."""
    p = Path(str(name))
    return p.stem if p.suffix.lower() in IMAGE_EXTENSIONS else str(name)


def png_bytes(picture: Any, *, min_side: int | None = None) -> bytes:
    """PNG bytes of a picture: encoded bytes (returned as they are), a matplotlib figure, a
    ``uint8`` array ``(H, W)`` / ``(H, W, 3)`` or a PIL image. ``min_side`` enlarges a smaller
    picture (nearest neighbour, a whole factor) so its short side is at least that many pixels."""
    if isinstance(picture, (bytes, bytearray)):
        return bytes(picture)
    bio = io.BytesIO()
    if hasattr(picture, "savefig"):  # matplotlib figure
        picture.savefig(bio, format="png", dpi=100, bbox_inches="tight")
        return bio.getvalue()
    from PIL import Image

    if isinstance(picture, np.ndarray):
        picture = Image.fromarray(picture)
    if not isinstance(picture, Image.Image):
        raise CnnlensError(f"cannot save a {type(picture).__name__} as a picture")
    if min_side is not None and min(picture.size) < min_side:
        f = int(np.ceil(min_side / min(picture.size)))
        picture = picture.resize((picture.size[0] * f, picture.size[1] * f), Image.NEAREST)
    picture.save(bio, format="PNG")
    return bio.getvalue()


def data_uri(picture: Any, *, min_side: int | None = None) -> str:
    """A ``data:image/png;base64,…`` URI of a picture (anything :func:`png_bytes` takes): how the
    report and the notebook display embed images (self-contained, no files, no network)."""
    return "data:image/png;base64," + base64.b64encode(png_bytes(picture, min_side=min_side)).decode("ascii")


def to_rgb_uint8(image: np.ndarray) -> np.ndarray:
    """``(C, H, W)`` floats in ``[0, 1]`` (C = 1 or 3) → ``(H, W, 3)`` ``uint8``."""
    if image.shape[0] == 1:
        image = np.repeat(image, 3, axis=0)
    return np.round(np.clip(image.transpose(1, 2, 0), 0, 1) * 255).astype(np.uint8)


def grid_png(images: np.ndarray, columns: dict[str, Any], n_rows: int) -> bytes:
    """A grid: rows = images, columns = the image then each entry of ``columns`` (title → one
    ``uint8`` picture per row); a header row names the columns. Small pictures (28×28) are
    enlarged (nearest) so a cell is at least 96 pixels."""
    from PIL import Image, ImageDraw

    h, w = images.shape[1], images.shape[2]
    scale = max(1, -(-96 // max(h, w)))
    ch, cw = h * scale, w * scale
    titles = ["image", *columns]
    header = 16
    canvas = Image.new("RGB", (cw * len(titles), header + ch * n_rows), "white")
    draw = ImageDraw.Draw(canvas)
    for j, title in enumerate(titles):
        draw.text((j * cw + 3, 2), title[: max(4, cw // 7)], fill="black")
    for i in range(n_rows):
        cells = [images[i], *(pics[i] for pics in columns.values())]
        for j, cell in enumerate(cells):
            pic = Image.fromarray(np.ascontiguousarray(cell)).resize((cw, ch), Image.NEAREST)
            canvas.paste(pic, (j * cw, header + i * ch))
    return png_bytes(canvas)


def tile_row(images: Any, captions: list[str], cell: int):
    """One PIL row of square cells with a caption under each: ``images`` are ``(3, H, W)``
    tensors in ``[0, 1]`` or ``uint8`` ``(H, W, C)`` arrays."""
    from PIL import Image, ImageDraw

    pad = 14
    row = Image.new("RGB", (cell * len(captions), cell + pad), "white")
    draw = ImageDraw.Draw(row)
    for j, (img, cap) in enumerate(zip(images, captions)):
        arr = img if isinstance(img, np.ndarray) else (img.clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 255).round().astype(np.uint8)
        if arr.shape[-1] == 1:
            arr = np.repeat(arr, 3, axis=-1)
        row.paste(Image.fromarray(arr).resize((cell, cell), Image.NEAREST), (j * cell, 0))
        draw.text((j * cell + 2, cell + 1), cap[: cell // 6], fill="black")
    return row


def stack_rows(rows: list[Any]):
    """PIL rows stacked top to bottom on a white sheet as wide as the widest."""
    from PIL import Image

    sheet = Image.new("RGB", (max(r.width for r in rows), sum(r.height for r in rows)), "white")
    y = 0
    for r in rows:
        sheet.paste(r, (0, y))
        y += r.height
    return sheet
