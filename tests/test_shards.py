"""Sharded, resumable runs (issue 23 item 2; docs/algorithms.md §11): a folder of real MNIST
PNGs streamed through ``cnnlens.shards`` gives, for shard sizes 3 and 5, the bytes of the
unsharded run on the in-memory tensor (batch size 1, so the forwards hold the same images); a
killed run resumes with only the missing shards; a damaged shard is recomputed with a warning."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

import cnnlens
from cnnlens import shards, zoo
from cnnlens.ablation.core import dynamic_ablation
from cnnlens.attribution.run import run_explain
from cnnlens.cli import main
from cnnlens.data import ImageStream, load_image_folder
from cnnlens.errors import CnnlensError
from cnnlens.metrics.run import run_evaluate
from cnnlens.shards import _core

N = 7
METHODS = ["saliency", "gradcam", "deeplift", "lime", "rise"]
PARAMS = {"lime": {"num_samples": 20}, "rise": {"n_masks": 12}}


@pytest.fixture(scope="module")
def clf():
    return zoo.load_classifier("mnist_cnn")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("mnist_png")
    ds = zoo.load_dataset("mnist", split="test")
    for i in range(N):
        d = root / str(int(ds.labels[i]))
        d.mkdir(exist_ok=True)
        Image.fromarray((ds.images[i, 0].numpy() * 255).round().astype(np.uint8)).save(d / f"{i:03d}.png")
    return root


@pytest.fixture(scope="module")
def eager(folder):
    return load_image_folder(folder, size=(28, 28), mode="L")


def stream(folder):
    return ImageStream(folder, size=(28, 28), mode="L")


def _npz(path):
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def _same_files(a, b, pattern):
    names = sorted(p.name for p in a.glob(pattern))
    assert names and names == sorted(p.name for p in b.glob(pattern))
    for n in names:
        assert (a / n).read_bytes() == (b / n).read_bytes(), n


@pytest.fixture(scope="module")
def explained(clf, eager, tmp_path_factory):
    out = tmp_path_factory.mktemp("explain_one")
    run_explain(clf, eager.images, eager.names, METHODS, out, method_params=PARAMS, batch_size=1, progress=False)
    return out


@pytest.mark.parametrize("size", [3, 5])
def test_sharded_explain_is_the_unsharded_run(clf, folder, explained, tmp_path, size):
    s = stream(folder)
    shards.explain_sharded(clf, s, s.names, METHODS, tmp_path, shard_size=size, method_params=PARAMS, batch_size=1,
                           progress=False)
    a, b = _npz(explained / "maps.npz"), _npz(tmp_path / "maps.npz")
    assert sorted(a) == sorted(b)
    for k in a:
        assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape and a[k].tobytes() == b[k].tobytes(), k
    _same_files(explained, tmp_path, "*.png")  # overlays and grid.png
    pa, pb = (json.loads((d / "params.json").read_text()) for d in (explained, tmp_path))
    for m in METHODS:
        assert pb["methods"][m]["targets"] == pa["methods"][m]["targets"]
        assert pb["methods"][m]["params"]["first_index"] == 0
    assert sorted(p.name for p in (tmp_path / "shards" / "lime").iterdir()) == \
        [f"{s:06d}-{min(s + size, N) - 1:06d}.npz" for s in range(0, N, size)]


def test_killed_run_resumes_and_damaged_shard_is_recomputed(clf, folder, tmp_path, monkeypatch):
    s = stream(folder)
    real = _core.TASKS["explain"]
    calls = []

    def failing(spec, ctx):
        calls.append((spec.label, spec.start))
        if len(calls) == 2:
            raise RuntimeError("killed")
        return real(spec, ctx)

    monkeypatch.setitem(_core.TASKS, "explain", failing)
    kw = dict(shard_size=4, batch_size=1, progress=False)
    with pytest.raises(RuntimeError, match="killed"):
        shards.explain_sharded(clf, s, s.names, ["saliency", "gradcam"], tmp_path, **kw)
    assert not (tmp_path / "maps.npz").exists()
    calls.clear()
    monkeypatch.setitem(_core.TASKS, "explain", lambda spec, ctx: calls.append((spec.label, spec.start)) or real(spec, ctx))
    shards.explain_sharded(clf, s, s.names, ["saliency", "gradcam"], tmp_path, **kw)
    # 4 shards; the first was written before the kill: only the other 3 run
    assert calls == [("saliency", 4), ("gradcam", 0), ("gradcam", 4)]
    before = _npz(tmp_path / "maps.npz")

    calls.clear()
    (tmp_path / "shards" / "gradcam" / "000004-000006.npz").write_bytes(b"PK\x03\x04 truncated")
    with pytest.warns(RuntimeWarning, match="damaged"):
        shards.explain_sharded(clf, s, s.names, ["saliency", "gradcam"], tmp_path, **kw)
    assert calls == [("gradcam", 4)]
    after = _npz(tmp_path / "maps.npz")
    assert all(before[k].tobytes() == after[k].tobytes() for k in before)

    calls.clear()  # other settings: every shard of that method is recomputed (no warning)
    shards.explain_sharded(clf, s, s.names, ["saliency"], tmp_path, seed=1, **kw)
    assert calls == [("saliency", 0), ("saliency", 4)]

    specs = shards.plan_explain(tmp_path, ["saliency"], s.names, 4, seed=2)
    assert len(shards.pending(specs)[1]) == 2
    with pytest.raises(CnnlensError, match="not done"):
        shards.merge_explain(specs, shards.Context(clf, s, s.names, tmp_path), ["saliency"])


def test_sharded_evaluate_is_the_unsharded_run(clf, folder, eager, tmp_path):
    size = 3
    kw = dict(methods=["lrp", "rise"], metrics=["dauc", "ad"], protocol="rise", seed=0,
              batch_size=1, method_params={"rise": {"n_masks": 12}},
              evaluate_params={"score": "prob", "mode": "soft", "clip": True, "step": 98}, source={"t": 1},
              progress=False)
    one = tmp_path / "one"
    run_evaluate(clf, eager.images, None, one, **kw)
    s = stream(folder)
    table, files = shards.evaluate_sharded(clf, s, s.names, tmp_path / "sh", shard_size=size, **kw)
    for f in ("table.md", "table.csv", "per_image.csv"):
        assert (one / f).read_bytes() == (tmp_path / "sh" / f).read_bytes(), f
    for row in ("lrp", "rise", "random"):
        a, b = (json.loads((d / "results" / f"{row}.json").read_text()) for d in (one, tmp_path / "sh"))
        a.pop("seconds"), b.pop("seconds")
        assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True), row  # floats as repr: bytes
    ta, tb = (json.loads((d / "table.json").read_text()) for d in (one, tmp_path / "sh"))
    ta.pop("seconds"), tb.pop("seconds")
    assert ta == tb
    assert table.value("lrp", "ad") == json.loads((one / "table.json").read_text())["results"]["lrp"]["ad"]["mean"]
    assert tmp_path / "sh" / "table.md" in files


def test_sharded_dynamic_ablation_is_one_call(clf, folder, eager, tmp_path):
    kw = dict(iterations=20, superpixels=0, seed=3, batch_size=1)
    ref = dynamic_ablation(clf, eager.images, **kw)
    s = stream(folder)
    summary, files = shards.ablate_sharded(clf, s, s.names, tmp_path, shard_size=4, progress=False, **kw)
    z = _npz(tmp_path / "ablation.npz")
    assert z["mask"].tobytes() == ref.mask.numpy().tobytes()
    assert z["cam"].tobytes() == ref.cam.float().numpy().tobytes()
    assert z["mar"].tobytes() == ref.mar.numpy().tobytes()
    assert np.array_equal(z["targets"], ref.targets.numpy()) and np.array_equal(z["accepted"], ref.accepted.numpy())
    assert summary["mar"] == ref.mar_summary()
    rows = json.loads((tmp_path / "summary.json").read_text())["images"]
    assert [r["rule"] for r in rows] == ref.rule_text and [r["index"] for r in rows] == list(range(N))
    assert all(f.exists() for f in files)


def test_cli_shards_stream_a_folder(folder, tmp_path, capsys):
    base = ["--model", "mnist_cnn", "--images", str(folder), "--batch-size", "1", "--quiet"]
    assert main(["explain", *base, "--method", "saliency", "--out", str(tmp_path / "a")]) == 0
    assert main(["explain", *base, "--method", "saliency", "--out", str(tmp_path / "b"), "--shard-size", "4",
                 "--num-workers", "2"]) == 0
    a, b = _npz(tmp_path / "a" / "maps.npz"), _npz(tmp_path / "b" / "maps.npz")
    assert a["saliency"].tobytes() == b["saliency"].tobytes()
    assert main(["explain", *base, "--method", "saliency", "--out", str(tmp_path / "b"), "--shard-size", "4"]) == 0
    assert "reusing 2 finished shard(s)" in capsys.readouterr().out
    assert main(["evaluate", *base, "--methods", "saliency", "--metrics", "ad", "--limit", "5",
                 "--out", str(tmp_path / "e"), "--shard-size", "2"]) == 0
    assert len(json.loads((tmp_path / "e" / "results" / "saliency.json").read_text())["results"]["ad"]["per_image"]) == 5
    assert main(["ablate", *base, "--iterations", "5", "--superpixels", "0", "--out", str(tmp_path / "d"),
                 "--shard-size", "0"]) == 2
    assert "--shard-size must be >= 1" in capsys.readouterr().err
    assert main(["explain", *base, "--out", str(tmp_path / "x"), "--num-workers", "2"]) == 2
    assert "needs --shard-size" in capsys.readouterr().err


def test_plan_and_shard_files(tmp_path):
    cfg = {"a": 1}
    specs = _core.plan("explain", tmp_path, ["m"], 7, 3, lambda _: cfg, [str(i) for i in range(7)])
    assert [(s.start, s.stop) for s in specs] == [(0, 3), (3, 6), (6, 7)]
    assert len({s.digest for s in specs}) == 3 and specs[0].path.endswith("shards/m/000000-000002.npz")
    other = _core.plan("explain", tmp_path, ["m"], 7, 3, lambda _: cfg, [str(i) for i in range(1, 8)])
    assert other[0].digest != specs[0].digest  # other images, other shard
    _core.write_shard(specs[0], {"v": np.arange(3)}, {"x": 1})
    got = _core.read_shard(specs[0])
    assert got is not None and got["meta"]["digest"] == specs[0].digest and got["v"].tolist() == [0, 1, 2]
    assert [s.start for s in shards.pending(specs)[1]] == [3, 6]
    assert _core.plan("explain", tmp_path, ["m"], 7, None, lambda _: cfg)[0].stop == 7
    with pytest.raises(CnnlensError, match="shard_size"):
        _core.plan("explain", tmp_path, ["m"], 7, 0, lambda _: cfg)
    assert torch.equal(cnnlens.data.image_chunk(torch.arange(5), 1, 3), torch.tensor([1, 2]))
