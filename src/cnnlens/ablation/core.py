"""Rule-guided Dynamic Ablation (DA paper, Algorithm 1; docs/algorithms.md §4).

k dynamic circles ``(c_x, c_y, c_r)`` define a 0/1 mask ``m`` (the union of the disks, Eq. 3;
in superpixel mode the superpixels whose centroid lies inside a disk). Each iteration proposes
moved circles whose total area is ``S_bound``; a proposal is accepted when the rule still holds —
Pos-R: ``Φ(m′ ⊗ x) = Φ(x)``; Neg-R: ``Φ((J − m′) ⊗ x) ≠ Φ(x)`` — and then ``S_bound`` shrinks by
``f_c`` and ``cam += m′``. Every choice the paper leaves open follows §4.

Batched execution (§4) does not change the algorithm: for the current state of each chain
``B`` proposals are evaluated at once, the first that passes (in proposal order) is accepted,
the ones after it are discarded and not counted as iterations. The random numbers are indexed by
the iteration number — proposal ``t`` of image ``i`` always uses draw ``t`` of image ``i``'s
stream — so a discarded proposal's draw is the one the next proposal (from the new state) uses,
exactly as the literal algorithm would. Batched and ``sequential=True`` runs therefore produce the
same chain for the same stream (identical masks, up to the model's own batch-size numerics).
"""
from __future__ import annotations

import dataclasses
import math
import time
import warnings
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch

from .. import seeding, validation
from .._progress import bar as progress_bar
from ..classifier import Classifier
from ..errors import CnnlensError
from ..explanation import Explanation
from .superpixels import Segmentation, segment

__all__ = ["AblationResult", "dynamic_ablation", "rule_text"]

_BIG = 1 << 40
# elements of the (rows, segments, k) distance tensor computed at once
_MASK_CHUNK_ELEMENTS = 1 << 23


@dataclasses.dataclass
class AblationResult:
    """The result of :func:`dynamic_ablation` for a batch of ``N`` images (§4, §9).

    Attributes:
        mask: ``(N, H, W)`` bool, the final mask ``m`` (Pos-R: the minimal sufficient region;
            Neg-R: the minimal region whose removal changes the class). All ones when nothing
            was accepted.
        cam: ``(N, H, W)`` float, the attribution map ``Σ accepted m′`` normalised as
            ``cam / max(cam)`` (all zeros when nothing was accepted).
        mar: ``(N,)`` float64, ``‖m‖₀ / (H·W)`` (§3 MAR; 1.0 when nothing was accepted).
        iterations: ``(N,)`` int64, iterations counted (proposals up to and including each
            accepted one, §4) — equals ``iterations`` of the call.
        accepted: ``(N,)`` int64, accepted steps.
        accept_iterations: per image, the iteration (1 … ``iterations``) of each accepted step, in
            order — a chain whose last accept lies early has stalled (MAR ≈ ``fc``^accepts).
        evaluations: ``(N,)`` int64, model evaluations made (batched mode also counts the
            discarded speculative proposals; sequential mode equals ``iterations``).
        rule_text: one if-then rule per image, naming the class.
        targets: ``(N,)`` int64, the class ``y = Φ(x)`` the rule is about.
        rule: ``"pos"`` or ``"neg"``.
        circles: ``(N, 3, k)`` float64 final circles (rows: centre row, centre column, radius).
        segments: ``(N, H, W)`` int64 superpixel labels (pixel mode: the pixel index).
        params: every parameter of the run.
        rounds: batched model rounds (sequential: model calls).
        seconds: wall time of the chains (after segmentation).
    """

    mask: torch.Tensor
    cam: torch.Tensor
    mar: torch.Tensor
    iterations: torch.Tensor
    accepted: torch.Tensor
    evaluations: torch.Tensor
    rule_text: list[str]
    targets: torch.Tensor
    rule: str
    circles: torch.Tensor
    segments: torch.Tensor
    params: dict[str, Any]
    rounds: int = 0
    seconds: float = 0.0
    accept_iterations: list[list[int]] = dataclasses.field(default_factory=list)

    def __len__(self) -> int:
        return self.mask.shape[0]

    def __repr__(self) -> str:
        from ..display.ablation import summary

        return summary(self)

    def _repr_html_(self) -> str:
        return self.to_html()

    def to_html(self, images: torch.Tensor | None = None, max_images: int = 8) -> str:
        """A self-contained HTML block (what Jupyter shows): rule, MAR, accepted steps and per image
        (the first ``max_images``) the region P beside the cam — over ``images`` when given — with
        its if-then rule."""
        from ..display.ablation import to_html

        return to_html(self, images, max_images)

    def plot(self, images: torch.Tensor | None = None, max_images: int = 8):
        """A matplotlib :class:`~matplotlib.figure.Figure` (not shown; ``fig.savefig(path)``): one
        row per image — the image (when given), the region P with its MAR, the cam."""
        from ..display.ablation import plot

        return plot(self, images, max_images)

    def mar_summary(self) -> dict[str, float]:
        """Mean, std (population) and image count of the MAR (§3 "MAR")."""
        m = self.mar.double()
        return {"mean": float(m.mean()), "std": float(m.std(unbiased=False)), "n": int(m.numel())}

    def to_explanation(self) -> Explanation:
        """The cam as an :class:`~cnnlens.Explanation` (method ``da_pos`` / ``da_neg``); ``info``
        carries MAR, accepted steps, evaluations and the rule text per image."""
        return Explanation(
            maps=self.cam,
            targets=self.targets,
            method=f"da_{self.rule}",
            params=dict(self.params),
            info={
                "mar": self.mar.tolist(),
                "accepted": self.accepted.tolist(),
                "iterations": self.iterations.tolist(),
                "evaluations": self.evaluations.tolist(),
                "rule_text": list(self.rule_text),
                "rule": self.rule,
            },
        )


def rule_text(rule: str, class_name: str, mar: float | None = None) -> str:
    """The explicit rule of §4: Pos-R "if region P of x is present then x is classified as
    y"; Neg-R "if P is absent then x is not classified as y". ``mar`` adds P's size."""
    size = "" if mar is None else f" (P = {mar:.1%} of the image)"
    if rule == "pos":
        return f"if region P of x is present then x is classified as {class_name!r}{size}"
    return f"if region P of x is absent then x is not classified as {class_name!r}{size}"


# ---------------------------------------------------------------------------------- validation
def _check_params(rule: str, iterations: int, k: int, alpha_step: float, fc: float, batch_size: int) -> None:
    validation.choice("rule", rule, ("pos", "neg"))
    validation.integer("iterations", iterations, minimum=1)
    validation.integer("k (number of dynamic circles)", k, minimum=1)
    validation.batch_size(batch_size)
    validation.real("fc (area shrink factor)", fc, 0, 1, open_low=True)
    validation.real("alpha_step", alpha_step, low=0)


# ---------------------------------------------------------------------------------- random stream
def _default_stream(n: int, iterations: int, k: int, seed: int, first_index: int = 0) -> torch.Tensor:
    """``(N, iterations + 1, 3, k)`` float64 uniforms in [0, 1): row 0 initialises the circles,
    row t (1…iterations) is the draw of proposal t. Image i has its own seed stream
    ``(seed, first_index + i)`` (§11), so its chain does not depend on the other images."""
    out = torch.empty(n, iterations + 1, 3, k, dtype=torch.float64)
    for i, g in enumerate(seeding.image_generators(seed, n, "da.proposals", first_index)):
        out[i] = torch.rand(iterations + 1, 3, k, generator=g, dtype=torch.float64)
    return out


def _stream_from(proposals: Any, n: int, iterations: int, k: int) -> torch.Tensor:
    """Materialise an injected proposal stream (see :func:`dynamic_ablation`)."""
    shape = (n, iterations + 1, 3, k)
    if isinstance(proposals, torch.Tensor):
        if tuple(proposals.shape) != shape:
            raise CnnlensError(f"proposals tensor must have shape {shape} (N, iterations + 1, 3, k), got {tuple(proposals.shape)}")
        u = proposals.detach().to(torch.float64).cpu()
    else:
        if not isinstance(proposals, Sequence) or len(proposals) != n:
            raise CnnlensError(f"proposals must be a tensor {shape} or a sequence of {n} iterables (one per image)")
        rows = []
        for i, it in enumerate(proposals):
            if not isinstance(it, Iterable):
                raise CnnlensError(f"proposals[{i}] is not iterable")
            items = []
            for item in it:
                try:
                    items.append(torch.as_tensor(np.asarray(item, dtype=np.float64)).reshape(3, k))
                except (TypeError, ValueError, RuntimeError):
                    raise CnnlensError(f"proposals[{i}] draw {len(items)} must be 3 × k = {3 * k} numbers "
                                       f"(uniforms in [0, 1)), got {str(item)[:60]!r}") from None
                if len(items) == iterations + 1:
                    break
            if len(items) < iterations + 1:
                raise CnnlensError(f"proposals[{i}] yielded {len(items)} draws; need iterations + 1 = {iterations + 1}")
            rows.append(torch.stack(items))
        u = torch.stack(rows)
    if not torch.isfinite(u).all() or (u < 0).any() or (u >= 1).any():
        raise CnnlensError("proposal draws must be uniforms in [0, 1)")
    return u


# ---------------------------------------------------------------------------------- the chain step
def _sum_k(v: torch.Tensor) -> torch.Tensor:
    """Σ over the last axis in a fixed left-to-right order (identical for any number of rows)."""
    s = v[..., 0]
    for c in range(1, v.shape[-1]):
        s = s + v[..., c]
    return s


def _propose(cx: torch.Tensor, cy: torch.Tensor, r: torch.Tensor, s_bound: torch.Tensor, d: torch.Tensor,
             h: int, w: int, alpha: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Algorithm 1 lines 5–8 with §4's reading. ``d`` ``(P, 3, k)`` in [−1, 1).

    x′ = x + U(−H, H)·α;  y′ = y + U(−W, W)·α;  r′ = |r + U(−ρ, ρ)·α| with ρ = √(S/π);
    r′ ← r′·ρ/‖r′‖₂ so that π Σ r′² = S_bound.
    """
    rho = torch.sqrt(s_bound / math.pi).unsqueeze(1)
    ncx = cx + (d[:, 0] * h) * alpha
    ncy = cy + (d[:, 1] * w) * alpha
    nr = (r + (d[:, 2] * rho) * alpha).abs()
    norm = torch.sqrt(_sum_k(nr * nr)).unsqueeze(1)
    nr = nr * (rho / norm.clamp_min(1e-300))
    return ncx, ncy, nr


def _masks(seg: Segmentation, g: torch.Tensor, cx: torch.Tensor, cy: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """GenerateMask (Eq. 3): ``(P, H*W)`` bool; segment s of image g[p] is in mask p iff its
    centroid satisfies (i − c_x)² + (j − c_y)² ≤ c_r² for some circle c."""
    p, k = cx.shape
    s_max = seg.centroids.shape[1]
    rows = max(1, _MASK_CHUNK_ELEMENTS // max(1, s_max * k))
    out = []
    for lo in range(0, p, rows):
        sl = slice(lo, lo + rows)
        cent = seg.centroids[g[sl]]  # (p', S, 2)
        dr = cent[..., 0:1] - cx[sl].unsqueeze(1)
        dc = cent[..., 1:2] - cy[sl].unsqueeze(1)
        rr = r[sl] * r[sl]
        inside = (dr * dr + dc * dc <= rr.unsqueeze(1)).any(dim=2)  # (p', S)
        out.append(inside.gather(1, seg.labels[g[sl]]))
    return torch.cat(out)


def _rule_holds(clf: Classifier, x: torch.Tensor, g: torch.Tensor, masks: torch.Tensor, y: torch.Tensor,
                rule: str, batch_size: int) -> torch.Tensor:
    """Evaluate F(·, Q) for every proposal: ``(P,)`` bool. Pos-R: argmax Φ(m′ ⊗ x) = y;
    Neg-R: argmax Φ((J − m′) ⊗ x) ≠ y. Black = pixel value 0 (§0)."""
    n, c, h, w = x.shape
    keep = masks if rule == "pos" else ~masks
    out = []
    for lo in range(0, g.shape[0], batch_size):
        sl = slice(lo, lo + batch_size)
        xin = x[g[sl]] * keep[sl].view(-1, 1, h, w).to(x.dtype)
        out.append(clf.logits(xin, batch_size=xin.shape[0]).argmax(dim=1))
    pred = torch.cat(out)
    yy = y[g]
    return pred == yy if rule == "pos" else pred != yy


# ---------------------------------------------------------------------------------- public API
def dynamic_ablation(
    clf: Classifier,
    x: torch.Tensor,
    rule: str = "pos",
    iterations: int = 500,
    k: int = 4,
    alpha_step: float = 0.2,
    fc: float = 0.95,
    superpixels: int = 500,
    seed: int = 0,
    batch_size: int = 64,
    sequential: bool = False,
    target: int | Sequence[int] | torch.Tensor | None = None,
    speculation: float | None = None,
    proposals: torch.Tensor | Sequence[Iterable[Any]] | None = None,
    progress: bool | None = None,
    first_index: int = 0,
) -> AblationResult:
    """Dynamic Ablation (DA paper Algorithm 1, §4) for a batch ``x`` ``(N, C, H, W)`` in [0, 1].

    Args:
        clf: the classifier Φ.
        x: images in pixel space.
        rule: ``"pos"`` (Pos-R: the minimal region that keeps the class) or ``"neg"`` (Neg-R: the
            minimal region whose blacking-out changes the class).
        iterations: proposals per image (paper: 500).
        k: number of dynamic circles (paper: 4).
        alpha_step: step rate α (paper: 0.2).
        fc: area shrink factor on acceptance, in (0, 1] (paper: 0.95).
        superpixels: SLIC ``n_segments`` (paper: 500); ``0`` = pixel mode.
        seed: seeds each image's random stream (image i uses ``(seed, first_index + i)``, §11).
        batch_size: most masked images per model call.
        sequential: ``True`` runs the literal Algorithm 1, one model call per iteration and
            image (the reference; slow). ``False`` (default) runs the batched chains of §4.
        target: the class the rule is about. DA explains the model's own decision: ``None`` (the
            default) means the predicted class ``Φ(x)``; an explicit target must equal the
            prediction for every image, otherwise a :class:`CnnlensError` names the images
            (Pos-R's premise ``F(x, Q) = True`` fails for another class, and Neg-R would be
            satisfied by the empty region).
        speculation: proposals per chain and round ≈ ``speculation / acceptance rate`` (running
            estimate), capped so one round has at most ``max(batch_size, #chains)`` proposals.
            ``None`` = 1.0 on CUDA (extra proposals are nearly free there) and 0.25 on CPU
            (wasted proposals cost compute). Changes speed only, never the result.
        proposals: inject the random stream (testing/reproduction): a float tensor
            ``(N, iterations + 1, 3, k)`` of uniforms in [0, 1), or a sequence of ``N`` iterables
            each yielding ``iterations + 1`` arrays of shape ``(3, k)``. Draw 0 initialises the
            circles (centre row ``u·H``, column ``u·W``, radius ``(1 − u)·√(H·W/(kπ))``);
            draw t is proposal t's (Δrow, Δcol, Δr), used as ``2u − 1``.
        progress: show a tqdm progress bar (``None`` = only on a terminal).

    Returns:
        :class:`AblationResult`. Images whose chain accepts nothing keep ``m = J``, ``cam = 0``,
        MAR 1 and ``accepted = 0`` (§4).
    """
    if not isinstance(clf, Classifier):
        raise CnnlensError(f"clf must be a cnnlens.Classifier, got {type(clf).__name__}")
    _check_params(rule, iterations, k, alpha_step, fc, batch_size)
    validation.seed(seed)
    first_index = validation.integer("first_index", first_index, minimum=0)
    validation.real("speculation", speculation, low=0, open_low=True, allow_none=True)
    sequential = validation.flag("sequential", sequential)
    if progress is not None:
        progress = validation.flag("progress", progress)
    iterations, k, batch_size = int(iterations), int(k), int(batch_size)
    alpha, fc = float(alpha_step), float(fc)
    x = clf.check_input(x)
    n, _, h, w = x.shape
    dev = x.device

    y = clf.predict(x, batch_size=batch_size)
    if target is not None:
        t_req = clf.targets(x, target, batch_size=batch_size)
        bad = (t_req != y).nonzero().flatten().tolist()
        if bad:
            shown = ", ".join(f"image {i}: predicted {clf.class_name(int(y[i]))!r}, target "
                              f"{clf.class_name(int(t_req[i]))!r}" for i in bad[:3])
            more = f" (and {len(bad) - 3} more)" if len(bad) > 3 else ""
            raise CnnlensError(
                f"dynamic_ablation rule={rule!r} explains the model's own prediction Φ(x), but the "
                f"explicit target differs for {len(bad)} image(s): {shown}{more}; pass target=None "
                "(or the predicted classes), or select the images the model classifies as the target"
            )

    u = _default_stream(n, iterations, k, int(seed), first_index) if proposals is None else _stream_from(proposals, n, iterations, k)
    u = u.to(dev)
    seg = segment(x, superpixels).to(dev)
    q = speculation if speculation is not None else (1.0 if dev.type == "cuda" else 0.25)

    # initial state (§4): centres uniform over the image, radii uniform in (0, √(HW/(kπ))]
    r_max = math.sqrt(h * w / (k * math.pi))
    cx = u[:, 0, 0] * h
    cy = u[:, 0, 1] * w
    r = (1.0 - u[:, 0, 2]) * r_max
    s_bound = torch.full((n,), float(h * w), dtype=torch.float64, device=dev)
    mask = torch.ones(n, h * w, dtype=torch.bool, device=dev)
    cam = torch.zeros(n, h * w, dtype=torch.float32, device=dev)
    t = torch.zeros(n, dtype=torch.long, device=dev)
    acc = torch.zeros(n, dtype=torch.long, device=dev)
    evals = torch.zeros(n, dtype=torch.long, device=dev)
    accepts: list[list[int]] = [[] for _ in range(n)]
    rounds = 0

    bar = progress_bar(total=n * iterations, desc=f"dynamic ablation ({rule}-R)", progress=progress)
    start = time.perf_counter()
    with torch.no_grad():
        if sequential:
            for i in range(n):  # the literal Algorithm 1: one proposal, one model call
                gi = torch.tensor([i], device=dev)
                for it in range(1, iterations + 1):
                    d = 2.0 * u[i, it : it + 1] - 1.0
                    ncx, ncy, nr = _propose(cx[gi], cy[gi], r[gi], s_bound[gi], d, h, w, alpha)
                    m_new = _masks(seg, gi, ncx, ncy, nr)
                    rounds += 1
                    if bool(_rule_holds(clf, x, gi, m_new, y, rule, batch_size)[0]):
                        cx[i], cy[i], r[i] = ncx[0], ncy[0], nr[0]
                        mask[i] = m_new[0]
                        cam[i] += m_new[0].to(cam.dtype)
                        s_bound[i] *= fc
                        acc[i] += 1
                        accepts[i].append(it)
                    bar.update(1)
                t[i] = iterations
                evals[i] = iterations
        else:
            rate = torch.ones(n, dtype=torch.float64, device=dev)
            while True:
                active = (t < iterations).nonzero().flatten()
                na = int(active.numel())
                if na == 0:
                    break
                cap = max(1, batch_size // na)
                b = torch.ceil(q / rate[active]).clamp(1, cap).long()
                b = torch.minimum(b, iterations - t[active])
                local = torch.repeat_interleave(torch.arange(na, device=dev), b)
                g = active[local]
                starts = torch.cumsum(b, 0) - b
                o = torch.arange(g.shape[0], device=dev) - starts[local]
                d = 2.0 * u[g, t[g] + 1 + o] - 1.0  # proposal t+1+o of image g: its own draw
                ncx, ncy, nr = _propose(cx[g], cy[g], r[g], s_bound[g], d, h, w, alpha)
                m_new = _masks(seg, g, ncx, ncy, nr)
                passed = _rule_holds(clf, x, g, m_new, y, rule, batch_size)
                rounds += 1
                key = torch.where(passed, o, torch.full_like(o, _BIG))
                first = torch.full((na,), _BIG, dtype=torch.long, device=dev).scatter_reduce(0, local, key, "amin")
                hit = first < _BIG
                counted = torch.where(hit, first + 1, b)
                t[active] += counted
                evals[active] += b
                if bool(hit.any()):
                    ai = active[hit]
                    rows = starts[hit] + first[hit]
                    cx[ai], cy[ai], r[ai] = ncx[rows], ncy[rows], nr[rows]
                    mask[ai] = m_new[rows]
                    cam[ai] += m_new[rows].to(cam.dtype)
                    s_bound[ai] *= fc
                    acc[ai] += 1
                    for j, tj in zip(ai.tolist(), t[ai].tolist()):
                        accepts[j].append(int(tj))
                # running acceptance rate over the counted proposals (decay 0.9 per proposal)
                keep = torch.pow(0.9, counted.to(torch.float64))
                rate[active] = (rate[active] * keep + hit.to(torch.float64) / counted * (1.0 - keep)).clamp_min(1e-3)
                bar.update(int(counted.sum()))
    bar.close()
    seconds = time.perf_counter() - start

    cam_max = cam.max(dim=1, keepdim=True).values
    cam = torch.where(cam_max > 0, cam / cam_max.clamp_min(1e-12), torch.zeros_like(cam))
    mar = mask.sum(dim=1).to(torch.float64) / (h * w)
    params = {
        "rule": rule, "iterations": iterations, "k": k, "alpha_step": alpha, "fc": fc,
        "superpixels": int(superpixels), "seed": int(seed), "batch_size": batch_size,
        "sequential": bool(sequential), "speculation": q,
        "proposals": "default" if proposals is None else "injected",
    }
    texts = [rule_text(rule, clf.class_name(int(y[i])), float(mar[i])) for i in range(n)]
    none = (acc == 0).nonzero().flatten().tolist()
    if none:
        shown = ", ".join(str(first_index + i) for i in none[:10]) + (f" (and {len(none) - 10} more)" if len(none) > 10 else "")
        warnings.warn(
            f"dynamic_ablation rule={rule!r}: no step was accepted for {len(none)} of {n} image(s) "
            f"(image {shown}); their cam is all zeros and MAR 1 — try more iterations (now {iterations}), "
            + (f"superpixels=0 (now {int(superpixels)}) " if int(superpixels) else "")
            + f"or a larger fc (now {fc})",
            UserWarning, stacklevel=2,
        )
    return AblationResult(
        mask=mask.view(n, h, w), cam=cam.view(n, h, w), mar=mar, iterations=t, accepted=acc,
        evaluations=evals, rule_text=texts, targets=y, rule=rule,
        circles=torch.stack([cx, cy, r], dim=1), segments=seg.labels.view(n, h, w), params=params,
        rounds=rounds, seconds=seconds, accept_iterations=accepts,
    )
