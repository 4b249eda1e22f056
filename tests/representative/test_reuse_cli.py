"""Reuse evaluation (RI Table 1 protocol, SPEC §5) on a tiny real run, and ``cnnlens represent``."""
from __future__ import annotations

import json

import pytest
import torch

from cnnlens import CnnlensError, RepresentativeInterpreter, seeding, zoo
from cnnlens.attribution.cam import cam_weights as cam_channel_weights
from cnnlens.cli import main
from cnnlens.metrics import average_drop_increase
from cnnlens.representative import ReuseTable, precision_at_k
from cnnlens.representative.evaluation import _cam_maps, _kmeans, _sample_reference, _sqdist


@pytest.fixture(scope="module")
def mnist():
    try:
        clf = zoo.load_classifier("mnist_cnn")
        ds = zoo.load_dataset("mnist")
    except Exception as exc:  # noqa: BLE001 - asset missing on this machine
        pytest.skip(f"mnist assets not installed: {exc}")
    perm = torch.randperm(len(ds.labels), generator=torch.Generator().manual_seed(0))
    return clf, ds, perm


def test_evaluate_reuse_protocol(mnist):
    clf, ds, perm = mnist
    r, u = perm[:300], perm[300:400]
    ri = RepresentativeInterpreter(clf, ds.images[r], n_boundaries=20, seed=0, batch_size=128)
    tab = ri.evaluate_reuse(ds.images[u], seeds=2, reference_labels=ds.labels[r], per_class=20, n_unseen=40,
                            n_centres=6, ks=(3,), progress=False)
    assert isinstance(tab, ReuseTable)
    s = tab.summary()
    assert set(s) == {"ri", "gradcam", "gradcam++", "scorecam"}
    assert all(len(v) == 2 for v in tab.per_seed.values()) and len(tab.coverage) == 2
    assert tab.meta["n_reference"] == 200 and tab.meta["n_unseen"] == 40 and tab.meta["n_centres"] == 6
    assert all(0 <= c <= 1 for c in tab.coverage)
    assert "| RI |" in tab.to_markdown() and set(tab.precision) == {"RI@3", "Euclid@3"}

    # recompute seed 0's Grad-CAM row by hand from the protocol's pieces
    g = seeding.run_generator(0, "ri.reuse")  # seed 0's resampling stream (SPEC §11)
    ref_idx = _sample_reference(ds.labels[r], 300, 20, g)
    sub = ri._resampled(ref_idx, 0)
    s_idx = torch.randperm(100, generator=g)[:40]
    xs = ds.images[u][s_idx]
    psi = clf.features(xs, batch_size=64)
    centres = _kmeans(sub.features_, 6, 0)
    centre_ref = _sqdist(centres, sub.features_).argmin(1)
    nearest = _sqdist(psi.reshape(40, -1), centres).argmin(1)
    w = cam_channel_weights(clf, sub.reference_images[centre_ref], sub.predictions_[centre_ref], "gradcam")
    maps = _cam_maps(psi, w[nearest], (28, 28))
    ad, ai = average_drop_increase(clf, xs, maps, clf.predict(xs), mode="keep", keep=0.2, seed=0)
    assert tab.per_seed["gradcam"][0]["mAD"] == pytest.approx(100 * float(ad.mean()), abs=1e-6)
    assert tab.per_seed["gradcam"][0]["mAI"] == pytest.approx(100 * float(ai.mean()), abs=1e-6)


def test_precision_at_k():
    labels = torch.tensor([0, 0, 1, 1, 2])
    ranked = [torch.tensor([0, 2, 1]), torch.tensor([3]), torch.tensor([], dtype=torch.long)]
    assert precision_at_k(ranked, labels, torch.tensor([0, 1, 2]), 2) == pytest.approx((0.5 + 1.0) / 2)


def test_cli_represent(mnist, tmp_path, capsys):
    out = tmp_path / "ri"
    rc = main(["represent", "--model", "mnist_cnn", "--reference", "mnist", "--reference-size", "400",
               "--dataset", "mnist", "--n-images", "2", "--top", "3", "--n-boundaries", "20", "--out", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "|C|=" in text and "δ=" in text
    summary = json.loads((out / "summary.json").read_text())
    assert len(summary["inputs"]) == 2 and summary["n_reference"] == 400
    assert len(list(out.glob("*_gallery.png"))) == 2 and (out / "heatmaps" / "explanation.npz").exists()
    assert main(["represent", "--model", "mnist_cnn", "--reference", "mnist", "--out", str(out)]) == 2
    assert "give images" in capsys.readouterr().err


def test_reuse_refuses_zero_unseen_and_samples_before_computing_features(mnist, monkeypatch, tmp_path, capsys):
    clf, ds, perm = mnist
    ri = RepresentativeInterpreter(clf, ds.images[perm[:60]], n_boundaries=10, seed=0, progress=False)
    unseen = ds.images[perm[100:400]]
    for bad, message in ((0, "n_unseen must be a positive integer or None"), (2.5, "n_unseen"),
                         (-3, "n_unseen")):
        with pytest.raises(CnnlensError, match=message):
            ri.evaluate_reuse(unseen, seeds=1, n_unseen=bad, progress=False)
    for kw, message in (({"seeds": 0}, "seeds"), ({"per_class": 0}, "per_class"), ({"n_centres": 0}, "n_centres"),
                        ({"keep": 1.5}, "keep"), ({"keep": float("nan")}, "keep"), ({"ks": (0,)}, "ks")):
        with pytest.raises(CnnlensError, match=message):
            ri.evaluate_reuse(unseen, **{"seeds": 1, **kw}, progress=False)
    seen = []
    real = ri._features_logits

    def counting(images, desc=None):
        seen.append(images.shape[0])
        return real(images, desc)

    monkeypatch.setattr(ri, "_features_logits", counting)
    ri.evaluate_reuse(unseen, seeds=2, n_unseen=5, n_centres=3, methods=("gradcam",), progress=False)
    assert len(seen) == 1 and 5 <= seen[0] <= 10  # the two seeds' samples, not the 300 unseen images
    # the command line refuses 0 before loading anything and takes 'all'
    base = ["represent", "--model", "mnist_cnn", "--reference", "mnist", "--evaluate", "--out", str(tmp_path / "o")]
    assert main(base + ["--n-unseen", "0"]) == 2
    assert "--n-unseen must be >= 1, got 0 (give --n-unseen all" in capsys.readouterr().err
    assert main(base + ["--seeds", "0"]) == 2
    assert "--seeds must be >= 1" in capsys.readouterr().err
