"""Training strategies (SPEC §6.3): sparsity makes filters binary, resume after a kill is exact."""
from __future__ import annotations

import copy
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn

from cnnlens import Classifier, zoo
from cnnlens.errors import CnnlensError
from cnnlens.nesy import filter_norms, p_matrix, thresholds, train
from cnnlens.nesy.binarize import default_layer


@pytest.fixture(scope="module")
def digits():
    ds = zoo.load_dataset("mnist", split="train")
    keep = (ds.labels < 3).nonzero().flatten()
    return ds.subset(keep[:360])


def _small_net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(8, 32, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2),
                         nn.Flatten(), nn.Linear(128, 3))


def _near_binary(clf, x, theta):
    s = torch.sigmoid(filter_norms(clf, x) - theta)
    return float(((s < 0.1) | (s > 0.9)).float().mean())


def test_ts3_makes_filter_outputs_binary(digits):
    """After TS3 the share of sigmoid(Norm − θ) within 0.1 of 0 or 1 exceeds CE-only's."""
    base = zoo.load_classifier("mnist_cnn")
    tr, va = digits.subset(slice(0, 160)), digits.subset(slice(300, 340))
    theta0 = thresholds(filter_norms(base, tr.images))
    shares = {}
    for strategy in ("CE", "TS3"):
        clf = Classifier(copy.deepcopy(base.model), mean=0.1307, std=0.3081, class_names=list("0123456789"))
        res = train(clf, tr, va, strategy=strategy, epochs=3, lr=1e-3, k=3, seed=0, batch_size=16, progress=False)
        theta = res.theta if res.theta is not None else theta0
        shares[strategy] = _near_binary(res.classifier, va.images, theta)
        assert res.history[-1]["val_accuracy"] > 0.9
    print(f"near-binary share: CE {shares['CE']:.3f}, TS3 {shares['TS3']:.3f}")
    assert shares["TS3"] > shares["CE"] + 0.05


def test_strategies_set_up_p_and_theta(digits):
    x, y = digits.images[:96], digits.labels[:96]
    for strategy in ("TS1", "TS2", "TS4", "TS5", "EBP"):
        net = _small_net()
        clf = Classifier(net, class_names=["0", "1", "2"])
        init = Classifier(copy.deepcopy(net), class_names=["0", "1", "2"])
        res = train(clf, (x, y), None, strategy=strategy, epochs=2, lr=1e-3, k=2, progress=False)
        assert res.layer == default_layer(clf) == "4"
        assert res.P.shape == (3, 32) and len(res.history) == 2
        if strategy == "TS2":  # P and θ from the initial weights
            assert torch.equal(res.P, p_matrix(init, x, y, 2, method=1))
            assert torch.allclose(res.theta, thresholds(filter_norms(init, x)))
        if strategy == "TS5":
            assert torch.equal(res.theta, torch.zeros(32))
        if strategy == "EBP":
            assert res.theta is None and res.binarization == "threshold"
            assert ((res.P >= 0) & (res.P <= 1)).all() and bool(((res.P == 1).sum(1) >= 2).all())
        else:
            assert torch.equal(res.P.sum(1), torch.tensor([2.0, 2.0, 2.0]))
        if strategy == "TS1":  # sparsity only in the second half
            assert res.history[0]["sparsity"] is None and res.history[1]["sparsity"] is not None


def test_bad_input(digits):
    one = digits.subset((digits.labels == 1).nonzero().flatten()[:20])
    with pytest.raises(CnnlensError, match="single class"):
        train(Classifier(_small_net()), one, None, epochs=1, progress=False)
    with pytest.raises(CnnlensError, match="strategy"):
        train(Classifier(_small_net()), digits, None, strategy="TS9", epochs=1, progress=False)
    with pytest.raises(CnnlensError, match="not spatial"):
        train(Classifier(_small_net()), digits, None, strategy="TS3", epochs=1, layer="6", progress=False)
    with pytest.raises(CnnlensError, match="resume"):
        train(Classifier(_small_net()), digits, None, resume=True, epochs=1, progress=False)


_CHILD = textwrap.dedent("""
    import os, signal, sys, torch
    torch.set_num_threads(2)
    from torch import nn
    from cnnlens import Classifier
    from cnnlens.nesy import train
    sys.path.insert(0, {here!r})
    from test_train import _small_net
    data = torch.load({data!r})
    net = _small_net()
    net.load_state_dict(torch.load({init!r}))
    def kill(epoch, batch):
        if epoch == 1 and batch == 1:
            os.kill(os.getpid(), signal.SIGKILL)
    train(Classifier(net), (data["x"], data["y"]), (data["vx"], data["vy"]), strategy="TS3", epochs=3,
          lr=1e-3, k=2, seed=7, checkpoint_dir={ckpt!r}, progress=False, on_batch=kill)
""")


def test_resume_after_kill_gives_identical_weights(digits, tmp_path):
    torch.set_num_threads(2)
    x, y = digits.images[:100], digits.labels[:100]
    vx, vy = digits.images[300:340], digits.labels[300:340]
    torch.save({"x": x, "y": y, "vx": vx, "vy": vy}, tmp_path / "data.pt")
    net = _small_net(3)
    torch.save(net.state_dict(), tmp_path / "init.pt")
    ckpt = tmp_path / "ckpt"
    script = _CHILD.format(here=str(Path(__file__).parent), data=str(tmp_path / "data.pt"),
                           init=str(tmp_path / "init.pt"), ckpt=str(ckpt))
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == -9, proc.stderr[-2000:]  # killed by SIGKILL mid-epoch 2
    state = torch.load(ckpt / "last.pt", weights_only=True)
    assert state["epoch"] == 1

    resumed_net = _small_net()
    resumed_net.load_state_dict(torch.load(tmp_path / "init.pt"))  # overwritten by the checkpoint
    res = train(Classifier(resumed_net), (x, y), (vx, vy), strategy="TS3", epochs=3, lr=1e-3, k=2, seed=7,
                checkpoint_dir=ckpt, resume=True, progress=False)
    full_net = _small_net()
    full_net.load_state_dict(torch.load(tmp_path / "init.pt"))
    full = train(Classifier(full_net), (x, y), (vx, vy), strategy="TS3", epochs=3, lr=1e-3, k=2, seed=7,
                 progress=False)
    for (name, a), (_, b) in zip(resumed_net.state_dict().items(), full_net.state_dict().items()):
        assert torch.equal(a, b), name
    assert torch.equal(res.P, full.P) and torch.equal(res.theta, full.theta)
    assert [h["train_loss"] for h in res.history] == [h["train_loss"] for h in full.history]
    # a finished run resumes to itself; other settings are refused
    again = train(Classifier(_small_net()), (x, y), (vx, vy), strategy="TS3", epochs=3, lr=1e-3, k=2, seed=7,
                  checkpoint_dir=ckpt, resume=True, progress=False)
    assert torch.equal(again.classifier.model[0].weight, full_net[0].weight)
    with pytest.raises(CnnlensError, match="different settings"):
        train(Classifier(_small_net()), (x, y), (vx, vy), strategy="TS3", epochs=3, lr=1e-2, k=2, seed=7,
              checkpoint_dir=ckpt, resume=True, progress=False)
