"""One switch for every progress bar inside cnnlens (``cnnlens demo --no-progress``)."""
from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager

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
