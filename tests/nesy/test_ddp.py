"""Data-parallel NeSy training (issue 23 item 4, docs/nesy.md "Several processes").

The torchrun test launches ``torchrun --nproc_per_node 2`` (loopback, a free port) and runs two
trainings in it through ``cnnlens nesy train``: one uninterrupted, and one whose rank 0 kills
itself (SIGKILL) in epoch 2, which ends the launch; a second launch with ``--resume`` continues
the killed run from its epoch-1 checkpoint. The results are compared with a one-process run of
the same command. (torchrun's own restarts, ``--max-restarts``, were not reliable here: the
restarted ranks' gloo group sometimes tried a peer address of the killed attempt, torch 2.14.)

Tolerance: the 2-process weights equal the 1-process weights within max |Δ| ≤ 1e-5 (measured:
~6e-8 after 2 epochs). They are not bit-identical because the global batch is computed in two
slices: the per-image gradients are summed per slice and then all-reduced (another summation
order), the convolutions run on batches of 5 and 4 instead of 9, and each rank's loss is a share
(sum / the global normaliser) instead of the mean. Within one world size the run is deterministic
(two-rank sums commute exactly), so kill + resume equals the uninterrupted 2-process run bit for bit.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cnnlens import Classifier, zoo
from cnnlens.cli import main
from cnnlens.errors import CnnlensError
from cnnlens.nesy import train
from cnnlens.nesy.distributed import DistContext, _settle
from cnnlens.nesy.losses import EBPLoss, SparsityLoss, class_weights
from cnnlens.nesy.train import _loss, _rank_seed

SRC = Path(__file__).resolve().parents[2] / "src"
TOL = 1e-5

needs_gloo = pytest.mark.skipif(
    not (torch.distributed.is_available() and torch.distributed.is_gloo_available()),
    reason="torch.distributed with the gloo backend is not available",
)

ARGS = ["nesy", "train", "--model", "mnist_cnn", "--dataset", "mnist", "--split", "train", "--limit", "64",
        "--strategy", "TS3", "--epochs", "2", "--lr", "1e-3", "--k", "3", "--train-batch-size", "9",
        "--val-fraction", "0.25", "--seed", "3", "--quiet"]

_CHILD = textwrap.dedent("""
    import os, signal, sys
    import cnnlens.nesy.train
    from cnnlens.cli import main

    nesy_train = sys.modules["cnnlens.nesy.train"]  # the package re-exports the function train

    rank = int(os.environ["RANK"])
    log_dir, run_dir, attempt, args = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
    real_train = nesy_train.train

    def train(*a, **kw):
        run = os.path.basename(os.path.dirname(str(kw["checkpoint_dir"])))
        log = open(os.path.join(log_dir, f"{run}-{attempt}-{rank}.txt"), "a")

        def on_batch(epoch, batch):
            log.write(f"{epoch} {batch}\\n")
            log.flush()
            if run == "killed" and attempt == 0 and rank == 0 and (epoch, batch) == (1, 1):
                os.kill(os.getpid(), signal.SIGKILL)
        return real_train(*a, on_batch=on_batch, **kw)

    nesy_train.train = train
    for run in ("full", "killed") if attempt == 0 else ("killed",):
        code = main(args + ["--resume", "--out", os.path.join(run_dir, run)])
        if code:
            sys.exit(code)
""")


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return torch.load(run / "model.pt", weights_only=True)


def _max_diff(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k] - b[k]).abs().max()) for k in a)


@needs_gloo
@pytest.mark.slow
def test_torchrun_two_processes_equal_one_and_resume_after_kill(tmp_path):
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    assert main([*ARGS, "--out", str(tmp_path / "one")]) == 0
    t1 = time.perf_counter()
    logs = tmp_path / "logs"
    logs.mkdir()
    (tmp_path / "child.py").write_text(_CHILD)
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]))
    if sys.platform.startswith("linux"):
        env.setdefault("GLOO_SOCKET_IFNAME", "lo")  # loopback only

    def torchrun(attempt: int) -> tuple[int, str, str]:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
               "--master-addr", "127.0.0.1", "--master-port", str(_free_port()),
               str(tmp_path / "child.py"), str(logs), str(tmp_path), str(attempt), *ARGS]
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                cwd=tmp_path, start_new_session=True)
        try:
            out, err = proc.communicate(timeout=180)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # torchrun and its workers
            out, err = proc.communicate()
            pytest.fail("torchrun timed out: " + err[-3000:])
        return proc.returncode, out, err

    code, out, err = torchrun(0)  # the uninterrupted run, then the killed one
    assert code != 0 and "wrote" in out, out[-2000:] + err[-3000:]
    assert torch.load(tmp_path / "killed" / "checkpoints" / "last.pt", weights_only=True)["epoch"] == 1
    t2 = time.perf_counter()
    code, out2, err = torchrun(1)  # --resume the killed run
    t3 = time.perf_counter()
    assert code == 0, out2[-2000:] + err[-3000:]
    print(f"1 process {t1 - t0:.1f} s, torchrun: 2 runs + kill {t2 - t1:.1f} s, resume {t3 - t2:.1f} s")

    # the kill happened in epoch 2 of the second run; the relaunched ranks resumed at epoch 2
    first = (logs / "killed-0-0.txt").read_text().split("\n")
    assert first[-2] == "1 1"
    for r in (0, 1):
        resumed = (logs / f"killed-1-{r}.txt").read_text().split()
        assert resumed[:2] == ["1", "0"] and len(resumed) == 2 * 6  # epoch 2 only: 6 global batches

    one, full, killed = _weights(tmp_path / "one"), _weights(tmp_path / "full"), _weights(tmp_path / "killed")
    d = _max_diff(one, full)
    print(f"max |w(2 processes) - w(1 process)| = {d:.3g}")
    assert d <= TOL
    assert _max_diff(one, zoo.load_classifier("mnist_cnn").model.state_dict()) > 1e-3  # it did train
    for name in full:
        assert torch.equal(full[name], killed[name]), name
    info1 = json.loads((tmp_path / "one" / "training.json").read_text())
    info2 = json.loads((tmp_path / "full" / "training.json").read_text())
    assert info1["world_size"] == 1 and info2["world_size"] == 2
    assert info1["P"] == info2["P"] and info1["theta"] == pytest.approx(info2["theta"], rel=1e-6)
    for h1, h2 in zip(info1["history"], info2["history"], strict=True):
        for key in ("train_loss", "val_loss", "val_accuracy", "sparsity"):
            assert h2[key] == pytest.approx(h1[key], rel=1e-5), key
    assert "in 2 processes" in out and out.count("wrote ") == 1 and out2.count("wrote ") == 1  # rank 0 alone


# ------------------------------------------------------------------ in-process pieces (fast)
def _shares(idx: torch.Tensor, world: int) -> list[tuple[torch.Tensor, bool]]:
    return [DistContext(r, world, torch.device("cpu")).local(idx) for r in range(world)]


@pytest.mark.parametrize("strategy", ["CE", "TS3", "TS4", "EBP"])
@pytest.mark.parametrize("world", [2, 3, 8])
def test_loss_shares_add_up_to_the_global_gradient(strategy, world):
    """The gradient of Σ_rank share(slice) equals the one-process gradient of the global batch
    (what DDP's averaged gradient × world size is); world 8 on 7 images uses a stand-in."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 6, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 3)).eval()
    clf = Classifier(net)
    x, y = torch.rand(7, 1, 8, 8), torch.tensor([0, 1, 2, 2, 1, 0, 2])
    w = class_weights(torch.tensor([0, 0, 1, 2, 2, 2]), 3)
    P = torch.zeros(3, 6)
    P[0, :2] = P[1, 2:4] = P[2, 4:] = 1
    sparse = SparsityLoss(P, torch.full((6,), 0.1)) if strategy.startswith("TS") else None
    ebp = EBPLoss(torch.rand(3, 6), 1e-2) if strategy == "EBP" else None
    a_eff = 0.0 if strategy == "TS4" else 1.0

    def grads(parts):
        net.zero_grad()
        total = 0.0
        for local, real, glob in parts:
            maps, logits = clf.forward_with_features(x[local], layer="1")
            loss, _ = _loss(maps, logits, y[local], 3, w, a_eff, 5.0, sparse, ebp, glob)
            loss = loss if real else loss * 0
            loss.backward()
            total += float(loss.detach())
        return total, [p.grad.clone() for p in net.parameters()]

    idx = torch.arange(7)
    ref_loss, ref = grads([(idx, True, None)])
    glob = (7, w[y].sum())
    loss, got = grads([(local, real, glob) for local, real in _shares(idx, world)])
    assert loss == pytest.approx(ref_loss, rel=1e-6)
    for a, b in zip(got, ref):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)


def test_slices_are_contiguous_and_cover_the_batch():
    idx = torch.tensor([5, 2, 9, 0, 7])
    parts = _shares(idx, 2)
    assert [p.tolist() for p, _ in parts] == [[5, 2, 9], [0, 7]] and all(r for _, r in parts)
    parts = _shares(idx[:2], 3)
    assert [(p.tolist(), r) for p, r in parts] == [([5], True), ([2], True), ([5], False)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@needs_gloo
def test_world_of_one_in_process_matches_the_plain_loop(monkeypatch):
    """distributed=True with one rank runs the DDP path (in a gloo group that train() creates)."""
    for key, value in dict(RANK="0", WORLD_SIZE="1", LOCAL_RANK="0", MASTER_ADDR="127.0.0.1",
                           MASTER_PORT=str(_free_port())).items():
        monkeypatch.setenv(key, value)
    ds = zoo.load_dataset("mnist", split="train")
    keep = (ds.labels < 3).nonzero().flatten()[:40]
    data, val = (ds.images[keep[:30]], ds.labels[keep[:30]]), (ds.images[keep[30:]], ds.labels[keep[30:]])

    def net():
        torch.manual_seed(1)
        return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 16, 3),
                             nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(64, 3)).eval()
    runs = {}
    try:
        for distributed in (False, True):
            model = net()
            res = train(Classifier(model), data, val, strategy="TS1", epochs=2, k=2, lr=1e-3, batch_size=7,
                        seed=2, progress=False, distributed=distributed)
            runs[distributed] = (model.state_dict(), res)
        assert torch.distributed.is_initialized()  # kept for later trainings in this process
    finally:
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
    assert runs[True][1].world_size == 1 and runs[True][1].rank == 0
    assert _max_diff(runs[False][0], runs[True][0]) <= TOL
    for h1, h2 in zip(runs[False][1].history, runs[True][1].history, strict=True):
        assert h2["train_loss"] == pytest.approx(h1["train_loss"], rel=1e-5)
        assert h2["val_loss"] == pytest.approx(h1["val_loss"], rel=1e-5)


def test_batchnorm_and_missing_launch_are_refused(monkeypatch):
    for key in ("WORLD_SIZE", "RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(key, raising=False)
    x, y = torch.rand(8, 1, 8, 8), torch.tensor([0, 1] * 4)
    bn = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                       nn.Linear(4, 2)).eval()
    with pytest.raises(CnnlensError, match=r"refuses BatchNorm \(1\).*SyncBatchNorm"):
        train(Classifier(bn), (x, y), epochs=1, k=1, progress=False, distributed=True)
    plain = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2)).eval()
    with pytest.raises(CnnlensError, match="torchrun launch") as err:
        train(Classifier(plain), (x, y), epochs=1, k=1, progress=False, distributed=True)
    assert "\n" not in str(err.value)
    # without a launch the default (distributed=None) is the one-process loop, BatchNorm welcome
    res = train(Classifier(bn), (x, y), epochs=1, k=1, progress=False)
    assert res.world_size == 1
    # under torchrun (WORLD_SIZE > 1) BatchNorm is refused before any process group is joined
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(CnnlensError, match="refuses BatchNorm"):
        train(Classifier(bn), (x, y), epochs=1, k=1, progress=False)
    sync = nn.Sequential(nn.Conv2d(1, 4, 3), nn.SyncBatchNorm(4), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(4, 2)).eval()
    with pytest.raises(CnnlensError, match="SyncBatchNorm runs only on CUDA"):
        train(Classifier(sync), (x, y), epochs=1, k=1, progress=False)


def test_one_process_loss_and_rank_seeds():
    """The one-process CE loss is F.cross_entropy's weighted mean (unchanged by the DDP path)."""
    logits, y, w = torch.randn(5, 3), torch.tensor([0, 1, 2, 1, 1]), torch.tensor([1.0, 0.5, 2.0])
    loss, sp = _loss(torch.rand(5, 2, 3, 3), logits, y, 3, w, 1.0, 5.0, None, None)
    assert torch.equal(loss, F.cross_entropy(logits, y, weight=w)) and float(sp) == 0.0
    assert _rank_seed(41, 0) == 42  # rank 0 draws what one process draws
    assert _rank_seed(41, 1) == _rank_seed(41, 1) != _rank_seed(41, 2) != 42



def _settle_beside(spin_s: float, max_s: float) -> tuple[float, bool]:
    """Run :func:`_settle` while another thread does ``spin_s`` seconds of Python work (it needs
    the GIL, like a gloo worker freeing its last collective); the wait and whether that work had
    ended when :func:`_settle` returned."""
    done = threading.Event()

    def spin() -> None:
        end = time.monotonic() + spin_s
        x = 0
        while time.monotonic() < end:
            x += sum(range(200))
        done.set()

    t = threading.Thread(target=spin)
    t.start()
    t0 = time.monotonic()
    _settle(min_s=0.01, max_s=max_s)
    elapsed, finished = time.monotonic() - t0, done.is_set()
    t.join()
    return elapsed, finished


linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="thread states come from /proc (Linux)")


@linux_only
def test_exit_settle_waits_for_threads_that_need_the_gil():
    # at exit a gloo worker may still be freeing its last collective; it needs the GIL, and at
    # interpreter finalisation that aborts the process, so the exit handler must wait for it
    elapsed, finished = _settle_beside(0.3, max_s=10.0)
    assert finished, "returned while the other thread was still running"
    assert elapsed < 5.0


@linux_only
def test_exit_settle_is_bounded_by_max_s():
    elapsed, finished = _settle_beside(3.0, max_s=0.3)
    assert 0.3 <= elapsed < 2.0 and not finished
