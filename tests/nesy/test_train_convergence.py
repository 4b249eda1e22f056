"""Training to a plateau (issue 26): early stopping per phase, EBP's P_ebp from the CE-trained
weights (SPEC §6.4), and a run interrupted by an exception resumes to the uninterrupted weights."""
from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from cnnlens import Classifier, zoo
from cnnlens.errors import CnnlensError
from cnnlens.nesy import ebp_matrix, train
from cnnlens.nesy.binarize import class_activation_sums, mean_abs_activation


@pytest.fixture(scope="module")
def data():
    ds = zoo.load_dataset("mnist", split="train")
    keep = (ds.labels < 3).nonzero().flatten()
    ds = ds.subset(keep[:160])
    return (ds.images[:96], ds.labels[:96]), (ds.images[96:160], ds.labels[96:160])


def _net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(8, 32, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2),
                         nn.Flatten(), nn.Linear(128, 3))


def _clf(net: nn.Module) -> Classifier:
    return Classifier(net, class_names=["0", "1", "2"])


# a quick plateau: an epoch must improve the validation loss by 30 % to count
FAST = dict(lr=3e-3, k=2, seed=5, batch_size=16, lr_patience=0, patience=2, min_delta=0.3, progress=False)


def test_ebp_p_comes_from_the_ce_trained_weights(data):
    """§6.4: P_ebp is computed once from the CE-trained model, then the EBP epochs run."""
    tr, va = data
    net = _net()
    ce_net = copy.deepcopy(net)
    res = train(_clf(net), tr, va, strategy="EBP", epochs=3, ce_epochs=2, lr=1e-3, seed=1, progress=False)
    assert [h["phase"] for h in res.history] == ["ce", "ce", "main"] and res.phase_epochs == [2]
    assert res.history[0]["sparsity"] is None and res.history[2]["sparsity"] is not None
    ce = _clf(ce_net)
    train(ce, tr, va, strategy="CE", epochs=2, lr=1e-3, seed=1, progress=False)  # same first two epochs
    a = mean_abs_activation(ce, tr[0])
    assert torch.equal(res.P, ebp_matrix(class_activation_sums(a, tr[1], 3), 5))
    initial = _clf(_net())
    a0 = mean_abs_activation(initial, tr[0])
    assert not torch.equal(res.P, ebp_matrix(class_activation_sums(a0, tr[1], 3), 5))
    # ce_epochs=0: the model given is CE-trained already; P_ebp from it, EBP from the first epoch
    res0 = train(_clf(copy.deepcopy(ce.model)), tr, va, strategy="EBP", epochs=1, ce_epochs=0, lr=1e-3,
                 seed=1, progress=False)
    assert torch.equal(res0.P, res.P) and res0.history[0]["phase"] == "main"


def test_each_phase_stops_at_its_plateau(data):
    tr, va = data
    res = train(_clf(_net()), tr, va, strategy="TS1", epochs=40, ce_epochs=20, **FAST)
    phases = [h["phase"] for h in res.history]
    n_ce = phases.count("ce")
    assert 0 < n_ce < 20 and res.phase_epochs == [n_ce], "the CE phase ends at its plateau"
    assert 0 < phases.count("main") < 20 and res.stop_epoch == len(res.history) < 40
    assert res.stopped_early
    # the second phase starts a fresh optimizer at the initial lr; each phase's lr halves at plateaus
    first_main = res.history[n_ce]
    assert first_main["lr"] == FAST["lr"] and first_main["sparsity"] is not None
    assert min(h["lr"] for h in res.history[:n_ce]) < FAST["lr"]
    assert sum(bool(h.get("phase_end")) for h in res.history) == 2
    with pytest.raises(CnnlensError, match="must exceed lr_patience"):
        train(_clf(_net()), tr, va, strategy="TS3", epochs=4, lr_patience=3, patience=3, progress=False)


class _Stop(Exception):
    pass


def test_interrupted_run_resumes_to_the_uninterrupted_weights(data, tmp_path):
    """A hook that raises after epoch k (a crash between epochs) loses nothing: resuming from the
    checkpoint ends with the weights, P, θ, history and stopping epoch of an uninterrupted run."""
    tr, va = data
    seen = []

    def metric(info):  # a per-epoch metric stored in the history (and so in the checkpoint)
        seen.append(info["epoch"])
        return {"mean_w": float(info["classifier"].model[3].weight.mean())}

    full = train(_clf(_net(2)), tr, va, strategy="TS1", epochs=40, ce_epochs=20, on_epoch=metric, **FAST)
    assert full.stop_epoch < 40
    k = full.phase_epochs[0] + 1  # interrupt inside the second phase

    def crash(info):
        out = metric(info)
        if info["epoch"] == k:
            raise _Stop
        return out

    ckpt = tmp_path / "ck"
    with pytest.raises(_Stop):
        train(_clf(_net(2)), tr, va, strategy="TS1", epochs=40, ce_epochs=20, on_epoch=crash,
              checkpoint_dir=ckpt, **FAST)
    assert torch.load(ckpt / "last.pt", weights_only=True)["epoch"] == k - 1
    net = _net(9)  # other weights: the checkpoint replaces them
    res = train(_clf(net), tr, va, strategy="TS1", epochs=40, ce_epochs=20, on_epoch=metric,
                checkpoint_dir=ckpt, resume=True, **FAST)
    for (name, a), b in zip(net.state_dict().items(), full.classifier.model.state_dict().values()):
        assert torch.equal(a, b), name
    assert torch.equal(res.P, full.P) and torch.equal(res.theta, full.theta)
    assert res.history == full.history and res.stop_epoch == full.stop_epoch
    assert res.phase_epochs == full.phase_epochs and res.stopped_early == full.stopped_early
    # a finished run resumes to itself without training
    n_seen = len(seen)
    again = train(_clf(_net(9)), tr, va, strategy="TS1", epochs=40, ce_epochs=20, on_epoch=metric,
                  checkpoint_dir=ckpt, resume=True, **FAST)
    assert len(seen) == n_seen and again.stop_epoch == full.stop_epoch
    assert torch.equal(again.classifier.model[0].weight, full.classifier.model[0].weight)
