"""Training with the sparsity loss (TS1–TS5), Elite BackProp (NE) and CE-only (docs/algorithms.md §6.2–§6.4).

:func:`train` fine-tunes a model **in place** (it is the one cnnlens function meant to change a
model; copy it first to keep the original) and returns a :class:`TrainResult` with the P matrix
and the thresholds θ that the NeSy model needs afterwards (§6.1 "θ fixed for training").

Strategies (NESY §4, §6.3):

======  =============================================================================
CE      cross-entropy only (post-hoc binarization afterwards)
TS1     CE for ``ce_epochs`` (default ``epochs // 2``), then P (Method 1) + θ from the current
        weights, then α·CE + β·L_sparsity
TS2     P (Method 1) + θ from the initial weights, α·CE + β·L_sparsity from the start
TS3     P random (Method 2, among the live filters: θ_j > 0), θ from the initial weights, both losses
TS4     TS3 with α = 0 (sparsity loss only; the head is not trained)
TS5     TS3 without θ (σ(Norm))
EBP     CE for ``ce_epochs`` (default ``epochs // 2``; 0 for a model that is CE-trained
        already), then P_ebp from those CE-trained weights and CE + λ·Σ(1 − P_ebp)·a
        (Elite BackProp, §6.4, K = 5)
======  =============================================================================

Defaults are the paper's (§6.3): ``Adam(lr=5e-6, weight_decay=5e-3)`` (coupled L2),
class weights w_c = N/(C·N_c), ``ReduceLROnPlateau(factor=0.5, patience=10)`` on the validation
loss, batch 32, α = 1, β = 5, K = 5 for ≤ 5 classes else 20, h1 = 0.6, h2 = 0.7.

Convergence: ``patience=`` stops each phase at its plateau of the validation loss (early stopping,
patience larger than the scheduler's); ``epochs`` (and ``ce_epochs``) are then the maxima.

Reproducibility and resuming: the data order of epoch ``e`` comes from a generator seeded with
``(seed, e)`` and the global RNG (dropout, …) is re-seeded from ``(seed, e)`` at the start of
every epoch inside :func:`torch.random.fork_rng` (the caller's RNG state is left untouched), so
an epoch depends only on the weights, optimizer and scheduler state at its start. After every
epoch all of them (plus P, θ, the history, the phase and early-stopping state) go to ``checkpoint_dir/last.pt`` atomically;
``resume=True`` continues from it and ends with the same weights as an uninterrupted run.
The model runs in train mode only inside :meth:`Classifier.training`; the eval guard for
explaining stays as it is.

Several processes (``torchrun --nproc_per_node N``, :mod:`cnnlens.nesy.distributed`): every rank
draws the same global batches and trains on its contiguous slice of each under
``DistributedDataParallel``; each rank's loss is its share of the global batch loss (sums over
its slice divided by the global batch's normaliser: the sum of the class weights for the
cross-entropy, N·F for the sparsity loss; EBP's penalty is a sum already), times the world size
to undo DDP's averaging, so the all-reduced gradient is the one-process gradient of the global
batch. Losses, validation sums and the history are all-reduced; rank 0 alone writes checkpoints.
The weights equal one process's up to float round-off (summation order); models with random
layers (dropout) draw their masks per rank and are reproducible only for the same world size.
"""
from __future__ import annotations

import io
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .. import seeding, validation
from .._io import atomic_write_bytes
from .._progress import bar as progress_bar
from ..classifier import Classifier
from ..errors import CnnlensError
from .binarize import (
    check_k,
    class_activation_sums,
    default_layer,
    filter_norms,
    mean_abs_activation,
    norms_from_maps,
    p_matrix,
    thresholds,
)
from .distributed import DistContext, check_model, context, launched
from .losses import EBPLoss, SparsityLoss, class_weights, ebp_matrix

__all__ = ["train", "TrainResult", "STRATEGIES"]

STRATEGIES = ("CE", "EBP", "TS1", "TS2", "TS3", "TS4", "TS5")
_FORMAT = "cnnlens.nesy.train"
_SEED_STRIDE = 1_000_003


@dataclass
class TrainResult:
    """What :func:`train` returns.

    Attributes:
        classifier: the :class:`Classifier` around the trained model (eval mode).
        strategy: ``"CE"``, ``"EBP"``, ``"TS1"`` … ``"TS5"``.
        layer: dotted name of the layer whose filters were used.
        P: the ``(C, F)`` P matrix of the sparsity loss (P_ebp for EBP; ``None`` for CE).
        theta: the fixed ``(F,)`` thresholds of the sparsity loss (zeros for TS5; ``None`` for
            CE/EBP, which binarize post hoc).
        k: filters per class.
        history: one dict per epoch (``epoch``, ``phase`` — ``"ce"`` for TS1/EBP's first phase,
            else ``"main"`` —, ``train_loss``, ``val_loss``, ``val_accuracy``, ``lr`` (the
            learning rate the epoch ran with), ``sparsity``, ``phase_end`` on a phase's last epoch,
            plus what ``on_epoch`` returned).
        rank, world_size: this process's rank and the number of processes (0 and 1 unless
            distributed); every rank gets the same result, only rank 0 writes files.
        stop_epoch: the number of epochs run (≤ ``epochs``; less when early stopping ended it).
        stopped_early: whether the last phase ended at its plateau (``patience``) rather than at
            its epoch limit.
        phase_epochs: TS1/EBP: the epoch count at which the CE phase ended (``[]`` otherwise).
    """

    classifier: Classifier
    strategy: str
    layer: str
    P: torch.Tensor | None
    theta: torch.Tensor | None
    k: int | None
    history: list[dict] = field(default_factory=list)
    rank: int = 0
    world_size: int = 1
    stop_epoch: int = 0
    stopped_early: bool = False
    phase_epochs: list[int] = field(default_factory=list)

    @property
    def binarization(self) -> str:
        """``"sigmoid"`` for sparsity-trained models (bit = Norm − θ > 0 with the training θ),
        ``"threshold"`` for CE/EBP (θ recomputed post hoc, bit = Norm ≥ θ) — §6.1."""
        return "sigmoid" if self.strategy.startswith("TS") else "threshold"


def _xy(ds: Any, what: str) -> tuple[torch.Tensor, torch.Tensor]:
    if ds is None:
        raise CnnlensError(f"{what} is missing")
    if hasattr(ds, "images") and hasattr(ds, "labels"):
        x, y = ds.images, ds.labels
    elif isinstance(ds, (tuple, list)) and len(ds) == 2:
        x, y = ds
    else:
        raise CnnlensError(f"{what} must be a dataset with .images/.labels or a pair (images, labels)")
    if not isinstance(x, torch.Tensor) or x.dim() != 4:
        raise CnnlensError(f"{what} images must be a (N, C, H, W) tensor")
    y = validation.class_labels(f"{what} labels", y, x.shape[0])  # whole numbers, never truncated
    return x, y


def _batches(n: int, batch_size: int, gen: torch.Generator | None) -> list[torch.Tensor]:
    idx = torch.randperm(n, generator=gen) if gen is not None else torch.arange(n)
    parts = list(idx.split(batch_size))
    if len(parts) > 1 and parts[-1].numel() == 1:  # a batch of 1 breaks batch-norm in train mode
        parts[-2] = torch.cat([parts[-2], parts.pop()])
    return parts


def _rank_seed(epoch_seed: int, rank: int) -> int:
    """The global-RNG seed of ``rank`` in an epoch: rank 0 (and one process) ``epoch_seed + 1``,
    other ranks their own stream, so random layers draw different masks on each rank."""
    if rank == 0:
        return epoch_seed + 1
    return int(seeding.image_sequence(epoch_seed, rank, "nesy.rank_rng").generate_state(1, dtype="uint32")[0])


def _state_bytes(obj: Any) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def _cpu(t: Any) -> Any:
    if isinstance(t, torch.Tensor):
        return t.detach().cpu().clone()
    if isinstance(t, dict):
        return {k: _cpu(v) for k, v in t.items()}
    if isinstance(t, (list, tuple)):
        return type(t)(_cpu(v) for v in t)
    return t


def train(
    model: Classifier | nn.Module,
    train_set: Any,
    val_set: Any = None,
    strategy: str = "TS3",
    epochs: int = 100,
    checkpoint_dir: str | Path | None = None,
    resume: bool = False,
    seed: int = 0,
    *,
    lr: float = 5e-6,
    weight_decay: float = 5e-3,
    batch_size: int = 32,
    alpha: float = 1.0,
    beta: float = 5.0,
    k: int | None = None,
    h1: float = 0.6,
    h2: float = 0.7,
    layer: str | None = None,
    ebp_lambda: float = 1e-3,
    lr_factor: float = 0.5,
    lr_patience: int = 10,
    eval_batch_size: int = 128,
    progress: bool = True,
    on_batch: Callable[[int, int], None] | None = None,
    distributed: bool | None = None,
    ce_epochs: int | None = None,
    patience: int | None = None,
    min_delta: float = 1e-3,
    on_epoch: Callable[[dict], dict | None] | None = None,
    live_only: bool = True,
) -> TrainResult:
    """Fine-tune ``model`` with ``strategy`` (§6.3; module docstring) and return a
    :class:`TrainResult`.

    Args:
        model: a :class:`Classifier` (its normalisation is used) or a bare ``nn.Module`` (wrapped
            without normalisation). Trained in place; only parameters with ``requires_grad``.
        train_set, val_set: an object with ``.images`` ``(N, C, H, W)`` in [0, 1] and
            ``.labels`` ``(N,)`` (e.g. a zoo dataset), or a pair ``(images, labels)``. Without
            ``val_set`` the scheduler watches the training loss.
        strategy: ``"CE"``, ``"EBP"``, ``"TS1"`` … ``"TS5"``.
        epochs: total epochs (TS1 and EBP: ``ce_epochs`` of cross-entropy, the rest with the
            sparsity / EBP loss). With ``patience`` the maximum: each phase ends early at its plateau.
        ce_epochs: TS1 and EBP only: epochs of the cross-entropy phase (its maximum with
            ``patience``) before P (TS1: Method 1 + θ; EBP: P_ebp, §6.4) is computed from the
            trained weights; default ``epochs // 2``. ``ce_epochs=0`` with EBP: the given model is
            CE-trained already, P_ebp comes from it.
        patience: early stopping: a phase ends after ``patience`` epochs in a row without the
            validation loss (the training loss without ``val_set``) improving on the phase's best
            by more than ``min_delta`` (relative; the scheduler then uses the same threshold).
            Must exceed ``lr_patience`` so the scheduler decays the learning rate first. With
            early stopping, TS1/EBP's second phase starts a fresh optimizer and scheduler at ``lr`` (the loss has changed; the first phase's
            decayed lr would leave the second nothing to learn with). ``None``: every epoch runs.
        on_epoch: called after every epoch (on every rank, eval mode, before the checkpoint) with
            a dict ``epoch, phase, strategy, classifier, layer, P, theta, record``; a returned dict
            is merged into that epoch's history record (it is checkpointed with it). It must not
            change the model. An exception it raises stops training like a kill after the previous
            epoch's checkpoint.
        live_only: Method 2 (TS3–TS5) draws P among the live filters only (§6.2 revised).
        checkpoint_dir: where ``last.pt`` is written after every epoch (atomically).
        resume: continue from ``checkpoint_dir/last.pt`` if it exists (the hyper-parameters must
            match); a finished run returns at once.
        seed: seeds P (Method 2), the data order and the global RNG per epoch.
        k: filters per class (default 5 for ≤ 5 classes else 20; EBP: 5).
        layer: filters read (default: last ``Conv2d`` after its activation, §6.1).
        on_batch: called as ``on_batch(epoch, batch_index)`` after every optimizer step (on every rank).
        distributed: ``None`` (default): data-parallel when launched by ``torchrun`` with more
            than one process (``WORLD_SIZE > 1``) or inside an initialised process group of
            several ranks; ``True``: always (a world of 1 allowed); ``False``: never. See the
            module docstring; BatchNorm is refused (SyncBatchNorm accepted on CUDA).
    """
    validation.choice("strategy", strategy, STRATEGIES)
    validation.integer("epochs", epochs, minimum=1)
    validation.batch_size(batch_size)
    validation.batch_size(eval_batch_size, "eval_batch_size")
    validation.seed(seed)
    validation.real("lr", lr, low=0, open_low=True)
    validation.real("lr_factor", lr_factor, low=0, high=1, open_low=True, open_high=True)
    validation.integer("lr_patience", lr_patience, minimum=0)
    if ce_epochs is not None:
        validation.integer("ce_epochs", ce_epochs, minimum=0, maximum=epochs)
    if patience is not None:
        validation.integer("patience", patience, minimum=1)
        if patience <= lr_patience:
            raise CnnlensError(
                f"patience={patience} must exceed lr_patience={lr_patience}: early stopping would end a "
                "phase before the scheduler lowers the learning rate"
            )
    validation.real("min_delta", min_delta, low=0, high=1, open_high=True)
    live_only = validation.flag("live_only", live_only)
    for name, value in (("weight_decay", weight_decay), ("alpha", alpha), ("beta", beta), ("ebp_lambda", ebp_lambda)):
        validation.real(name, value, low=0)
    for name, value in (("h1", h1), ("h2", h2)):
        validation.real(name, value)
    resume = validation.flag("resume", resume)
    progress = validation.flag("progress", progress)
    if distributed is not None:
        distributed = validation.flag("distributed", distributed)
    if resume and checkpoint_dir is None:
        raise CnnlensError("resume=True needs checkpoint_dir")
    clf = model if isinstance(model, Classifier) else Classifier(model)
    x_tr, y_tr = _xy(train_set, "train_set")
    x_va, y_va = _xy(val_set, "val_set") if val_set is not None else (None, None)
    present = torch.unique(y_tr)
    if present.numel() < 2:
        raise CnnlensError(
            f"the training set has a single class ({present.tolist()}); NeSy training needs at least two classes"
        )
    C = len(clf.class_names) if clf.class_names else int(y_tr.max()) + 1
    if int(y_tr.max()) >= C or (y_va is not None and y_va.numel() and int(y_va.max()) >= C):
        raise CnnlensError(f"labels exceed the model's {C} classes")
    lay = layer if layer is not None else default_layer(clf)
    probe = clf.check_input(x_tr[:2])
    with torch.no_grad():
        maps, logits = clf.forward_with_features(probe, layer=lay)
    if maps.dim() != 4:
        raise CnnlensError(
            f"layer {lay!r} outputs {tuple(maps.shape)}, not spatial filter maps (N, F, h, w); "
            "pass layer= naming a Conv2d or its activation"
        )
    if logits.shape[1] < C:
        raise CnnlensError(f"the model outputs {logits.shape[1]} logits but the data has {C} classes")
    n_filters = maps.shape[1]
    if k is None:
        k = 5 if (strategy == "EBP" or C <= 5) else 20
    if strategy != "CE":
        check_k(k, C, n_filters)
    weights = class_weights(y_tr, C).to(clf.device)
    two_phase = strategy in ("TS1", "EBP")
    ce_len = (epochs // 2 if ce_epochs is None else ce_epochs) if two_phase else 0
    config = dict(strategy=strategy, epochs=epochs, seed=seed, lr=lr, weight_decay=weight_decay,
                  batch_size=batch_size, alpha=alpha, beta=beta, k=k, h1=h1, h2=h2, layer=lay,
                  ebp_lambda=ebp_lambda, lr_factor=lr_factor, lr_patience=lr_patience,
                  n_train=int(x_tr.shape[0]), ce_epochs=ce_len, patience=patience,
                  min_delta=min_delta if patience is not None else None, live_only=live_only)
    a_eff = 0.0 if strategy == "TS4" else alpha

    params = [p for p in clf.model.parameters() if p.requires_grad]
    if not params:
        raise CnnlensError("the model has no parameters with requires_grad=True to train")
    ddp: DistContext | None = None
    if distributed or (distributed is None and _may_be_distributed()):
        check_model(clf.model, clf.device)
        ddp = context(distributed, clf.device)
    return _run(clf, ddp, x_tr, y_tr, x_va, y_va, strategy, epochs, checkpoint_dir, resume, seed, params,
                config, lay, C, n_filters, k, weights, a_eff, ce_len, lr=lr,
                weight_decay=weight_decay, batch_size=batch_size, beta=beta, h1=h1, h2=h2,
                ebp_lambda=ebp_lambda, lr_factor=lr_factor, lr_patience=lr_patience,
                eval_batch_size=eval_batch_size, progress=progress, on_batch=on_batch,
                patience=patience, min_delta=min_delta, on_epoch=on_epoch, live_only=live_only)


def _may_be_distributed() -> bool:
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size() > 1
    return launched()


def _loss(maps: torch.Tensor, logits: torch.Tensor, y: torch.Tensor, C: int,
          weights: torch.Tensor, a_eff: float, beta: float, sparse_loss: SparsityLoss | None,
          ebp_loss: EBPLoss | None, glob: tuple[int, torch.Tensor] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(loss, sparsity term)`` of a batch. ``glob = (n, w)`` (distributed): the batch is one
    rank's slice of a global batch of ``n`` images whose class weights sum to ``w``, and the
    result is this slice's share — the shares of all slices add up to the global batch's loss."""
    if glob is None:
        ce = F.cross_entropy(logits[:, :C], y, weight=weights)
    else:
        ce = F.cross_entropy(logits[:, :C], y, weight=weights, reduction="sum") / glob[1]
    if ebp_loss is not None:
        pen = ebp_loss(maps.abs().mean(dim=(2, 3)), y)  # a sum over the images: shares add up
        return ce + pen, pen.detach()
    if sparse_loss is None:
        return ce, torch.zeros((), device=ce.device)
    sp = sparse_loss(norms_from_maps(maps, "fro"), y)  # a mean over the slice's N·F
    if glob is not None:
        sp = sp * (y.numel() / glob[0])
    return a_eff * ce + beta * sp, sp.detach()


class _Step(nn.Module):
    """``(features, logits)`` of the classifier as one module, for DistributedDataParallel."""

    def __init__(self, clf: Classifier, layer: str) -> None:
        super().__init__()
        self.net = clf.model
        self._clf = (clf,)  # not a submodule
        self._layer = layer

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self._clf[0].forward_with_features(x, layer=self._layer)


def _run(clf: Classifier, ddp: DistContext | None, x_tr: torch.Tensor, y_tr: torch.Tensor,
         x_va: torch.Tensor | None, y_va: torch.Tensor | None, strategy: str, epochs: int,
         checkpoint_dir: str | Path | None, resume: bool, seed: int, params: list, config: dict, lay: str,
         C: int, n_filters: int, k: int, weights: torch.Tensor, a_eff: float, ce_len: int, *,
         lr: float, weight_decay: float, batch_size: int, beta: float, h1: float, h2: float,
         ebp_lambda: float, lr_factor: float, lr_patience: int, eval_batch_size: int, progress: bool,
         on_batch: Callable[[int, int], None] | None, patience: int | None, min_delta: float,
         on_epoch: Callable[[dict], dict | None] | None, live_only: bool) -> TrainResult:
    rank, world = (ddp.rank, ddp.world) if ddp is not None else (0, 1)
    progress = progress and rank == 0

    def fresh() -> tuple[torch.optim.Optimizer, Any]:
        o = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
        # with early stopping the scheduler judges a plateau by the same relative min_delta
        thr = dict(threshold=min_delta, threshold_mode="rel") if patience is not None else {}
        return o, torch.optim.lr_scheduler.ReduceLROnPlateau(o, mode="min", factor=lr_factor,
                                                             patience=lr_patience, **thr)

    opt, sched = fresh()
    two_phase = strategy in ("TS1", "EBP")
    main_len = epochs - ce_len
    P: torch.Tensor | None = None
    theta: torch.Tensor | None = None
    history: list[dict] = []
    start = 0
    # phase 0: the CE phase of TS1/EBP; phase 1: the strategy's loss (every strategy)
    run = {"phase": 0 if (two_phase and ce_len > 0) else 1, "phase_start": 0, "best": math.inf, "bad": 0,
           "done": False, "stopped_early": False, "phase_epochs": []}
    ckpt = Path(checkpoint_dir) / "last.pt" if checkpoint_dir is not None else None
    if resume and ckpt is not None and ckpt.exists():
        try:
            state = torch.load(ckpt, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - any unreadable file gets the same message
            raise CnnlensError(f"cannot read checkpoint {ckpt} ({type(exc).__name__}); delete it to start over") from exc
        if state.get("format") != _FORMAT:
            raise CnnlensError(f"{ckpt} is not a cnnlens NeSy training checkpoint")
        if state["config"] != config:
            diff = sorted(k_ for k_ in set(config) | set(state["config"]) if state["config"].get(k_) != config.get(k_))
            raise CnnlensError(
                f"checkpoint {ckpt} was written with different settings ({', '.join(diff)}); "
                "use the same arguments or another checkpoint_dir"
            )
        clf.model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        P = state["P"].to(clf.device) if state["P"] is not None else None
        theta = state["theta"].to(clf.device) if state["theta"] is not None else None
        history = list(state["history"])
        start = int(state["epoch"])
        run = dict(state["run"])

    def setup() -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """P and θ at the start of training (or after TS1/EBP's CE phase), eval mode, no grad."""
        if strategy == "CE":
            return None, None
        if strategy == "EBP":
            a = mean_abs_activation(clf, x_tr, lay, eval_batch_size)
            return ebp_matrix(class_activation_sums(a, y_tr.to(a.device), C), k), None
        method = 1 if strategy in ("TS1", "TS2") else 2
        P_ = p_matrix(clf, x_tr, y_tr, k, method=method, seed=seed, layer=lay, n_classes=C,
                      batch_size=eval_batch_size, live_only=live_only)
        th = None if strategy == "TS5" else thresholds(filter_norms(clf, x_tr, lay, "fro", eval_batch_size), h1, h2)
        if strategy == "TS5":
            th = torch.zeros(n_filters, device=clf.device)
        return P_, th

    def shared_setup() -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """:func:`setup` on rank 0, broadcast (every rank holds the same weights and data)."""
        if ddp is None:
            return setup()
        P_, th = ddp.broadcast(_cpu(setup()) if rank == 0 else None)
        return (P_.to(clf.device) if P_ is not None else None, th.to(clf.device) if th is not None else None)

    dev = clf.device
    forward = ddp.wrap(_Step(clf, lay)) if ddp is not None else None
    fork_devices = [dev.index or 0] if dev.type == "cuda" else []
    epoch_bar = None
    if progress:
        epoch_bar = progress_bar(total=epochs, initial=start, desc=f"train {strategy}", unit="epoch", leave=True)
    epoch = start
    try:
        with torch.random.fork_rng(devices=fork_devices):
            while not run["done"]:
                phase_len = ce_len if run["phase"] == 0 else main_len
                if epoch - run["phase_start"] >= phase_len:  # nothing (left) to run in this phase
                    if run["phase"] == 0:
                        run.update(phase=1, phase_start=epoch, best=math.inf, bad=0)
                        run["phase_epochs"] = run["phase_epochs"] + [epoch]
                        continue
                    run["done"] = True
                    break
                sparse_on = run["phase"] == 1 and strategy != "CE"
                if sparse_on and P is None:
                    P, theta = shared_setup()
                sparse_loss = SparsityLoss(P, theta).to(dev) if (sparse_on and strategy.startswith("TS")) else None
                ebp_loss = EBPLoss(P, ebp_lambda).to(dev) if (sparse_on and strategy == "EBP") else None
                epoch_seed = (seed * _SEED_STRIDE + epoch) % (2**63 - 1)
                gen = torch.Generator().manual_seed(epoch_seed)
                torch.manual_seed(_rank_seed(epoch_seed, rank))
                parts = _batches(x_tr.shape[0], batch_size, gen)
                total, count, sp_total = 0.0, 0, 0.0
                bar = None
                if progress:
                    bar = progress_bar(total=len(parts), desc=f"epoch {epoch + 1}/{epochs}", unit="batch")
                with clf.training():
                    for b, idx in enumerate(parts):
                        if ddp is None:
                            xb, yb = x_tr[idx].to(dev), y_tr[idx].to(dev)
                            maps, logits = clf.forward_with_features(xb, layer=lay)
                            loss, sp_t = _loss(maps, logits, yb, C, weights, a_eff, beta,
                                               sparse_loss, ebp_loss)
                            loss_value, sp = float(loss.detach()), float(sp_t)
                        else:  # this rank's share of the global batch (module docstring)
                            local, real = ddp.local(idx)
                            xb, yb = x_tr[local].to(dev), y_tr[local].to(dev)
                            glob = (len(idx), weights[y_tr[idx].to(dev)].sum())
                            maps, logits = forward(xb)
                            loss, sp_t = _loss(maps, logits, yb, C, weights, a_eff, beta,
                                               sparse_loss, ebp_loss, glob)
                            if not real:
                                loss, sp_t = loss * 0, sp_t * 0
                            loss_value, sp = ddp.all_sum([float(loss.detach()), float(sp_t)])
                            loss = loss * world  # DDP averages the gradients over the ranks
                        if not math.isfinite(loss_value):
                            raise CnnlensError(f"loss became {loss_value} in epoch {epoch + 1}, batch {b + 1}; lower lr")
                        opt.zero_grad(set_to_none=True)
                        loss.backward()
                        opt.step()
                        total += loss_value * len(idx)
                        sp_total += sp * len(idx)
                        count += len(idx)
                        if bar is not None:
                            bar.update(1)
                            bar.set_postfix(loss=f"{total / count:.4f}")
                        if on_batch is not None:
                            on_batch(epoch, b)
                if bar is not None:
                    bar.close()
                train_loss = total / count
                val_loss, val_acc = math.nan, math.nan
                if x_va is not None and x_va.shape[0]:
                    with torch.no_grad():
                        vt, vc, hits = 0.0, 0, 0
                        for idx in _batches(x_va.shape[0], batch_size, None):
                            glob = None
                            local = idx
                            if ddp is not None:  # each rank scores its slice; the sums are all-reduced
                                local, real = ddp.local(idx)
                                if not real:
                                    continue
                                glob = (len(idx), weights[y_va[idx].to(dev)].sum())
                            xb, yb = x_va[local].to(dev), y_va[local].to(dev)
                            maps, logits = clf.forward_with_features(xb, layer=lay)
                            loss, _ = _loss(maps, logits, yb, C, weights, a_eff, beta, sparse_loss,
                                            ebp_loss, glob)
                            vt += float(loss) * len(idx)
                            vc += len(local)
                            hits += int((logits[:, :C].argmax(1) == yb).sum())
                    if ddp is not None:
                        vt, vc, hits = ddp.all_sum([vt, vc, hits])
                    val_loss, val_acc = vt / vc, hits / vc
                watched = val_loss if not math.isnan(val_loss) else train_loss
                lr_used = opt.param_groups[0]["lr"]
                sched.step(watched)
                record = dict(epoch=epoch + 1, phase="ce" if run["phase"] == 0 else "main",
                              train_loss=train_loss, val_loss=val_loss, val_accuracy=val_acc, lr=lr_used,
                              sparsity=sp_total / count if sparse_on else None)
                # early stopping and the phase switch (decided before the checkpoint, so a resumed
                # run continues exactly where an uninterrupted one would)
                improved = not math.isfinite(run["best"]) or watched < run["best"] - min_delta * abs(run["best"])
                if improved:
                    run["best"], run["bad"] = watched, 0
                else:
                    run["bad"] += 1
                phase_over = (epoch + 1 - run["phase_start"] >= (ce_len if run["phase"] == 0 else main_len)
                              or (patience is not None and run["bad"] >= patience))
                if phase_over:
                    record["phase_end"] = True
                    if run["phase"] == 0:
                        run.update(phase=1, phase_start=epoch + 1, best=math.inf, bad=0)
                        run["phase_epochs"] = run["phase_epochs"] + [epoch + 1]
                        if patience is not None:  # each phase until its plateau: a fresh optimizer
                            opt, sched = fresh()
                    else:
                        run["stopped_early"] = patience is not None and run["bad"] >= patience
                        run["done"] = True
                if on_epoch is not None:
                    extra = on_epoch(dict(epoch=epoch + 1, phase=record["phase"], strategy=strategy,
                                          classifier=clf, layer=lay, P=P, theta=theta, record=record))
                    if extra:
                        record.update(extra)
                history.append(record)
                epoch += 1
                if ckpt is not None and rank == 0:
                    atomic_write_bytes(ckpt, _state_bytes({
                        "format": _FORMAT, "config": config, "epoch": epoch,
                        "model": _cpu(clf.model.state_dict()), "optimizer": _cpu(opt.state_dict()),
                        "scheduler": sched.state_dict(), "P": _cpu(P), "theta": _cpu(theta),
                        "history": history, "world_size": world, "run": dict(run),
                    }))
                if ckpt is not None and ddp is not None:
                    ddp.barrier()  # the checkpoint of this epoch exists before any rank goes on
                if epoch_bar is not None:
                    epoch_bar.update(1)
                    epoch_bar.set_postfix(val_loss=f"{val_loss:.4f}", val_acc=f"{val_acc:.3f}")
    finally:
        if epoch_bar is not None:
            epoch_bar.close()
    if strategy != "CE" and P is None:  # TS1/EBP with everything before the switch done
        P, theta = shared_setup()
    return TrainResult(clf, strategy, lay if isinstance(lay, str) else str(lay), P, theta,
                       None if strategy == "CE" else k, history, rank, world,
                       stop_epoch=epoch, stopped_early=bool(run["stopped_early"]),
                       phase_epochs=list(run["phase_epochs"]))
