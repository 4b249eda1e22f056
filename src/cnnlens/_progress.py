"""Progress bars: one helper, one switch (docs/algorithms.md §8).

Every long loop of cnnlens shows its bar through :func:`bar`, and every public function spells
the switch the same way: ``progress`` — ``True`` (show), ``False`` (hide) or, where a function
defaults to it, ``None`` (show on a terminal only, tqdm's rule). Inside :func:`quiet_progress`
(``cnnlens … --quiet``) no bar is shown, whatever a call asks for.
"""
from __future__ import annotations

import contextvars
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["bar", "quiet_progress", "silenced"]

_QUIET = contextvars.ContextVar("cnnlens_quiet_progress", default=False)


@contextmanager
def quiet_progress() -> Iterator[None]:
    """Inside this block no cnnlens progress bar is shown, whatever the calls ask for."""
    token = _QUIET.set(True)
    try:
        yield
    finally:
        _QUIET.reset(token)


def silenced() -> bool:
    """True inside :func:`quiet_progress`."""
    return _QUIET.get()


def bar(iterable: Iterable[Any] | None = None, *, total: int | None = None, desc: str = "",
        progress: bool | None = True, unit: str = "it", leave: bool = False, min_total: int = 0,
        **kwargs: Any) -> Any:
    """A tqdm bar over ``iterable`` or ``total`` steps: hidden when ``progress`` is ``False``, inside
    :func:`quiet_progress`, or when ``total`` is at most ``min_total`` (short work); ``None``
    leaves the choice to tqdm (a terminal shows it, a log file does not)."""
    from tqdm import tqdm

    n = total if total is not None else (len(iterable) if hasattr(iterable, "__len__") else None)  # type: ignore[arg-type]
    hide: bool | None
    if silenced() or progress is False or (n is not None and n <= min_total):
        hide = True
    else:
        hide = None if progress is None else False
    return tqdm(iterable, total=total, desc=desc, unit=unit, leave=leave, disable=hide, **kwargs)
