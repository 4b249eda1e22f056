"""Filter norms, thresholds and the filter-probability matrix P (docs/algorithms.md §6.1, §6.2; NESY Eq. 1–3).

The layer read by the NeSy pipeline is the **last ``Conv2d`` after its activation** by default
(:func:`default_layer`): if the module registered right after the last ``Conv2d`` is an
activation module (ReLU, LeakyReLU, ReLU6, ELU, GELU, SiLU, PReLU, …) that module is read, else
the ``Conv2d`` itself (a functional ``F.relu`` in ``forward`` is invisible to hooks; pass
``layer=`` explicitly then). ``layer="pool5"``-style choices reproduce the NeSyFOLD code.

Example::

    >>> import torch
    >>> from torch import nn
    >>> from cnnlens import Classifier
    >>> from cnnlens.nesy import filter_norms, thresholds
    >>> net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
    ...                     nn.Linear(4, 2)).eval()
    >>> clf = Classifier(net)
    >>> norms = filter_norms(clf, torch.rand(5, 1, 8, 8))
    >>> norms.shape, thresholds(norms).shape
    (torch.Size([5, 4]), torch.Size([4]))
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .. import seeding, validation
from ..classifier import Classifier
from ..errors import CnnlensError

__all__ = [
    "default_layer",
    "filter_maps",
    "filter_norms",
    "norms_from_maps",
    "mean_abs_activation",
    "class_activation_sums",
    "thresholds",
    "p_matrix",
    "check_k",
    "binarize",
]

_ACTIVATIONS = (nn.ReLU, nn.LeakyReLU, nn.ReLU6, nn.ELU, nn.GELU, nn.SiLU, nn.PReLU, nn.Hardswish,
                nn.Mish, nn.SELU, nn.CELU, nn.Softplus, nn.Tanh, nn.Sigmoid)


def _kind(m: nn.Module) -> str:
    """Class name of a module; TorchScript modules report their original class name."""
    return getattr(m, "original_name", None) or type(m).__name__


def default_layer(clf: Classifier) -> str:
    """Dotted name of the last ``Conv2d`` after its activation (§6.1 default layer)."""
    named = [(n, m) for n, m in clf.model.named_modules() if n]
    last = None
    for i, (_, m) in enumerate(named):
        if isinstance(m, nn.Conv2d) or _kind(m) == "Conv2d":
            last = i
    if last is None:
        raise CnnlensError(
            f"{type(clf.model).__name__} has no Conv2d layer; pass layer= naming a layer with "
            "4-D (N, F, h, w) filter maps"
        )
    name, conv = named[last]
    # the next module that is not inside the conv (a Conv2d has no children) and is an activation
    if last + 1 < len(named):
        nxt_name, nxt = named[last + 1]
        if isinstance(nxt, _ACTIVATIONS) or _kind(nxt) in {a.__name__ for a in _ACTIVATIONS}:
            return nxt_name
    return name


def _layer_name(clf: Classifier, layer: str | nn.Module | None) -> str | nn.Module:
    return default_layer(clf) if layer is None else layer


def _check_maps(maps: Any, name: Any) -> torch.Tensor:
    if not isinstance(maps, torch.Tensor) or maps.dim() != 4:
        shape = tuple(maps.shape) if isinstance(maps, torch.Tensor) else type(maps).__name__
        raise CnnlensError(
            f"layer {name!r} outputs {shape}, not spatial filter maps (N, F, h, w); "
            "NeSy needs a convolutional layer: pass layer= naming a Conv2d or its activation"
        )
    return maps


def filter_maps(clf: Classifier, x: torch.Tensor, layer: str | nn.Module | None = None) -> torch.Tensor:
    """Filter maps ``(N, F, h, w)`` of ``layer`` on the autograd graph (one forward pass; used by
    training). ``layer=None`` → :func:`default_layer`."""
    lay = _layer_name(clf, layer)
    maps, _ = clf.forward_with_features(x, layer=lay)
    return _check_maps(maps, lay)


def norms_from_maps(maps: torch.Tensor, norm: str = "fro") -> torch.Tensor:
    """Per-filter norm of ``(N, F, h, w)`` maps → ``(N, F)``: ``"fro"`` = ‖f‖₂ over the h×w map
    (NESY Eq. 3, §6.1), ``"spectral"`` = largest singular value (the NeSyFOLD code's NE)."""
    maps = _check_maps(maps, "maps")
    if norm == "fro":
        return maps.flatten(2).norm(dim=2)
    if norm == "spectral":
        return torch.linalg.matrix_norm(maps.float(), ord=2).to(maps.dtype)
    raise CnnlensError(f"norm must be 'fro' or 'spectral', got {norm!r}")


def _chunks(clf: Classifier, x: torch.Tensor, batch_size: int):
    validation.batch_size(batch_size)
    x = clf.check_input(x)
    return x.split(batch_size)


def filter_norms(clf: Classifier, x: torch.Tensor, layer: str | nn.Module | None = None,
                 norm: str = "fro", batch_size: int = 64) -> torch.Tensor:
    """Filter norms ``(N, F)`` of ``layer`` over images ``x`` ``(N, C, H, W)`` in [0, 1]
    (§6.1; NESY Eq. 3). Batched, without gradients, on the model's device."""
    if norm not in ("fro", "spectral"):
        raise CnnlensError(f"norm must be 'fro' or 'spectral', got {norm!r}")
    out = []
    with torch.no_grad():
        for c in _chunks(clf, x, batch_size):
            out.append(norms_from_maps(filter_maps(clf, c, layer), norm))
    return torch.cat(out)


def mean_abs_activation(clf: Classifier, x: torch.Tensor, layer: str | nn.Module | None = None,
                        batch_size: int = 64) -> torch.Tensor:
    """``a[n, j] = Σ_{h,w} |f_{n,j,h,w}| / (h·w)`` ``(N, F)`` (NESY Method 1 step 2; §6.4)."""
    out = []
    with torch.no_grad():
        for c in _chunks(clf, x, batch_size):
            out.append(filter_maps(clf, c, layer).abs().mean(dim=(2, 3)))
    return torch.cat(out)


def model_classes(clf: Classifier, x: torch.Tensor) -> int | None:
    """The classifier's class count (one probe forward on ``x[:1]`` when not known yet)."""
    if clf.num_classes is None:
        with torch.no_grad():
            clf.logits(x[:1])
    return clf.num_classes


def _labels(y: Any, x: torch.Tensor, clf: Classifier) -> torch.Tensor:
    """Whole class indices in the model's range, never truncated (:func:`cnnlens.validation.class_labels`)."""
    return validation.class_labels("y", y, x.shape[0], model_classes(clf, x)).to(clf.device)


def _n_classes(clf: Classifier, y: torch.Tensor, n_classes: int | None) -> int:
    if n_classes is None:
        n_classes = len(clf.class_names) if clf.class_names else int(y.max()) + 1
    n_classes = validation.integer("n_classes", n_classes, minimum=1)
    if int(y.max()) >= n_classes:
        raise CnnlensError(f"label {int(y.max())} out of range for {n_classes} classes")
    return int(n_classes)


def class_activation_sums(a: torch.Tensor, y: torch.Tensor, n_classes: int) -> torch.Tensor:
    """``D[c, j] = Σ_{n: y_n = c} a[n, j]`` ``(C, F)`` (NESY Method 1 step 3; §6.4)."""
    D = torch.zeros(n_classes, a.shape[1], dtype=a.dtype, device=a.device)
    return D.index_add_(0, y.to(a.device), a)


def thresholds(norms: torch.Tensor, h1: float = 0.6, h2: float = 0.7) -> torch.Tensor:
    """θ_j = h1·μ_j + h2·σ_j over the rows of ``norms`` ``(N, F)`` (NESY Eq. 2; σ unbiased;
    §6.1). Fit on training data only. Returns ``(F,)``."""
    if not isinstance(norms, torch.Tensor) or norms.dim() != 2:
        raise CnnlensError(f"norms must be a (N, F) tensor, got {getattr(norms, 'shape', type(norms).__name__)}")
    if norms.shape[0] < 2:
        raise CnnlensError(f"thresholds need at least 2 images (unbiased std), got {norms.shape[0]}")
    norms = norms.double()
    return (h1 * norms.mean(dim=0) + h2 * norms.std(dim=0, unbiased=True)).float()


def check_k(k: int, n_classes: int, n_filters: int) -> None:
    """§6.2: ``K·C ≤ F/2``."""
    validation.integer("k", k, minimum=1)
    if n_filters < 2 * n_classes:
        raise CnnlensError(
            f"the layer has {n_filters} filters, too few for K·C <= F/2 with {n_classes} classes at any k >= 1 "
            f"(needs F >= {2 * n_classes}); pick a layer with more filters"
        )
    if k * n_classes > n_filters / 2:
        raise CnnlensError(
            f"k={k} filters for each of {n_classes} classes needs K·C = {k * n_classes} <= F/2 = "
            f"{n_filters / 2:g} (the layer has {n_filters} filters); use k <= {max(n_filters // (2 * n_classes), 0)}"
        )


def _topk_stable(D: torch.Tensor, k: int) -> torch.Tensor:
    """Indices of the k largest entries per row; ties → lower filter index (deterministic)."""
    order = torch.sort(-D, dim=1, stable=True).indices
    return order[:, :k]


def p_matrix(clf: Classifier, x: torch.Tensor, y: Any, k: int, method: int = 1, seed: int = 0,
             disjoint: bool = False, layer: str | nn.Module | None = None,
             n_classes: int | None = None, batch_size: int = 64, live_only: bool = True) -> torch.Tensor:
    """The filter-probability matrix P ``(C, F)`` of 0/1 floats (§6.2; NESY Eq. 1).

    ``method=1``: per class the top-``k`` filters by ``D[c, j]`` = Σ over class-c images of the
    mean absolute activation (ties → lower index). ``method=2``: ``k`` random filters per class,
    without replacement within a class and independently across classes (overlap allowed), or
    all distinct with ``disjoint=True``; seeded. With ``live_only=True`` (the default, §6.2 as
    revised) the draw is among the **live** filters only: those whose norm is > 0 on at least one
    image of ``x`` (equivalently θ_j > 0). A dead ReLU filter (norm 0 on every training image)
    gets no gradient, so a target of 1 for it is unreachable. When every filter is live the draw
    is the same as with ``live_only=False``. ``K·C ≤ F/2`` is required. ``n_classes``
    defaults to the classifier's class count (else ``max(y) + 1``).
    """
    if method not in (1, 2):
        raise CnnlensError(f"method must be 1 (top-K by activation) or 2 (random), got {method!r}")
    x = clf.check_input(x)
    yt = _labels(y, x, clf)
    C = _n_classes(clf, yt, n_classes)
    if method == 1:
        a = mean_abs_activation(clf, x, layer, batch_size)
        F_ = a.shape[1]
        check_k(k, C, F_)
        D = class_activation_sums(a, yt, C)
        idx = _topk_stable(D, k)
    else:
        if live_only:
            live = filter_norms(clf, x, layer, "fro", batch_size).amax(dim=0) > 0
            F_ = live.numel()
            pool = live.nonzero().flatten().cpu()
        else:
            with torch.no_grad():
                F_ = filter_maps(clf, x[:1], layer).shape[1]
            pool = torch.arange(F_)
        check_k(k, C, F_)
        need = C * k if disjoint else k
        if pool.numel() < need:
            raise CnnlensError(
                f"only {pool.numel()} of the layer's {F_} filters are live (norm > 0 on some image of x); "
                f"method 2 needs {need} live filters for k={k}{' disjoint' if disjoint else ''}: "
                "lower k, or pass live_only=False"
            )
        g = seeding.run_generator(seed, "nesy.p_matrix")
        n_pool = pool.numel()
        if disjoint:
            idx = pool[torch.randperm(n_pool, generator=g)[: C * k]].view(C, k)
        else:
            idx = torch.stack([pool[torch.randperm(n_pool, generator=g)[:k]] for _ in range(C)])
    P = torch.zeros(C, F_, device=clf.device)
    P.scatter_(1, idx.to(clf.device), 1.0)
    return P


def binarize(norms: torch.Tensor, theta: torch.Tensor | float | None, mode: str) -> torch.Tensor:
    """0/1 table ``(N, F)`` uint8 from norms (§6.1).

    ``mode="sigmoid"`` (sparsity-trained models): bit = 1 iff Norm − θ > 0, the same as
    ``torch.round(sigmoid(Norm − θ))`` (round half to even: exactly 0.5 → 0); ``θ = 0`` (TS5)
    gives bit = 1 iff Norm > 0. ``mode="threshold"`` (CE-only / NE post-training): bit = 1 iff
    Norm ≥ θ.
    """
    if theta is None:
        theta = 0.0
    th = torch.as_tensor(theta, dtype=norms.dtype, device=norms.device)
    validation.finite("theta", th)  # a NaN threshold would silently never fire
    if th.dim() == 1 and th.numel() != norms.shape[1]:
        raise CnnlensError(f"theta has {th.numel()} values but the layer has {norms.shape[1]} filters")
    if mode == "sigmoid":
        return (norms - th > 0).to(torch.uint8)
    if mode == "threshold":
        return (norms >= th).to(torch.uint8)
    raise CnnlensError(f"binarization must be 'sigmoid' or 'threshold', got {mode!r}")
