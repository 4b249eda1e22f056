"""`cnnlens nesy train|extract|predict|justify|label` end to end (SPEC §6, §8)."""
from __future__ import annotations

import json

import numpy as np
import torch
from PIL import Image
from torch import nn

from cnnlens.cli import main
from cnnlens.data.texture_scenes import save_scene_folder, texture_scenes


def test_train_extract_predict_justify(tmp_path, capsys):
    run, rules = tmp_path / "run", tmp_path / "nesy.json"
    assert main(["nesy", "train", "--model", "mnist_cnn", "--dataset", "mnist", "--split", "train",
                 "--limit", "160", "--strategy", "TS3", "--epochs", "1", "--lr", "1e-4", "--k", "3",
                 "--out", str(run)]) == 0
    info = json.loads((run / "training.json").read_text())
    assert info["strategy"] == "TS3" and info["binarization"] == "sigmoid" and len(info["theta"]) == 64
    assert (run / "model.pt").is_file() and (run / "checkpoints" / "last.pt").is_file()
    assert main(["nesy", "extract", "--model", "mnist_cnn", "--trained", str(run), "--dataset", "mnist",
                 "--split", "train", "--limit", "400", "--out", str(rules)]) == 0
    out = capsys.readouterr().out
    assert "target(X," in out and "sigmoid binarization of layer features.4" in out
    assert json.loads(rules.read_text())["binarization"] == "sigmoid"
    assert main(["nesy", "predict", "--model", "mnist_cnn", "--trained", str(run), "--rules", str(rules),
                 "--dataset", "mnist", "--split", "test", "--limit", "50", "--out", str(tmp_path / "p.csv")]) == 0
    lines = (tmp_path / "p.csv").read_text().splitlines()
    assert lines[0] == "image,nesy_prediction,class" and len(lines) == 51
    assert "NeSy accuracy" in capsys.readouterr().out
    assert main(["nesy", "justify", "--model", "mnist_cnn", "--trained", str(run), "--rules", str(rules),
                 "--dataset", "mnist", "--split", "test", "--index", "3", "--json"]) == 0
    obj = json.loads(capsys.readouterr().out)
    assert "tree" in obj and "prediction" in obj


_FACTORY = """
import torch
from torch import nn


def colour_net():
    conv = nn.Conv2d(3, 4, 1)
    return nn.Sequential(conv, nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 4))
"""


def test_label_from_folder_with_masks(tmp_path, capsys, monkeypatch):
    (tmp_path / "nesy_cli_colour.py").write_text(_FACTORY)
    monkeypatch.syspath_prepend(str(tmp_path))
    ds = texture_scenes(24, size=32, seed=4)
    root = save_scene_folder(ds, tmp_path / "scenes")
    conv = nn.Conv2d(3, 4, 1)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([[2.0, -2.0, -2.0], [-2.0, -2.0, 2.0], [0.0, 1.0, 0.0],
                                        [1.0, 0.0, 0.0]]).view(4, 3, 1, 1))
        conv.bias.zero_()
    net = nn.Sequential(conv, nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 4)).eval()
    torch.save(net.state_dict(), tmp_path / "net.pt")
    rules = tmp_path / "nesy.json"
    common = ["--model", "nesy_cli_colour:colour_net", "--weights", str(tmp_path / "net.pt"),
              "--input-shape", "3,32,32"]
    assert main(["nesy", "extract", *common, "--images", str(root), "--binarization", "threshold",
                 "--tail", "0", "--out", str(rules)]) == 0
    capsys.readouterr()
    assert main(["nesy", "label", *common, "--rules", str(rules), "--images", str(root),
                 "--out", str(tmp_path / "labelled.json")]) == 0
    out = capsys.readouterr().out
    labelled = json.loads((tmp_path / "labelled.json").read_text())
    assert labelled["labels"] and all(not v.startswith("f") for v in labelled["labels"].values())
    assert "->" in out
    # masks of the wrong size: a clear one-line error, exit code 2
    bad = root / "masks" / ds.class_names[int(ds.labels[0])] / f"{ds.names[0]}.png"
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(bad)
    assert main(["nesy", "label", *common, "--rules", str(rules), "--images", str(root),
                 "--out", str(tmp_path / "x.json")]) == 2
    assert "different sizes" in capsys.readouterr().err


def test_one_class_folder_is_refused(tmp_path, capsys):
    (tmp_path / "only").mkdir()
    for i in range(3):
        Image.fromarray(np.full((28, 28), 40 * i, np.uint8)).save(tmp_path / "only" / f"{i}.png")
    assert main(["nesy", "extract", "--model", "mnist_cnn", "--images", str(tmp_path), "--out",
                 str(tmp_path / "r.json")]) == 2
    assert "single class" in capsys.readouterr().err


def test_extract_from_a_sparsity_trained_zoo_model_uses_its_training_theta(tmp_path, capsys):
    from cnnlens import zoo

    rules = tmp_path / "nesy.json"
    assert main(["nesy", "extract", "--model", "texture_cnn_ts3", "--dataset", "texture_scenes", "--split", "train",
                 "--limit", "300", "--out", str(rules)]) == 0
    assert "sigmoid binarization of layer 7" in capsys.readouterr().out
    saved = json.loads(rules.read_text())
    assert saved["binarization"] == "sigmoid"
    assert np.allclose(saved["theta"], zoo.nesy_theta("texture_cnn_ts3").tolist())
    assert main(["nesy", "extract", "--model", "texture_cnn", "--dataset", "texture_scenes", "--split", "train",
                 "--limit", "300", "--out", str(rules)]) == 0
    assert "threshold binarization of layer 7" in capsys.readouterr().out
