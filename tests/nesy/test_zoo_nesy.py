"""The shipped NeSy demo models (issue 26 item 6): ``texture_cnn`` (CE) and ``texture_cnn_ts3``
(its TS3 sparsity-loss fine-tune, training θ in the record) load from package data, and the NeSy
metrics recorded by ``experiments/train_zoo.py`` re-measure from them."""
from __future__ import annotations

import pytest
import torch

from cnnlens import zoo
from cnnlens.errors import CnnlensError
from cnnlens.nesy import NeSyModel


@pytest.fixture(scope="module")
def scenes():
    return zoo.load_dataset("texture_scenes", "train"), zoo.load_dataset("texture_scenes", "test")


def test_nesy_theta_is_the_training_theta():
    rec = zoo.training_record("texture_cnn_ts3")
    theta = zoo.nesy_theta("texture_cnn_ts3")
    assert theta.shape == (64,) and theta.dtype == torch.float32
    assert rec["nesy"]["strategy"] == "TS3" and rec["nesy"]["layer"] == "7"
    assert torch.equal(theta, torch.tensor(rec["nesy"]["theta"], dtype=torch.float32))
    assert len(rec["nesy"]["P"]) == 4 and all(len(p) == rec["nesy"]["k"] for p in rec["nesy"]["P"])
    for name in ("texture_cnn", "mnist_cnn", "fashion_vgg"):  # no sparsity training: no θ
        with pytest.raises(CnnlensError, match="has no training theta"):
            zoo.nesy_theta(name)


@pytest.mark.parametrize("name", ["texture_cnn", "texture_cnn_ts3"])
def test_recorded_nesy_metrics_remeasure(name, scenes):
    tr, te = scenes
    clf = zoo.load_classifier(name)
    assert clf.input_shape == (3, 64, 64) and clf.class_names == list(tr.class_names)
    rec = zoo.training_record(name)
    cnn_acc = float((clf.predict(te.images) == te.labels).float().mean())
    assert cnn_acc >= rec["test_accuracy"] - 0.01
    if rec["nesy"]["theta"] is None:
        nesy = NeSyModel.fit(clf, tr.images, tr.labels, binarization="threshold")
    else:
        nesy = NeSyModel.fit(clf, tr.images, tr.labels, binarization="sigmoid", theta=zoo.nesy_theta(name))
    assert nesy.layer == "7"
    ev, want = nesy.evaluate(te.images, te.labels), rec["nesy"]["test_metrics"]
    assert ev["size"] == pytest.approx(want["size"], abs=2)
    assert ev["accuracy"] == pytest.approx(want["accuracy"], abs=0.01)
    assert ev["fidelity"] == pytest.approx(want["fidelity"], abs=0.01)


def test_train_zoo_nesy_recipe_is_deterministic(tmp_path):
    """experiments/train_zoo.py's NeSy block: the same seed gives bit-identical weights (1 epoch)."""
    import importlib.util
    import sys
    from pathlib import Path

    tz = sys.modules.get("cnnlens_train_zoo")  # the name tests/test_zoo_trained.py registers it under
    if tz is None:
        root = Path(__file__).resolve().parents[2]
        spec = importlib.util.spec_from_file_location("cnnlens_train_zoo", root / "experiments" / "train_zoo.py")
        tz = importlib.util.module_from_spec(spec)
        sys.modules["cnnlens_train_zoo"] = tz  # it defines dataclasses
        spec.loader.exec_module(tz)
    prev = torch.are_deterministic_algorithms_enabled()
    try:
        outs = []
        for run in ("a", "b"):
            out = tmp_path / run
            out.mkdir()
            rec = tz.train_nesy("texture_cnn", epochs=1, out_dir=out, ckpt_dir=tmp_path / f"ckpt_{run}", threads=1,
                                progress=False)
            outs.append((out / "texture_cnn.pt").read_bytes())
        assert outs[0] == outs[1]
        assert rec["epochs"] == 1 and rec["nesy"]["theta"] is None and rec["nesy"]["strategy"] == "CE"
    finally:
        torch.use_deterministic_algorithms(prev)
