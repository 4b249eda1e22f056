"""The Ray engine (issue 23 item 3; docs/algorithms.md §11): a local Ray (2 CPUs, loopback only)
with 2 worker actors writes the files of the in-process engine, byte for byte, for a gradient, a
CAM, an LRP/DeepLIFT, LIME, RISE and a Dynamic Ablation run on the bundled MNIST CNN; a worker
that dies mid-run is restarted and its shard retried; a run stopped after some shards (a shard that
raises, as a killed driver would leave it) finishes only the missing ones when run again."""
from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch

from cnnlens import shards, zoo
from cnnlens.cli import main
from cnnlens.errors import CnnlensError

pytestmark = pytest.mark.ray

N = 6
SIZE = 3  # shard size; batch size 1 divides it
METHODS = ["saliency", "gradcam", "deeplift", "lime", "rise"]
PARAMS = {"lime": {"num_samples": 20}, "rise": {"n_masks": 12}}


@pytest.fixture(scope="module")
def ray_local():
    try:
        import ray
    except ImportError as exc:
        pytest.skip(f"Ray is an optional extra (pip install cnnlens[ray]) and is not importable: {exc}")
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1")
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def clf():
    return zoo.load_classifier("mnist_cnn")


@pytest.fixture(scope="module")
def data():
    ds = zoo.load_dataset("mnist", split="test")
    return ds.images[:N].clone(), [f"{i:03d}.png" for i in range(N)]


@pytest.fixture(autouse=True)
def one_thread():
    # a Ray actor runs torch with one thread (its one CPU): the in-process reference does too
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _npz(path):
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def _same_npz(a, b):
    za, zb = _npz(a), _npz(b)
    assert sorted(za) == sorted(zb)
    for k in za:
        assert za[k].dtype == zb[k].dtype and za[k].shape == zb[k].shape and za[k].tobytes() == zb[k].tobytes(), k


def _same_pngs(a, b):
    names = sorted(p.name for p in a.glob("*.png"))
    assert names and names == sorted(p.name for p in b.glob("*.png"))
    for n in names:
        assert (a / n).read_bytes() == (b / n).read_bytes(), n


@pytest.fixture(scope="module")
def explained_local(clf, data, tmp_path_factory):
    out = tmp_path_factory.mktemp("explain_local")
    torch.set_num_threads(1)
    shards.explain_sharded(clf, data[0], data[1], METHODS, out, shard_size=SIZE, method_params=PARAMS, batch_size=1,
                           progress=False)
    return out


def test_ray_explain_is_the_local_engine(ray_local, clf, data, explained_local, tmp_path):
    shards.explain_sharded(clf, data[0], data[1], METHODS, tmp_path, shard_size=SIZE, method_params=PARAMS, batch_size=1,
                           progress=False, engine="ray", workers=2)
    _same_npz(explained_local / "maps.npz", tmp_path / "maps.npz")
    _same_pngs(explained_local, tmp_path)  # overlays and grid.png
    for m in METHODS:
        for f in sorted((explained_local / "shards" / m).iterdir()):
            _same_npz(f, tmp_path / "shards" / m / f.name)
    pa, pb = (json.loads((d / "params.json").read_text()) for d in (explained_local, tmp_path))
    assert pa == pb


DA = dict(iterations=10, superpixels=0, seed=3, batch_size=1)


@pytest.fixture(scope="module")
def ablated_local(clf, data, tmp_path_factory):
    out = tmp_path_factory.mktemp("ablate_local")
    torch.set_num_threads(1)
    shards.ablate_sharded(clf, data[0], data[1], out, shard_size=SIZE, progress=False, **DA)
    return out


def test_ray_evaluate_is_the_local_engine(ray_local, clf, data, tmp_path):
    kw = dict(methods=["lrp", "rise"], metrics=["dauc", "ad"], protocol="rise", seed=0, batch_size=1,
              method_params={"rise": {"n_masks": 12}}, evaluate_params={"score": "prob", "mode": "soft", "step": 98},
              progress=False)
    shards.evaluate_sharded(clf, data[0], data[1], tmp_path / "el", shard_size=SIZE, **kw)
    shards.evaluate_sharded(clf, data[0], data[1], tmp_path / "er", shard_size=SIZE, engine="ray", workers=2, **kw)
    for f in ("table.md", "table.csv", "per_image.csv"):
        assert (tmp_path / "el" / f).read_bytes() == (tmp_path / "er" / f).read_bytes(), f
    for row in ("lrp", "rise", "random"):
        a, b = (json.loads((tmp_path / d / "results" / f"{row}.json").read_text()) for d in ("el", "er"))
        a.pop("seconds"), b.pop("seconds")
        assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True), row



def test_a_killed_worker_is_restarted_and_its_shard_retried(ray_local, clf, data, ablated_local, tmp_path, capsys):
    # Dynamic Ablation on Ray: a worker dies on its first shard, is restarted, the shard runs again;
    # the files are those of the local engine
    from cnnlens.shards import ray_engine

    specs = shards.plan_ablate(tmp_path, data[1], SIZE, source={"model": None}, rule="pos", k=4, alpha_step=0.2,
                               fc=0.95, sequential=False, **DA)
    ctx = shards.Context(clf, data[0], data[1], tmp_path)
    armed = tmp_path / "crash-once"
    armed.write_text("")  # the first worker to run a shard finds it, removes it and exits (os._exit)
    computed, reused = ray_engine.run(specs, ctx, num_workers=2, progress=False, _crash_once=str(armed))
    assert (computed, reused) == (len(specs), 0) and not armed.exists()
    assert "worker died while running shard" in capsys.readouterr().out
    shards.merge_ablate(specs, tmp_path, data[1], verbose=False)
    a, b = _npz(ablated_local / "ablation.npz"), _npz(tmp_path / "ablation.npz")
    for k in ("mask", "cam", "mar", "targets", "accepted"):
        assert a[k].tobytes() == b[k].tobytes(), k
    _same_pngs(ablated_local, tmp_path)
    for f in sorted((ablated_local / "shards" / "da_pos").iterdir()):
        assert _npz(f)["mask"].tobytes() == _npz(tmp_path / "shards" / "da_pos" / f.name)["mask"].tobytes()


def test_a_stopped_run_finishes_only_the_missing_shards(ray_local, clf, data, explained_local, tmp_path):
    from dataclasses import replace

    from cnnlens.shards import ray_engine

    methods = ["saliency", "gradcam"]
    specs = shards.plan_explain(tmp_path, methods, data[1], SIZE, seed=0, batch_size=1)
    ctx = shards.Context(clf, data[0], data[1], tmp_path)
    broken = list(specs)
    broken[1] = replace(specs[1], config={**specs[1].config, "method": "no-such-method"})  # raises in its worker
    with pytest.raises(CnnlensError, match="no-such-method"):
        ray_engine.run(broken, ctx, num_workers=2, progress=False)
    done, todo = shards.pending(specs)
    assert 0 < len(done) < len(specs) and specs[1] in todo
    stamps = {s.path: (tmp_path / s.path).stat().st_mtime_ns for s in done}
    computed, reused = ray_engine.run(specs, ctx, num_workers=2, progress=False)
    assert (computed, reused) == (len(todo), len(done))
    assert stamps == {s.path: (tmp_path / s.path).stat().st_mtime_ns for s in done}  # not rewritten
    shards.merge_explain(specs, ctx, methods)
    a, b = _npz(explained_local / "maps.npz"), _npz(tmp_path / "maps.npz")
    assert all(a[m].tobytes() == b[m].tobytes() for m in methods)
    assert ray_engine.run(specs, ctx, progress=False) == (0, len(specs))


def test_cli_engine_ray(ray_local, explained_local, tmp_path):
    # evaluate and ablate pass the same options (cli.options.engine_kw) to their *_sharded function
    base = ["--model", "mnist_cnn", "--dataset", "mnist", "--split", "test", "--limit", "4", "--batch-size", "1", "--quiet"]
    # a fresh Classifier (its Grad-CAM layer not resolved yet) is pickled to the workers
    assert main(["explain", *base, "--method", "saliency,gradcam", "--out", str(tmp_path / "r"), "--shard-size", "2",
                 "--engine", "ray", "--ray-workers", "2"]) == 0
    # the same first 4 test images; batch size 1, so the shard layout does not matter
    for m in ("saliency", "gradcam"):
        assert _npz(explained_local / "maps.npz")[m][:4].tobytes() == _npz(tmp_path / "r" / "maps.npz")[m].tobytes(), m


def test_cli_engine_errors(tmp_path, capsys, monkeypatch):
    base = ["explain", "--model", "mnist_cnn", "--dataset", "mnist", "--limit", "2", "--quiet", "--out", str(tmp_path)]
    assert main([*base, "--engine", "ray"]) == 2
    assert "--engine ray runs shards: it needs --shard-size" in capsys.readouterr().err
    assert main([*base, "--address", "auto", "--shard-size", "1"]) == 2
    assert "it needs --engine ray" in capsys.readouterr().err
    assert main([*base, "--engine", "ray", "--shard-size", "1", "--ray-workers", "0"]) == 2
    assert "--ray-workers must be >= 1" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    assert main([*base, "--engine", "ray", "--shard-size", "1"]) == 2
    err = capsys.readouterr().err
    assert "pip install cnnlens[ray]" in err and len(err.strip().splitlines()) == 1
    with pytest.raises(CnnlensError, match=r"pip install cnnlens\[ray\]"):
        shards.explain_sharded(None, torch.zeros(1, 1, 28, 28), ["a"], ["saliency"], tmp_path, shard_size=1, engine="ray")
    with pytest.raises(CnnlensError, match="unknown engine"):
        shards.execute([], None, engine="dask")
