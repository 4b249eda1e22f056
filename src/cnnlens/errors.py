"""Exception types shared by every part of cnnlens.

Every error a user can cause is a :class:`CnnlensError`; its message names what is wrong and,
where possible, what to do. The command line turns these into a one-line message and exit code 2.
"""
from __future__ import annotations


class CnnlensError(ValueError):
    """Bad input or bad usage: the message says what is wrong and what to do."""


class AssetMissingError(CnnlensError):
    """A bundled model or dataset is not installed; the message holds the install command."""


class ImageReadError(CnnlensError):
    """An image file could not be read (corrupt, not an image, unreadable)."""
