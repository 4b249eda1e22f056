"""The metric registry: one decorator per metric, looped over by ``evaluate``/``compare``/the CLI.

A metric is a function ``fn(ctx) -> MetricResult`` taking a :class:`~cnnlens.metrics.context.
MetricContext` (the validated images, targets, maps, options and the shared computations such
as the insertion/deletion games). :func:`register` records its name, direction (``"↑"``: higher is
better), the inputs it needs, and how tables show it. Adding a metric is one decorated function
in one file: every module of the ``cnnlens.metrics`` package is imported on first use (no central
list), a user's own module registers the same way by being imported, and a third-party package
through the ``cnnlens.metrics`` entry-point group.

Inputs a metric may need (``needs=``): ``maps`` (the explanation's maps), ``insertion`` /
``deletion`` (that perturbation game of the protocol), ``method`` (the explanation's method and
parameters, to re-run it), ``masks`` (ground-truth masks, ``evaluate(masks=...)``),
``second_model`` (``evaluate(second_model=...)``), ``ablation`` (a Dynamic Ablation result).

Example::

    >>> import cnnlens.metrics as M
    >>> M.list_metrics()[:6]
    ['iauc', 'dauc', 'ic', 'dc', 'ad', 'iic']
    >>> M.metric_info("ai").name, M.metric_info("dauc").direction
    ('iic', '↓')
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .._plugins import Loader
from ..errors import CnnlensError

if TYPE_CHECKING:
    from ._common import MetricResult
    from .context import MetricContext

__all__ = ["register", "unregister", "list_metrics", "metric_info", "canonical_metric", "default_metrics", "MetricInfo", "INPUTS"]

INPUTS = ("maps", "insertion", "deletion", "method", "masks", "second_model", "ablation")

MetricFn = Callable[["MetricContext"], "MetricResult"]


@dataclasses.dataclass(frozen=True)
class MetricInfo:
    """A registered metric.

    Attributes:
        name: canonical name (lower case).
        fn: ``fn(ctx) -> MetricResult``.
        direction: ``"↑"`` (higher is better) or ``"↓"``.
        needs: inputs it needs, from :data:`INPUTS`.
        scalar: one number per image (a table column of ``compare``); ``False`` for curves per
            image such as the insertion game's accuracy per fraction.
        percent: a fraction printed ×100 when a table asks for percentages.
        default: part of ``evaluate``'s default set (OVERVIEW's six).
        aliases: other accepted names.
        description: one line for ``--help`` and docs.
        order: position in :func:`list_metrics` (registration order breaks ties).
    """

    name: str
    fn: MetricFn
    direction: str
    needs: tuple[str, ...]
    scalar: bool = True
    percent: bool = False
    default: bool = False
    aliases: tuple[str, ...] = ()
    description: str = ""
    order: float = 100.0

    @property
    def higher_is_better(self) -> bool:
        return self.direction == "↑"


_REGISTRY: dict[str, MetricInfo] = {}
_ALIASES: dict[str, str] = {}


def register(name: str, *, direction: str, needs: tuple[str, ...] | list[str] = ("maps",), scalar: bool = True,
             percent: bool = False, default: bool = False, aliases: tuple[str, ...] | list[str] = (),
             description: str = "", order: float = 100.0) -> Callable[[MetricFn], MetricFn]:
    """Decorator: register ``fn(ctx) -> MetricResult`` as metric ``name`` (see the module doc)."""
    key = str(name).lower()
    if direction not in ("↑", "↓"):
        raise CnnlensError(f"metric {name!r}: direction must be '↑' or '↓', got {direction!r}")
    bad = [n for n in needs if n not in INPUTS]
    if bad:
        raise CnnlensError(f"metric {name!r}: unknown input(s) {bad}; choose from {', '.join(INPUTS)}")

    def deco(fn: MetricFn) -> MetricFn:
        if not (fn.__module__ or "").startswith("cnnlens."):
            _load_builtin()  # the built-in names are taken before a user's metric is added
        old = _REGISTRY.get(key)
        if old is not None and old.fn is not fn and (old.fn.__module__, old.fn.__qualname__) != (fn.__module__, fn.__qualname__):
            raise CnnlensError(f"metric {key!r} is registered twice")
        taken = [a for a in aliases if a in _REGISTRY or _ALIASES.get(a, key) != key]
        if taken:
            raise CnnlensError(f"metric {key!r}: alias {taken[0]!r} is already a metric name or alias")
        doc = description or ((fn.__doc__ or "").strip().splitlines() or [""])[0]
        _REGISTRY[key] = MetricInfo(key, fn, direction, tuple(needs), scalar, percent, default,
                                    tuple(aliases), doc, order)
        for a in aliases:
            _ALIASES[a] = key
        return fn

    return deco


# imports every module of this package (their metrics register) and the ``cnnlens.metrics`` entry points
_load_builtin = Loader(__name__.rsplit(".", 1)[0], "cnnlens.metrics")


def _ordered() -> list[MetricInfo]:
    _load_builtin()
    return sorted(_REGISTRY.values(), key=lambda m: m.order)  # stable: registration order on ties


def unregister(name: str) -> None:
    """Remove the metric ``name`` (and its aliases) from the registry."""
    info = metric_info(name)
    del _REGISTRY[info.name]
    for a in info.aliases:
        _ALIASES.pop(a, None)


def list_metrics() -> list[str]:
    """Names of every registered metric (OVERVIEW's six first)."""
    return [m.name for m in _ordered()]


def default_metrics() -> tuple[str, ...]:
    """``evaluate``'s default metrics: OVERVIEW's IAUC, DAUC, IC, DC, AD, IIC."""
    return tuple(m.name for m in _ordered() if m.default)


def metric_info(name: Any) -> MetricInfo:
    """The :class:`MetricInfo` of ``name`` or an alias; an unknown name lists the valid ones."""
    _load_builtin()
    if not isinstance(name, str):
        raise CnnlensError(f"metric names must be strings, got {name!r}")
    key = _ALIASES.get(name.lower(), name.lower())
    if key not in _REGISTRY:
        alias = ", ".join(f"{a} = {k}" for a, k in _ALIASES.items())
        raise CnnlensError(f"unknown metric {name!r}; available: {', '.join(list_metrics())}"
                           + (f" (alias: {alias})" if alias else ""))
    return _REGISTRY[key]


def canonical_metric(name: Any) -> str:
    """``"ai"`` → ``"iic"``; an unknown name raises a :class:`CnnlensError` listing the valid ones."""
    return metric_info(name).name
