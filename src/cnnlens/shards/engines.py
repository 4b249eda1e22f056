"""Which engine runs a run's pending shards (docs/algorithms.md §11): ``local`` (in process,
:func:`cnnlens.shards.run`) or ``ray`` (:mod:`cnnlens.shards.ray_engine`, an optional extra)."""
from __future__ import annotations

from collections.abc import Sequence

from ..errors import CnnlensError
from ._core import Context, ShardSpec, run

__all__ = ["ENGINES", "execute"]

#: the engines that run shards: ``local`` (:func:`~cnnlens.shards.run`, in process) and ``ray`` (:mod:`cnnlens.shards.ray_engine`)
ENGINES = ("local", "ray")


def execute(specs: Sequence[ShardSpec], ctx: Context, *, engine: str = "local", address: str | None = None,
            workers: int | None = None, progress: bool = True) -> tuple[int, int]:
    """Run the pending shards of ``specs`` with ``engine``: ``"local"`` (:func:`~cnnlens.shards.run`) or ``"ray"``
    (:func:`cnnlens.shards.ray_engine.run` with ``address`` and ``workers``). Returns ``(computed, reused)``."""
    if engine == "local":
        if address is not None or workers is not None:
            raise CnnlensError("address and workers are options of the ray engine (engine='ray')")
        return run(specs, ctx, progress=progress)
    if engine == "ray":
        from .ray_engine import run as ray_run

        return ray_run(specs, ctx, address=address, num_workers=workers, progress=progress)
    raise CnnlensError(f"unknown engine {engine!r}; known: {', '.join(ENGINES)}")
