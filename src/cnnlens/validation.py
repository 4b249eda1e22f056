"""One place for argument checks: every public function validates its knobs here.

Each check returns the normalised value or raises :class:`~cnnlens.CnnlensError` with one line
naming the argument, what it must be and what it got — the messages a user sees from every part
of cnnlens (and, through the command line, as ``cnnlens CMD: error: …``).

Example::

    >>> from cnnlens import validation as v
    >>> v.integer("n_masks", 4000, minimum=1)
    4000
    >>> v.real("keep", 0.2, low=0, high=1, open_low=True)
    0.2
    >>> v.choice("score", "prob", ("prob", "logit"))
    'prob'
    >>> v.integer("iterations", 0, minimum=1)
    Traceback (most recent call last):
    ...
    cnnlens.errors.CnnlensError: iterations must be a positive integer, got 0
"""
from __future__ import annotations

import inspect
import math
import numbers
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from .errors import CnnlensError

__all__ = [
    "integer",
    "real",
    "choice",
    "seed",
    "batch_size",
    "flag",
    "images",
    "target_range",
    "class_labels",
    "finite",
    "path",
    "known_params",
    "accepted_params",
    "shown",
]


def shown(value: Any, limit: int = 80) -> str:
    """``value`` for an error message: one line, at most ``limit`` characters; arrays and tensors
    by dtype and shape (their ``repr`` spans many lines)."""
    module = type(value).__module__ or ""
    if module.startswith("torch") and hasattr(value, "shape") and hasattr(value, "dtype") and value.numel() > 8:
        return f"a {str(value.dtype).replace('torch.', '')} tensor of shape {tuple(value.shape)}"
    if module == "numpy" and getattr(value, "size", 0) > 8:
        return f"a {value.dtype} array of shape {tuple(value.shape)}"
    text = " ".join(repr(value).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"

def _is_int(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, numbers.Integral)


def _int_rule(minimum: int | None, maximum: int | None) -> str:
    if minimum == 1 and maximum is None:
        return "a positive integer"
    if minimum is not None and maximum is not None:
        return f"an integer in [{minimum}, {maximum}]"
    if minimum is not None:
        return f"an integer >= {minimum}"
    if maximum is not None:
        return f"an integer <= {maximum}"
    return "an integer"


def integer(name: str, value: Any, minimum: int | None = None, maximum: int | None = None, *,
            allow_none: bool = False, hint: str = "") -> int | None:
    """``value`` as ``int`` when it is a whole number (not a bool) in ``[minimum, maximum]``.

    ``allow_none`` passes ``None`` through; ``hint`` is appended in parentheses (e.g. what 0 means).
    """
    if value is None and allow_none:
        return None
    if not _is_int(value) or (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        rule = _int_rule(minimum, maximum) + (" or None" if allow_none else "")
        extra = f" ({hint})" if hint else ""
        raise CnnlensError(f"{name} must be {rule}{extra}, got {shown(value)}")
    return int(value)


def real(name: str, value: Any, low: float | None = None, high: float | None = None, *,
         open_low: bool = False, open_high: bool = False, allow_none: bool = False, hint: str = "") -> float | None:
    """``value`` as a finite ``float`` in the interval ``low``…``high`` (closed unless ``open_*``)."""
    if value is None and allow_none:
        return None
    ok = not isinstance(value, (bool, str, bytes))
    v = math.nan
    if ok:
        try:
            v = float(value)
        except (TypeError, ValueError):
            ok = False
    if ok and math.isfinite(v):
        ok = (low is None or (v > low if open_low else v >= low)) and (high is None or (v < high if open_high else v <= high))
    else:
        ok = False
    if not ok:
        if low is not None and high is not None:
            rule = f"a number in {'(' if open_low else '['}{low:g}, {high:g}{')' if open_high else ']'}"
        elif low is not None:
            rule = f"a number {'>' if open_low else '>='} {low:g}"
        elif high is not None:
            rule = f"a number {'<' if open_high else '<='} {high:g}"
        else:
            rule = "a finite number"
        rule += " or None" if allow_none else ""
        extra = f" ({hint})" if hint else ""
        raise CnnlensError(f"{name} must be {rule}{extra}, got {shown(value)}")
    return v


def choice(name: str, value: Any, choices: Iterable[Any], *, aliases: Mapping[Any, Any] | None = None) -> Any:
    """``value`` when it is one of ``choices`` (after ``aliases``); else the valid ones are named."""
    options = tuple(choices)
    key = aliases.get(value, value) if aliases and isinstance(value, str) else value
    try:
        if key in options:
            return key
    except TypeError:  # unhashable / uncomparable values
        pass
    listed = ", ".join(repr(c) for c in options)
    raise CnnlensError(f"{name} must be one of {listed}, got {shown(value)}")


def seed(value: Any, name: str = "seed") -> int:
    """A seed: any integer (numpy's ``SeedSequence`` takes non-negative ones; see :mod:`cnnlens.seeding`)."""
    if not _is_int(value):
        raise CnnlensError(f"{name} must be an integer, got {shown(value)}")
    return int(value)


def batch_size(value: Any, name: str = "batch_size") -> int:
    """The one memory knob of docs/algorithms.md §0: a positive integer."""
    return integer(name, value, minimum=1)  # type: ignore[return-value]


def flag(name: str, value: Any) -> bool:
    """A boolean switch (``True``/``False`` only; ``0``/``1`` are refused: too easy to confuse)."""
    if not isinstance(value, bool):
        raise CnnlensError(f"{name} must be True or False, got {shown(value)}")
    return value


def images(clf: Any, x: Any, what: str = "images") -> Any:
    """``clf.check_input(x)`` with the argument's name in front of any error; an empty batch is
    refused with what to give instead."""
    if hasattr(x, "dim") and x.dim() == 4 and x.shape[0] == 0:
        raise CnnlensError(f"{what} is empty; give at least two images the model predicts as different classes")
    try:
        return clf.check_input(x)
    except CnnlensError as exc:
        raise CnnlensError(f"{what}: {exc}") from None


def target_range(targets: Sequence[int] | Any, n_classes: int) -> None:
    """Every target in ``[0, n_classes)``."""
    values = [int(t) for t in (targets.tolist() if hasattr(targets, "tolist") else targets)]
    bad = [t for t in values if t < 0 or t >= n_classes]
    if bad:
        raise CnnlensError(f"target {values if len(values) <= 8 else bad[:8]} out of range for {n_classes} classes")


def path(name: str, value: Any) -> Any:
    """``value`` as a :class:`pathlib.Path` when it is a non-empty ``str`` or ``os.PathLike``
    without NUL characters; else one line (not ``TypeError`` from deep inside ``pathlib``)."""
    import os
    from pathlib import Path

    if isinstance(value, os.PathLike) and not isinstance(value, (str, bytes)):
        value = os.fspath(value)
    if not isinstance(value, str) or not value or "\x00" in value:
        shown = repr(value)[:80] if isinstance(value, str) else type(value).__name__
        raise CnnlensError(f"{name} must be a file path (str or os.PathLike), got {shown}")
    return Path(value)


def finite(name: str, values: Any) -> Any:
    """``values`` (a tensor or array) when every entry is a finite number; else one line."""
    import torch

    t = torch.as_tensor(values)
    if t.dtype == torch.bool or t.is_complex() or (t.is_floating_point() and not bool(torch.isfinite(t).all())):
        raise CnnlensError(f"{name} must hold finite numbers, got {'NaN or inf values' if t.is_floating_point() else t.dtype}")
    return values


def class_labels(name: str, values: Any, n: int, n_classes: int | None = None) -> Any:
    """Ground-truth labels as a ``(n,)`` int64 CPU tensor: whole numbers (floats such as ``2.0``
    pass, ``0.5`` is refused, never truncated), one per image, none negative (unlabelled) and,
    when ``n_classes`` is known, each in ``[0, n_classes)``."""
    import torch

    if isinstance(values, (str, bytes)):
        raise CnnlensError(f"{name} must be class indices (int), got {values!r}"[:200])
    try:
        raw = torch.as_tensor(values).detach().flatten().cpu()
    except (TypeError, ValueError, RuntimeError) as exc:
        raise CnnlensError(f"{name} must be class indices (int): {str(exc).splitlines()[0] if str(exc) else exc!r}") from None
    if raw.dtype == torch.bool or raw.is_complex():
        raise CnnlensError(f"{name} must be class indices (int), got dtype {raw.dtype}")
    if raw.is_floating_point() and (not bool(torch.isfinite(raw).all()) or bool((raw != raw.round()).any())):
        bad = raw[~torch.isfinite(raw) | (raw != raw.round())]
        raise CnnlensError(f"{name} must be whole class indices, got {bad[:8].tolist()}")
    labels = raw.long()
    if labels.numel() != n:
        raise CnnlensError(f"{name} has {labels.numel()} labels for {n} images")
    if bool((labels < 0).any()):
        raise CnnlensError(f"{name} has unlabelled images (negative label, e.g. -1); drop them first")
    if n_classes is not None and bool((labels >= n_classes).any()):
        bad = sorted(set(labels[labels >= n_classes].tolist()))[:8]
        raise CnnlensError(f"{name} {bad} out of range for a {n_classes}-class model (valid: 0 … {n_classes - 1})")
    return labels


def accepted_params(fn: Callable[..., Any], skip: Iterable[str] = ()) -> tuple[list[str], bool]:
    """The keyword parameters ``fn`` accepts (minus ``skip``) and whether it takes ``**kwargs``."""
    names: list[str] = []
    var_kw = False
    for p in inspect.signature(fn).parameters.values():
        if p.kind is p.VAR_KEYWORD:
            var_kw = True
        elif p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in skip:
            names.append(p.name)
    return names, var_kw


def known_params(what: str, params: Mapping[str, Any], valid: Iterable[str]) -> None:
    """Every key of ``params`` is in ``valid``; else one line naming the unknown and the valid ones."""
    allowed = list(valid)
    unknown = [k for k in params if k not in allowed]
    if unknown:
        listed = ", ".join(allowed) if allowed else "none"
        raise CnnlensError(f"{what} has no parameter {', '.join(map(repr, unknown))}; valid: {listed}")
