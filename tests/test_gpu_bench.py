"""benchmarks/gpu.py (issue 23 item 5): the prepared GPU benchmark runs, writes its table after
every row, reports a missing peer as "not installed" and stops at its time budget. The quick
CPU mode here; the real run briefly where a CUDA device is present."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tests.conftest import cuda, load_benchmark


@pytest.fixture(scope="module")
def gpu():
    mod = load_benchmark("gpu")
    threads = torch.get_num_threads()
    yield mod
    torch.set_num_threads(threads)  # --threads is process-wide


def _table(out: Path) -> tuple[dict, str]:
    return json.loads((out / "gpu_bench.json").read_text()), (out / "gpu_bench.md").read_text()


def test_quick_cpu_run_writes_the_table(gpu, tmp_path, monkeypatch):
    # one method per family, MNIST only; lime stands for a peer that is not installed
    monkeypatch.setitem(gpu.PEERS, "lime", ("lime", "cnnlens_no_such_peer"))
    tasks = "saliency,gradcam,lrp,lime,rise,da_pos,metrics"
    assert gpu.main(["--device", "cpu", "--quick", "--models", "mnist_cnn", "--tasks", tasks,
                     "--peers", "captum,zennit,lime,saliency-maps-metrics", "--out", str(tmp_path), "--threads", "1",
                     "--max-seconds", "120"]) == 0
    data, md = _table(tmp_path)
    assert data["columns"] == list(gpu.COLUMNS) and data["complete"]
    assert "| " + " | ".join(gpu.COLUMNS) + " |" in md
    rows = {(r["task"], r["implementation"].split(" ")[0]): r for r in data["rows"]}
    assert all(set(r) == set(gpu.COLUMNS) for r in data["rows"])
    for method in ("saliency", "gradcam", "lrp", "lime", "rise", "da_pos"):
        assert rows[(method, "cnnlens")]["status"] == "ok", rows[(method, "cnnlens")]
        assert rows[(method, "cnnlens")]["seconds"] > 0
    assert rows[("saliency", "captum")]["agreement"].startswith("max |Δ| of normalised maps")
    assert rows[("lrp", "zennit")]["status"] == "ok"
    assert rows[("lime", "lime")]["status"] == "not installed"
    assert rows[("gradcam", "pytorch-grad-cam")]["status"] == "left out (--peers)"
    assert rows[("rise", "cnnlens")]["forwards"] == 2 * 32
    games = [r for r in data["rows"] if r["task"].startswith("games") and r["implementation"] != "cnnlens"]
    assert len(games) == 2 and all(r["status"] == "ok" and "max |Δ|" in r["agreement"] for r in games)
    assert any(r["task"].startswith("metrics: iauc+dauc+ic+dc+ad+iic") for r in data["rows"])


def test_budget_stops_cleanly(gpu, tmp_path):
    assert gpu.main(["--device", "cpu", "--quick", "--models", "mnist_cnn", "--tasks", "saliency,rise",
                     "--peers", "", "--out", str(tmp_path), "--max-seconds", "0.05"]) == 0
    data, _ = _table(tmp_path)
    assert not data["complete"]
    status = [r["status"] for r in data["rows"]]
    assert "stopped at the time budget" in status[0] or status[0] == "ok"
    assert status[-1] == "not reached (time budget)"
    assert {r["task"] for r in data["rows"]} >= {"saliency", "rise"}  # every row not reached is listed


@cuda
def test_cuda_run_briefly(gpu, tmp_path):
    assert gpu.main(["--device", "cuda", "--models", "mnist_cnn", "--tasks", "saliency,gradcam,scorecam,rise,metrics",
                     "--out", str(tmp_path), "--max-seconds", "120"]) == 0
    data, _ = _table(tmp_path)
    assert data["env"]["device"] != "cuda"  # the card's name
    ours = [r for r in data["rows"] if r["implementation"] == "cnnlens"]
    assert ours and all(r["status"] == "ok" for r in ours), ours
