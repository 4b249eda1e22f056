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
"""
from __future__ import annotations

import atexit
import os
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


def _destroy() -> None:
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


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
