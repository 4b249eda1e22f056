"""Streaming image sets (docs/algorithms.md §7, §11): a folder or a file list read lazily.

:class:`ImageStream` lists the files of an image folder (``root/<class>/<image>`` or a flat
folder) or takes a list of files, and decodes them only when a range is asked for — in torch
``DataLoader`` workers when ``num_workers > 0`` — so memory holds one range (a batch or a shard),
never the whole set. Each file is read and fitted exactly as the eager loaders do
(:func:`~cnnlens.data.folder.read_image`, then
:func:`~cnnlens.data.imageset.resize_center_crop` per image), so ``stream[i:j]`` is
bit-identical to ``load_image_folder(...).images[i:j]``.

Example::

    >>> import tempfile, pathlib, numpy as np
    >>> from PIL import Image
    >>> from cnnlens.data.stream import ImageStream
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> for cls in ("cat", "dog"):
    ...     (root / cls).mkdir()
    ...     for k in range(3):
    ...         Image.fromarray(np.full((8, 8, 3), 40 * k, np.uint8)).save(root / cls / f"{k}.png")
    >>> s = ImageStream(root)
    >>> len(s), s.labels.tolist(), s[1:3].shape
    (6, [0, 0, 0, 1, 1, 1], torch.Size([2, 3, 8, 8]))
    >>> [tuple(b.shape) for b in s.batches(4)]
    [(4, 3, 8, 8), (2, 3, 8, 8)]
"""
from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch

from .. import validation
from ..errors import CnnlensError, ImageReadError
from .folder import IMAGE_EXTENSIONS, is_class_folder, is_image_file, read_image
from .imageset import resize_center_crop

__all__ = ["ImageStream", "image_chunk"]


class _Files(torch.utils.data.Dataset):
    """One decoded, fitted image per index (what a DataLoader worker runs)."""

    def __init__(self, paths: Sequence[str], mode: str | None, size: Any, resize_to: int | None) -> None:
        self.paths, self.mode, self.size, self.resize_to = list(paths), mode, size, resize_to

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> torch.Tensor:
        im = read_image(self.paths[i], self.mode)
        return im if self.size is None else resize_center_crop(im, self.size, self.resize_to)


def _collate(items: list[torch.Tensor]) -> list[torch.Tensor]:
    return items


class ImageStream:
    """A lazily decoded image set: an image folder or a list of files (see the module docstring).

    Args:
        source: a folder (``root/<class>/<image>``, or flat: every image file in it) or a list of
            image files.
        size, mode, resize_to: as in :func:`~cnnlens.data.folder.load_images` (``None`` size: the
            files must all have one size).
        skip_bad: decode every file once now (one at a time) and leave the unreadable ones out
            (listed in ``.skipped``), so positions never shift mid-run; without it a bad file
            raises :class:`~cnnlens.errors.ImageReadError` when its range is read.
        num_workers: DataLoader worker processes that decode (0: in this process).

    Attributes: ``paths``, ``names`` (``<class>/<file>`` or the file name), ``labels`` (``(N,)``,
    −1 without classes), ``class_names``, ``skipped``, ``name``, ``split`` (``"all"``).
    """

    def __init__(self, source: str | os.PathLike[str] | Sequence[str | os.PathLike[str]], *,
                 size: int | tuple[int, int] | None = None, mode: str | None = "RGB",
                 resize_to: int | None = None, skip_bad: bool = False, num_workers: int = 0) -> None:
        if mode not in ("RGB", "L", None):
            raise CnnlensError(f"mode must be 'RGB', 'L' or None, got {mode!r}")
        self.num_workers = validation.integer("num_workers", num_workers, minimum=0)
        self.size, self.mode, self.resize_to = size, mode, resize_to
        self.split = "all"
        self.skipped: list[str] = []
        if isinstance(source, (str, os.PathLike)):
            paths, labels, self.class_names, self.name = _list_folder(Path(source))
        else:
            paths = [str(p) for p in source]
            labels, self.class_names, self.name = [-1] * len(paths), [], "files"
            self.names = [Path(p).name for p in paths]
        if isinstance(source, (str, os.PathLike)):
            root = Path(source)
            self.names = [str(Path(p).relative_to(root).as_posix()) for p in paths]
        if skip_bad:
            keep = []
            for i, p in enumerate(paths):
                try:
                    _Files([p], mode, None, None)[0]
                    keep.append(i)
                except ImageReadError:
                    self.skipped.append(str(p))
            paths, labels = [paths[i] for i in keep], [labels[i] for i in keep]
            self.names = [self.names[i] for i in keep]
        if not paths:
            raise CnnlensError("no readable images" + (f" ({len(self.skipped)} bad files skipped)" if self.skipped else ""))
        self.paths = list(paths)
        self.labels = torch.tensor(labels, dtype=torch.long)

    def __len__(self) -> int:
        return len(self.paths)

    def __repr__(self) -> str:
        return f"ImageStream(name={self.name!r}, images={len(self)}, classes={len(self.class_names)}, lazy)"

    def _copy(self, idx: list[int]) -> ImageStream:
        new = object.__new__(ImageStream)
        new.__dict__.update(self.__dict__)
        new.paths = [self.paths[i] for i in idx]
        new.names = [self.names[i] for i in idx]
        new.labels = self.labels[torch.tensor(idx, dtype=torch.long)] if idx else self.labels[:0]
        new.skipped = list(self.skipped)
        return new

    def subset(self, index: slice | Sequence[int] | torch.Tensor) -> ImageStream:
        """The files at ``index`` (a slice or a list of positions) as a new stream; nothing is decoded."""
        if isinstance(index, slice):
            idx = list(range(len(self)))[index]
        else:
            idx = [int(i) for i in torch.as_tensor(index).flatten().tolist()]
            bad = [i for i in idx if not 0 <= i < len(self)]
            if bad:
                raise CnnlensError(f"subset index {bad[:8]} out of range for {len(self)} images")
        return self._copy(idx)

    def read(self, start: int, stop: int) -> torch.Tensor:
        """Images ``start … stop-1`` decoded into one ``(n, C, H, W)`` tensor."""
        start, stop, _ = slice(start, stop).indices(len(self))
        return self._decode(self.paths[start:stop], self.names[start:stop])

    def __getitem__(self, index: slice) -> torch.Tensor:
        if not isinstance(index, slice) or index.step not in (None, 1):
            raise CnnlensError("an ImageStream is read by contiguous ranges: stream[i:j]")
        return self.read(*index.indices(len(self))[:2])

    def batches(self, batch_size: int, start: int = 0, stop: int | None = None) -> Iterator[torch.Tensor]:
        """Images ``start … stop-1`` in tensors of at most ``batch_size``, decoded as they are reached."""
        batch_size = validation.batch_size(batch_size)
        stop = len(self) if stop is None else min(int(stop), len(self))
        for i in range(int(start), stop, batch_size):
            yield self.read(i, min(i + batch_size, stop))

    @property
    def images(self) -> ImageStream:
        """The stream itself (so code written for :class:`ImageDataset` ``.images`` reads it by ranges)."""
        return self

    def _decode(self, paths: list[str], names: list[str]) -> torch.Tensor:
        if not paths:
            raise CnnlensError("empty image range")
        files = _Files(paths, self.mode, self.size, self.resize_to)
        if self.num_workers == 0 or len(paths) == 1:
            images = [files[i] for i in range(len(paths))]
        else:
            loader = torch.utils.data.DataLoader(files, batch_size=max(1, -(-len(paths) // self.num_workers)),
                                                 num_workers=min(self.num_workers, len(paths)),
                                                 collate_fn=_collate, shuffle=False)
            images = [im for part in loader for im in part]
        shapes = {tuple(im.shape) for im in images}
        if len(shapes) > 1:
            examples = ", ".join(f"{n}: {tuple(im.shape[-2:])}" for n, im in list(zip(names, images))[:3])
            raise CnnlensError(f"images have different sizes ({examples}, ...); pass size=(H, W) to resize them")
        return torch.stack(images)


def _list_folder(root: Path) -> tuple[list[str], list[int], list[str], str]:
    """(paths, labels, class names, name) of a class folder or a flat folder, in the eager
    loaders' order (classes sorted, files sorted within each)."""
    if not root.is_dir():
        raise CnnlensError(f"image folder not found: {root}")
    entries = sorted(root.iterdir())
    classes = [d.name for d in entries if is_class_folder(d)]
    paths: list[str] = []
    labels: list[int] = []
    if classes:
        for label, cls in enumerate(classes):
            for f in sorted((root / cls).iterdir()):
                if is_image_file(f):
                    paths.append(str(f))
                    labels.append(label)
    else:
        paths = [str(p) for p in entries if is_image_file(p)]
        labels = [-1] * len(paths)
    if not paths:
        raise CnnlensError(f"no image files under {root} (extensions: {', '.join(IMAGE_EXTENSIONS)})")
    return paths, labels, classes, root.name


def image_chunk(images: Any, start: int, stop: int) -> torch.Tensor:
    """Images ``start … stop-1`` of a tensor, an :class:`ImageDataset` or an :class:`ImageStream`."""
    if isinstance(images, ImageStream):
        return images.read(start, stop)
    x = getattr(images, "images", images)
    if not isinstance(x, torch.Tensor):
        raise CnnlensError(f"images must be a tensor, an ImageDataset or an ImageStream, got {type(images).__name__}")
    return x[start:stop]
