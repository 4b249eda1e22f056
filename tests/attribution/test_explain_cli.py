"""``cnnlens explain`` and the explain()/methods() contract: outputs, recorded parameters, bad
input with exit code 2 (SPEC §2, §8, §9)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

import cnnlens
from cnnlens import zoo
from cnnlens.cli import main
from cnnlens.errors import CnnlensError

from ._helpers import assert_unchanged, snapshot

OURS = ["saliency", "guided_backprop", "gradcam", "gradcam++", "scorecam", "lime", "rise"]


def test_methods_lists_every_family():
    names = cnnlens.methods()
    assert all(m in names for m in OURS)
    from cnnlens.attribution import method_info

    assert method_info("gradcam").uses_layer and method_info("lime").stochastic and method_info("rise").stochastic
    assert not method_info("saliency").uses_layer


def test_cli_writes_overlays_grid_npz_and_params(tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(["explain", "--model", "mnist_cnn", "--dataset", "mnist", "--limit", "2",
               "--method", "gradcam,gradcam++,rise,lime", "--n-masks", "40", "--num-samples", "30",
               "--segmenter", "slic", "--seed", "3", "--batch-size", "16", "--layer", "features.3",
               "--out", str(out)])
    assert rc == 0
    assert "wrote" in capsys.readouterr().out
    data = zoo.load_dataset("mnist")
    names = data.names[:2]
    for i, name in enumerate(names):
        for m in ("gradcam", "gradcampp", "rise", "lime"):
            pic = Image.open(out / f"{i:04d}_{name}_{m}.png")
            assert pic.size == (28, 28) and pic.mode == "RGB"
    grid = Image.open(out / "grid.png")
    assert grid.size[0] >= 5 * 28 and grid.size[1] >= 2 * 28  # image + 4 method columns, 2 rows
    clf = zoo.load_classifier("mnist_cnn")
    x = data.images[:2]
    with np.load(out / "maps.npz") as npz:
        assert list(npz["names"]) == names
        ref = cnnlens.explain(clf, x, "rise", seed=3, n_masks=40, batch_size=16)
        assert np.allclose(npz["rise"], ref.maps.numpy(), atol=1e-6)
        ref = cnnlens.explain(clf, x, "gradcam", layer="features.3")
        assert np.allclose(npz["gradcam"], ref.maps.numpy(), atol=1e-6)
        assert list(npz["lime__targets"]) == ref.targets.tolist()
    params = json.loads((out / "params.json").read_text())
    lime = params["methods"]["lime"]["params"]
    assert lime["num_samples"] == 30 and lime["segmenter"] == "slic" and lime["seed"] == 3 and "version" in lime
    assert params["methods"]["gradcam"]["params"]["layer"] == "features.3"
    assert "layer" in params["methods"]["rise"]["params"] and params["methods"]["rise"]["params"]["layer"] is None
    assert params["source"]["dataset"] == "mnist"


def test_cli_on_image_files_with_param(tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    images = zoo.load_dataset("mnist").images[:2]
    for i, img in enumerate(images):
        Image.fromarray((img[0].numpy() * 255).astype(np.uint8)).save(folder / f"digit{i}.png")
    out = tmp_path / "o"
    rc = main(["explain", "--model", "mnist_cnn", "--images", str(folder), "--method", "scorecam",
               "--param", "channel_softmax=false", "--target", "3", "--out", str(out)])
    assert rc == 0
    params = json.loads((out / "params.json").read_text())["methods"]["scorecam"]["params"]
    assert params["channel_softmax"] is False and params["target"] == [3, 3]
    assert (out / "0000_digit0_scorecam.png").exists() and (out / "0001_digit1_scorecam.png").exists()


@pytest.mark.parametrize("argv, message", [
    (["--method", "gradcam,nope"], "unknown method 'nope'; available: .*saliency.*rise"),
    (["--method", "gradcam", "--layer", "zzz"], "layer 'zzz' not found; layers with 4-D outputs: .*features.3"),
    (["--method", "saliency", "--target", "12"], "out of range for (10 classes|a 10-class)"),
    (["--method", "saliency", "--layer", "features.3"], "only read by layer methods"),
])
def test_cli_bad_input_exits_2_with_one_line(tmp_path, capsys, argv, message):
    import re

    rc = main(["explain", "--model", "mnist_cnn", "--dataset", "mnist", "--limit", "1", *argv, "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1 and re.search(message, err), err


# The command line no longer checks method options itself (it refused da_pos.iterations, which
# da_pos takes through **params); cnnlens.explain() checks them and names the valid ones.
@pytest.mark.parametrize("param", ["n_masks=5", "saliency.n_masks=5"])
def test_cli_unknown_method_option_exits_2_with_one_line(tmp_path, capsys, param):
    rc = main(["explain", "--model", "mnist_cnn", "--dataset", "mnist", "--limit", "1", "--method", "saliency",
               "--param", param, "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "n_masks" in err and "valid: score" in err, err


def test_explain_bad_input_is_clear_and_leaves_the_model_unchanged():
    clf = zoo.load_classifier("mnist_cnn")
    x = zoo.load_dataset("mnist").images[:2]
    before = snapshot(clf.model)
    with pytest.raises(CnnlensError, match="unknown method 'gradcamm'; available: .*gradcam"):
        cnnlens.explain(clf, x, "gradcamm")
    with pytest.raises(CnnlensError, match="out of range"):
        cnnlens.explain(clf, x, "saliency", target=10)
    with pytest.raises(CnnlensError, match="out of range"):
        cnnlens.explain(clf, x, "rise", target=[1, -1])
    with pytest.raises(CnnlensError, match="3 channels but the model expects 1"):
        cnnlens.explain(clf, x.expand(-1, 3, -1, -1), "gradcam")
    with pytest.raises(CnnlensError, match=r"28, 28.*32, 32|32, 32.*28, 28"):
        cnnlens.explain(clf, torch.rand(2, 1, 32, 32), "lime")
    with pytest.raises(CnnlensError, match="pixel space"):
        cnnlens.explain(clf, x * 255, "saliency")
    assert_unchanged(clf.model, before)


def test_wrong_image_size_for_a_model_without_input_shape():
    from torch import nn

    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 6 * 6, 3)).eval()
    clf = cnnlens.Classifier(net)
    before = snapshot(net)
    assert cnnlens.explain(clf, torch.rand(1, 1, 8, 8), "saliency").maps.shape == (1, 8, 8)
    with pytest.raises(CnnlensError, match=r"cannot take images of shape \(1, 10, 10\)"):
        cnnlens.explain(clf, torch.rand(1, 1, 10, 10), "gradcam")
    assert_unchanged(net, before)


@pytest.mark.parametrize("module", ["gradient", "cam", "lime", "rise", "run", "_util"])
def test_module_docstring_examples(module):
    import doctest
    import importlib

    mod = importlib.import_module(f"cnnlens.attribution.{module}")
    assert doctest.testmod(mod, optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS).failed == 0
