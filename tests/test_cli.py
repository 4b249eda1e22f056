"""The `cnnlens` command line: predict / models / datasets, exit codes and one-line errors."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnlens.cli import main

skimage_data = pytest.importorskip("skimage.data")


@pytest.fixture(scope="module")
def photo_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("photos")
    Image.fromarray(skimage_data.chelsea()).save(d / "chelsea.png")
    Image.fromarray(skimage_data.coffee()).save(d / "coffee.jpg")
    return d


def _cnnlens_exe():
    exe = Path(sys.executable).with_name("cnnlens")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "cnnlens.cli"]


def test_installed_command_predicts_egyptian_cat_first(photo_files):
    out = subprocess.run(
        _cnnlens_exe() + ["predict", "--model", "mobilenet_v2_imagenet", str(photo_files / "chelsea.png")],
        capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "chelsea.png"
    assert lines[1].split()[:3] == ["1.", "Egyptian", "cat"]
    assert len([l for l in lines if l.strip()[:2] in {f"{i}." for i in range(1, 6)}]) == 5
    probs = [float(l.split()[-1]) for l in lines[1:6]]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1.0001


def test_predict_folder_and_top(photo_files, capsys):
    assert main(["predict", "--images", str(photo_files), "--top", "1"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [out[0], out[1], out[2], out[3]] and len(out) == 4
    assert out[0] == "chelsea.png" and "Egyptian cat" in out[1]
    assert out[2] == "coffee.jpg" and "espresso" in out[3]


def test_predict_dataset_prints_accuracy(capsys):
    assert main(["predict", "--model", "onet_face", "--dataset", "lfw_faces", "--top", "1"]) == 0
    last = capsys.readouterr().out.splitlines()[-1]
    assert last.startswith("top-1 accuracy on 200 labelled images:")
    assert float(last.split()[-1].rstrip("%")) >= 99.0


def test_models_and_datasets_list_everything(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for name in ("mobilenet_v2_imagenet", "onet_face", "rnet_face", "mnist_cnn"):
        assert name in out
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    for name in ("photos", "lfw_faces", "mnist", "fashion_mnist"):
        assert name in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["predict", "TEXTFILE"], "cannot read image"),
        (["predict", "--model", "no_such_model", "X"], "no_such_model"),
        (["predict"], "give exactly one of"),
        (["predict", "--dataset", "photos", "--top", "0"], "--top must be >= 1"),
        (["predict", "--images", "/nonexistent/dir"], "not a folder"),
        (["predict", "--dataset", "mnist", "--split", "nope", "--model", "mnist_cnn"], "nope"),
    ],
)
def test_bad_input_exits_2_with_one_line(argv, message, tmp_path, capsys):
    text = tmp_path / "notes.png"
    text.write_text("this is a text file")
    argv = [str(text) if a == "TEXTFILE" else (str(text) if a == "X" else a) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1 and err.startswith("cnnlens predict: error:")


def test_debug_flag_shows_traceback(tmp_path):
    text = tmp_path / "notes.png"
    text.write_text("x")
    from cnnlens.errors import ImageReadError

    with pytest.raises(ImageReadError):
        main(["--debug", "predict", str(text)])
