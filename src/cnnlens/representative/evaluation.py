"""Reuse evaluation of Representative Interpretations: RI paper Table 1 (docs/algorithms.md §5, RI §6.2–6.4).

Per seed: resample R (``per_class`` reference images per ground-truth class, labels used only for
this sampling), the unseen set S, the boundary sample Q and the k-means++ initialisation
(|V| = 10 × #classes on flattened ψ). The reference image nearest each k-means centre is
interpreted. Every unseen image e is explained by a reused interpretation and scored with AD/AI
in the ``keep`` mode of §3 (top 20 % pixels kept, rest black; c = Class(e)) through the one
shared implementation :func:`cnnlens.metrics.average_drop_increase`.

- RI: the covering polytope (several → the one whose input is nearest by Eq. 6; none → e's
  nearest centre's), its channel weights reused unchanged.
- Grad-CAM, Grad-CAM++, Score-CAM: the channel weights of e's nearest centre image, reused on e.
- ACE (opt-in, ``methods=(..., "ace")``): one ACE run per k-means cluster of R (RI §6.4; the
  cluster's images of its majority class, at most ``ace_params["max_images"]`` = 50), reused on
  the unseen images nearest to that cluster's centre (RI §6.1), keep mask = segments added in
  importance order until more than ``keep`` of the pixels are kept
  (:func:`cnnlens.representative.ace.ace_reuse`).

The CAM channel weights and maps come from the attribution package's reusable steps
(:func:`cnnlens.attribution.cam.cam_weights`, :func:`~cnnlens.attribution.cam.weighted_map`), so
reused maps follow exactly the definitions of ``explain(..., "gradcam"|"gradcam++"|"scorecam")``.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch

from .. import seeding, validation
from .._io import atomic_write_text
from .._progress import bar as progress_bar
from ..attribution.cam import CAM_METHODS, cam_weights, weighted_map
from ..errors import CnnlensError
from ..explanation import minmax_normalize, upsample

if TYPE_CHECKING:
    from .core import RepresentativeInterpreter

__all__ = ["ReuseTable", "evaluate_reuse", "precision_at_k", "CAM_METHODS"]
_LABELS = {"ri": "RI", "gradcam": "Grad-CAM", "gradcam++": "Grad-CAM++", "scorecam": "Score-CAM", "ace": "ACE"}
_REUSE_METHODS = ("ri", *CAM_METHODS, "ace")


def _cam_maps(psi: torch.Tensor, weights: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """A reused CAM map: minmax(upsample(ReLU(Σ_k w_k ψ^k))) ``(N, H, W)`` (the attribution
    package's map builder, §2)."""
    return minmax_normalize(upsample(weighted_map(weights, psi).clamp(min=0), size))


def precision_at_k(ranked: Sequence[torch.Tensor] | torch.Tensor, labels: torch.Tensor, query_labels: torch.Tensor,
                   k: int) -> float:
    """Mean over queries of |{top-k ranked with the query's label}| / min(k, |ranked|)
    (queries with an empty ranking are skipped). ``labels`` are the reference labels."""
    hits, n = 0.0, 0
    for r, ql in zip(ranked, query_labels.tolist()):
        r = r[:k]
        if r.numel() == 0:
            continue
        hits += float((labels[r.to(labels.device)] == ql).float().mean())
        n += 1
    return hits / n if n else float("nan")


# ---------------------------------------------------------------------------------------------
@dataclasses.dataclass
class ReuseTable:
    """RI Table 1 for one model and dataset (§5): mAD/mAI (×100) mean ± std over seeds.

    Attributes:
        per_seed: per method, a list of per-seed dicts (``mAD``, ``mAI`` in %, ``mismatch``).
        coverage: per-seed coverage rate of RI (share of S covered by some polytope of V).
        precision: ``{"ri@k": [...], "euclid@k": [...]}`` per seed (needs reference labels).
        meta: sizes, seeds, layer, model/dataset names.
    """

    per_seed: dict[str, list[dict[str, float]]]
    coverage: list[float]
    precision: dict[str, list[float]]
    meta: dict[str, Any]

    @staticmethod
    def _ms(values: list[float]) -> tuple[float, float]:
        t = torch.tensor(values, dtype=torch.float64)
        return float(t.mean()), float(t.std(unbiased=False)) if t.numel() > 1 else 0.0

    def summary(self) -> dict[str, dict[str, float]]:
        """Per method: mAD, mAD_std, mAI, mAI_std, mismatch (share of S whose class differs from
        the interpreted image's), all in %."""
        out = {}
        for m, rows in self.per_seed.items():
            ad, ad_s = self._ms([r["mAD"] for r in rows])
            ai, ai_s = self._ms([r["mAI"] for r in rows])
            mm, _ = self._ms([r["mismatch"] for r in rows])
            out[m] = {"mAD": ad, "mAD_std": ad_s, "mAI": ai, "mAI_std": ai_s, "mismatch": mm}
        return out

    def headline_holds(self) -> dict[str, bool]:
        """The paper's headline: RI's mAD below every reused CAM's, and its mAI above."""
        s = self.summary()
        cams = [m for m in s if m != "ri"]
        if "ri" not in s or not cams:
            return {}
        return {"mAD_lowest": all(s["ri"]["mAD"] < s[m]["mAD"] for m in cams),
                "mAI_highest": all(s["ri"]["mAI"] > s[m]["mAI"] for m in cams)}

    def to_markdown(self) -> str:
        """The table in the paper's layout (rows methods; mAD ↓, mAI ↑) plus coverage/precision."""
        meta = self.meta
        lines = [
            f"**{meta.get('model', '?')} / {meta.get('dataset', '?')}**, ψ = `{meta.get('layer')}`; "
            f"|R| = {meta.get('n_reference')}, |S| = {meta.get('n_unseen')}, |V| = {meta.get('n_centres')}, "
            f"|Q| = {meta.get('n_boundaries')}, seeds = {meta.get('seeds')}",
            "",
            "| method | mAD (%) ↓ | mAI (%) ↑ | class ≠ interpreted image's (%) |",
            "|---|---|---|---|",
        ]
        for m, r in self.summary().items():
            lines.append(f"| {_LABELS.get(m, m)} | {r['mAD']:.2f} ± {r['mAD_std']:.2f} | "
                         f"{r['mAI']:.2f} ± {r['mAI_std']:.2f} | {r['mismatch']:.1f} |")
        if self.coverage:
            c, cs = self._ms([100 * v for v in self.coverage])
            lines += ["", f"RI coverage rate: {c:.1f} ± {cs:.1f} % of S covered by a polytope of V"]
        if self.precision:
            parts = []
            for key, vals in self.precision.items():
                v, vs = self._ms([100 * x for x in vals])
                parts.append(f"{key} {v:.1f} ± {vs:.1f} %")
            lines.append("Precision against labels (queries = the |V| interpreted images): " + ", ".join(parts))
        h = self.headline_holds()
        if h:
            lines.append(f"Paper headline (RI mAD lowest: {'yes' if h['mAD_lowest'] else 'no'}; "
                         f"RI mAI highest: {'yes' if h['mAI_highest'] else 'no'})")
        return "\n".join(lines) + "\n"

    def to_dict(self) -> dict[str, Any]:
        return {"summary": self.summary(), "per_seed": self.per_seed, "coverage": self.coverage,
                "precision": self.precision, "meta": self.meta, "headline": self.headline_holds()}

    def to_json(self, path: str | os.PathLike[str]) -> None:
        atomic_write_text(path, json.dumps(self.to_dict(), indent=2, default=str))


# ---------------------------------------------------------------------------------------------
def _kmeans(features: torch.Tensor, k: int, seed: int) -> torch.Tensor:
    """k-means with k-means++ initialisation (one init, seeded) on flattened ψ; centres ``(k, D)``."""
    from sklearn.cluster import KMeans

    km = KMeans(n_clusters=k, init="k-means++", n_init=1, random_state=seed)
    km.fit(features.detach().cpu().float().numpy())
    return torch.from_numpy(km.cluster_centers_).to(features.device, features.dtype)


def _sqdist(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return ((a * a).sum(1, keepdim=True) - 2 * a @ b.T + (b * b).sum(1)[None]).clamp_min(0)


def _sample_reference(labels: torch.Tensor | None, n: int, per_class: int | None, g: torch.Generator) -> torch.Tensor:
    if labels is None or per_class is None:
        return torch.arange(n)
    labels = torch.as_tensor(labels).cpu().long()
    if labels.numel() != n:
        raise CnnlensError(f"reference_labels has {labels.numel()} entries for {n} reference images")
    parts = []
    for c in torch.unique(labels):
        idx = (labels == c).nonzero().squeeze(1)
        parts.append(idx[torch.randperm(idx.numel(), generator=g)[:per_class]])
    return torch.sort(torch.cat(parts)).values


def evaluate_reuse(ri: RepresentativeInterpreter, unseen_images: torch.Tensor, seeds: int | Sequence[int] = 5, *,
                   reference_labels: torch.Tensor | None = None, per_class: int | None = 2500,
                   n_unseen: int | None = 1000, n_centres: int | None = None,
                   methods: Sequence[str] = ("ri", *CAM_METHODS), keep: float = 0.2, ks: Sequence[int] = (5, 10),
                   model_name: str | None = None, dataset_name: str | None = None,
                   progress: bool = True, ace_params: dict[str, Any] | None = None) -> ReuseTable:
    """RI paper Table 1 (§5 reuse evaluation) for ``ri``'s model over its reference pool.

    Args:
        ri: a :class:`RepresentativeInterpreter`; its reference images are the pool R is drawn from.
        unseen_images: the pool S is drawn from ``(M, C, H, W)``.
        seeds: number of seeds (0…n−1) or the seeds themselves.
        reference_labels: ground-truth labels of the pool, used only to draw ``per_class``
            images per class (and for precision@k); ``None`` → R = the whole pool every seed.
        per_class: references per ground-truth class (paper: 2,500).
        n_unseen: |S| per seed (paper: 1,000; ``None`` = all).
        n_centres: |V| (default 10 × number of classes: of the labels, else of the predictions).
        methods: subset of ``ri``, ``gradcam``, ``gradcam++``, ``scorecam``, ``ace`` (not in the default:
            one ACE run per cluster and seed costs minutes on a CPU).
        keep: fraction of pixels kept for AD/AI (paper: 0.2).
        ks: k values of precision@k (needs ``reference_labels``).
        ace_params: options of :func:`~cnnlens.representative.ace.ace_reuse` for the ``ace`` row
            (``max_images`` = 50, ``max_random_images`` = 50, and :class:`~cnnlens.representative.ACE`'s).

    Returns:
        :class:`ReuseTable`.
    """
    from ..metrics import average_drop_increase

    methods = list(methods) if not isinstance(methods, str) else [methods]
    bad = [m for m in methods if m not in _REUSE_METHODS]
    if bad or not methods:
        raise CnnlensError(f"unknown reuse method(s) {bad}; choose from {', '.join(_REUSE_METHODS)}")
    if ace_params is not None and not isinstance(ace_params, dict):
        raise CnnlensError(f"ace_params must be a dict of ace_reuse options, got {type(ace_params).__name__}")
    if isinstance(seeds, Sequence) and not isinstance(seeds, str):
        seed_list = [validation.seed(s, "seeds") for s in seeds]
    else:
        seed_list = list(range(validation.integer("seeds", seeds, minimum=1)))  # type: ignore[arg-type]
    if not seed_list:
        raise CnnlensError("seeds must be a positive number or a non-empty list of seeds")
    per_class = validation.integer("per_class", per_class, minimum=1, allow_none=True)
    n_unseen = validation.integer("n_unseen", n_unseen, minimum=1, allow_none=True, hint="None = every unseen image")
    n_centres = validation.integer("n_centres", n_centres, minimum=1, allow_none=True)
    keep = validation.real("keep", keep, low=0, high=1, open_low=True)  # type: ignore[assignment]
    ks = [validation.integer("ks", k, minimum=1) for k in ks]  # type: ignore[misc]
    clf = ri.clf
    unseen = validation.images(clf, unseen_images, "unseen_images")
    n_pool = ri.features_.shape[0]
    labels = None if reference_labels is None else torch.as_tensor(reference_labels).cpu().long()
    # sample first (R and S per seed, from the seed's stream), then compute ψ only for the sampled
    # unseen images (their union over seeds, in pool order: all of them when n_unseen is None)
    m_u = unseen.shape[0]
    draws = []
    for seed in seed_list:
        g = seeding.run_generator(seed, "ri.reuse")
        ref_idx = _sample_reference(labels, n_pool, per_class, g)
        s_idx = torch.randperm(m_u, generator=g)[: (n_unseen or m_u)]
        draws.append((ref_idx, s_idx))
    used = torch.unique(torch.cat([s for _, s in draws]))  # sorted
    psi_u, logits_u = ri._features_logits(unseen[used.to(unseen.device)], desc="RI unseen features")
    if tuple(psi_u.shape[1:]) != ri.feature_shape:
        raise CnnlensError(f"unseen images give features {tuple(psi_u.shape[1:])}, references {ri.feature_shape}")
    if psi_u.dim() != 4:
        raise CnnlensError(f"the reuse evaluation needs a 4-D feature map at {ri.layer_name!r}")
    row = torch.full((m_u,), -1, dtype=torch.long)
    row[used] = torch.arange(used.numel())
    flat_u = psi_u.reshape(psi_u.shape[0], -1).to(ri.compute_dtype)
    cls_u = logits_u.argmax(1)
    n_classes = int(torch.unique(labels).numel()) if labels is not None else int(torch.unique(ri.predictions_).numel())
    v_count = n_centres if n_centres is not None else 10 * n_classes
    size = tuple(unseen.shape[-2:])
    per_seed: dict[str, list[dict[str, float]]] = {m: [] for m in methods}
    coverage: list[float] = []
    precision: dict[str, list[float]] = {}
    meta: dict[str, Any] = {}
    for seed, (ref_idx, s_draw) in zip(progress_bar(seed_list, desc="reuse seeds", progress=progress, leave=True),
                                       draws):
        ref_idx = ref_idx.to(ri.features_.device)
        sub = ri._resampled(ref_idx, seed)
        s_idx = s_draw.to(unseen.device)
        s_row = row[s_draw].to(flat_u.device)
        x_s, f_s, c_s = unseen[s_idx], flat_u[s_row], cls_u[s_row]
        psi_s = psi_u[s_row]
        v = min(v_count, sub.features_.shape[0])
        centres = _kmeans(sub.features_, v, seed)
        centre_ref = _sqdist(centres, sub.features_).argmin(1)  # (V,) index into sub's R
        nearest = _sqdist(f_s, centres).argmin(1)  # (E,) nearest centre of each unseen image
        centre_cls = sub.predictions_[centre_ref]
        meta = {"n_reference": int(sub.features_.shape[0]), "n_unseen": int(s_idx.numel()), "n_centres": v,
                "n_boundaries": sub.n_boundaries, "seeds": seed_list, "layer": ri.layer_name,
                "per_class": per_class if labels is not None else None, "keep": keep,
                "model": model_name, "dataset": dataset_name}
        for method in methods:
            scored = None
            centre_class = centre_cls
            if method == "ri":
                it = sub.interpret_features(sub.features_[centre_ref], centre_cls, k=0)
                q = sub.n_boundaries
                pmask = torch.zeros(v, q, dtype=torch.bool, device=f_s.device)
                for j, p in enumerate(it.boundaries):
                    pmask[j, p] = True
                proj_s = f_s @ sub.W_.T
                sides_s = (proj_s + sub.b_) >= 0
                covers = torch.zeros(f_s.shape[0], v, dtype=torch.bool, device=f_s.device)
                dist = torch.zeros(f_s.shape[0], v, device=f_s.device)
                for j in range(v):  # V ≤ a few dozen: vectorised over S and Q
                    pj = pmask[j]
                    covers[:, j] = (sides_s[:, pj] == it.sides[j, pj][None]).all(1)
                    dist[:, j] = (proj_s[:, pj] - it.projections[j, pj][None]).abs().sum(1)
                any_cov = covers.any(1)
                chosen = torch.where(any_cov, torch.where(covers, dist, torch.full_like(dist, math.inf)).argmin(1),
                                     nearest)
                coverage.append(float(any_cov.double().mean()))
                maps = sub._heatmaps(psi_s, [it.channel_weights[int(j)] for j in chosen.tolist()], size)
                assigned = chosen
                if labels is not None:
                    lab_r = labels.to(ref_idx.device)[ref_idx]
                    ql = lab_r[centre_ref]
                    for k in ks:
                        ri_rank = [c[c != centre_ref[j]] for j, c in enumerate(it.covered)]
                        d2 = _sqdist(sub.features_[centre_ref], sub.features_)
                        d2[torch.arange(v), centre_ref] = math.inf
                        eu = d2.topk(min(k, d2.shape[1] - 1), dim=1, largest=False).indices
                        precision.setdefault(f"RI@{k}", []).append(precision_at_k(ri_rank, lab_r, ql, k))
                        precision.setdefault(f"Euclid@{k}", []).append(precision_at_k(list(eu), lab_r, ql, k))
            elif method == "ace":
                from .ace import ace_reuse

                clusters = _sqdist(sub.features_, centres).argmin(1)  # k-means cluster of each reference image
                res = ace_reuse(clf, sub.reference_images, clusters, x_s, nearest, seed=seed, layer=ri.layer,
                                batch_size=ri.batch_size, progress=progress, **(ace_params or {}))
                scored = res.scores(clf, x_s, c_s, keep=keep, batch_size=ri.batch_size)
                centre_class = res.cluster_class.to(c_s.device)
                assigned = nearest
            else:
                w = cam_weights(clf, sub.reference_images[centre_ref], centre_cls, method, ri.layer,
                                ri.batch_size)
                maps = _cam_maps(psi_s, w[nearest], size)
                assigned = nearest
            if scored is None:
                scored = average_drop_increase(clf, x_s, maps, c_s, mode="keep", keep=keep, batch_size=ri.batch_size,
                                               seed=seed)
            ad, ai = scored
            mism = float((centre_class[assigned.to(centre_class.device)] != c_s).double().mean())
            per_seed[method].append({"mAD": 100 * float(ad.double().mean()), "mAI": 100 * float(ai.double().mean()),
                                     "mismatch": 100 * mism})
    return ReuseTable(per_seed=per_seed, coverage=coverage, precision=precision, meta=meta)
