"""Attribution methods behind one call: :func:`explain` and the registry :func:`methods` (docs/algorithms.md §2, §9).

Every method is a function registered under its name in docs/algorithms.md §2 with :func:`register`. It receives the
validated pixel-space batch and the resolved targets and returns an :class:`~cnnlens.Explanation`
with raw maps; :func:`explain` records the common parameters (method, seed, layer, targets,
batch size, package version) on top of the method's own.

Method modules live in this package, one per family (``da.py`` and ``ri.py`` adapt Dynamic
Ablation and Representative Interpretations). Every module of the package is imported on first
use, so a new method is one decorated function in one new file, found without editing a list; a
third-party package registers its methods through the ``cnnlens.methods`` entry-point group.
:func:`explain` checks the method's own parameters against what its function accepts (or what it
declared with ``register(params=...)``) and names the valid ones.

Example::

    >>> import torch
    >>> from torch import nn
    >>> import cnnlens
    >>> net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
    ...                     nn.Linear(4, 3)).eval()
    >>> clf = cnnlens.Classifier(net)
    >>> "saliency" in cnnlens.methods()
    True
    >>> e = cnnlens.explain(clf, torch.rand(2, 1, 8, 8), method="saliency")
    >>> e.maps.shape, e.method
    (torch.Size([2, 8, 8]), 'saliency')
"""
from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import torch

from .. import validation
from .._plugins import Loader
from ..classifier import Classifier
from ..errors import CnnlensError
from ..explanation import Explanation

__all__ = ["register", "unregister", "methods", "explain", "method_info", "MethodInfo", "DEFAULT_BATCH_SIZE"]

DEFAULT_BATCH_SIZE = 64

# the order of methods() (§2 table order); methods found elsewhere follow in import order
_ORDER = ("saliency", "guided_backprop", "gradcam", "gradcam++", "scorecam", "lrp", "deeplift", "lime", "rise",
          "extremal_perturbation", "da_pos", "da_neg", "ri", "ace")
# arguments every method function takes from explain() itself (``first_index`` only where the
# function has it: the stochastic methods, §11)
_COMMON = ("clf", "x", "targets", "seed", "batch_size", "layer", "first_index")


class MethodFn(Protocol):
    def __call__(
        self,
        clf: Classifier,
        x: torch.Tensor,
        targets: torch.Tensor,
        *,
        seed: int,
        batch_size: int,
        layer: Any,
        **params: Any,
    ) -> Explanation: ...


@dataclasses.dataclass(frozen=True)
class MethodInfo:
    """A registered method: its name, function, whether it reads a layer / is stochastic, the
    names of its own parameters (what :func:`explain` accepts beyond the common arguments), and
    whether its function takes ``first_index`` (per-image seed streams, §11)."""

    name: str
    fn: MethodFn
    uses_layer: bool
    stochastic: bool
    description: str
    params: tuple[str, ...] = ()
    takes_index: bool = False
    option_kinds: tuple[tuple[str, str], ...] = ()  # (name, "bool" | "float") of typed options


_REGISTRY: dict[str, MethodInfo] = {}


def register(name: str, *, uses_layer: bool = False, stochastic: bool = False, description: str = "",
             params: Sequence[str] | None = None) -> Callable[[MethodFn], MethodFn]:
    """Decorator: register ``fn(clf, x, targets, *, seed, batch_size, layer, **params)`` as
    method ``name``. ``uses_layer`` marks methods that read a feature layer (``layer=`` applies);
    ``params`` names the method's own parameters when ``fn`` takes them as ``**params`` (default:
    the keyword parameters of ``fn`` beyond the common ones)."""

    def deco(fn: MethodFn) -> MethodFn:
        if not (fn.__module__ or "").startswith("cnnlens."):
            _load_providers()  # the built-in names are taken before a user's method is added
        old = _REGISTRY.get(name)
        if old is not None and old.fn is not fn and (old.fn.__module__, old.fn.__qualname__) != (fn.__module__, fn.__qualname__):
            raise CnnlensError(f"attribution method {name!r} is registered twice")
        doc = description or ((fn.__doc__ or "").strip().splitlines() or [""])[0]
        own = tuple(params) if params is not None else tuple(validation.accepted_params(fn, skip=_COMMON)[0])
        takes_index = "first_index" in validation.accepted_params(fn)[0]
        _REGISTRY[name] = MethodInfo(name, fn, uses_layer, stochastic, doc, own, takes_index, _option_kinds(fn))
        return fn

    return deco


# imports every module of this package and every ``cnnlens.methods`` entry point once
_load_providers = Loader(__name__, "cnnlens.methods", skip=("graph",))


def unregister(name: str) -> None:
    """Remove the method ``name`` from the registry (a notebook's or a test's own method)."""
    method_info(name)  # an unknown name lists the valid ones
    del _REGISTRY[name]


def methods() -> list[str]:
    """Names of every registered attribution method (§2 order, then any others)."""
    _load_providers()
    rank = {m: i for i, m in enumerate(_ORDER)}
    return sorted(_REGISTRY, key=lambda m: rank.get(m, len(rank)))


def method_info(name: str) -> MethodInfo:
    """The :class:`MethodInfo` of ``name``; an unknown name lists the valid ones."""
    _load_providers()
    if not isinstance(name, str) or name not in _REGISTRY:
        raise CnnlensError(f"unknown method {name!r}; available: {', '.join(_REGISTRY)}")
    return _REGISTRY[name]


def _option_kinds(fn: Callable[..., Any]) -> tuple[tuple[str, str], ...]:
    """``(name, "bool" | "float")`` of ``fn``'s options declared (or defaulted) as bool or float."""
    try:
        sig = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return ()
    kinds = []
    for name, p in sig.items():
        ann = "" if p.annotation is p.empty else p.annotation if isinstance(p.annotation, str) else \
            getattr(p.annotation, "__name__", "")
        if ann == "bool" or (ann == "" and isinstance(p.default, bool)):
            kinds.append((name, "bool"))
        elif ann == "float":
            kinds.append((name, "float"))
    return tuple(kinds)


def _check_option_types(info: MethodInfo, params: dict[str, Any]) -> None:
    """Every option the method declares as ``bool`` goes through :func:`validation.flag` (``'no'``
    is not False) and every one declared as ``float`` through :func:`validation.real` (finite);
    the method checks ranges itself. The kinds are read once, at registration."""
    for name, kind in info.option_kinds:
        if name not in params:
            continue
        if kind == "bool":
            validation.flag(name, params[name])
        elif params[name] is not None:
            validation.real(name, params[name])


def _ordinary(v: Any) -> Any:
    """An ordinary copy of an inference tensor (one made under ``torch.inference_mode``); anything else as it is."""
    return v.clone() if isinstance(v, torch.Tensor) and v.is_inference() else v


def explain(
    clf: Classifier,
    x: torch.Tensor,
    method: str,
    target: int | Sequence[int] | torch.Tensor | None = None,
    seed: int = 0,
    batch_size: int = DEFAULT_BATCH_SIZE,
    layer: Any = None,
    first_index: int = 0,
    **params: Any,
) -> Explanation:
    """Explain ``clf``'s decision on the pixel-space batch ``x`` ``(N, C, H, W)`` with ``method``.

    Args:
        clf: the :class:`~cnnlens.Classifier`.
        x: images in ``[0, 1]``.
        method: a name from :func:`methods`.
        target: class to explain: ``None`` → the predicted class, an int for all images, or one
            per image (§0).
        seed: seed of stochastic methods (LIME, RISE, DA, RI …).
        batch_size: bounds how many images/perturbations go through the model at once.
        layer: for methods that read a layer (CAMs, RI): overrides the feature layer for this call.
        first_index: data-set position of ``x[0]``: image i draws its random numbers from
            ``SeedSequence([seed, first_index + i, stream])`` (§11, :mod:`cnnlens.seeding`), so
            ``explain(x[i:i+1], first_index=i)`` gives what ``explain(x)`` gives for image i.
        **params: the method's own options (see its docstring).

    Returns:
        An :class:`~cnnlens.Explanation` with raw ``maps`` ``(N, H, W)``; ``params`` records the
        method's parameters plus ``seed``, ``layer``, ``target``, ``batch_size`` and ``version``.
    """
    from .. import __version__

    if torch.is_inference_mode_enabled():
        # inference tensors cannot enter autograd: every method runs with inference mode off, on
        # ordinary copies of any inference tensor given (x, target, reference= …); the result holds
        # ordinary tensors
        with torch.inference_mode(False):
            return explain(clf, _ordinary(x), method, _ordinary(target), seed, batch_size, layer, first_index,
                           **{k: _ordinary(v) for k, v in params.items()})
    info = method_info(method)
    if not isinstance(clf, Classifier):
        raise CnnlensError(f"clf must be a cnnlens.Classifier, got {type(clf).__name__}")
    batch_size = validation.batch_size(batch_size)
    seed = validation.seed(seed)
    first_index = validation.integer("first_index", first_index, minimum=0)
    validation.known_params(f"method {method!r}", params, info.params)
    _check_option_types(info, params)
    x = clf.check_input(x)
    if layer is not None and not info.uses_layer:
        raise CnnlensError(f"method {method!r} does not read a layer; drop layer={layer!r}")
    try:  # one probe forward: wrong image sizes fail here with a clear message
        clf.logits(x[:1], batch_size=1)  # also tells the Classifier its number of classes
    except RuntimeError as exc:
        expected = f"; the model expects (C, H, W) = {clf.input_shape}" if clf.input_shape else ""
        reason = (str(exc).strip().splitlines() or [""])[0]
        raise CnnlensError(
            f"the model cannot take images of shape {tuple(x.shape[1:])}{expected} ({reason})"
        ) from exc
    layer_name = None
    if info.uses_layer:
        owner = "the model" if isinstance(clf.model, torch.jit.ScriptModule) else None
        if owner is None:
            module, layer_name = clf.layer_module(layer, x)
            owner = clf.torchscript_owner(module)
        if owner is not None:
            raise CnnlensError(
                f"method {method!r} cannot explain this model: it reads "
                f"{'layer ' + repr(layer_name) if layer_name else 'a layer'} with a forward hook, and {owner} is "
                "TorchScript (scripted/traced), which runs no Python hooks; explain the original nn.Module"
            )
    targets = clf.targets(x, target, batch_size=batch_size)
    # (Classifier.targets checks the range: the probe above told it the number of classes)
    extra = {"first_index": first_index} if info.takes_index else {}
    exp = info.fn(clf, x, targets, seed=seed, batch_size=batch_size, layer=layer, **extra, **params)
    exp.method = info.name
    exp.params = {
        **exp.params,
        "method": method,
        "seed": seed,
        "layer": exp.params.get("layer", layer_name),  # a method that reads its own layer says which
        "target": "predicted" if target is None else targets.tolist(),
        "batch_size": batch_size,
        "first_index": first_index,
        "version": __version__,
    }
    return exp
