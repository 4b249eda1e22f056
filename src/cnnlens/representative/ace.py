"""Automatic Concept-based Explanations (ACE; Ghorbani, Wexler, Zou & Kim, NeurIPS 2019): the fifth
method of the RI paper's Table 1 (docs/algorithms.md §5; RI §6.1, §6.4). Written from the ACE paper.

:class:`ACE` discovers the concepts of one class from a set of discovery images and scores them;
:meth:`ACE.assign` reuses them on any image (RI §6.1: segment, drop outlying segments, assign the
rest to their nearest concept); :func:`ace_reuse` runs it the RI paper's way, once per k-means
cluster of the reference set, for the reuse evaluation; ``explain(clf, x, method="ace",
reference=images)`` gives the heatmap through the common attribution call
(``cnnlens/attribution/ace.py``).

The steps, with the choices where the paper leaves room marked *(ours)*:

1. **Segments.** SLIC superpixels (scikit-image) of every discovery image at several resolutions,
   ``n_segments = (15, 50, 80)`` (the paper's three), ``compactness=20``, ``sigma=1`` *(ours)*;
   a grey image is segmented as RGB with three equal channels (so SLIC's Lab conversion puts it on
   the L* scale its compactness is made for, as for colour images). Segments
   under ``min_area`` (1 % of the image) and exact repeats of a segment at another resolution are
   dropped *(ours)*.
2. **Patches.** Each segment's bounding box, the pixels outside the segment set to ``fill``
   (default ``"mean"``: the per-channel mean pixel of the images the concepts are learned from;
   ACE fills with the ImageNet mean grey), resized (bilinear) to the model's input size and fed
   through the model. A patch's activation is ψ (the Classifier's feature layer, as RI uses, or
   ``layer=``) averaged over its spatial positions (``pool="mean"``, default) or flattened
   (``pool="flatten"``).
3. **Concepts.** k-means (k-means++, one seeded init) with ``n_clusters = 25`` (the paper's) on
   the patch activations. Outliers (the paper's rule): each cluster keeps its ``n_members = 40``
   members closest to the centre; the distance of the farthest member kept is the concept's
   *radius*, the outlier threshold when segments of other images are assigned. Clusters whose
   members come from fewer than ``min_image_share`` (default ½) of the discovery images — the
   paper's "infrequent" concepts, one threshold here *(ours)* — or that keep fewer than
   ``min_members`` (default 3) segments are dropped.
4. **Importance: TCAV**, the paper's score. A *random set* is ``n_members`` patches drawn (seeded)
   from the segments of random images — images outside the discovery set, segmented and patched
   the same way (patches against patches, so a CAV never separates "patch" from "whole image").
   For concept k and random set i (i = 1 … ``n_random``, default 10, the reduced version of the
   paper's many random counterparts) the CAV v is the unit normal of a linear classifier of the
   concept's members (+1) against random set i (−1); TCAV_{k,i} = the share of the discovery
   images x of class c whose directional derivative ∇_ψ z_c(x) · v of the class logit is
   positive (with ``pool="mean"`` the direction is added at every position of ψ, so the derivative is
   Σ_positions ∂z_c/∂ψ · v). The null distribution: CAVs of a further random set n_random + i
   against random set i (``2 · n_random`` random sets in all; independent pairs, so one unusual
   set cannot shift every null score). A concept is *significant* when a two-sided Welch t-test
   of its ``n_random`` TCAV scores against the ``n_random`` null scores gives p < ``alpha``
   (default 0.05; both sets constant: p = 1 when equal, 0 otherwise). importance_k = mean_i
   TCAV_{k,i}; the *important* concepts are the significant ones whose importance exceeds the
   null mean. Ties in importance (a head linear in ψ makes every TCAV score 0 or 1) are ranked by
   the TCAV magnitude, the mean directional derivative over images and random sets *(ours)*.
5. **Linear classifier** *(ours)*: ridge regression on ±1 labels (centred, L2 penalty
   ``ridge`` × the mean squared norm of the centred activations), solved in closed form for all
   random sets of a concept at once (float64). TCAV only needs a linear separator; a per-pair
   logistic regression cost ~60 ms each here (25 concepts × 10 sets per run).
6. **Heatmap and reuse.** An image is segmented and patched exactly as in steps 1–2; each segment
   goes to its nearest concept centre and is dropped as an outlier when farther than that
   concept's radius. The heatmap of a pixel is the highest importance among the segments of
   important concepts that cover it (0 where none does). ``keep_masks(keep)`` (RI §6.2): segments of
   important concepts are added in order of importance (within a concept: nearest to its centre
   first) until more than ``keep`` of the pixels are kept; when all of them cover less, the mask is
   all of them.

Randomness (§11) comes from ``SeedSequence([seed, index, stream "ace.concepts"])`` where ``index``
is the explained class (``explain``) or the reference cluster (:func:`ace_reuse`): the k-means
init, the discovery-image cap and the random sets. SLIC is deterministic.

Example::

    >>> import torch
    >>> from torch import nn
    >>> import cnnlens
    >>> from cnnlens.representative import ACE
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
    ...                     nn.Linear(4, 2)).eval()
    >>> clf = cnnlens.Classifier(net, feature_layer="1")
    >>> x = torch.rand(8, 1, 16, 16)
    >>> ace = ACE(clf, x[:4], target=0, random_images=x[4:], n_segments=(4, 8), n_clusters=4, n_random=4)
    >>> ace.heatmaps(x[:2]).shape
    torch.Size([2, 16, 16])
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from .. import seeding, validation
from .._progress import bar as progress_bar
from ..classifier import Classifier
from ..errors import CnnlensError
from .ace_steps import (
    Segments,
    _activations,
    _class_gradients,
    _fill_value,
    _ridge_cavs,
    _sqdist,
    _ttest_p,
    segment_images,
    segment_patches,
)

__all__ = ["ACE", "Segments", "AceAssignment", "AceReuse", "ace_reuse", "segment_images", "segment_patches",
           "DEFAULT_BATCH_SIZE", "STREAM"]

DEFAULT_BATCH_SIZE = 64
STREAM = "ace.concepts"


# --------------------------------------------------------------------------------------------- assignment
@dataclasses.dataclass
class AceAssignment:
    """Segments of some images assigned to an :class:`ACE`'s concepts (step 6; RI §6.1).

    Attributes:
        segments: per image its :class:`Segments`.
        concept: per image ``(S,)`` int64: the nearest concept of each segment, −1 for an outlier
            (farther than that concept's radius) or when there are no concepts.
        distance: per image ``(S,)`` the Euclidean distance to that nearest concept's centre.
        size: ``(H, W)``.
    """

    segments: list[Segments]
    concept: list[torch.Tensor]
    distance: list[torch.Tensor]
    size: tuple[int, int]

    def __len__(self) -> int:
        return len(self.segments)


class ACE:
    """ACE concepts of one class, discovered from ``images`` (module docstring, steps 1–5).

    Args:
        clf: the :class:`~cnnlens.Classifier`.
        images: discovery images ``(N, C, H, W)`` in [0, 1] (ACE: images of the explained class).
        random_images: images the random sets are drawn from ``(M, C, H, W)`` (images outside the
            discovery set; at least one).
        target: the explained class c (``None`` → the class most of ``images`` are predicted as).
        n_segments: SLIC resolutions (paper: 15, 50, 80).
        n_clusters: k of k-means (paper: 25; fewer when there are fewer segments than k… refused:
            see below).
        n_members: segments kept per concept, the closest to its centre (paper: 40).
        min_image_share: a concept must have members from at least this share of the discovery images.
        min_members: a concept must keep at least this many segments.
        n_random: random sets the concept is tested against (and as many again for the null pairs).
        alpha: significance level of the t-test.
        ridge: relative L2 penalty of the linear classifier (step 5).
        pool: ``"mean"`` (spatially averaged ψ) or ``"flatten"``.
        fill: ``"mean"`` (per-channel mean of ``images`` and ``random_images``), a grey level or one value per channel.
        compactness, sigma, min_area: SLIC's compactness and smoothing, smallest segment (fraction).
        layer: ψ's layer (``None`` → the Classifier's feature layer).
        seed, index: randomness from ``SeedSequence([seed, index, stream "ace.concepts"])`` (§11).
        batch_size: patches per forward pass.
        progress: show progress bars.

    Raises:
        CnnlensError: fewer segments than ``n_clusters``, no random image, bad parameters.

    Attributes (after construction): ``target``, ``centres_`` ``(K, D)``, ``radius_`` ``(K,)``,
    ``members_`` (per concept ``(n, 2)`` int64 (image, segment) pairs, nearest first),
    ``n_images_`` ``(K,)`` discovery images per concept, ``tcav_`` ``(K, n_random)``,
    ``null_tcav_`` ``(n_random,)``, ``tcav_magnitude_`` ``(K,)``, ``p_values_`` ``(K,)``, ``importance_`` ``(K,)`` (mean TCAV),
    ``significant_`` ``(K,)``, ``important_`` ``(K,)`` bool, ``segments_`` (the discovery images'
    :class:`Segments`), ``fill_`` ``(C,)``, ``n_clusters_`` (k used), ``dropped_`` (clusters dropped as
    infrequent or too small), ``layer_name``, ``params`` (every parameter).
    """

    def __init__(self, clf: Classifier, images: torch.Tensor, random_images: torch.Tensor, *, target: int | None = None,
                 n_segments: Sequence[int] = (15, 50, 80), n_clusters: int = 25, n_members: int = 40,
                 min_image_share: float = 0.5, min_members: int = 3, n_random: int = 10, alpha: float = 0.05,
                 ridge: float = 1e-2, pool: str = "mean", fill: Any = "mean", compactness: float = 20.0,
                 sigma: float = 1.0, min_area: float = 0.01, layer: Any = None, seed: int = 0, index: int = 0,
                 batch_size: int = DEFAULT_BATCH_SIZE, progress: bool = False) -> None:
        if not isinstance(clf, Classifier):
            raise CnnlensError(f"clf must be a cnnlens.Classifier, got {type(clf).__name__}")
        p = check_params(n_segments=n_segments, n_clusters=n_clusters, n_members=n_members,
                         min_image_share=min_image_share, min_members=min_members, n_random=n_random, alpha=alpha,
                         ridge=ridge, pool=pool, compactness=compactness, sigma=sigma, min_area=min_area)
        seed = validation.seed(seed)
        index = validation.integer("index", index, minimum=0)
        batch_size = validation.batch_size(batch_size)
        progress = validation.flag("progress", progress)
        for name, t in (("images", images), ("random_images", random_images)):
            if not isinstance(t, torch.Tensor):
                raise CnnlensError(f"{name} must be a (N, C, H, W) tensor, got {type(t).__name__}")
        images = _checked(clf, images, "ACE discovery images")
        random_images = _checked(clf, random_images, "ACE random images")
        if tuple(random_images.shape[1:]) != tuple(images.shape[1:]):
            raise CnnlensError(f"random_images have shape {tuple(random_images.shape[1:])}, the discovery images "
                               f"{tuple(images.shape[1:])}; give images of one size")
        self.clf, self.layer, self.batch_size, self.progress = clf, layer, batch_size, progress
        self.seed, self.index = seed, index
        _, self.layer_name = clf.layer_module(layer, images[:1])
        self.size = (int(images.shape[2]), int(images.shape[3]))
        self._p = p
        self.fill_ = _fill_value(fill, torch.cat([images, random_images]))
        if target is None:
            target = int(torch.mode(clf.predict(images, batch_size=batch_size)).values)
        n_cls = clf.num_classes
        self.target = validation.integer("target", target, minimum=0,
                                         maximum=None if n_cls is None else n_cls - 1)
        rng = np.random.default_rng(seeding.image_sequence(seed, index, STREAM))
        km_seed = int(rng.integers(0, 2**31 - 1))

        # steps 1–2 on the discovery images
        self.segments_ = segment_images(images, p["n_segments"], p["compactness"], p["sigma"], p["min_area"])
        acts, owner = self._segment_activations(images, self.segments_, "ACE discovery segments")
        n_seg = acts.shape[0]
        k = p["n_clusters"]
        if n_seg < max(k, 2):
            raise CnnlensError(
                f"ACE: the {images.shape[0]} discovery image(s) give {n_seg} segment(s), too few to cluster into "
                f"n_clusters={k}; give more or larger images, more n_segments, or a smaller n_clusters")
        # step 3: k-means, n closest members, infrequent / small clusters dropped
        from sklearn.cluster import KMeans

        km = KMeans(n_clusters=k, init="k-means++", n_init=1, random_state=km_seed)
        lab = torch.from_numpy(km.fit_predict(acts.double().numpy())).long()
        centres = torch.from_numpy(km.cluster_centers_).to(acts.dtype)
        dist = _sqdist(acts, centres).sqrt()
        min_imgs = max(1, math.ceil(p["min_image_share"] * images.shape[0] - 1e-9))
        keep_c, members, member_acts, radius, n_images, dropped = [], [], [], [], [], []
        for j in range(k):
            idx = (lab == j).nonzero().squeeze(1)
            d = dist[idx, j]
            order = torch.sort(d, stable=True).indices
            kept = idx[order[: p["n_members"]]]
            n_img = int(torch.unique(owner[idx, 0]).numel())
            if kept.numel() < p["min_members"] or n_img < min_imgs:
                dropped.append({"cluster": j, "size": int(idx.numel()), "images": n_img})
                continue
            keep_c.append(j)
            members.append(owner[kept])
            member_acts.append(acts[kept])
            radius.append(float(dist[kept, j].max()))
            n_images.append(n_img)
        self.n_clusters_ = k
        self.dropped_ = dropped
        self.centres_ = centres[keep_c] if keep_c else centres[:0]
        self.radius_ = torch.tensor(radius, dtype=acts.dtype)
        self.members_ = members
        self.n_images_ = torch.tensor(n_images, dtype=torch.int64)

        # step 4: random sets, CAVs, TCAV, t-test
        rand_segs = segment_images(random_images, p["n_segments"], p["compactness"], p["sigma"], p["min_area"])
        r_acts, _ = self._segment_activations(random_images, rand_segs, "ACE random segments")
        if r_acts.shape[0] < 2:
            raise CnnlensError(f"ACE: the {random_images.shape[0]} random image(s) give {r_acts.shape[0]} segment(s); "
                               "the random sets need at least 2: give more random images")
        m = min(p["n_members"], r_acts.shape[0])
        n_r = p["n_random"]
        picks = [torch.from_numpy(rng.choice(r_acts.shape[0], size=m, replace=False)).long() for _ in range(2 * n_r)]
        rand_sets = torch.stack([r_acts[i] for i in picks])  # (2 n_random, m, D)
        grads = _class_gradients(clf, images, self.target, layer, p["pool"], batch_size).double()
        # null: random set n_random + i against random set i (independent pairs)
        null_cavs = torch.cat([_ridge_cavs(rand_sets[n_r + i], rand_sets[i:i + 1], p["ridge"]) for i in range(n_r)])
        self.null_tcav_ = (grads @ null_cavs.T > 0).double().mean(0)  # (n_random,)
        tcav, mag, pvals = [], [], []
        for ma in member_acts:
            cavs = _ridge_cavs(ma, rand_sets[:n_r], p["ridge"])
            deriv = grads @ cavs.T  # (images, n_random) directional derivatives
            scores = (deriv > 0).double().mean(0)
            tcav.append(scores)
            mag.append(float(deriv.mean()))
            pvals.append(_ttest_p(scores.numpy(), self.null_tcav_.numpy()))
        self.tcav_ = torch.stack(tcav) if tcav else torch.zeros(0, n_r, dtype=torch.float64)
        self.tcav_magnitude_ = torch.tensor(mag, dtype=torch.float64)
        self.p_values_ = torch.tensor(pvals, dtype=torch.float64)
        self.importance_ = self.tcav_.mean(1)
        self.significant_ = self.p_values_ < p["alpha"]
        self.important_ = self.significant_ & (self.importance_ > float(self.null_tcav_.mean()))
        self.n_discovery = int(images.shape[0])
        self.n_random_images = int(random_images.shape[0])
        self.n_segments_total = int(n_seg)
        self.params = {**p, "n_segments": tuple(p["n_segments"]), "fill": [round(float(v), 6) for v in self.fill_],
                       "target": self.target, "layer": self.layer_name, "seed": seed, "index": index,
                       "n_discovery": self.n_discovery, "n_random_images": self.n_random_images,
                       "n_discovery_segments": self.n_segments_total, "random_set_size": m,
                       "cav": "ridge", "tcav_test": "two-sided Welch t-test vs random-vs-random CAVs"}

    # ------------------------------------------------------------------ internals
    def _segment_activations(self, images: torch.Tensor, segs: list[Segments],
                             desc: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Activations of every segment of every image ``(S, D)`` and its (image, segment) ``(S, 2)``;
        each image's patches go through the model in their own chunks (batch independent)."""
        acts, owner = [], []
        for i in progress_bar(range(len(segs)), desc=desc, progress=self.progress, min_total=1):
            if len(segs[i]) == 0:
                continue
            patches = segment_patches(images[i].detach().float().cpu(), segs[i].masks(), self.fill_)
            acts.append(_activations(self.clf, patches, self.layer, self._p["pool"], self.batch_size))
            owner.append(torch.stack([torch.full((len(segs[i]),), i), torch.arange(len(segs[i]))], 1))
        if not acts:
            return torch.zeros(0, 0), torch.zeros(0, 2, dtype=torch.int64)
        return torch.cat(acts), torch.cat(owner)

    def __len__(self) -> int:
        """Number of concepts kept (after outlier removal)."""
        return int(self.centres_.shape[0])

    def __repr__(self) -> str:
        return (f"ACE(class {self.target}, {len(self)} concepts of {self.n_clusters_} clusters, "
                f"{int(self.important_.sum())} important, {self.n_discovery} discovery images, layer "
                f"{self.layer_name!r})")

    # ------------------------------------------------------------------ reuse
    def assign(self, images: torch.Tensor) -> AceAssignment:
        """Step 6 / RI §6.1 on ``images`` ``(N, C, H, W)``: segment, drop outliers, assign each
        remaining segment to its nearest concept."""
        images = _checked(self.clf, images, "images")
        if tuple(images.shape[-2:]) != self.size:
            raise CnnlensError(f"images are {tuple(images.shape[-2:])}, the ACE concepts were found on {self.size} "
                               "images; give images of that size")
        p = self._p
        segs = segment_images(images, p["n_segments"], p["compactness"], p["sigma"], p["min_area"])
        concept, distance = [], []
        for i in range(len(segs)):
            s = len(segs[i])
            if s == 0 or len(self) == 0:
                concept.append(torch.full((s,), -1, dtype=torch.int64))
                distance.append(torch.full((s,), math.inf, dtype=torch.float64))
                continue
            patches = segment_patches(images[i].detach().float().cpu(), segs[i].masks(), self.fill_)
            a = _activations(self.clf, patches, self.layer, p["pool"], self.batch_size).to(self.centres_.dtype)
            d = _sqdist(a, self.centres_).sqrt()
            dmin, j = d.min(1)
            j = torch.where(dmin <= self.radius_[j], j, torch.full_like(j, -1))
            concept.append(j)
            distance.append(dmin.double())
        return AceAssignment(segs, concept, distance, self.size)

    def _assignment(self, images: torch.Tensor | AceAssignment) -> AceAssignment:
        return images if isinstance(images, AceAssignment) else self.assign(images)

    def heatmaps(self, images: torch.Tensor | AceAssignment) -> torch.Tensor:
        """``(N, H, W)`` float32: per pixel the highest importance among the segments of important
        concepts covering it, 0 elsewhere (step 6)."""
        a = self._assignment(images)
        out = torch.zeros(len(a), *a.size)
        imp = self.importance_.float()
        for i in range(len(a)):
            j = a.concept[i]
            ok = j >= 0
            ok[ok.clone()] = self.important_[j[ok]]
            if not bool(ok.any()):
                continue
            masks = a.segments[i].masks()[ok]
            w = imp[j[ok]]
            out[i] = (masks.float() * w[:, None, None]).amax(0)
        return out

    def keep_masks(self, images: torch.Tensor | AceAssignment, keep: float = 0.2) -> torch.Tensor:
        """``(N, H, W)`` bool (RI §6.2): segments of important concepts added by importance (then
        nearest to the centre first) until more than ``keep`` of the pixels are kept."""
        keep = validation.real("keep", keep, low=0, high=1, open_low=True)
        a = self._assignment(images)
        h, w = a.size
        out = torch.zeros(len(a), h, w, dtype=torch.bool)
        imp = self.importance_
        for i in range(len(a)):
            j = a.concept[i]
            sel = (j >= 0).nonzero().squeeze(1)
            sel = sel[self.important_[j[sel]]]
            if sel.numel() == 0:
                continue
            # importance descending (ties: TCAV magnitude descending), then distance ascending, then
            # segment order (stable sorts, the least significant key first)
            order = sel[torch.sort(a.distance[i][sel], stable=True).indices]
            order = order[torch.sort(-self.tcav_magnitude_[j[order]], stable=True).indices]
            order = order[torch.sort(-imp[j[order]], stable=True).indices]
            masks = a.segments[i].masks()[order]
            cum = torch.cumsum(masks.flatten(1).int(), 0) > 0  # union after each added segment
            frac = cum.sum(1).double() / (h * w)
            stop = int((frac > keep).nonzero()[0]) if bool((frac > keep).any()) else order.numel() - 1
            out[i] = cum[stop].reshape(h, w)
        return out

    def summary(self) -> list[dict[str, Any]]:
        """One row per concept: importance, p-value, significant/important, members, images, radius."""
        return [{"concept": k, "importance": float(self.importance_[k]),
                 "tcav_magnitude": float(self.tcav_magnitude_[k]), "p_value": float(self.p_values_[k]),
                 "significant": bool(self.significant_[k]), "important": bool(self.important_[k]),
                 "members": int(self.members_[k].shape[0]), "images": int(self.n_images_[k]),
                 "radius": float(self.radius_[k])} for k in range(len(self))]

    def concept_masks(self, k: int) -> list[tuple[int, torch.Tensor]]:
        """The members of concept ``k`` as ``(discovery image index, (H, W) bool mask)``, nearest first."""
        k = validation.integer("k", k, minimum=0, maximum=max(0, len(self) - 1))
        if len(self) == 0:
            raise CnnlensError("this ACE run kept no concept")
        return [(int(i), self.segments_[int(i)].masks()[int(s)]) for i, s in self.members_[k].tolist()]


def _checked(clf: Classifier, x: torch.Tensor, what: str) -> torch.Tensor:
    if isinstance(x, torch.Tensor) and x.dim() == 4 and x.shape[0] == 0:
        raise CnnlensError(f"{what}: empty (no image); give at least one image")
    try:
        return clf.check_input(x)
    except CnnlensError as exc:
        raise CnnlensError(f"{what}: {exc}") from None


def check_params(*, n_segments: Any, n_clusters: Any, n_members: Any, min_image_share: Any, min_members: Any,
                 n_random: Any, alpha: Any, ridge: Any, pool: Any, compactness: Any, sigma: Any,
                 min_area: Any) -> dict[str, Any]:
    """Validate ACE's parameters (one line per mistake); returns them normalised."""
    if isinstance(n_segments, (int, np.integer)) and not isinstance(n_segments, bool):
        n_segments = (int(n_segments),)
    if not isinstance(n_segments, (list, tuple)) or not n_segments:
        raise CnnlensError(f"n_segments must be a non-empty list of SLIC segment counts (e.g. (15, 50, 80)), "
                           f"got {validation.shown(n_segments)}")
    segs = tuple(validation.integer("n_segments", n, minimum=1) for n in n_segments)
    return {
        "n_segments": segs,
        "n_clusters": validation.integer("n_clusters", n_clusters, minimum=1),
        "n_members": validation.integer("n_members", n_members, minimum=2),
        "min_image_share": validation.real("min_image_share", min_image_share, low=0, high=1),
        "min_members": validation.integer("min_members", min_members, minimum=1),
        "n_random": validation.integer("n_random", n_random, minimum=2, hint="the t-test needs at least 2"),
        "alpha": validation.real("alpha", alpha, low=0, high=1, open_low=True, open_high=True),
        "ridge": validation.real("ridge", ridge, low=0, open_low=True),
        "pool": validation.choice("pool", pool, ("mean", "flatten")),
        "compactness": validation.real("compactness", compactness, low=0, open_low=True),
        "sigma": validation.real("sigma", sigma, low=0),
        "min_area": validation.real("min_area", min_area, low=0, high=1, open_high=True),
    }


# --------------------------------------------------------------------------------------------- reuse (RI Table 1)
@dataclasses.dataclass
class AceReuse:
    """ACE reused on unseen images the RI paper's way (:func:`ace_reuse`).

    Attributes:
        maps: ``(E, H, W)`` heatmap of each unseen image from its cluster's concepts.
        assigned: ``(E,)`` the cluster whose concepts explain each unseen image.
        cluster_class: ``(V,)`` the class each cluster's ACE run explains (−1: no run, see ``skipped``).
        runs: per cluster its :class:`ACE` (``None`` where skipped).
        skipped: ``{cluster: reason}`` for clusters without an ACE run (their images get empty maps).
        assignments: per unseen image its :class:`AceAssignment` entry (for :meth:`keep_masks`).
    """

    maps: torch.Tensor
    assigned: torch.Tensor
    cluster_class: torch.Tensor
    runs: list[ACE | None]
    skipped: dict[int, str]
    _assign: list[AceAssignment | None]

    def keep_masks(self, keep: float = 0.2) -> torch.Tensor:
        """``(E, H, W)`` bool: each unseen image's segments added in importance order until more
        than ``keep`` of its pixels are kept (RI §6.2); empty where its cluster has no run."""
        h, w = self.maps.shape[-2:]
        out = torch.zeros(self.maps.shape[0], h, w, dtype=torch.bool)
        for e, a in enumerate(self._assign):
            run = self.runs[int(self.assigned[e])]
            if a is not None and run is not None:
                out[e] = run.keep_masks(a, keep)[0]
        return out

    def scores(self, clf: Classifier, x: torch.Tensor, targets: torch.Tensor, keep: float = 0.2,
               batch_size: int = DEFAULT_BATCH_SIZE) -> tuple[torch.Tensor, torch.Tensor]:
        """AD and AI per image (``(E,)`` float64, RI Eq. 7–8) of the keep masks: ``x`` ⊙ mask, the
        rest black, through :func:`cnnlens.metrics.average_drop_increase` (a binary mask is its
        own soft mask); an all-kept mask scores AD 0, AI 0 (the masked image is the image)."""
        from ..metrics import average_drop_increase

        masks = self.keep_masks(keep)
        full = masks.flatten(1).all(1)
        ad = torch.zeros(masks.shape[0], dtype=torch.float64)
        ai = torch.zeros(masks.shape[0], dtype=torch.float64)
        part = (~full).nonzero().squeeze(1)
        if part.numel():
            sel = part.to(x.device)
            a, i = average_drop_increase(clf, x[sel], masks[part].float().to(x.device), targets[sel],
                                         mode="soft", batch_size=batch_size)
            ad[part], ai[part] = a, i
        return ad, ai


def ace_reuse(clf: Classifier, reference_images: torch.Tensor, clusters: torch.Tensor, unseen_images: torch.Tensor,
              nearest: torch.Tensor, *, max_images: int = 50, max_random_images: int = 50, seed: int = 0,
              layer: Any = None, batch_size: int = DEFAULT_BATCH_SIZE, progress: bool = False,
              **params: Any) -> AceReuse:
    """ACE in the RI paper's reuse evaluation (RI §6.1, §6.4): one ACE run per k-means cluster of
    the reference set, reused on the unseen images nearest to that cluster's centre.

    Cluster j's run explains the class most of its images are predicted as; its discovery images
    are the cluster's images of that class, at most ``max_images`` (a seeded sample; paper: all,
    capped here for CPU time); its random images are at most ``max_random_images`` reference images
    outside the cluster. Each unseen image e is segmented, its outlying segments dropped and the
    rest assigned to the concepts of cluster ``nearest[e]`` (RI §6.1); its heatmap and keep mask
    follow :class:`ACE`. A cluster with fewer than 2 images, or whose run is refused (e.g. too few
    segments), is skipped (recorded in ``skipped``): its unseen images get empty maps.

    Args:
        clf: the :class:`~cnnlens.Classifier`.
        reference_images: R ``(N, C, H, W)``.
        clusters: ``(N,)`` int k-means cluster of each reference image (0 … V−1).
        unseen_images: S ``(E, C, H, W)``.
        nearest: ``(E,)`` the cluster whose centre is nearest each unseen image (in ψ space).
        max_images, max_random_images: caps per run (CPU time).
        seed: run j draws from ``SeedSequence([seed, j, "ace.concepts"])``.
        **params: :class:`ACE`'s options (``n_segments``, ``n_clusters``, ``n_members``, …).

    Returns:
        :class:`AceReuse` (``maps``, ``keep_masks(keep)``, ``scores(clf, x, targets, keep)``).

    In :func:`~cnnlens.representative.evaluate_reuse` this is the ``"ace"`` method.
    """
    if not isinstance(clf, Classifier):
        raise CnnlensError(f"clf must be a cnnlens.Classifier, got {type(clf).__name__}")
    max_images = validation.integer("max_images", max_images, minimum=1)
    max_random_images = validation.integer("max_random_images", max_random_images, minimum=1)
    seed = validation.seed(seed)
    batch_size = validation.batch_size(batch_size)
    ref = _checked(clf, reference_images, "reference_images")
    unseen = _checked(clf, unseen_images, "unseen_images")
    clusters = torch.as_tensor(clusters).detach().cpu().long().flatten()
    nearest = torch.as_tensor(nearest).detach().cpu().long().flatten()
    if clusters.numel() != ref.shape[0]:
        raise CnnlensError(f"clusters has {clusters.numel()} entries for {ref.shape[0]} reference images")
    if nearest.numel() != unseen.shape[0]:
        raise CnnlensError(f"nearest has {nearest.numel()} entries for {unseen.shape[0]} unseen images")
    if bool((clusters < 0).any()) or bool((nearest < 0).any()):
        raise CnnlensError("clusters and nearest must be cluster indices >= 0")
    v = int(max(int(clusters.max()), int(nearest.max()))) + 1
    fill = params.get("fill", "mean")
    if isinstance(fill, str) and fill == "mean":  # one fill for every run: the reference set's mean pixel
        params = {**params, "fill": ref.detach().float().mean((0, 2, 3)).cpu()}
    preds = clf.predict(ref, batch_size=batch_size).cpu()
    runs: list[ACE | None] = [None] * v
    cls = torch.full((v,), -1, dtype=torch.int64)
    skipped: dict[int, str] = {}
    needed = sorted(set(nearest.tolist()))
    for j in progress_bar(needed, desc="ACE runs (one per cluster)", progress=progress, min_total=1):
        members = (clusters == j).nonzero().squeeze(1)
        if members.numel() < 2:
            skipped[j] = f"{members.numel()} reference image(s) in the cluster"
            continue
        c = int(torch.mode(preds[members]).values)
        disc = members[preds[members] == c]
        rng = np.random.default_rng(seeding.image_sequence(seed, j, STREAM).spawn(1)[0])
        if disc.numel() > max_images:
            disc = torch.sort(disc[torch.from_numpy(rng.permutation(disc.numel())[:max_images])]).values
        others = (clusters != j).nonzero().squeeze(1)
        if others.numel() == 0:
            skipped[j] = "no reference image outside the cluster for the random sets"
            continue
        if others.numel() > max_random_images:
            others = torch.sort(others[torch.from_numpy(rng.permutation(others.numel())[:max_random_images])]).values
        try:
            runs[j] = ACE(clf, ref[disc.to(ref.device)], ref[others.to(ref.device)], target=c, layer=layer, seed=seed,
                          index=j, batch_size=batch_size, **params)
            cls[j] = c
        except CnnlensError as exc:
            if "too few" not in str(exc) and "need at least" not in str(exc):
                raise
            skipped[j] = str(exc)
    h, w = unseen.shape[-2:]
    maps = torch.zeros(unseen.shape[0], h, w)
    assigns: list[AceAssignment | None] = [None] * unseen.shape[0]
    for e in progress_bar(range(unseen.shape[0]), desc="ACE reuse on unseen images", progress=progress, min_total=1):
        run = runs[int(nearest[e])]
        if run is None:
            continue
        a = run.assign(unseen[e:e + 1])
        assigns[e] = a
        maps[e] = run.heatmaps(a)[0]
    return AceReuse(maps=maps, assigned=nearest, cluster_class=cls, runs=runs, skipped=skipped, _assign=assigns)
