"""Class-activation maps: ``gradcam``, ``gradcam++`` and ``scorecam`` (docs/algorithms.md §2).

All three read the feature map ``A`` ``(N, K, h, w)`` of a layer (the Classifier's feature layer,
or ``layer=`` for one call, §1), weight its channels, sum, apply ReLU and upsample bilinearly
(``align_corners=False``) to the input size. ``Explanation.layer_maps`` keeps the ``(N, h, w)``
map after ReLU and before upsampling; ``maps`` is the upsampled map, not normalised (call
``Explanation.normalized()`` for ``[0, 1]``).

- ``gradcam`` (Selvaraju et al. 2017; OVERVIEW's recipe): ``w_k = mean_ij ∂y_c/∂A^k_ij`` with
  ``y_c`` the target logit.
- ``gradcam++`` (Chattopadhyay et al. 2018, Eq. 19 closed form as commonly implemented, e.g. by
  pytorch-grad-cam): ``α^kc_ij = g² / (2g² + Σ_ab A^k_ab · g³)`` with ``g = ∂y_c/∂A^k_ij`` of
  the **logit**, ``w_k = Σ_ij α ReLU(g)``. The closed form of Eq. 19 assumes the score is
  ``exp(y_c)`` (then higher derivatives are powers of the first); applied to the plain logit it
  is the widely used approximation, not the exact second-order weights of a general network.
- ``scorecam`` (Wang et al. 2020): each channel is upsampled bilinearly to the input size,
  min-max normalised (a constant channel gives an all-zero mask), multiplied with the pixel-space
  image; the channel score is the target logit of the masked image and the weights are the
  softmax over channels (pytorch-grad-cam's convention; equal to the increase over the
  black-image score, which cancels in the softmax). ``channel_softmax=False`` uses the target
  probability of each masked input directly as the weight and skips constant channels, as the
  authors' released code does. All constant channels of all images give the same black image, so
  they share a single forward pass.

The steps are reusable on their own (RI's reuse evaluation reuses one image's channel weights on
another image): :func:`layer_gradients` (A and ∂y/∂A), :func:`gradcam_weights`,
:func:`gradcam_pp_weights`, :func:`scorecam_scores` + :func:`scorecam_weights` → ``(N, K)``
channel weights, :func:`cam_weights` (all in one call) and :func:`weighted_map`, the one
``Σ_k w_k A^k`` map builder.

Example::

    >>> import torch
    >>> from torch import nn
    >>> import cnnlens
    >>> net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
    ...                     nn.Flatten(), nn.Linear(8, 3)).eval()
    >>> clf = cnnlens.Classifier(net)
    >>> e = cnnlens.explain(clf, torch.rand(2, 3, 16, 16), "gradcam", layer="1")
    >>> e.maps.shape, e.layer_maps.shape, e.params["layer"]
    (torch.Size([2, 16, 16]), torch.Size([2, 16, 16]), '1')
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from .. import validation
from ..classifier import Classifier
from ..errors import CnnlensError
from ..explanation import Explanation, upsample
from . import register
from ._util import chunk_ranges, target_scores
from ._util import progress as _bar

__all__ = ["gradcam", "gradcam_plus_plus", "scorecam", "layer_gradients", "gradcam_weights", "gradcam_pp_weights",
           "scorecam_scores", "scorecam_weights", "cam_weights", "weighted_map", "CAM_METHODS"]

CAM_METHODS = ("gradcam", "gradcam++", "scorecam")


def _check_4d(a: torch.Tensor, name: str | None) -> None:
    if a.dim() != 4:
        raise CnnlensError(
            f"layer {name!r} outputs shape {tuple(a.shape)}; CAM methods need a 4-D (N, K, h, w) "
            "feature map: pass layer= a convolutional block (see Classifier.candidate_layers(x))"
        )


def layer_gradients(
    clf: Classifier, x: torch.Tensor, targets: torch.Tensor, batch_size: int, layer: Any = None, score: str = "logit"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Activations ``A`` and gradients ``∂score_target/∂A`` of the layer, both ``(N, K, h, w)``,
    computed in chunks of ``batch_size`` images with :func:`torch.autograd.grad` (no parameter
    ``.grad`` is touched)."""
    acts, grads = [], []
    _, name = clf.layer_module(layer, x)
    for a, b in chunk_ranges(x.shape[0], batch_size):
        with torch.enable_grad():
            psi, logits = clf.forward_with_features(x[a:b], layer)
            _check_4d(psi, name)
            if not psi.requires_grad:
                raise CnnlensError(f"layer {name!r} output does not depend on differentiable values; choose another layer")
            s = target_scores(logits, targets[a:b], score).sum()
            (g,) = torch.autograd.grad(s, psi)
        acts.append(psi.detach())
        grads.append(g.detach())
    return torch.cat(acts), torch.cat(grads)


def gradcam_weights(A: torch.Tensor, G: torch.Tensor) -> torch.Tensor:
    """Grad-CAM channel weights ``(N, K)``: ``w_k = mean_ij ∂y_c/∂A^k_ij`` (``G`` = ∂y_c/∂A)."""
    return G.mean(dim=(2, 3))


def gradcam_pp_weights(A: torch.Tensor, G: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Grad-CAM++ channel weights ``(N, K)`` (Eq. 19 closed form): ``α = g² / (2g² + Σ_ab A_ab · g³
    + eps)`` (0 where ``g = 0``), ``w_k = Σ_ij α ReLU(g)``."""
    validation.real("eps", eps, low=0, hint="the denominator guard")
    g2 = G * G
    g3 = g2 * G
    sum_a = A.sum(dim=(2, 3), keepdim=True)
    alpha = g2 / (2 * g2 + sum_a * g3 + eps)
    alpha = torch.where(G != 0, alpha, torch.zeros_like(alpha))
    return (alpha * G.clamp(min=0)).sum(dim=(2, 3))


def scorecam_scores(clf: Classifier, x: torch.Tensor, A: torch.Tensor, targets: torch.Tensor, *, batch_size: int,
                    score: str = "logit", align_corners: bool = True,
                    progress: bool = False) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Score-CAM channel scores: ``(scores (N, K), constant (N, K), forward passes)``.

    Channel ``k`` of image ``n`` is upsampled bilinearly to the input size and min-max
    normalised into the mask ``M`` (a constant channel → the black image, scored once for all);
    ``scores[n, k]`` is the target ``score`` of ``x_n · M``, batched over images × channels.
    """
    n, k = A.shape[:2]
    H, W = x.shape[-2:]
    flat = A.reshape(n * k, -1)
    lo, hi = flat.min(dim=1).values, flat.max(dim=1).values
    constant = hi <= lo  # the upsampled channel has the same min/max as the channel (convex combinations)
    varying = (~constant).nonzero().squeeze(1)
    scores = torch.empty(n * k, device=x.device, dtype=torch.float32)
    img_of = torch.arange(n, device=x.device).repeat_interleave(k)
    passes = 0
    with torch.no_grad():
        if bool(constant.any()):
            black_logits = clf.logits(torch.zeros_like(x[:1]), batch_size=1)
            black = target_scores(black_logits.expand(n, -1), targets, score)
            scores[constant] = black[img_of[constant]].float()
            passes += 1
        bar = _bar(int(varying.numel()), "scorecam", progress)
        for a, b in chunk_ranges(int(varying.numel()), batch_size):
            idx = varying[a:b]
            ch = A.reshape(n * k, 1, *A.shape[2:])[idx]
            up = F.interpolate(ch, size=(H, W), mode="bilinear", align_corners=align_corners)
            ulo = up.amin(dim=(2, 3), keepdim=True)
            uhi = up.amax(dim=(2, 3), keepdim=True)
            span = uhi - ulo
            mask = torch.where(span > 0, (up - ulo) / torch.where(span > 0, span, torch.ones_like(span)),
                               torch.zeros_like(up))
            masked = x[img_of[idx]] * mask
            logits = clf.logits(masked, batch_size=masked.shape[0])
            scores[idx] = target_scores(logits, targets[img_of[idx]], score, check=False).float()
            passes += int(idx.numel())
            bar.update(int(idx.numel()))
        bar.close()
    return scores.view(n, k), constant.view(n, k), passes


def scorecam_weights(scores: torch.Tensor, constant: torch.Tensor, channel_softmax: bool = True) -> torch.Tensor:
    """Score-CAM channel weights ``(N, K)``: ``softmax_k(scores)`` (pytorch-grad-cam's convention)
    or, with ``channel_softmax=False``, the scores with constant channels set to 0 (the authors' code)."""
    if channel_softmax:
        return torch.softmax(scores, dim=1)
    return torch.where(constant, torch.zeros_like(scores), scores)


def weighted_map(weights: torch.Tensor, A: torch.Tensor, shared: bool = False) -> torch.Tensor:
    """The class-activation map ``Σ_k w_k A^k`` — the one map builder of every CAM, of RI's reuse
    evaluation and of RI's heatmaps (§2, §5).

    ``weights`` ``(N, K)`` with ``A`` ``(N, K, h, w)`` → ``(N, h, w)`` (one weight vector per image);
    ``shared=True``: ``weights`` ``(P, K)`` applied to every image → ``(N, P, h, w)`` (RI's |P|
    boundaries of one region)."""
    if shared:
        return torch.einsum("pk,mkhw->mphw", weights.to(A.dtype), A)
    return (weights.to(A.dtype)[:, :, None, None] * A).sum(dim=1)


def cam_weights(clf: Classifier, x: torch.Tensor, targets: torch.Tensor, method: str, layer: Any = None,
                batch_size: int = 64) -> torch.Tensor:
    """Channel weights ``(N, K)`` of ``method`` (``gradcam``, ``gradcam++``, ``scorecam``) at
    ``layer`` with the target logit as score — the defaults of the maps of ``explain``; applied to
    another image's features with :func:`weighted_map` they give a reused map (RI Table 1)."""
    validation.choice("method", method, CAM_METHODS)
    x = clf.check_input(x)
    targets = clf.targets(x, targets, batch_size=batch_size)  # the one target rule (§0)
    if method == "scorecam":
        A = clf.features(x, batch_size=batch_size, layer=layer)
        _check_4d(A, clf.layer_module(layer, x)[1])
        scores, constant, _ = scorecam_scores(clf, x, A, targets, batch_size=batch_size)
        return scorecam_weights(scores, constant)
    A, G = layer_gradients(clf, x, targets, batch_size, layer, "logit")
    return gradcam_weights(A, G) if method == "gradcam" else gradcam_pp_weights(A, G)


def _finish(cam: torch.Tensor, x: torch.Tensor, relu: bool) -> tuple[torch.Tensor, torch.Tensor]:
    layer_map = cam.clamp(min=0) if relu else cam
    return upsample(layer_map, tuple(x.shape[-2:])), layer_map


@register("gradcam", uses_layer=True)
def gradcam(
    clf: Classifier, x: torch.Tensor, targets: torch.Tensor, *, seed: int, batch_size: int, layer: Any,
    score: str = "logit", relu: bool = True,
) -> Explanation:
    """Grad-CAM (Selvaraju et al. 2017; §2): ``ReLU(Σ_k mean_ij(∂y_c/∂A^k_ij) A^k)``,
    bilinearly upsampled to the input size.

    ``layer=`` picks the layer for this call.

    Args:
        score: ``"logit"`` (default, as in the paper) or ``"prob"``.
        relu: apply the ReLU (``False`` keeps the signed map).

    Returns:
        An :class:`Explanation` with maps ``(N, H, W)`` and ``layer_maps`` ``(N, h, w)``.
    """
    validation.choice("score", score, ("logit", "prob"))
    A, G = layer_gradients(clf, x, targets, batch_size, layer, score)
    maps, layer_map = _finish(weighted_map(gradcam_weights(A, G), A), x, relu)
    return Explanation(maps=maps, targets=targets, params={"score": score, "relu": relu},
                       layer_maps=layer_map)


@register("gradcam++", uses_layer=True)
def gradcam_plus_plus(
    clf: Classifier, x: torch.Tensor, targets: torch.Tensor, *, seed: int, batch_size: int, layer: Any,
    relu: bool = True, eps: float = 1e-6,
) -> Explanation:
    """Grad-CAM++ (Chattopadhyay et al. 2018, Eq. 19 closed form; §2).

    ``α = g² / (2g² + Σ_ab A_ab · g³ + eps)`` (0 where ``g = 0``), ``w_k = Σ_ij α ReLU(g)``,
    map ``= ReLU(Σ_k w_k A^k)``, upsampled bilinearly. ``g`` is the gradient of the target
    logit; the closed form assumes an exponential output ``exp(y_c)`` (module docstring).

    Args:
        relu: apply the ReLU (``False`` keeps the signed map).
        eps: denominator guard (1e-6, as pytorch-grad-cam).
    """
    validation.real("eps", eps, low=0, hint="the denominator guard")  # before the backward passes
    A, G = layer_gradients(clf, x, targets, batch_size, layer, "logit")
    maps, layer_map = _finish(weighted_map(gradcam_pp_weights(A, G, eps), A), x, relu)
    return Explanation(maps=maps, targets=targets, params={"relu": relu, "eps": eps},
                       layer_maps=layer_map)


@register("scorecam", uses_layer=True)
def scorecam(
    clf: Classifier, x: torch.Tensor, targets: torch.Tensor, *, seed: int, batch_size: int, layer: Any,
    channel_softmax: bool = True, mask_align_corners: bool = True, relu: bool = True, progress: bool = True,
    progress_bar: bool | None = None,
) -> Explanation:
    """Score-CAM (Wang et al. 2020; §2), batched over images × channels.

    Channel ``k`` of image ``n`` gives the mask ``M = minmax(up(A^k))`` (``0`` for a constant
    channel) and the score ``s_nk`` of ``x_n · M`` (target logit; the black image for every
    constant channel is scored once). Weights: ``softmax_k(s_nk)`` (default,
    pytorch-grad-cam's convention) or, with ``channel_softmax=False``, the target probability of
    each masked input with constant channels skipped (the authors' released code).
    Map ``= ReLU(Σ_k w_k A^k)`` upsampled bilinearly.

    ``batch_size`` bounds the masked images per forward; ``info`` records the number of forward
    passes and of constant channels.

    Args:
        channel_softmax: softmax weights (default) or the authors' probabilities.
        mask_align_corners: mask upsampling as pytorch-grad-cam's ``UpsamplingBilinear2d``
            (``True``) or as the authors' ``F.interpolate`` (``False``).
        relu: apply the ReLU.
        progress: progress bar (old name ``progress_bar``).
    """
    A = clf.features(x, batch_size=batch_size, layer=layer)
    _check_4d(A, clf.layer_module(layer, x)[1])
    k = A.shape[1]
    scores, constant, passes = scorecam_scores(clf, x, A, targets, batch_size=batch_size,
                                               score="logit" if channel_softmax else "prob",
                                               align_corners=mask_align_corners,
                                               progress=progress if progress_bar is None else progress_bar)
    cam = weighted_map(scorecam_weights(scores, constant, channel_softmax), A)
    maps, layer_map = _finish(cam, x, relu)
    return Explanation(
        maps=maps, targets=targets,
        params={"channel_softmax": channel_softmax, "mask_align_corners": mask_align_corners, "relu": relu},
        layer_maps=layer_map,
        info={"forward_passes": passes, "constant_channels": int(constant.sum()), "channels": k},
    )
