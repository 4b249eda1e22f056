"""Representative Interpretations (RI paper; docs/algorithms.md §5): boundaries, greedy cover, heatmaps, ranking.

Example::

    >>> import torch
    >>> from torch import nn
    >>> from cnnlens import Classifier, RepresentativeInterpreter
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 8),
    ...                     nn.ReLU(), nn.Linear(8, 3)).eval()
    >>> reference = torch.rand(200, 1, 8, 8)
    >>> with torch.no_grad():  # an untrained net: centre its logits so that it predicts several classes
    ...     net[-1].bias -= net(reference).mean(0)
    >>> clf = Classifier(net, feature_layer="1")
    >>> ri = RepresentativeInterpreter(clf, reference, n_boundaries=20, seed=0)
    >>> it = ri.interpret(torch.rand(2, 1, 8, 8))
    >>> len(it), it.maps.shape
    (2, torch.Size([2, 8, 8]))
    >>> c = it.counts[0]; c["C_and_D"] <= c["delta"]
    True
"""
from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from .. import seeding, validation
from .._progress import bar as progress_bar
from ..attribution.cam import weighted_map
from ..classifier import Classifier
from ..errors import CnnlensError
from ..explanation import minmax_normalize, upsample
from .greedy import greedy_cover

__all__ = ["RepresentativeInterpreter", "Interpretation", "DEFAULT_BATCH_SIZE"]

DEFAULT_BATCH_SIZE = 64

# activations / layers that make the head G not piecewise linear (§5 warning)
_NON_PL = (
    nn.Sigmoid, nn.Tanh, nn.Softmax, nn.Softmin, nn.Softmax2d, nn.GELU, nn.SiLU, nn.ELU, nn.CELU,
    nn.SELU, nn.Softplus, nn.Mish, nn.Hardswish, nn.Tanhshrink, nn.Softsign, nn.LogSigmoid,
    nn.LayerNorm, nn.GroupNorm, nn.MultiheadAttention, nn.Bilinear,
)
# layers that are linear maps without parameters (they do not count as a hidden layer)
_PASSIVE = (
    nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Flatten, nn.Identity, nn.AdaptiveAvgPool2d,
    nn.AvgPool2d, nn.AdaptiveAvgPool1d,
)


@dataclasses.dataclass
class _Boundaries:
    """The sampled linear boundaries Q (§5, Eq. 2): ⟨W_h, t⟩ + b_h = 0."""

    W: torch.Tensor  # (Q, D) in the compute dtype (float32; float64 for a float64 model), flattened ∂ΔG/∂t at ψ(x′)
    b: torch.Tensor  # (Q,)
    sample: torch.Tensor  # (Q,) reference indices x′ they were computed from
    top2: torch.Tensor  # (Q, 2) the two classes of ΔG at each x′


class Interpretation:
    """Representative interpretations of a batch of B inputs (§5, RI §3–5).

    Attributes:
        targets: ``(B,)`` predicted class of each input (Class(x)).
        boundaries: list of B int64 tensors, the chosen P(x) as indices into Q, in greedy order.
        covered: list of B int64 tensors, the covered reference indices ranked by Eq. 6
            (ascending distance; ties by reference index).
        distances: list of B tensors, the Eq. 6 distance of each covered image (same order).
        counts: list of B dicts with ``C``, ``C_minus_D``, ``C_and_D``, ``delta``, ``P``.
        channel_weights: list of B ``(|P|, K)`` tensors: α of each boundary of P (Eq. 5), each
            flipped so that x is on the positive side.
        maps: ``(B, H, W)`` the heatmap of each input (§5 heatmap; values in [0, 1]).
        neighbours: ``(B, k)`` int64 Euclidean nearest reference images in ψ-space (RI Fig. 2),
            ``neighbour_distances`` their distances.
        inputs: ``(B, C, H, W)`` the input images (``None`` from :meth:`~RepresentativeInterpreter.interpret_features`),
            shown by :meth:`to_html` and :meth:`plot`.
    """

    def __init__(self, interpreter: RepresentativeInterpreter, targets: torch.Tensor, sides: torch.Tensor,
                 projections: torch.Tensor, boundaries: list[torch.Tensor], covered: list[torch.Tensor],
                 distances: list[torch.Tensor], counts: list[dict[str, int]],
                 channel_weights: list[torch.Tensor], maps: torch.Tensor | None,
                 neighbours: torch.Tensor, neighbour_distances: torch.Tensor,
                 inputs: torch.Tensor | None = None) -> None:
        self.interpreter = interpreter
        self.inputs = inputs  # the input images (set by interpret(); None from interpret_features)
        self.targets = targets
        self.sides = sides  # (B, Q) bool side of each input for every boundary of Q
        self.projections = projections  # (B, Q) ⟨W_h, ψ(x)⟩
        self.boundaries = boundaries
        self.covered = covered
        self.distances = distances
        self.counts = counts
        self.channel_weights = channel_weights
        self.maps = maps
        self.neighbours = neighbours
        self.neighbour_distances = neighbour_distances

    def __len__(self) -> int:
        return int(self.targets.shape[0])

    def __repr__(self) -> str:
        from ..display.representative import summary

        return summary(self)

    def _repr_html_(self) -> str:
        return self.to_html()

    def to_html(self, max_inputs: int = 4, k: int = 6) -> str:
        """A self-contained HTML block (what Jupyter shows): per input (the first ``max_inputs``) its
        class and counts, its heatmap over the input, the top-``k`` covered reference images with
        the reused heatmap and the ``k`` Euclidean neighbours."""
        from ..display.representative import to_html

        return to_html(self, max_inputs, k)

    def plot(self, index: int = 0, k: int = 5):
        """A matplotlib :class:`~matplotlib.figure.Figure` (not shown; ``fig.savefig(path)``) for
        input ``index``: the input and its heatmap, the top-``k`` covered reference images with the
        reused heatmap, and the ``k`` Euclidean neighbours."""
        from ..display.representative import plot

        return plot(self, index, k)

    def _which(self, n_images: int, index: int | Sequence[int] | torch.Tensor | None) -> list[int]:
        if index is None:
            if len(self) == 1:
                return [0] * n_images
            if n_images == len(self):
                return list(range(n_images))
            raise CnnlensError(
                f"this interpretation holds {len(self)} inputs and {n_images} images were given: "
                "pass index= (one interpretation for all images, or one index per image)"
            )
        if isinstance(index, int):
            idx = [index] * n_images
        else:
            idx = [int(i) for i in torch.as_tensor(index).flatten().tolist()]
            if len(idx) != n_images:
                raise CnnlensError(f"index has {len(idx)} entries for {n_images} images")
        bad = [i for i in idx if not 0 <= i < len(self)]
        if bad:
            raise CnnlensError(f"index {bad[0]} out of range for an interpretation of {len(self)} inputs")
        return idx

    def heatmap(self, images: torch.Tensor, index: int | Sequence[int] | torch.Tensor | None = None,
                features: torch.Tensor | None = None) -> torch.Tensor:
        """The heatmap of P(x) on ``images`` ``(M, C, H, W)``, reusing x's channel weights
        unchanged (§5 heatmap): per boundary ReLU(Σ_k α_k ψ^k), upsampled (bilinear) and
        min-max normalised like Grad-CAM, then averaged over P.

        ``index`` picks the interpretation: ``None`` → the only one (one input) or one per image
        (as many images as inputs); an int → that one for every image; a sequence → per image.
        ``features`` may pass precomputed ψ(images). Returns ``(M, H, W)`` in [0, 1].
        """
        ri = self.interpreter
        images = validation.images(ri.clf, images, "images")
        idx = self._which(images.shape[0], index)
        psi = features if features is not None else ri._features(images)
        weights = [self.channel_weights[i] for i in idx]
        return ri._heatmaps(psi, weights, tuple(images.shape[-2:]))

    def ranked(self, i: int = 0, k: int | None = None) -> torch.Tensor:
        """The top-``k`` (all when ``None``) covered reference indices of input ``i`` by Eq. 6."""
        return self.covered[i] if k is None else self.covered[i][:k]


class RepresentativeInterpreter:
    """Representative Interpretations of a classifier over a reference set (§5, RI paper).

    Computes ψ and the predicted classes of the reference set R once (chunked), samples
    ``n_boundaries`` reference images (seeded) and computes the Eq. 2 boundary of each through
    the real network head (``Classifier.head``, autograd on ψ), and keeps the side matrix
    σ_h(x′) = [⟨W_h, ψ(x′)⟩ + b_h ≥ 0] ``(|R|, |Q|)``.

    Args:
        clf: the :class:`~cnnlens.Classifier`.
        reference_images: R, ``(N, C, H, W)`` pixel-space images (unlabelled; at least two
            predicted classes).
        n_boundaries: |Q| (the paper uses 50).
        seed: seeds the sample Q.
        layer: ψ's layer (``None`` → the Classifier's feature layer, §1).
        batch_size: images per forward pass.
        unit_normals: Eq. 6 with W_h / ‖W_h‖ instead of the raw W_h.
        progress: show a progress bar while computing reference features.

    Boundaries, projections and heatmaps are computed in ``compute_dtype``: float64 for a float64
    model, float32 otherwise (a float16/bfloat16 model's ψ and ∂ΔG/∂ψ are cast up; its own forward
    and backward passes stay in its dtype).

    Attributes: ``features_`` ``(N, D)`` flattened ψ(R), ``feature_shape``, ``predictions_``
    ``(N,)``, ``W_`` ``(Q, D)``, ``b_`` ``(Q,)``, ``sample_`` ``(Q,)`` reference indices of Q,
    ``sides_`` ``(N, Q)`` bool, ``n_distinct_boundaries``, ``layer_name``.
    """

    def __init__(self, clf: Classifier, reference_images: torch.Tensor, n_boundaries: int = 50, seed: int = 0,
                 layer: str | nn.Module | None = None, batch_size: int = DEFAULT_BATCH_SIZE,
                 unit_normals: bool = False, progress: bool = False) -> None:
        if not isinstance(clf, Classifier):
            raise CnnlensError(f"clf must be a cnnlens.Classifier, got {type(clf).__name__}")
        validation.integer("n_boundaries", n_boundaries, minimum=1)
        validation.batch_size(batch_size)
        validation.seed(seed)
        if not isinstance(reference_images, torch.Tensor):
            raise CnnlensError(f"reference_images must be a (N, C, H, W) tensor, got {type(reference_images).__name__}")
        images = validation.images(clf, reference_images, "reference_images")
        self.clf = clf
        self.layer = layer
        self.batch_size = batch_size
        self.seed = seed
        self.unit_normals = validation.flag("unit_normals", unit_normals)
        self.progress = validation.flag("progress", progress)
        psi, logits = self._features_logits(images, desc="RI reference features")
        _, self.layer_name = clf.layer_module(layer, images[:1])
        self._setup(images, psi, logits.argmax(1), n_boundaries, seed)

    # ------------------------------------------------------------------ construction
    def _setup(self, images: torch.Tensor, psi: torch.Tensor, preds: torch.Tensor, n_boundaries: int, seed: int) -> None:
        """Install R (images, ψ (N, ...), predictions) and sample Q with ``seed``."""
        classes = torch.unique(preds)
        if classes.numel() < 2:
            name = self.clf.class_name(int(classes[0]))
            raise CnnlensError(
                f"the model predicts every reference image as class {name!r}; RI needs reference images "
                "of at least two predicted classes (D(x) would be empty)"
            )
        self.reference_images = images
        self.feature_shape = tuple(psi.shape[1:])
        self.compute_dtype = torch.float64 if psi.dtype == torch.float64 else torch.float32
        self.features_ = psi.reshape(psi.shape[0], -1).to(self.compute_dtype)
        self.predictions_ = preds
        n = images.shape[0]
        q = n_boundaries
        if q > n:
            warnings.warn(f"n_boundaries={q} exceeds the {n} reference images; using all {n}", UserWarning, stacklevel=3)
            q = n
        self.n_boundaries = q
        self.seed = seed
        g = seeding.run_generator(seed, "ri.boundaries")  # shared by the run (§11)
        sample = torch.randperm(n, generator=g)[:q].to(images.device)
        self.boundaries_ = self._compute_boundaries(sample)
        self.W_ = self.boundaries_.W
        self.b_ = self.boundaries_.b
        self.sample_ = sample
        self._refresh_projections()
        self.n_distinct_boundaries = self._count_distinct()
        self._check_head(images[:1])

    def _refresh_projections(self) -> None:
        self._proj_R = self.features_ @ self.W_.T  # (N, Q) ⟨W_h, ψ(x′)⟩
        self.sides_ = (self._proj_R + self.b_) >= 0  # (N, Q) side matrix
        self._sides_f = self.sides_.to(torch.float32)
        self._norms = self.W_.norm(dim=1).clamp_min(torch.finfo(torch.float32).tiny)
        self._sqnorm_R = (self.features_ ** 2).sum(1)

    def _features_logits(self, images: torch.Tensor, desc: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Chunked ψ (N, ...) and logits (N, K) without gradients."""

        chunks = images.split(self.batch_size)
        psis, logits = [], []
        with torch.no_grad():
            for c in progress_bar(chunks, desc=desc or "features", progress=self.progress, min_total=1):
                try:
                    p, z = self.clf.forward_with_features(c, self.layer)
                except (RuntimeError, TypeError) as exc:
                    raise CnnlensError(
                        f"images of shape {tuple(c.shape[1:])} do not fit the model "
                        f"({str(exc).splitlines()[0]}); give images of the size the model takes"
                    ) from exc
                psis.append(p.detach())
                logits.append(z.detach())
        return torch.cat(psis), torch.cat(logits)

    def _features(self, images: torch.Tensor) -> torch.Tensor:
        return self._features_logits(images)[0]

    def _compute_boundaries(self, sample: torch.Tensor) -> _Boundaries:
        """Eq. 2 for each sampled reference image: W = ∂ΔG/∂t at t = ψ(x′), b = ΔG − ⟨W, ψ(x′)⟩,
        ΔG = top-1 − top-2 logit of G, through ``Classifier.head`` (§5)."""
        Ws, bs, tops = [], [], []
        for idx in sample.split(self.batch_size):
            x = self.reference_images[idx]
            t0 = self.features_[idx].reshape(idx.shape[0], *self.feature_shape)
            # gradients also under the caller's no_grad / inference_mode: ordinary copies of
            # inference tensors, autograd on
            with torch.inference_mode(False), torch.enable_grad():
                x = x.clone() if x.is_inference() else x
                t = t0.clone().requires_grad_(True)
                z = self.clf.head(x, t, self.layer)
                top = z.detach().topk(2, dim=1).indices
                dg = z.gather(1, top[:, :1]).squeeze(1) - z.gather(1, top[:, 1:]).squeeze(1)
                (grad,) = torch.autograd.grad(dg.sum(), t)
            W = grad.reshape(idx.shape[0], -1).to(self.compute_dtype)
            Ws.append(W)
            bs.append(dg.detach().to(self.compute_dtype) - (W * t0.reshape(idx.shape[0], -1)).sum(1))
            tops.append(top)
        return _Boundaries(torch.cat(Ws), torch.cat(bs), sample, torch.cat(tops))

    def _count_distinct(self, tol: float = 1e-4) -> int:
        """Number of distinct hyperplanes in Q (unit rows of ±[W, b] equal up to ``tol``)."""
        wb = torch.cat([self.W_, self.b_[:, None]], dim=1).double()
        wb = wb / wb.norm(dim=1, keepdim=True).clamp_min(1e-300)
        dist = torch.minimum(torch.cdist(wb, wb), torch.cdist(wb, -wb))  # (W, b) and (−W, −b): one hyperplane
        distinct = 0
        seen = torch.zeros(wb.shape[0], dtype=torch.bool)
        for i in range(wb.shape[0]):
            if seen[i]:
                continue
            distinct += 1
            seen |= (dist[i] <= tol).cpu()
        return distinct

    def _head_modules(self, probe: torch.Tensor) -> list[nn.Module]:
        """Leaf modules that run after the feature layer finishes (the head G)."""
        module, _ = self.clf.layer_module(self.layer, probe)
        order: list[nn.Module] = []
        inside = {id(m) for m in module.modules()}

        def rec(m: nn.Module, _i: Any, _o: Any) -> None:
            order.append(m)

        leaves = [m for m in self.clf.model.modules() if not list(m.children())]
        regs = [(m, "forward", rec) for m in leaves] + [(module, "forward", rec)]
        with self.clf.hooks(*regs), torch.no_grad():
            self.clf.forward_with_features(probe, self.layer)
        pos = max(i for i, m in enumerate(order) if m is module)
        return [m for m in order[pos + 1:] if id(m) not in inside]

    def _check_head(self, probe: torch.Tensor) -> None:
        """§5 warnings: non-piecewise-linear head; GAP + one linear layer."""
        head = self._head_modules(probe)
        self.head_modules = [type(m).__name__ for m in head]
        bad = sorted({type(m).__name__ for m in head if isinstance(m, _NON_PL)})
        if bad:
            warnings.warn(
                f"the head after layer {self.layer_name!r} is not piecewise linear (it contains {', '.join(bad)}); "
                "RI's boundaries (Eq. 2) are then only tangent hyperplanes, not exact linear boundaries",
                UserWarning, stacklevel=3,
            )
        linear = [m for m in head if isinstance(m, nn.Linear)]
        others = [m for m in head if not isinstance(m, (nn.Linear, *_PASSIVE))]
        if len(linear) == 1 and not others:
            # C = the model's classes (logit width), not the highest class the references happen to be predicted as
            n_cls = self.clf.num_classes or int(linear[0].out_features)
            warnings.warn(
                f"the head after layer {self.layer_name!r} is global pooling + one linear layer: with C = {n_cls} "
                f"classes it has at most C(C-1)/2 = {n_cls * (n_cls - 1) // 2} distinct Eq. 2 boundaries, so RI "
                "degenerates; found "
                f"{self.n_distinct_boundaries} distinct among |Q| = {self.n_boundaries}. Choose an earlier layer= "
                "whose head has hidden layers",
                UserWarning, stacklevel=3,
            )

    # ------------------------------------------------------------------ interpretation
    def interpret(self, x: torch.Tensor, k: int = 10, heatmaps: bool = True) -> Interpretation:
        """P(x), ranked covered references, channel weights, heatmaps, counts and Euclidean
        neighbours for a batch ``x`` ``(B, C, H, W)`` (§5). ``k`` = number of Euclidean
        neighbours (0 = none); ``heatmaps=False`` skips the input heatmaps."""
        heatmaps = validation.flag("heatmaps", heatmaps)
        x = validation.images(self.clf, x, "images")
        psi, logits = self._features_logits(x)
        if tuple(psi.shape[1:]) != self.feature_shape:
            raise CnnlensError(
                f"images give features {tuple(psi.shape[1:])} at layer {self.layer_name!r}, but the reference "
                f"images gave {self.feature_shape}; use images of the reference images' size"
            )
        it = self.interpret_features(psi.reshape(psi.shape[0], -1), logits.argmax(1), k=k)
        it.inputs = x
        if heatmaps:
            it.maps = self._heatmaps(psi, it.channel_weights, tuple(x.shape[-2:]))
        return it

    def interpret_features(self, psi: torch.Tensor, classes: torch.Tensor, k: int = 10) -> Interpretation:
        """:meth:`interpret` on precomputed flattened ψ ``(B, D)`` and predicted classes ``(B,)``
        (no heatmaps; the hot path the benchmark times)."""
        if psi.dim() != 2 or psi.shape[1] != self.features_.shape[1]:
            raise CnnlensError(f"psi must be (B, {self.features_.shape[1]}), got {tuple(psi.shape)}")
        psi = psi.to(self.features_.dtype)
        bsz = psi.shape[0]
        proj = psi @ self.W_.T  # (B, Q)
        sides = (proj + self.b_) >= 0
        in_d = self.predictions_[None, :] != classes[:, None]  # (B, N)
        n, q = self.sides_.shape
        # chunk inputs so the (b, N, Q) side-difference tensor stays bounded (~64 MB)
        step = max(1, min(bsz, (1 << 24) // max(1, n * q)))
        boundaries, covered, dists, counts, weights = [], [], [], [], []
        w_flat = self.W_
        for s in range(0, bsz, step):
            sl = slice(s, s + step)
            differ = self.sides_[None, :, :] != sides[sl, None, :]
            res = greedy_cover(differ, in_d[sl])
            for j in range(res.order.shape[0]):
                i = s + j
                P = res.boundaries(j)
                cov = res.covered[j].nonzero().squeeze(1)
                pr = self._proj_R[cov][:, P]
                px = proj[i, P]
                if self.unit_normals:
                    pr = pr / self._norms[P]
                    px = px / self._norms[P]
                d = (pr - px).abs().sum(1)
                order = torch.sort(d, stable=True).indices
                covered.append(cov[order])
                dists.append(d[order])
                boundaries.append(P)
                c_d = int((res.covered[j] & in_d[i]).sum())
                counts.append({"C": int(cov.numel()), "C_minus_D": int(cov.numel()) - c_d, "C_and_D": c_d,
                               "delta": int(res.delta[j]), "P": int(P.numel())})
                # flip so that <W, psi(x)> + b > 0 (Eq. 5 step 1; on the boundary itself no flip)
                flip = torch.where((proj[i, P] + self.b_[P]) < 0, -1.0, 1.0)
                wk = (w_flat[P] * flip[:, None]).reshape(P.numel(), *self.feature_shape)
                weights.append(wk.reshape(P.numel(), wk.shape[1], -1).mean(2) if wk.dim() >= 3 else wk)
        if k > 0:
            kk = min(k, n)
            d2 = (psi ** 2).sum(1, keepdim=True) - 2 * psi @ self.features_.T + self._sqnorm_R[None]
            nd, nb = d2.topk(kk, dim=1, largest=False)
            nd = nd.clamp_min(0).sqrt()
        else:
            nb = torch.zeros(bsz, 0, dtype=torch.long, device=psi.device)
            nd = torch.zeros(bsz, 0, device=psi.device)
        return Interpretation(self, classes, sides, proj, boundaries, covered, dists, counts, weights, None, nb, nd)

    def _heatmaps(self, psi: torch.Tensor, weights: list[torch.Tensor], size: tuple[int, int]) -> torch.Tensor:
        """§5 heatmap of image m with boundary weights ``weights[m]`` ``(|P|, K)``:
        mean over P of minmax(upsample(ReLU(Σ_k α_k ψ^k)))."""
        if psi.dim() != 4:
            raise CnnlensError(
                f"RI heatmaps need a 4-D feature map (N, K, h, w) at layer {self.layer_name!r}, got "
                f"{tuple(psi.shape)}; choose a convolutional layer= for heatmaps"
            )
        psi = psi.to(self.compute_dtype)
        m = psi.shape[0]
        out = torch.zeros(m, *size, device=psi.device, dtype=psi.dtype)
        groups: dict[int, list[int]] = {}
        for i, w in enumerate(weights):
            groups.setdefault(id(w), []).append(i)
        for ids in groups.values():
            w = weights[ids[0]].to(psi.device, psi.dtype)
            if w.shape[0] == 0:  # P = ∅ covers everything and has no boundary to show
                continue
            sel = torch.as_tensor(ids, device=psi.device)
            for c in sel.split(max(1, self.batch_size)):
                raw = torch.relu(weighted_map(w, psi[c], shared=True))
                up = upsample(raw.reshape(-1, *raw.shape[-2:]), size)
                out[c] = minmax_normalize(up).reshape(c.numel(), w.shape[0], *size).mean(1)
        return out

    # ------------------------------------------------------------------ evaluation
    def evaluate_reuse(self, unseen_images: torch.Tensor, seeds: int | Sequence[int] = 5, **kwargs: Any):
        """RI paper Table 1 on this model (§5 reuse evaluation); see
        :func:`cnnlens.representative.evaluation.evaluate_reuse` for the options."""
        from .evaluation import evaluate_reuse

        return evaluate_reuse(self, unseen_images, seeds=seeds, **kwargs)

    def _resampled(self, index: torch.Tensor, seed: int) -> RepresentativeInterpreter:
        """A sibling interpreter on the reference subset ``index`` with Q resampled by ``seed``
        (ψ and predictions reused, no forward pass over R)."""
        new = object.__new__(RepresentativeInterpreter)
        new.clf, new.layer, new.batch_size = self.clf, self.layer, self.batch_size
        new.unit_normals, new.progress, new.layer_name = self.unit_normals, self.progress, self.layer_name
        psi = self.features_[index].reshape(index.numel(), *self.feature_shape)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            new._setup(self.reference_images[index], psi, self.predictions_[index], self.n_boundaries, seed)
        return new
