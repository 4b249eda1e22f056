"""Exception types shared by every part of cnnlens.

Every error a user can cause is a :class:`CnnlensError`; its message names what is wrong and,
where possible, what to do. The command line turns these into a one-line message and exit code 2.
"""
from __future__ import annotations

__all__ = ["CnnlensError", "AssetMissingError", "ImageReadError", "ModelError", "one_line"]


class CnnlensError(ValueError):
    """Bad input or bad usage: the message says what is wrong and what to do."""


class AssetMissingError(CnnlensError):
    """A bundled model or dataset is not installed; the message holds the install command."""


class ImageReadError(CnnlensError):
    """An image file could not be read (corrupt, not an image, unreadable)."""


class ModelError(CnnlensError, RuntimeError):
    """The user's model raised on an input (wrong image size, dtype, ...): one line naming the
    batch and torch's first message line. Also a ``RuntimeError``, so code that caught the
    model's own ``RuntimeError`` keeps working."""


_ANSI = None


def one_line(exc: BaseException | str, limit: int = 240) -> str:
    """A short one-line description of ``exc`` for an error message: the first non-empty line of
    its text without ANSI colour codes, cut to ``limit`` characters, prefixed by the exception
    type for non-cnnlens errors (torch's multi-paragraph messages stay out of the CLI line)."""
    import re

    global _ANSI
    if _ANSI is None:
        _ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-_]")
    text = exc if isinstance(exc, str) else str(exc)
    text = _ANSI.sub("", text)
    first = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    if len(first) > limit:
        first = first[: limit - 1] + "…"
    if isinstance(exc, BaseException) and not isinstance(exc, CnnlensError):
        name = type(exc).__name__
        return f"{name}: {first}" if first else name
    return first
