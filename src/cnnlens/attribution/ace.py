"""ACE (Automatic Concept-based Explanations, Ghorbani et al. 2019) as the attribution method ``ace``
(docs/algorithms.md §5): concepts of the explained class discovered from reference images, reused on
each input image, through the common ``explain`` call. The algorithm is
:class:`cnnlens.representative.ACE`; this adapter only picks the discovery and random images.

Example::

    >>> import torch
    >>> from torch import nn
    >>> import cnnlens
    >>> net = nn.Sequential(nn.Conv2d(1, 1, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
    ...                     nn.Linear(1, 2)).eval()
    >>> with torch.no_grad():  # class 1 = bright images
    ...     _ = net[0].weight.fill_(1 / 9), net[0].bias.zero_(), net[-1].weight.copy_(torch.tensor([[-1.0], [1.0]]))
    ...     _ = net[-1].bias.copy_(torch.tensor([0.5, -0.5]))
    >>> clf = cnnlens.Classifier(net, feature_layer="1")
    >>> g = torch.Generator().manual_seed(0)
    >>> reference = torch.cat([0.5 * torch.rand(6, 1, 16, 16, generator=g), 0.5 + 0.5 * torch.rand(6, 1, 16, 16, generator=g)])
    >>> e = cnnlens.explain(clf, reference[-2:], "ace", reference=reference, n_segments=(4, 8), n_clusters=4,
    ...                     n_random=4)
    >>> e.maps.shape, e.method
    (torch.Size([2, 16, 16]), 'ace')
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from .. import seeding, validation
from ..classifier import Classifier
from ..errors import CnnlensError
from ..explanation import Explanation
from ..representative.ace import ACE, STREAM
from . import register

__all__ = ["ace"]


@register("ace", uses_layer=True, stochastic=True,
          description="ACE: concepts of the class found in reference images' segments, weighted by TCAV (§5)")
def ace(clf: Classifier, x: torch.Tensor, targets: torch.Tensor, *, seed: int, batch_size: int, layer: Any,
        reference: torch.Tensor | ACE | None = None, max_images: int = 50, max_random_images: int = 50,
        n_segments: Sequence[int] = (15, 50, 80), n_clusters: int = 25, n_members: int = 40,
        min_image_share: float = 0.5, min_members: int = 3, n_random: int = 10, alpha: float = 0.05,
        ridge: float = 1e-2, pool: str = "mean", fill: Any = "mean", compactness: float = 20.0,
        sigma: float = 1.0, min_area: float = 0.01, progress: bool = False) -> Explanation:
    """ACE heatmap (§5; :mod:`cnnlens.representative.ace`) of each image's target class.

    For each target class c: the discovery images are the reference images predicted as c (at most
    ``max_images``, a seeded sample), the random images the other reference images (at most
    ``max_random_images``); the concepts of c are discovered and scored (TCAV), and each input
    image of target c is segmented, its segments assigned to the concepts (outliers dropped) and
    painted with their concept's importance. ``reference`` may also be a prepared
    :class:`~cnnlens.representative.ACE` (every target must then be its class).

    Args:
        reference: ``(N, C, H, W)`` reference images (required) or an :class:`ACE`.
        max_images, max_random_images: caps on the discovery and random images per class.
        n_segments … min_area: :class:`~cnnlens.representative.ACE`'s options (paper defaults:
            SLIC at 15/50/80 segments, 25 clusters, 40 members per concept).
    """
    if reference is None:
        raise CnnlensError("method 'ace' needs reference=<(N, C, H, W) reference images> or a cnnlens.representative.ACE")
    max_images = validation.integer("max_images", max_images, minimum=1)
    max_random_images = validation.integer("max_random_images", max_random_images, minimum=1)
    progress = validation.flag("progress", progress)
    opts = dict(n_segments=n_segments, n_clusters=n_clusters, n_members=n_members, min_image_share=min_image_share,
                min_members=min_members, n_random=n_random, alpha=alpha, ridge=ridge, pool=pool, fill=fill,
                compactness=compactness, sigma=sigma, min_area=min_area)
    runs: dict[int, ACE] = {}
    if isinstance(reference, ACE):
        if reference.clf is not clf:
            raise CnnlensError("reference is an ACE run of another Classifier")
        other = sorted({int(t) for t in targets.tolist()} - {reference.target})
        if other:
            raise CnnlensError(f"reference is the ACE run of class {clf.class_name(reference.target)!r}; the targets "
                               f"include class(es) {other}: pass reference images, or target={reference.target}")
        runs[reference.target] = reference
        described = "ACE"
    else:
        if not isinstance(reference, torch.Tensor):
            raise CnnlensError(f"reference must be a (N, C, H, W) tensor of images or an ACE, got {type(reference).__name__}")
        if reference.dim() == 4 and reference.shape[0] == 0:
            raise CnnlensError("reference is empty; give reference images of the explained class and of others")
        ref = validation.images(clf, reference, "reference")
        if tuple(ref.shape[1:]) != tuple(x.shape[1:]):
            raise CnnlensError(f"reference images have shape {tuple(ref.shape[1:])}, the images "
                               f"{tuple(x.shape[1:])}; give reference images of the images' size")
        preds = clf.predict(ref, batch_size=batch_size).cpu()
        for c in sorted({int(t) for t in targets.tolist()}):
            disc = (preds == c).nonzero().squeeze(1)
            if disc.numel() == 0:
                found = ", ".join(sorted({repr(clf.class_name(int(p))) for p in preds.unique()}))
                raise CnnlensError(f"method 'ace': no reference image is predicted as class {clf.class_name(c)!r} "
                                   f"(the reference images are predicted as {found}); ACE discovers a class's concepts "
                                   "from reference images of that class")
            rng = np.random.default_rng(seeding.image_sequence(seed, c, STREAM).spawn(1)[0])
            if disc.numel() > max_images:
                disc = torch.sort(disc[torch.from_numpy(rng.permutation(disc.numel())[:max_images])]).values
            chosen = torch.zeros(preds.numel(), dtype=torch.bool)
            chosen[disc] = True
            others = (~chosen).nonzero().squeeze(1)
            if others.numel() == 0:
                raise CnnlensError(
                    f"method 'ace': every reference image is predicted as class {clf.class_name(c)!r} (one class) and "
                    "all are discovery images; ACE's random sets need reference images outside them: add images "
                    "of other classes")
            if others.numel() > max_random_images:
                others = torch.sort(others[torch.from_numpy(rng.permutation(others.numel())[:max_random_images])]).values
            runs[c] = ACE(clf, ref[disc.to(ref.device)], ref[others.to(ref.device)], target=c, layer=layer, seed=seed,
                          index=c, batch_size=batch_size, progress=progress, **opts)
        described = f"images {tuple(reference.shape)}"
    maps = torch.zeros(x.shape[0], *x.shape[-2:], device=x.device)
    for c, run in runs.items():
        sel = (targets == c).nonzero().squeeze(1)
        if sel.numel():
            maps[sel] = run.heatmaps(x[sel]).to(x.device)
    first = next(iter(runs.values()))
    recorded = {k: v for k, v in first.params.items() if k in opts}
    recorded["n_segments"] = n_segments if isinstance(n_segments, (list, tuple)) else recorded["n_segments"]
    if isinstance(fill, (str, int, float)):
        recorded["fill"] = fill
    return Explanation(
        maps=maps,
        targets=targets,
        params={"reference": described, "layer": first.layer_name, "max_images": max_images,
                "max_random_images": max_random_images, **recorded, "progress": progress,
                "cav": "ridge", "tcav_test": first.params["tcav_test"], "seed_stream": STREAM},
        info={"classes": {int(c): {"concepts": run.summary(), "n_discovery": run.n_discovery,
                                    "n_random_images": run.n_random_images, "n_clusters": run.n_clusters_,
                                    "dropped_clusters": len(run.dropped_), "fill": run.params["fill"],
                                    "null_tcav": run.null_tcav_.tolist()}
                          for c, run in runs.items()}},
    )
