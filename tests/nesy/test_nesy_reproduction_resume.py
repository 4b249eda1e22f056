"""experiments/nesy_reproduction.py survives interruption (issue 26 item 2): finished runs are
skipped, an interrupted run continues from its last per-epoch checkpoint and ends with the weights
and results of an uninterrupted run; every run records its epochs, lr schedule, stopping epoch and
code version."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tests.conftest import load_script

ROOT = Path(__file__).resolve().parents[2]


def _load():
    return load_script("experiments", "nesy_reproduction")


repro = _load()
TINY = ["--subsets", "P2", "--seeds", "0", "--epochs", "6", "--ce-epochs", "3", "--patience", "2",
        "--lr-patience", "0", "--min-delta", "0.05", "--lr", "1e-3", "--rules-every", "2", "--n-train", "64",
        "--n-val", "32", "--n-test", "32", "--skip-texture"]
VOLATILE = ("train_seconds",)


def _runs(path: Path) -> dict:
    return {(r["subset"], r["strategy"], r["seed"]): {k: v for k, v in r.items() if k not in VOLATILE}
            for r in json.loads(path.read_text())["runs"]}


def _weights(out: Path, name: str) -> dict:
    return torch.load(out / "ckpt" / name / "last.pt", weights_only=True)["model"]


def test_interrupted_reproduction_resumes_to_the_uninterrupted_result(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    repro.main(TINY + ["--strategies", "CE", "TS1", "--out", str(a), "--results", str(a / "r.json")])
    full = _runs(a / "r.json")
    # b: CE finishes; then CE is skipped and TS1 crashes after its 3rd epoch; then it resumes
    repro.main(TINY + ["--strategies", "CE", "--out", str(b), "--results", str(b / "r.json")])
    ce_before = (b / "r.json").read_text()
    with pytest.raises(repro.Interrupted):
        repro.main(TINY + ["--strategies", "CE", "TS1", "--out", str(b), "--results", str(b / "r.json"),
                           "--stop-after-epochs", "3"])
    assert (b / "r.json").read_text() == ce_before  # nothing half-written, CE not redone
    assert torch.load(b / "ckpt" / "P2_TS1_0" / "last.pt", weights_only=True)["epoch"] == 2
    repro.main(TINY + ["--strategies", "CE", "TS1", "--out", str(b), "--results", str(b / "r.json")])
    resumed = _runs(b / "r.json")
    assert set(resumed) == set(full) == {("P2", "CE", 0), ("P2", "TS1", 0)}
    for key in full:
        assert resumed[key] == full[key], key
        for (name, x), y in zip(_weights(b, f"P2_{key[1]}_0").items(), _weights(a, f"P2_{key[1]}_0").values()):
            assert torch.equal(x, y), (key, name)
    ts1 = full[("P2", "TS1", 0)]
    assert ts1["epochs_run"] == len(ts1["history"]) <= 6 and ts1["phase_epochs"][0] <= 3
    assert ts1["settings"]["lr_patience"] == 0 and ts1["settings"]["patience"] == 2
    assert ts1["code_version"] and "lr" in ts1["history"][0] and "near_binary_val" in ts1["history"][0]
    assert any("no_fire_val" in h for h in ts1["history"])
    # another design into the same results file is refused
    with pytest.raises(SystemExit, match="other settings"):
        repro.main(TINY[:5] + ["9"] + TINY[6:] + ["--strategies", "CE", "--out", str(b), "--results", str(b / "r.json")])


def test_ne_uses_k5_on_every_subset():
    """SPEC §6.3: NE uses K = 5 everywhere (the 5-epoch run used K = 12 for NE on P10)."""
    import argparse

    args = argparse.Namespace(k=None, ce_epochs=None, epochs=10, lr=1e-3, weight_decay=5e-3, lr_factor=0.5,
                              lr_patience=2, patience=5, min_delta=1e-3, n_train=10, n_val=10, n_test=10,
                              rules_every=5, all_filters=False)
    for sub in repro.SUBSETS:
        assert repro.run_settings(args, sub, "NE")["k"] == 5
    assert repro.run_settings(args, "P10", "TS3")["k"] == 12 and repro.run_settings(args, "P5", "TS3")["k"] == 5
    assert repro.run_settings(args, "P2", "NE")["ce_epochs"] == 5 and repro.run_settings(args, "P2", "TS3")["ce_epochs"] is None


def test_ceiling_by_hand():
    theta = torch.tensor([0.0, 1.0, 2.0, 3.0])  # only f3 can get σ(Norm − θ) below 0.1
    y = torch.tensor([0, 1])
    assert repro.ceiling(theta, None, y) == {"ceiling": 0.25, "theta_ge_ln9": 0.25}
    P = torch.tensor([[1.0, 0, 0, 0], [0, 0, 0, 1.0]])  # class 0's target-1 filter f0 can reach σ > 0.9
    assert repro.ceiling(theta, P, y)["ceiling"] == (2 + 1) / 8


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device: the GPU path is not exercised here")
def test_gpu_path_runs_parallel_workers(tmp_path):
    repro.main(TINY + ["--strategies", "CE", "TS3", "--device", "cuda", "--workers", "2", "--out", str(tmp_path),
                       "--results", str(tmp_path / "r.json")])
    runs = json.loads((tmp_path / "r.json").read_text())["runs"]
    assert {r["strategy"] for r in runs} == {"CE", "TS3"} and all(r["device"].startswith("cuda") for r in runs)
