"""Data-parallel NeSy training (DDP) under ``torchrun`` (docs/nesy.md "Several processes").

:func:`cnnlens.nesy.train` calls :func:`context` once: without a multi-process launch it returns
``None`` and training is exactly the one-process loop. Under ``torchrun --nproc_per_node N``
(``WORLD_SIZE > 1`` in the environment), or with ``distributed=True``, it joins (or creates) a
``torch.distributed`` process group — gloo on CPU, NCCL on CUDA — and every rank then

- draws the same seeded global batches (SPEC §11: the order of epoch ``e`` depends only on
  ``(seed, e)``) and trains on its contiguous slice of each one (:meth:`DistContext.local`);
- computes its *share* of the global batch loss (sums divided by the global batch's
  normaliser, see ``train._loss``), so that the shares add up to the one-process loss and DDP's
  averaged gradient times the world size is the one-process gradient;
- writes nothing: rank 0 alone writes the checkpoint (atomically), then all ranks meet at a
  barrier; on ``resume=True`` every rank reads the same checkpoint.

BatchNorm is refused (its statistics would be per-rank slices, not the global batch): on CUDA a
model converted with ``torch.nn.SyncBatchNorm.convert_sync_batchnorm`` is accepted; SyncBatchNorm
does not run on CPU.

A group that cnnlens created is destroyed at exit, after which the process waits (≤ 1 s) until
the collective worker threads are idle (:func:`_settle`): otherwise a rank that leaves right after
its last collective can abort in interpreter finalisation although its work is done.
"""
from __future__ import annotations

import atexit
import os
import threading
import time
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..errors import CnnlensError

__all__ = ["DistContext", "context", "check_model", "launched"]

_ENV = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def launched() -> bool:
    """True when the environment says this process is one of several (``WORLD_SIZE > 1``)."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1")) > 1
    except ValueError:
        return False


def check_model(model: nn.Module, device: torch.device) -> None:
    """Refuse models whose training mode depends on the whole batch (BatchNorm), one line."""
    bn = [name or "(the model itself)" for name, m in model.named_modules()
          if isinstance(m, nn.modules.batchnorm._BatchNorm) and not isinstance(m, nn.SyncBatchNorm)]
    if bn:
        shown = ", ".join(bn[:3]) + (f" and {len(bn) - 3} more" if len(bn) > 3 else "")
        raise CnnlensError(
            f"distributed training refuses BatchNorm ({shown}): each rank would normalise its own slice, "
            "not the global batch; train in one process, or on CUDA convert the model with "
            "torch.nn.SyncBatchNorm.convert_sync_batchnorm"
        )
    if device.type != "cuda" and any(isinstance(m, nn.SyncBatchNorm) for m in model.modules()):
        raise CnnlensError("SyncBatchNorm runs only on CUDA; train on GPUs (--device cuda) or in one process")


@dataclass
class DistContext:
    """The process group a training run uses: ``rank`` of ``world`` processes."""

    rank: int
    world: int
    device: torch.device

    def local(self, idx: torch.Tensor) -> tuple[torch.Tensor, bool]:
        """This rank's contiguous slice of the global batch ``idx`` and whether it is real.

        A rank whose slice would be empty (a global batch smaller than the world) gets the batch's
        first image as a stand-in whose loss is multiplied by 0, so that every rank still runs one
        forward/backward per step (DDP's all-reduce needs them all)."""
        part = idx.tensor_split(self.world)[self.rank]
        if part.numel() == 0:
            return idx[:1], False
        return part, True

    def all_sum(self, values: list[float]) -> list[float]:
        """Sum ``values`` over the ranks (float64), identical on every rank."""
        t = torch.tensor(values, dtype=torch.float64, device=self.device if self.device.type == "cuda" else "cpu")
        torch.distributed.all_reduce(t)
        return t.cpu().tolist()

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank (tensors come back on the CPU)."""
        box = [obj if self.rank == 0 else None]
        torch.distributed.broadcast_object_list(box, src=0, device=self.device if self.device.type == "cuda" else None)
        return box[0]

    def barrier(self) -> None:
        if self.device.type == "cuda":
            torch.distributed.barrier(device_ids=[self.device.index or 0])
        else:
            torch.distributed.barrier()

    def wrap(self, module: nn.Module) -> nn.Module:
        """``module`` in :class:`~torch.nn.parallel.DistributedDataParallel` (rank 0's weights are
        broadcast to every rank here)."""
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.device.index or 0] if self.device.type == "cuda" else None
        return DistributedDataParallel(module, device_ids=ids)


def _other_threads_running() -> bool | None:
    """Whether a thread of this process other than the caller is running now (Linux ``/proc``);
    ``None`` where that cannot be read."""
    try:
        me = threading.get_native_id()
        for tid in os.listdir("/proc/self/task"):
            if int(tid) == me:
                continue
            with open(f"/proc/self/task/{tid}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]  # the name in (...) may hold spaces
            if state == "R":
                return True
        return False
    except (OSError, ValueError, IndexError):
        return None


def _settle(min_s: float = 0.05, max_s: float = 1.0, step: float = 0.01) -> None:
    """Sleep (the GIL released) until no other thread of the process runs: at least ``min_s``,
    then until three polls in a row find them all idle, at most ``max_s``.

    Why: a gloo worker thread frees each finished collective *after* the caller's ``wait()``
    returned, and freeing tensors that Python has seen takes the GIL. A rank that leaves right
    after its last collective (rank 1 returns at once while rank 0 writes the model) can reach
    interpreter finalisation first; the worker's GIL request then ends the thread mid-destructor
    and the process aborts ("terminate called without an active exception", SIGABRT), so torchrun
    reports a failed run after the work was done. ``destroy_process_group`` does not join those
    threads here: DDP keeps references to the group, so it outlives the destroy until exit."""
    t0 = time.monotonic()
    calm = 0
    while True:
        time.sleep(step)
        elapsed = time.monotonic() - t0
        running = _other_threads_running()
        calm = calm + 1 if running is False else 0
        if elapsed >= max_s or (elapsed >= min_s and (running is None or calm >= 3)):
            return


def _destroy() -> None:
    """At exit of a process whose group cnnlens created: destroy it and let the collective
    worker threads finish their last frees while the interpreter can still serve them."""
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
    _settle()


def context(distributed: bool | None, device: torch.device) -> DistContext | None:
    """The process group to train in, or ``None`` for one process (module docstring).

    ``distributed=None``: distributed when a process group with more than one rank is already
    initialised or the environment says ``WORLD_SIZE > 1`` (``torchrun``); ``True``: always
    (``torchrun`` environment or an initialised group needed; a world of 1 is allowed);
    ``False``: never."""
    if distributed is False:
        return None
    dist = torch.distributed
    available = dist.is_available()
    initialised = available and dist.is_initialized()
    if distributed is None:
        if initialised:
            if dist.get_world_size() <= 1:
                return None
        elif not launched():
            return None
    if not available:
        raise CnnlensError("distributed training needs torch.distributed, which this PyTorch build lacks")
    if not initialised:
        missing = [k for k in _ENV if k not in os.environ]
        if missing:
            raise CnnlensError(
                f"distributed training needs a torchrun launch ({', '.join(missing)} not set) or an "
                "initialised torch.distributed process group"
            )
        if device.type == "cuda":
            torch.cuda.set_device(device)
            backend = "nccl"
        else:
            if not dist.is_gloo_available():
                raise CnnlensError("distributed training on CPU needs the gloo backend, which this PyTorch build lacks")
            backend = "gloo"
        dist.init_process_group(backend)
        # kept for the process's later trainings: under torchrun a second init_process_group on
        # the agent's store would collide with the first group's keys; destroyed at exit
        atexit.register(_destroy)
    elif device.type == "cuda":
        torch.cuda.set_device(device)
    return DistContext(dist.get_rank(), dist.get_world_size(), device)
