"""``texture_scenes``: generated scenes with exact per-pixel concept masks (docs/algorithms.md §6.8, §9).

No real segmentation dataset exists offline (DESIGN.md "Data"), so scenes are composed from
**real textures** (scikit-image's ``brick``, ``grass`` and ``gravel`` photographs, tinted) and
solid-colour shapes on a plain background. Every pixel belongs to exactly one concept, so the
masks are exact:

==  ===========  ========================================
0   background   plain colour (random, low saturation)
1   brick        a rectangle of the brick photograph
2   grass        a rectangle of the grass photograph
3   gravel       a rectangle of the gravel photograph
4   red_disc     a solid red disc
5   blue_square  a solid blue square (never class-defining)
==  ===========  ========================================

The class is an ordered rule over which concepts appear (first match wins):

==  =================  =====================================
0   brick_and_grass    brick ∧ grass
1   gravel_no_brick    gravel ∧ ¬brick
2   red_disc           red_disc (and neither of the above)
3   plain              none of the above
==  =================  =====================================

Image ``i`` of a seed is generated from ``numpy.random.SeedSequence([seed, i])``, so any number
of images, at any size, is reproducible, and a longer set starts with the shorter one.

Example::

    >>> from cnnlens.data.texture_scenes import texture_scenes
    >>> ds = texture_scenes(8, size=32, seed=0)
    >>> ds.images.shape, ds.masks.shape, ds.concept_names[:3]
    (torch.Size([8, 3, 32, 32]), torch.Size([8, 32, 32]), ['background', 'brick', 'grass'])
"""
from __future__ import annotations

import functools
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .. import validation
from .._io import atomic_write_bytes, atomic_write_text
from ..errors import CnnlensError
from .imageset import ImageDataset

__all__ = ["TextureScenes", "texture_scenes", "load_texture_scenes", "CONCEPTS", "CLASSES",
           "CLASS_CONCEPTS", "CLASS_OBJECTS", "scene_class", "save_scene_folder"]

CONCEPTS: tuple[str, ...] = ("background", "brick", "grass", "gravel", "red_disc", "blue_square")
CLASSES: tuple[str, ...] = ("brick_and_grass", "gravel_no_brick", "red_disc", "plain")
CLASS_CONCEPTS: dict[str, tuple[str, ...]] = {
    "brick_and_grass": ("brick", "grass"),
    "gravel_no_brick": ("gravel", "brick"),
    "red_disc": ("red_disc", "brick", "grass", "gravel"),
    "plain": ("brick", "grass", "gravel", "red_disc"),
}
"""Concepts each class's defining rule mentions (positively or negatively)."""
CLASS_OBJECTS: dict[str, tuple[str, ...]] = {
    "brick_and_grass": ("brick", "grass"),
    "gravel_no_brick": ("gravel",),
    "red_disc": ("red_disc",),
    "plain": (),
}
"""Concepts whose presence defines each class — the ground truth a map of that class should
point at (``plain`` is defined by absent concepts only: no region)."""

_OBJECTS = ("brick", "grass", "gravel", "red_disc", "blue_square")
_TINT = {"brick": (1.0, 0.55, 0.45), "grass": (0.55, 1.0, 0.5), "gravel": (0.85, 0.85, 0.9)}
_SPLIT_SEEDS = {"train": 0, "test": 1, "all": 2}
_SPLIT_SIZES = {"train": 2000, "test": 500, "all": 2500}


def scene_class(present: set[str]) -> int:
    """The class index of a scene with the concepts ``present`` (the ordered rule above)."""
    if "brick" in present and "grass" in present:
        return 0
    if "gravel" in present and "brick" not in present:
        return 1
    if "red_disc" in present:
        return 2
    return 3


@functools.lru_cache(maxsize=1)
def _textures() -> dict[str, np.ndarray]:
    try:
        from skimage import data
    except ImportError as exc:  # pragma: no cover - scikit-image is a core dependency
        raise CnnlensError("texture_scenes needs scikit-image: pip install scikit-image") from exc
    out = {}
    for name in ("brick", "grass", "gravel"):
        img = np.asarray(getattr(data, name)(), dtype=np.float32)
        if img.ndim == 3:
            img = img[..., :3].mean(axis=2)
        img = img / max(float(img.max()), 1.0)
        # halve the resolution once (2x2 mean) so the texture is visible in small scenes
        h, w = (img.shape[0] // 2) * 2, (img.shape[1] // 2) * 2
        out[name] = img[:h, :w].reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))
    return out


@dataclass(eq=False)
class TextureScenes(ImageDataset):
    """An :class:`ImageDataset` with ``masks`` ``(N, H, W)`` uint8 concept indices into
    ``concept_names`` and, per class, the concepts its rule mentions (``class_concepts``)."""

    masks: torch.Tensor = field(default=None, repr=False)  # type: ignore[assignment]
    concept_names: list[str] = field(default_factory=lambda: list(CONCEPTS))
    class_concepts: dict[str, tuple[str, ...]] = field(default_factory=lambda: dict(CLASS_CONCEPTS))

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.masks is None or tuple(self.masks.shape) != (self.images.shape[0], *self.images.shape[-2:]):
            raise CnnlensError("texture_scenes: masks must be (N, H, W) like the images")

    def class_masks(self, classes: Sequence[int] | torch.Tensor | None = None) -> torch.Tensor:
        """Ground-truth regions ``(N, H, W)`` bool: per image, the pixels of the concepts whose
        presence defines class ``classes[i]`` (:data:`CLASS_OBJECTS`; default: each image's
        label). Empty for ``plain``, which no present object defines."""
        cls = self.labels if classes is None else torch.as_tensor(classes, dtype=torch.long).reshape(-1)
        if cls.numel() != self.masks.shape[0]:
            raise CnnlensError(f"classes has {cls.numel()} entries for {self.masks.shape[0]} scenes")
        if bool(((cls < 0) | (cls >= len(self.class_names))).any()):
            raise CnnlensError(f"classes must be class indices 0..{len(self.class_names) - 1}")
        out = torch.zeros(self.masks.shape, dtype=torch.bool)
        index = {n: i for i, n in enumerate(self.concept_names)}
        for c, name in enumerate(self.class_names):
            rows = (cls == c).nonzero().flatten()
            for concept in CLASS_OBJECTS.get(name, ()):
                out[rows] |= self.masks[rows] == index[concept]
        return out

    def subset(self, index: Sequence[int] | torch.Tensor | slice) -> TextureScenes:
        base = super().subset(index)
        return TextureScenes(base.name, base.split, base.images, base.labels, base.class_names, base.names,
                             masks=self.masks[self._subset_index(index)], concept_names=self.concept_names,
                             class_concepts=self.class_concepts)


def _scene(rng: np.random.Generator, size: int, cls: int) -> tuple[np.ndarray, np.ndarray]:
    tex = _textures()
    while True:
        present = {o for o in _OBJECTS if rng.random() < 0.5}
        if len(present) <= 4 and scene_class(present) == cls:
            break
    bg = rng.uniform(0.25, 0.75) + rng.uniform(-0.08, 0.08, size=3)
    for _ in range(100):
        img = np.empty((size, size, 3), np.float32)
        img[:] = np.clip(bg, 0, 1)
        mask = np.zeros((size, size), np.uint8)
        for name in ("brick", "grass", "gravel"):
            if name not in present:
                continue
            h = int(rng.integers(max(3, int(0.3 * size)), max(4, int(0.55 * size)) + 1))
            w = int(rng.integers(max(3, int(0.3 * size)), max(4, int(0.55 * size)) + 1))
            top, left = int(rng.integers(0, size - h + 1)), int(rng.integers(0, size - w + 1))
            t = tex[name]
            ty, tx = int(rng.integers(0, t.shape[0] - h + 1)), int(rng.integers(0, t.shape[1] - w + 1))
            patch = t[ty:ty + h, tx:tx + w, None] * np.asarray(_TINT[name], np.float32)
            img[top:top + h, left:left + w] = patch
            mask[top:top + h, left:left + w] = CONCEPTS.index(name)
        yy, xx = np.mgrid[0:size, 0:size]
        if "red_disc" in present:
            r = rng.uniform(0.1, 0.17) * size
            cy, cx = rng.uniform(r, size - r, size=2)
            disc = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
            img[disc] = (0.9, 0.1, 0.1)
            mask[disc] = CONCEPTS.index("red_disc")
        if "blue_square" in present:
            s = int(rng.integers(max(2, int(0.18 * size)), max(3, int(0.28 * size)) + 1))
            top, left = int(rng.integers(0, size - s + 1)), int(rng.integers(0, size - s + 1))
            img[top:top + s, left:left + s] = (0.1, 0.2, 0.9)
            mask[top:top + s, left:left + s] = CONCEPTS.index("blue_square")
        counts = np.bincount(mask.ravel(), minlength=len(CONCEPTS))
        if all(counts[CONCEPTS.index(o)] >= 0.03 * size * size for o in present):
            return np.clip(img, 0, 1), mask
    raise CnnlensError(f"texture_scenes: could not place {sorted(present)} visibly at size {size}; use size >= 16")


def texture_scenes(n: int, size: int = 64, seed: int = 0, split: str = "all") -> TextureScenes:
    """Generate ``n`` scenes of ``size``×``size`` RGB with masks; classes are balanced in
    expectation (each image draws its class uniformly). Deterministic in ``(seed, index)``."""
    validation.integer("n", n, minimum=1)
    validation.integer("size", size, minimum=16)
    imgs = np.empty((n, 3, size, size), np.float32)
    masks = np.empty((n, size, size), np.uint8)
    labels = np.empty(n, np.int64)
    for i in range(n):
        rng = np.random.default_rng(np.random.SeedSequence([int(seed), i]))
        cls = int(rng.integers(0, len(CLASSES)))
        img, mask = _scene(rng, size, cls)
        imgs[i] = img.transpose(2, 0, 1)
        masks[i] = mask
        labels[i] = cls
    names = [f"scene{seed}_{i:05d}" for i in range(n)]
    return TextureScenes("texture_scenes", split, torch.from_numpy(imgs), torch.from_numpy(labels),
                         list(CLASSES), names, masks=torch.from_numpy(masks))


def load_texture_scenes(split: str = "train") -> TextureScenes:
    """The zoo's fixed splits: ``train`` (2000, seed 0), ``test`` (500, seed 1), ``all``
    (2500, seed 2); 64×64 RGB."""
    if split not in _SPLIT_SEEDS:
        raise CnnlensError(f"texture_scenes has no split {split!r}; valid: {', '.join(_SPLIT_SEEDS)}")
    return texture_scenes(_SPLIT_SIZES[split], 64, _SPLIT_SEEDS[split], split)


def save_scene_folder(ds: TextureScenes, root: str | os.PathLike) -> Path:
    """Write ``root/<class>/<name>.png``, ``root/masks/<class>/<name>.png`` (concept-index PNGs)
    and ``root/concepts.json`` (§7 layout) atomically, file by file."""
    from io import BytesIO

    from PIL import Image

    root = Path(root)
    for i in range(len(ds)):
        cls = ds.class_names[int(ds.labels[i])]
        arr = (ds.images[i].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        for sub, a in ((Path(cls), arr), (Path("masks") / cls, ds.masks[i].numpy())):
            buf = BytesIO()
            Image.fromarray(a).save(buf, format="PNG")
            atomic_write_bytes(root / sub / f"{ds.names[i]}.png", buf.getvalue())
    atomic_write_text(root / "concepts.json", json.dumps(
        {"concepts": list(ds.concept_names), "class_concepts": {k: list(v) for k, v in ds.class_concepts.items()}},
        indent=1))
    return root
