"""The Ray engine (issue 23 item 3; docs/algorithms.md §11): the shards of a run on more than one
process or machine, scheduled by Ray (an optional extra: ``pip install cnnlens[ray]``).

:func:`run` starts a local Ray (``num_cpus`` = the workers) or attaches to a cluster
(``address=``), creates one actor per worker that builds its :class:`~cnnlens.shards.Context`
once (the pickled Context, or a picklable factory called in the actor: one model load per
worker), and keeps every actor busy with one pending shard at a time; the actor calls
:func:`~cnnlens.shards.run_shard`, which writes the shard file atomically, exactly as the
in-process engine does (the files are byte-identical for the same thread count). A worker that
dies (killed, out of memory, node lost) is replaced by a new actor and its shard is submitted
again (``retries`` times per shard); a shard that raises stops the run after the shards in flight
have finished. A killed driver loses only the shards in flight: a re-run skips every finished
shard file (:func:`~cnnlens.shards.pending`). On a cluster ``out`` and the image files must be
on a file system that every node sees.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..errors import CnnlensError, one_line
from ._core import Context, ShardSpec, pending, run_shard

__all__ = ["run", "require_ray", "RAY_MISSING"]

RAY_MISSING = "the Ray engine needs Ray, an optional extra: pip install cnnlens[ray]"


def require_ray() -> Any:
    """The ``ray`` module, or a one-line :class:`CnnlensError` naming ``pip install cnnlens[ray]``."""
    try:
        import ray
    except ImportError as exc:
        raise CnnlensError(f"{RAY_MISSING} ({exc})") from None
    return ray


class _Worker:
    """A Ray actor's state: the Context (built once) and the shards it ran."""

    def __init__(self, ctx: Any, threads: int | None, crash_once: str | None = None) -> None:
        import torch

        if threads:
            torch.set_num_threads(int(threads))
        self.ctx: Context = ctx() if callable(ctx) else ctx
        self.crash_once = crash_once

    def run(self, spec: ShardSpec) -> str:
        if self.crash_once and os.path.exists(self.crash_once):
            # test hook: this process dies (as a killed worker would) the first time it is armed
            os.unlink(self.crash_once)
            os._exit(1)
        return str(run_shard(spec, self.ctx))

    def pid(self) -> int:
        return os.getpid()


def _workers(ray: Any, num_workers: int | None, cpus: float, gpus: float) -> int:
    if num_workers is not None:
        if int(num_workers) < 1:
            raise CnnlensError(f"num_workers must be >= 1, got {num_workers}")
        return int(num_workers)
    res = ray.cluster_resources()
    by_cpu = int(res.get("CPU", 1) // cpus) if cpus else 1 << 30
    by_gpu = int(res.get("GPU", 0) // gpus) if gpus else 1 << 30
    return max(1, min(by_cpu, by_gpu))


def run(specs: Sequence[ShardSpec], ctx: Context | Callable[[], Context], *, address: str | None = None,
        num_workers: int | None = None, gpus_per_worker: float | None = None, cpus_per_worker: float = 1,
        threads: int | None = None, retries: int = 3, progress: bool = True, _crash_once: str | None = None) -> tuple[int, int]:
    """Run every shard of ``specs`` that is not done yet on Ray actors; returns ``(computed, reused)``.

    ``ctx``: a Context (pickled once into Ray's object store, unpickled once per actor) or a
    picklable zero-argument factory that builds it in the actor (e.g. loads the model from a path
    there). ``address``: a Ray cluster (``"auto"``, ``"HOST:PORT"``, ``"ray://…"``); ``None``
    starts a local Ray with ``num_workers`` CPUs unless Ray is already initialised (then that one
    is used and left running). ``num_workers``: actors (default: as many as the cluster's CPUs,
    or GPUs, allow). ``gpus_per_worker``: default 1 when the cluster has GPUs and torch sees CUDA
    here, else 0 (use ``device="cuda"``: each actor sees its GPU as ``cuda:0``). ``threads``:
    torch threads per actor (default ``cpus_per_worker``, what Ray gives an actor). ``retries``:
    how often a shard is submitted again after its worker died."""
    ray = require_ray()
    from .._progress import bar

    done, todo = pending(specs)
    out = Path(ctx.out) if isinstance(ctx, Context) else None
    if done:
        where = f" under {out / 'shards'}" if out is not None else ""
        print(f"reusing {len(done)} finished shard(s) of {len(specs)}{where}")
    if not todo:
        return 0, len(done)
    started = False
    if not ray.is_initialized():
        kw: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "logging_level": "ERROR"}
        if address is None:
            kw["num_cpus"] = int(num_workers * cpus_per_worker) if num_workers else os.cpu_count()
        ray.init(address=address, **kw)
        started = True
    try:
        if gpus_per_worker is None:
            import torch

            gpus_per_worker = 1 if ray.cluster_resources().get("GPU", 0) >= 1 and torch.cuda.is_available() else 0
        n_workers = min(_workers(ray, num_workers, cpus_per_worker, gpus_per_worker), len(todo))
        # a dead actor is replaced by the scheduler (not restarted by Ray), so the Context in the
        # object store is needed only while this call holds ctx_ref
        Actor = ray.remote(num_cpus=cpus_per_worker, num_gpus=gpus_per_worker, max_restarts=0)(_Worker)
        ctx_ref = ray.put(ctx)
        n_threads = threads if threads is not None else max(1, int(cpus_per_worker))
        actors: list[Any] = []

        def make() -> Any:
            actors.append(Actor.remote(ctx_ref, n_threads, _crash_once))
            return actors[-1]

        try:
            return _schedule(ray, [make() for _ in range(n_workers)], make, todo, retries,
                             bar(total=len(todo), desc="shards", unit="shard", progress=progress, leave=True,
                                 min_total=1)), len(done)
        finally:
            for a in actors:  # free their CPUs/GPUs now (an attached cluster keeps running)
                ray.kill(a)
    finally:
        if started:
            ray.shutdown()


def _schedule(ray: Any, actors: list[Any], make: Callable[[], Any], todo: list[ShardSpec], retries: int, pbar: Any) -> int:
    """Keep each actor busy with one shard; a dead actor is replaced (``make()``) and its shard
    submitted again; returns the shards computed."""
    queue = list(reversed(todo))
    attempts: dict[int, int] = {}
    flight: dict[Any, tuple[Any, int]] = {}  # ref -> (actor, position in todo)
    index = {id(s): i for i, s in enumerate(todo)}
    error: BaseException | None = None
    finished = 0

    def submit(actor: Any) -> None:
        spec = queue.pop()
        flight[actor.run.remote(spec)] = (actor, index[id(spec)])

    for a in actors:
        if queue:
            submit(a)
    try:
        while flight:
            ready, _ = ray.wait(list(flight), num_returns=1)
            ref = ready[0]
            actor, i = flight.pop(ref)
            try:
                ray.get(ref)
            except ray.exceptions.RayActorError as exc:  # the worker died: a new one takes its place; the shard goes again
                ray.kill(actor)
                actor = make()
                attempts[i] = attempts.get(i, 0) + 1
                if attempts[i] > retries:
                    error = error or CnnlensError(f"shard {todo[i]}: its worker died {attempts[i]} times; giving up "
                                                  f"(last: {one_line(exc)})")
                else:
                    print(f"worker died while running shard {todo[i]}; retrying ({attempts[i]}/{retries})")
                    queue.append(todo[i])
            except ray.exceptions.RayTaskError as exc:  # the shard raised: finish the shards in flight, then stop
                error = error or exc.as_instanceof_cause()
            else:
                finished += 1
                pbar.update(1)
                pbar.set_postfix_str(f"{todo[i].label} {todo[i].start}-{todo[i].stop - 1}")
            if queue and error is None:
                submit(actor)
    finally:
        pbar.close()
    if error is not None:
        raise error
    return finished
