"""Gradient attributions: ``saliency`` and ``guided_backprop`` (docs/algorithms.md §2).

Both differentiate the target **logit** (§2, "gradient methods explain the target logit";
``score="prob"`` differentiates the softmax probability instead) with respect to the pixel-space
input. The full ``(N, C, H, W)`` gradient is kept in ``Explanation.attributions``; the map is
``max_c |·|`` as in Simonyan et al. 2014.

Guided Backprop (Springenberg et al. 2014) changes the backward pass of every ReLU so that only
positive gradients flow back, and only where the ReLU's input was positive. It is implemented
with a :class:`torch.overrides.TorchFunctionMode` active during the forward pass only: every
``relu`` call — ``nn.ReLU`` modules (reused or ``inplace=True``), ``F.relu``, ``torch.relu``,
``Tensor.relu`` and their in-place variants — becomes a guided ReLU. Nothing is registered on
or written into the user's model, so reused and in-place ReLU modules and functional calls give
the same result as one fresh ReLU module per call site (tested on torchvision ResNet-18), and the
model is unchanged afterwards even when the call raises. Other activations (ReLU6, GELU …) keep
their ordinary gradient, as in captum's ``GuidedBackprop``; ``relu6=True`` also guides ReLU6
(``nn.ReLU6``, ``F.relu6``, ``F.hardtanh`` with bounds 0 and 6): ``max(grad, 0) · [0 < input < 6]``,
for networks such as MobileNetV2 and EfficientNet-Lite that have no plain ReLU at all.

Example::

    >>> import torch
    >>> from torch import nn
    >>> import cnnlens
    >>> net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 2)).eval()
    >>> e = cnnlens.explain(cnnlens.Classifier(net), torch.rand(1, 3, 8, 8), "guided_backprop", target=1)
    >>> e.maps.shape, e.attributions.shape
    (torch.Size([1, 8, 8]), torch.Size([1, 3, 8, 8]))
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from .. import validation
from ..classifier import Classifier
from ..explanation import Explanation
from . import register
from ._util import chunk_ranges, refuse_torchscript, target_scores

__all__ = ["saliency", "guided_backprop", "input_gradient", "guided_relu"]


class _GuidedReLU(torch.autograd.Function):
    """ReLU whose backward passes ``max(grad, 0) · [input > 0]`` (Springenberg 2014, Eq. in §3.4)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        out = x.clamp(min=0)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        (out,) = ctx.saved_tensors
        return grad.clamp(min=0) * (out > 0).to(grad.dtype)


class _GuidedReLUInplace(torch.autograd.Function):
    """In-place variant (``nn.ReLU(inplace=True)``, ``relu_``): same backward, same semantics as
    PyTorch's in-place ReLU (the input tensor is overwritten and returned)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        x.clamp_(min=0)
        ctx.mark_dirty(x)
        ctx.save_for_backward(x)
        return x

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        (out,) = ctx.saved_tensors
        return grad.clamp(min=0) * (out > 0).to(grad.dtype)


class _GuidedReLU6(torch.autograd.Function):
    """ReLU6 whose backward passes ``max(grad, 0) · [0 < input < 6]``: Guided Backprop's rule where
    ReLU6 passes a gradient (opt-in, ``relu6=True``); ``inplace`` as in ``nn.ReLU6(inplace=True)``."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, inplace: bool) -> torch.Tensor:  # type: ignore[override]
        if inplace:
            x.clamp_(0, 6)
            ctx.mark_dirty(x)
            out = x
        else:
            out = x.clamp(0, 6)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        (out,) = ctx.saved_tensors
        return grad.clamp(min=0) * ((out > 0) & (out < 6)).to(grad.dtype), None


_OUT_OF_PLACE = {F.relu, torch.relu, torch.Tensor.relu}
_IN_PLACE = {F.relu_, torch.relu_, torch.Tensor.relu_}
_RELU6 = {F.relu6, F.hardtanh, F.hardtanh_}


def _relu6_call(func: Any, args: tuple, kwargs: dict) -> tuple[torch.Tensor, bool] | None:
    """``(input, inplace)`` if this call is a ReLU6 (``relu6``, or ``hardtanh`` with bounds 0, 6)."""
    x = args[0] if args else kwargs.get("input")
    if func is F.relu6:
        return x, bool(kwargs.get("inplace", args[1] if len(args) > 1 else False))
    lo = kwargs.get("min_val", args[1] if len(args) > 1 else -1.0)
    hi = kwargs.get("max_val", args[2] if len(args) > 2 else 1.0)
    if float(lo) != 0.0 or float(hi) != 6.0:
        return None
    return x, func is F.hardtanh_ or bool(kwargs.get("inplace", args[3] if len(args) > 3 else False))


class _GuidedMode(TorchFunctionMode):
    """Routes every ``relu`` call made while active to the guided ReLU (and, with ``relu6``,
    every ReLU6 to the guided ReLU6)."""

    def __init__(self, relu6: bool = False) -> None:
        super().__init__()
        self.relu6 = relu6

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        if func in _OUT_OF_PLACE or func in _IN_PLACE:
            x = args[0] if args else kwargs["input"]
            inplace = func in _IN_PLACE or bool(kwargs.get("inplace", args[1] if len(args) > 1 else False))
            if isinstance(x, torch.Tensor) and x.requires_grad:
                return (_GuidedReLUInplace if inplace else _GuidedReLU).apply(x)
        elif self.relu6 and func in _RELU6:
            call = _relu6_call(func, args, kwargs)
            if call is not None and isinstance(call[0], torch.Tensor) and call[0].requires_grad:
                return _GuidedReLU6.apply(*call)
        return func(*args, **kwargs)


@contextlib.contextmanager
def guided_relu(relu6: bool = False) -> Iterator[None]:
    """Inside the ``with`` block, every ReLU evaluated on a tensor that requires grad (module,
    functional, tensor method, in-place or not) back-propagates Guided-Backprop style; with
    ``relu6=True`` every ReLU6 too. Leaves no trace on any model; only the forward pass needs to
    run inside the block."""
    with _GuidedMode(relu6):
        yield


def input_gradient(
    clf: Classifier, x: torch.Tensor, targets: torch.Tensor, batch_size: int, score: str = "logit", guided: bool = False,
    relu6: bool = False,
) -> torch.Tensor:
    """∂score_target/∂x for the pixel-space batch ``x`` ``(N, C, H, W)``, computed in chunks of
    ``batch_size`` images; with ``guided=True`` through guided ReLUs (and ReLU6s if ``relu6``).
    Returns ``(N, C, H, W)``.

    Uses :func:`torch.autograd.grad` with respect to the input only: parameter ``.grad`` fields
    are never written."""
    validation.choice("score", score, ("logit", "prob"))
    grads = []
    for a, b in chunk_ranges(x.shape[0], batch_size):
        xb = x[a:b].detach().clone().requires_grad_(True)
        ctx = guided_relu(relu6) if guided else contextlib.nullcontext()
        with torch.enable_grad():
            with ctx:
                logits = clf.logits(xb)
            s = target_scores(logits, targets[a:b], score).sum()
            (g,) = torch.autograd.grad(s, xb)
        grads.append(g.detach())
    return torch.cat(grads)


@register("saliency")
def saliency(
    clf: Classifier, x: torch.Tensor, targets: torch.Tensor, *, seed: int, batch_size: int, layer: Any,
    score: str = "logit",
) -> Explanation:
    """Vanilla gradient saliency (Simonyan et al. 2014; §2): map = max_c |∂score/∂x_c|.

    Args:
        score: ``"logit"`` (default, the target logit) or ``"prob"`` (softmax probability).

    Returns:
        An :class:`Explanation` with maps ``(N, H, W)`` and the signed gradient
        ``attributions`` ``(N, C, H, W)``.
    """
    g = input_gradient(clf, x, targets, batch_size, score=score)
    return Explanation(maps=g.abs().amax(dim=1), targets=targets,
                       params={"score": score}, attributions=g)


@register("guided_backprop")
def guided_backprop(
    clf: Classifier, x: torch.Tensor, targets: torch.Tensor, *, seed: int, batch_size: int, layer: Any,
    score: str = "logit", relu6: bool = False,
) -> Explanation:
    """Guided Backpropagation (Springenberg et al. 2014; §2): the input gradient with every
    ReLU's backward replaced by ``max(grad, 0)·[input > 0]``; map = max_c |·|.

    Works with reused / in-place ReLU modules and functional ``relu`` (module docstring).

    Args:
        score: ``"logit"`` (default) or ``"prob"``.
        relu6: also guide every ReLU6 (``max(grad, 0)·[0 < input < 6]``). Off by default, as in
            captum; without it a network built from ReLU6 only (MobileNetV2, EfficientNet-Lite)
            gets its plain gradient, i.e. the saliency map.

    Returns:
        An :class:`Explanation` with maps ``(N, H, W)`` and the guided gradient
        ``attributions`` ``(N, C, H, W)``.
    """
    refuse_torchscript(clf, "guided_backprop", "its graph does not call Python's relu, so the ReLU backward cannot "
                       "be guided (the result would silently be the plain gradient, i.e. saliency)")
    relu6 = validation.flag("relu6", relu6)
    g = input_gradient(clf, x, targets, batch_size, score=score, guided=True, relu6=relu6)
    params: dict[str, Any] = {"score": score}
    if relu6:
        params["relu6"] = True  # absent when off: the default's params (and goldens) stay as they were
    return Explanation(maps=g.abs().amax(dim=1), targets=targets, params=params, attributions=g)
