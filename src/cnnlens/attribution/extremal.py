"""Extremal Perturbation (Fong, Patrick & Vedaldi, ICCV 2019), preservation game (docs/algorithms.md §2).

Clean-room implementation from the paper's description (TorchRay's code is non-commercial and was
not read). For a fixed area fraction ``a`` the method looks for the smooth mask ``m`` that
maximises the model's score on the perturbed input that keeps ``m`` and blurs the rest:

    m_a = argmax_m  Φ_c(x ⊙ m + blur(x) ⊙ (1 − m)) − λ · R_a(m)

* **Area constraint** (paper §3.1, "vector ranking"): ``R_a(m) = ‖vecsort(m) − r_a‖²`` with
  ``r_a`` the sorted template of ``(1 − a)·|Ω|`` zeros and ``a·|Ω|`` ones (we use the mean over
  ``|Ω|``, which makes λ independent of the image size). λ grows geometrically during the
  optimisation (``lambda_start`` → ``lambda_end``) so the constraint ends up (almost) hard.
* **Smooth masks** (paper §3.2): ``m = smax_v g_σ(u − v) · m̄(v)`` — a smooth-max convolution of
  the parameter field ``m̄ ∈ [0, 1]`` with an unnormalised Gaussian ``g_σ`` (peak 1), so the
  mask is at least as smooth as ``g_σ`` and in [0, 1]. ``m̄`` lives on a grid of stride ``step``
  pixels; the smooth max runs on that grid (σ/step cells) and the result is upsampled
  bilinearly to the image.
* **Blur perturbation** (paper §3.3): a pyramid of Gaussian blurs ``σ_l = max_blur·(1 − l/L)``,
  ``l = 0…L``; a pixel with mask value ``m`` takes the linear interpolation between the two
  pyramid levels around ``m·L`` (``m = 1`` = the unmodified pixel, ``m = 0`` = maximum blur).
* **Jitter**: each iteration the perturbed input is shifted by a random 0/1-pixel offset in
  each direction (edge pixels replicated), so the mask cannot exploit single-pixel artefacts.
* **Optimiser**: Adam on ``m̄`` (clipped to [0, 1] after every step), ``m̄`` initialised to 0.5.

Defaults are the reference defaults §2 names (area 0.1, 800 iterations, step 7, σ 21,
jitter on), which are sized for ~224-pixel inputs; for small images (MNIST, faces) pass a smaller
``step``/``sigma``/``max_blur`` in proportion. The score is the target **logit** by default, as
the paper optimises the network output (``score="prob"`` optimises the softmax probability).
Gradients are taken only with respect to ``m̄`` (``torch.autograd.grad``), so the model's
parameters and their ``.grad`` are never touched.
"""
from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from .. import seeding, validation
from .._progress import bar as progress_bar
from ..classifier import Classifier
from ..explanation import Explanation
from . import register

__all__ = ["extremal_perturbation", "smooth_max_mask", "blur_pyramid", "area_loss"]


def _gauss1d(sigma: float, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    radius = max(1, int(math.ceil(3.0 * sigma)))
    t = torch.arange(-radius, radius + 1, device=device, dtype=dtype)
    k = torch.exp(-(t * t) / (2.0 * sigma * sigma))
    return k / k.sum()


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of ``(N, C, H, W)`` with replicated borders."""
    if sigma <= 0:
        return x
    n, c, h, w = x.shape
    k = _gauss1d(sigma, x.device, x.dtype)
    r = (k.numel() - 1) // 2
    y = x.reshape(n * c, 1, h, w)
    y = F.conv2d(F.pad(y, (r, r, 0, 0), mode="replicate"), k.view(1, 1, 1, -1))
    y = F.conv2d(F.pad(y, (0, 0, r, r), mode="replicate"), k.view(1, 1, -1, 1))
    return y.reshape(n, c, h, w)


def blur_pyramid(x: torch.Tensor, max_blur: float, levels: int) -> torch.Tensor:
    """``(L + 1, N, C, H, W)``: level l blurred with σ = max_blur·(1 − l/L); level L is ``x``."""
    return torch.stack([_blur(x, max_blur * (1.0 - lv / levels)) for lv in range(levels + 1)])


def _perturb(pyramid: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mask-dependent blur: interpolate the pyramid at level ``m·L`` per pixel (``mask`` ``(N, 1, H, W)``)."""
    levels = pyramid.shape[0] - 1
    pos = mask.clamp(0, 1) * levels
    lo = pos.detach().floor().clamp(max=levels - 1)
    frac = pos - lo
    lo_i = lo.long().expand(-1, pyramid.shape[2], -1, -1)
    a = torch.gather(pyramid, 0, lo_i.unsqueeze(0)).squeeze(0)
    b = torch.gather(pyramid, 0, (lo_i + 1).unsqueeze(0)).squeeze(0)
    return a + (b - a) * frac


def smooth_max_mask(mbar: torch.Tensor, sigma_cells: float, temperature: float, size: tuple[int, int]) -> torch.Tensor:
    """Smooth-max convolution of ``mbar`` ``(N, 1, h, w)`` with an unnormalised Gaussian of σ
    ``sigma_cells`` (grid cells), then bilinear upsampling to ``size``: ``(N, 1, H, W)`` in [0, 1].

    smax_T(a) = Σ a_v e^{a_v/T} / Σ e^{a_v/T} over the window v (paper §3.2)."""
    n, _, h, w = mbar.shape
    radius = max(1, int(math.ceil(2.0 * sigma_cells)))
    t = torch.arange(-radius, radius + 1, device=mbar.device, dtype=mbar.dtype)
    g = torch.exp(-(t.view(-1, 1) ** 2 + t.view(1, -1) ** 2) / (2.0 * sigma_cells ** 2)).flatten()  # (K²,)
    win = 2 * radius + 1
    patches = F.unfold(F.pad(mbar, (radius,) * 4), win)  # (N, K², h*w), zero padding
    a = patches * g.view(1, -1, 1)
    wts = torch.softmax(a / temperature, dim=1)
    m = (a * wts).sum(dim=1).view(n, 1, h, w)
    return F.interpolate(m, size=size, mode="bilinear", align_corners=False).clamp(0, 1)


def area_loss(mask: torch.Tensor, area: float) -> torch.Tensor:
    """Vector-ranking area constraint (paper §3.1): mean over pixels of
    ``(vecsort(m) − r_a)²`` per image, ``(N,)``."""
    flat = mask.flatten(1)
    n_pix = flat.shape[1]
    n_on = int(round(area * n_pix))
    ref = torch.zeros(n_pix, device=mask.device, dtype=mask.dtype)
    if n_on > 0:
        ref[-n_on:] = 1.0
    return ((flat.sort(dim=1).values - ref) ** 2).mean(dim=1)


@register("extremal_perturbation", stochastic=True,
          description="Extremal Perturbation, preservation game with smooth masks (Fong et al. 2019)")
def extremal_perturbation(
    clf: Classifier,
    x: torch.Tensor,
    targets: torch.Tensor,
    *,
    seed: int,
    batch_size: int,
    layer: Any = None,
    area: float = 0.1,
    iterations: int = 800,
    step: int = 7,
    sigma: float = 21.0,
    max_blur: float = 20.0,
    levels: int = 8,
    jitter: bool = True,
    lr: float = 0.05,
    temperature: float = 0.05,
    lambda_start: float = 1.0,
    lambda_end: float = 1000.0,
    score: str = "logit",
    progress: bool | None = None,
) -> Explanation:
    """Extremal Perturbation, preservation game (§2; Fong, Patrick & Vedaldi 2019).

    Args (beyond the registry's): ``area`` fraction kept (0.1), ``iterations`` (800), ``step``
    mask grid stride in pixels (7), ``sigma`` smoothness σ in pixels (21), ``max_blur`` σ of the
    strongest blur (20 px), ``levels`` pyramid levels (8), ``jitter`` (on), ``lr`` Adam step,
    ``temperature`` of the smooth max, ``lambda_start``/``lambda_end`` the geometric schedule of
    the area weight, ``score`` ``"logit"`` (paper) or ``"prob"``.

    Returns:
        :class:`~cnnlens.Explanation` with ``maps`` ``(N, H, W)`` the final mask in [0, 1];
        ``info`` has the achieved mask area (mean and fraction of pixels > 0.5) and the final
        score per image.
    """
    validation.real("area", area, 0, 1, open_low=True, open_high=True)
    for name, v in (("iterations", iterations), ("step", step), ("levels", levels)):
        validation.integer(name, v, minimum=1)
    for name, v in (("sigma", sigma), ("max_blur", max_blur), ("lr", lr), ("temperature", temperature),
                    ("lambda_start", lambda_start), ("lambda_end", lambda_end)):
        validation.real(name, v, low=0, open_low=True)
    validation.choice("score", score, ("logit", "prob"))

    n, c, h, w = x.shape
    gh, gw = math.ceil(h / step), math.ceil(w / step)
    gen = seeding.run_generator(seed, "extremal.jitter")  # the jitter of a run (§11)
    shifts = torch.randint(0, 2, (iterations, 2), generator=gen).tolist() if jitter else [[0, 0]] * iterations
    maps, final_scores = [], []
    bar = progress_bar(total=iterations * math.ceil(n / batch_size), desc="extremal perturbation", progress=progress)
    for lo in range(0, n, batch_size):  # chunks of images optimised together
        xb = x[lo : lo + batch_size].detach()
        tb = targets[lo : lo + batch_size].to(x.device)
        nb = xb.shape[0]
        with torch.no_grad():
            pyramid = blur_pyramid(xb, float(max_blur), int(levels))
        mbar = torch.full((nb, 1, gh, gw), 0.5, device=x.device, dtype=xb.dtype, requires_grad=True)
        opt = torch.optim.Adam([mbar], lr=float(lr))
        for it in range(iterations):
            with torch.enable_grad():  # the mask gradient, also under torch.no_grad()
                lam = lambda_start * (lambda_end / lambda_start) ** (it / max(1, iterations - 1))
                mask = smooth_max_mask(mbar, float(sigma) / step, float(temperature), (h, w))
                xp = _perturb(pyramid, mask)
                if jitter:
                    dy, dx = shifts[it]
                    xp = F.pad(xp, (1, 1, 1, 1), mode="replicate")[..., 1 - dy : 1 - dy + h, 1 - dx : 1 - dx + w]
                logits = clf.logits(xp)
                s = logits if score == "logit" else torch.softmax(logits, dim=1)
                reward = s.gather(1, tb.view(-1, 1)).squeeze(1)
                loss = (-reward + lam * area_loss(mask, float(area))).sum()
                (grad,) = torch.autograd.grad(loss, [mbar])
            mbar.grad = grad
            opt.step()
            opt.zero_grad(set_to_none=True)
            with torch.no_grad():
                mbar.clamp_(0, 1)
            bar.update(1)
        with torch.no_grad():
            mask = smooth_max_mask(mbar, float(sigma) / step, float(temperature), (h, w))
            lg = clf.logits(_perturb(pyramid, mask))
            s = lg if score == "logit" else torch.softmax(lg, dim=1)
            final_scores.append(s.gather(1, tb.view(-1, 1)).squeeze(1))
        maps.append(mask.detach().squeeze(1))
    bar.close()
    out = torch.cat(maps)
    return Explanation(
        maps=out,
        targets=targets,
        params={"area": float(area), "iterations": iterations, "step": step, "sigma": float(sigma),
                "max_blur": float(max_blur), "levels": levels, "jitter": bool(jitter), "lr": float(lr),
                "temperature": float(temperature), "lambda_start": float(lambda_start),
                "lambda_end": float(lambda_end), "score": score, "game": "preservation",
                "perturbation": "blur"},
        info={"area_mean": out.flatten(1).mean(1).tolist(),
              "area_above_half": (out.flatten(1) > 0.5).float().mean(1).tolist(),
              "final_score": torch.cat(final_scores).tolist()},
    )
