"""benchmarks/cost_model.py (issue 23 item 6): the arithmetic on a hand-computed case."""
from __future__ import annotations

import json

import pytest

from tests.conftest import load_benchmark


@pytest.fixture(scope="module")
def cm():
    return load_benchmark("cost_model")


def v(x):
    return {"value": x}


CASE = {
    "images": 1000, "model": "m", "gpus": [1, 2], "cpu_forward_ms": v(10.0),
    "gpu_throughput": {"value": 100, "measured": False}, "backward_factor": v(3), "cpu_cores_per_gpu": v(2),
    "decode_ms": v(10), "io": {"gpus_per_node": v(1), "node_write_MB_s": v(1), "fs_write_MB_s": v(1.5)},
    "ray": {"fixed_s": v(1), "per_shard_ms": v(100), "shard_size": v(100)},
    "methods": {"a": {"forwards": 10}, "b": {"fwd_bwd": 2, "cpu_ms": 990, "bytes": 3000}},
    "metrics": {"forwards": 5, "random_baseline": False},
}


def test_hand_computed_case(cm):
    # 1 GPU: fixed 1 + 10 shards x 0.1 s = 2 s per pass; bandwidth min(1, 1.5) MB/s
    # a: 1000 x 10 / 100 = 100 s forwards (decode 1000 x 10 ms / 2 cores = 5 s)      -> 102
    # b: fe 2 x 3 = 6 -> 60 s; CPU 1000 x (990 + 10) ms / 2 = 500 s; I/O 3 MB / 1 MB/s = 3 s -> 502
    # metrics(a), metrics(b): 1000 x 5 / 100 = 50 s                                 -> 52 each
    r1 = cm.evaluate(CASE, 1)
    assert [p["pass"] for p in r1["passes"]] == ["a", "b", "metrics(a)", "metrics(b)"]
    assert [p["limit"] for p in r1["passes"]] == ["forwards", "decode+CPU", "forwards", "forwards"]
    assert r1["seconds"] == pytest.approx(102 + 502 + 52 + 52)
    assert r1["forward_equivalents"] == 1000 * (10 + 6 + 5 + 5) and r1["bytes"] == 3_000_000
    # 2 GPUs (2 nodes): fixed 1 + 10 x 0.1 / 2 = 1.5; bandwidth min(2, 1.5) MB/s -> b's I/O 2 s
    r2 = cm.evaluate(CASE, 2)
    assert r2["passes"][1]["result I/O"] == pytest.approx(2.0)
    assert r2["seconds"] == pytest.approx(51.5 + 251.5 + 26.5 + 26.5)
    assert "| 2 |" in cm.table(CASE)


def test_throughput_from_the_gpu_benchmark(cm, tmp_path):
    bench = {"rows": [{"model": "m", "task": "forward (calibration)", "ms_per_forward": 0.5}]}
    (tmp_path / "gpu_bench.json").write_text(json.dumps(bench))
    inputs = tmp_path / "in.json"
    inputs.write_text(json.dumps(CASE))
    inp = cm.load(inputs, gpu_bench=str(tmp_path / "gpu_bench.json"))
    assert inp["gpu_throughput"]["value"] == pytest.approx(2000) and inp["gpu_throughput"]["measured"]
    assert cm.evaluate(inp, 1)["passes"][0]["forwards"] == pytest.approx(1000 * 10 / 2000)


def test_bundled_inputs_give_a_table(cm):
    text = cm.table(cm.load())
    assert "ASSUMED" in text and "| 64 |" in text
