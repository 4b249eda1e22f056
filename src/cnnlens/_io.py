"""Atomic file writes (DESIGN.md conventions): a temp file in the same folder, then a rename,
so an interrupted run never leaves a half-written output or destroys a finished one.

Written files get the permissions an ordinary ``open(path, "w")`` would give them (``0o666``
minus the process umask), or keep the mode of the file they replace — not the ``0o600`` of a
bare temporary file.
"""
from __future__ import annotations

import os
import tempfile
import threading

__all__ = ["atomic_write_bytes", "atomic_write_text", "current_umask", "default_file_mode"]

_UMASK_LOCK = threading.Lock()


def current_umask() -> int:
    """The process umask, read without changing it where the OS allows (Linux /proc)."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _UMASK_LOCK:  # portable fallback: set and restore
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def default_file_mode() -> int:
    """``0o666 & ~umask``: the mode ``open(path, "w")`` gives a new file."""
    return 0o666 & ~current_umask()


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (parent folders are created). A new file gets
    ``0o666 & ~umask``; a replaced file keeps its mode."""
    from .validation import path as as_path

    path = as_path("path", path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode = path.stat().st_mode & 0o7777
    except OSError:
        mode = default_file_mode()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, mode)
        try:
            os.replace(tmp, path)
        except OSError as exc:  # name the target, not the hidden temp file
            raise OSError(exc.errno, exc.strerror, str(path)) from None
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))
