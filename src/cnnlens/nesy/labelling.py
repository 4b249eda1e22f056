"""Semantic labelling of filters with concepts from per-pixel masks (docs/algorithms.md §6.8, NESY §4 Q4).

For each filter: take the ``m`` images with the largest filter norm; upsample the filter map to
the image size (bicubic), zero the values below the map's median (and the negative overshoot of
bicubic interpolation); for every concept, share = Σ activation on the concept's pixels /
Σ activation; sum the shares over the ``m`` images; keep the ``top`` concepts, normalise them to
sum 1; keep the concepts within ``margin`` of the best; the label is the kept concept names
joined by ``_``, each with a global per-concept counter (``wall1_cabinet2``).

Example::

    >>> import torch
    >>> from cnnlens.nesy.labelling import concept_shares
    >>> act = torch.tensor([[[1., 1.], [0., 2.]]]); masks = torch.tensor([[[0, 1], [1, 1]]])
    >>> concept_shares(act, masks, 2).tolist()  # concept 1 gets 3/4 of the activation
    [[0.25, 0.75]]
"""
from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..classifier import Classifier
from ..errors import CnnlensError
from .binarize import filter_maps, filter_norms

__all__ = ["concept_shares", "label_filters", "FilterLabel", "sanitize_concept", "check_masks",
           "label_match_test"]


@dataclass
class FilterLabel:
    """The label of one filter: ``label`` (``"grass1"``), the kept ``concepts`` with their
    normalised ``scores``, and the ``images`` (indices) it was computed from."""

    filter: int
    label: str
    concepts: list[str]
    scores: list[float]
    images: list[int]

    def to_dict(self) -> dict:
        return {"filter": self.filter, "label": self.label, "concepts": self.concepts,
                "scores": self.scores, "images": self.images}


def sanitize_concept(name: str) -> str:
    """A concept name as an ASP-safe lower-case identifier (``"Red disc"`` → ``"red_disc"``)."""
    s = re.sub(r"[^a-z0-9_]+", "_", str(name).strip().lower()).strip("_")
    s = re.sub(r"\d+$", "", s).rstrip("_")  # a trailing number would clash with the counter
    if not s:
        s = "concept"
    if not s[0].isalpha():
        s = "c_" + s
    return s


def check_masks(images: torch.Tensor, masks: torch.Tensor, n_concepts: int) -> torch.Tensor:
    """Validate concept masks ``(N, H, W)`` (integer concept indices) against ``images``."""
    if not isinstance(masks, torch.Tensor):
        raise CnnlensError(f"masks must be a (N, H, W) integer tensor, got {type(masks).__name__}")
    if masks.dim() == 4 and masks.shape[1] == 1:
        masks = masks[:, 0]
    if masks.dim() != 3:
        raise CnnlensError(f"masks must have shape (N, H, W), got {tuple(masks.shape)}")
    if masks.is_floating_point():
        if not torch.equal(masks, masks.round()):
            raise CnnlensError("masks must hold integer concept indices, got fractional values")
    n, h, w = images.shape[0], images.shape[-2], images.shape[-1]
    if masks.shape[0] != n:
        raise CnnlensError(f"there are {masks.shape[0]} masks for {n} images")
    if tuple(masks.shape[1:]) != (h, w):
        raise CnnlensError(
            f"masks are {tuple(masks.shape[1:])} pixels but the images are {(h, w)}; "
            "each mask must have its image's size"
        )
    masks = masks.long()
    if masks.numel() and (int(masks.min()) < 0 or int(masks.max()) >= n_concepts):
        raise CnnlensError(
            f"mask values must be concept indices in [0, {n_concepts}) (one per concept name), "
            f"got {int(masks.min())}..{int(masks.max())}"
        )
    return masks


def concept_shares(act: torch.Tensor, masks: torch.Tensor, n_concepts: int) -> torch.Tensor:
    """``(m, K)`` share of each image's activation ``act`` ``(m, H, W)`` (≥ 0) falling on each
    concept of ``masks`` ``(m, H, W)``; rows with no activation are 0."""
    m = act.shape[0]
    flat = act.reshape(m, -1)
    idx = masks.reshape(m, -1).to(act.device)
    sums = torch.zeros(m, n_concepts, dtype=act.dtype, device=act.device).scatter_add_(1, idx, flat)
    tot = flat.sum(dim=1, keepdim=True)
    return torch.where(tot > 0, sums / tot.clamp_min(torch.finfo(act.dtype).tiny), torch.zeros_like(sums))


def label_filters(clf: Classifier, images: torch.Tensor, masks: torch.Tensor,
                  concept_names: Sequence[str], filters: Sequence[int], layer: str | nn.Module | None = None,
                  m: int = 10, margin: float = 0.05, top: int = 10, batch_size: int = 64,
                  norms: torch.Tensor | None = None) -> list[FilterLabel]:
    """Label ``filters`` (in order: the counters follow it) with concepts (§6.8).

    ``images`` ``(N, C, H, W)`` in [0, 1]; ``masks`` ``(N, H, W)`` concept indices into
    ``concept_names``. ``norms`` (``(N, F)`` filter norms) may be given to skip recomputing them.
    """
    names = [sanitize_concept(c) for c in concept_names]
    if not names:
        raise CnnlensError("concept_names is empty")
    images = clf.check_input(images)
    masks = check_masks(images, masks, len(names))
    if m < 1 or top < 1 or margin < 0:
        raise CnnlensError(f"need m >= 1, top >= 1, margin >= 0; got m={m}, top={top}, margin={margin}")
    if norms is None:
        norms = filter_norms(clf, images, layer, batch_size=batch_size)
    F_ = norms.shape[1]
    bad = [j for j in filters if not 0 <= int(j) < F_]
    if bad:
        raise CnnlensError(f"filter(s) {bad} do not exist: the layer has {F_} filters (0..{F_ - 1})")
    filters = [int(j) for j in filters]
    if not filters:
        return []
    mm = min(m, images.shape[0])
    top_imgs = norms[:, filters].topk(mm, dim=0).indices.T  # (n_filters, mm)
    needed = torch.unique(top_imgs.flatten())
    pos = {int(i): p for p, i in enumerate(needed.tolist())}
    with torch.no_grad():
        maps = torch.cat([filter_maps(clf, images[c.to(images.device)], layer)[:, filters]
                          for c in needed.split(batch_size)])  # (U, n_filters, h, w)
    H, W = images.shape[-2:]
    counters: dict[str, int] = {}
    out: list[FilterLabel] = []
    for fi, j in enumerate(filters):
        rows = torch.tensor([pos[int(i)] for i in top_imgs[fi].tolist()])
        fmap = maps[rows, fi].unsqueeze(1).float()  # (mm, 1, h, w)
        up = F.interpolate(fmap, size=(H, W), mode="bicubic", align_corners=False)[:, 0]
        med = up.flatten(1).median(dim=1).values.view(-1, 1, 1)
        act = torch.where(up >= med, up, torch.zeros_like(up)).clamp_min(0)
        shares = concept_shares(act, masks[top_imgs[fi].to(masks.device)], len(names)).sum(dim=0)
        kk = min(top, len(names))
        vals, idx = torch.sort(-shares, stable=True)
        vals, idx = -vals[:kk], idx[:kk]
        s = vals.sum()
        norm_vals = vals / s if s > 0 else vals
        best = float(norm_vals[0])
        keep = [(int(c), float(v)) for c, v in zip(idx.tolist(), norm_vals.tolist()) if v >= best - margin and v > 0]
        if not keep:  # the filter never fires on these images
            keep = [(int(idx[0]), 0.0)]
        parts = []
        for c, _ in keep:
            counters[names[c]] = counters.get(names[c], 0) + 1
            parts.append(f"{names[c]}{counters[names[c]]}")
        out.append(FilterLabel(j, "_".join(parts), [names[c] for c, _ in keep], [v for _, v in keep],
                               top_imgs[fi].tolist()))
    return out


def label_match_test(occurrences: Sequence[tuple[str, Collection[str]]],
                     labels: Mapping[str, Collection[str]],
                     pool: Sequence[Collection[str]] | None = None,
                     n_perm: int = 10_000, seed: int = 0, return_shares: bool = False) -> dict:
    """How often a predicate's label names an expected concept, against random labels (§6.8).

    ``occurrences``: one ``(predicate, expected concepts)`` pair per counted item — e.g. each
    positive literal of a class-``c`` rule with the concepts that define ``c``, or each rule
    predicate once with every class-defining concept. ``labels``: predicate → the concepts of
    its label (:attr:`FilterLabel.concepts`). An occurrence *matches* when its predicate's
    label shares a concept with the expected ones; the observed statistic is the share of
    matching occurrences.

    Baseline (seeded, ``n_perm`` draws): the distinct predicates get labels drawn at random
    without replacement from ``pool`` — by default the predicates' own labels, i.e. a
    permutation of the labels among the predicates (the same label distribution); pass the
    labels of every filter of the layer to ask whether rule predicates are labelled differently
    from the layer's filters in general. Returns ``observed``, ``n`` (occurrences),
    ``n_predicates``, ``baseline_mean``, ``baseline_ci95`` (2.5 / 97.5 percentiles of the
    permutation shares), ``p_value`` (one-sided, P(share ≥ observed) with the +1 correction
    (1 + #{≥}) / (1 + n_perm)), ``p_value_lower`` (the same for ≤), ``n_perm``, ``seed``; with
    ``return_shares=True`` also ``shares``, the ``(n_perm,)`` permutation shares (to pool several
    models: sum ``n · shares`` over them, draw by draw).

    Example::

        >>> occ = [("f1", {"grass"}), ("f2", {"brick"}), ("f3", {"brick"})]
        >>> lab = {"f1": ["grass"], "f2": ["brick"], "f3": ["background"]}
        >>> r = label_match_test(occ, lab, n_perm=2000, seed=0)
        >>> round(r["observed"], 3), round(r["baseline_mean"], 2)
        (0.667, 0.33)
    """
    if n_perm < 1:
        raise CnnlensError(f"n_perm must be >= 1, got {n_perm}")
    occurrences = [(str(p), frozenset(e)) for p, e in occurrences]
    preds = sorted({p for p, _ in occurrences})
    missing = [p for p in preds if p not in labels]
    if missing:
        raise CnnlensError(f"no label for predicate(s) {', '.join(missing[:5])}")
    empty = ({"shares": np.full(n_perm, np.nan)} if return_shares else {}) | {
             "observed": float("nan"), "n": 0, "n_predicates": 0, "baseline_mean": float("nan"),
             "baseline_ci95": [float("nan"), float("nan")], "p_value": float("nan"),
             "p_value_lower": float("nan"), "n_perm": int(n_perm), "seed": int(seed)}
    if not occurrences:
        return empty
    own = [frozenset(labels[p]) for p in preds]
    pool_sets = own if pool is None else [frozenset(c) for c in pool]
    if len(pool_sets) < len(preds):
        raise CnnlensError(f"pool has {len(pool_sets)} labels for {len(preds)} predicates; "
                           "need at least one per predicate")
    pidx = {p: i for i, p in enumerate(preds)}
    occ_pred = np.array([pidx[p] for p, _ in occurrences])
    # match[o, l]: would occurrence o match if its predicate carried pool label l
    match = np.array([[bool(e & lab) for lab in pool_sets] for _, e in occurrences], dtype=bool)
    observed = float(np.mean([bool(e & frozenset(labels[p])) for p, e in occurrences]))
    rng = np.random.default_rng(seed)
    L, n_pred = len(pool_sets), len(preds)
    draws = np.argsort(rng.random((n_perm, L)), axis=1)[:, :n_pred]  # (n_perm, n_pred) without replacement
    shares = match[np.arange(len(occurrences))[None, :], draws[:, occ_pred]].mean(axis=1)
    eps = 1e-12
    extra = {"shares": shares} if return_shares else {}
    return extra | {"observed": observed, "n": len(occurrences), "n_predicates": n_pred,
            "baseline_mean": float(shares.mean()),
            "baseline_ci95": [float(np.percentile(shares, 2.5)), float(np.percentile(shares, 97.5))],
            "p_value": float((1 + np.sum(shares >= observed - eps)) / (1 + n_perm)),
            "p_value_lower": float((1 + np.sum(shares <= observed + eps)) / (1 + n_perm)),
            "n_perm": int(n_perm), "seed": int(seed)}
