"""The `cnnlens` command line: predict / models / datasets, exit codes and one-line errors."""
import re
import subprocess
import sys
from pathlib import Path

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
    assert len([ln for ln in lines if ln.strip()[:2] in {f"{i}." for i in range(1, 6)}]) == 5
    probs = [float(ln.split()[-1]) for ln in lines[1:6]]
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


_RP = ["represent", "--model", "mnist_cnn", "--reference", "mnist", "--reference-size", "50", "--n-boundaries", "5",
       "--dataset", "mnist", "--limit", "2", "--quiet", "--out", "OUT"]


@pytest.mark.parametrize(
    "argv, message",
    [  # second hostile review (issue 22): each one an internal error, an out-of-memory kill or ignored
        ([*_RP, "--cell", "0"], r"--cell must be an integer in \[16, 1024\]"),
        ([*_RP, "--cell", "100000"], r"--cell must be an integer in \[16, 1024\]"),  # was killed for memory
        ([*_RP, "--seeds", "2", "--n-unseen", "3"], r"--seeds, --n-unseen: option\(s\) of the reuse evaluation; add --evaluate"),
        (["predict", "--model", "mnist_cnn", "--split", "test", "PNG"], "--split test is a split of --dataset"),
        (["explain", "--model", "mnist_cnn", "--method", "gradcam,gradcam", "--out", "OUT", "PNG"],
         "--method names 'gradcam' more than once"),
    ],
)
def test_review_cases_exit_2_with_one_line(argv, message, tmp_path, capsys):
    Image.new("L", (28, 28)).save(tmp_path / "a.png")
    argv = [str(tmp_path / "a.png") if a == "PNG" else (str(tmp_path / "out") if a == "OUT" else a) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert re.search(message, err), err
    assert err.count("\n") == 1 and err.startswith(f"cnnlens {argv[0]}: error:")
    assert not (tmp_path / "out").exists()  # refused before any work


def test_represent_evaluate_options_still_work_with_evaluate(tmp_path, capsys):
    assert main([*_RP[:-1], str(tmp_path / "r"), "--evaluate", "--seeds", "1", "--per-class", "5", "--n-unseen", "4"]) == 0
    assert "seed" in capsys.readouterr().out


def test_debug_flag_shows_traceback(tmp_path):
    text = tmp_path / "notes.png"
    text.write_text("x")
    from cnnlens.errors import ImageReadError

    with pytest.raises(ImageReadError):
        main(["--debug", "predict", str(text)])


# --- user models from files (SPEC §1 "Model files") ---------------------------------------

torch = pytest.importorskip("torch")


def _tiny_net():
    from torch import nn

    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3)).eval()


def test_user_model_forms(photo_files, tmp_path, capsys):
    tv = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    net = tv.models.resnet18(weights=None, num_classes=1000).eval()
    torch.save(net.state_dict(), tmp_path / "r18.pth")
    names = tmp_path / "names.txt"
    names.write_text("\n".join(f"class{i}" for i in range(1000)))
    common = ["--mean", "0.485,0.456,0.406", "--std", "0.229,0.224,0.225", "--input-shape", "3,64,64",
              "--class-names", str(names), "--top", "2", str(photo_files / "chelsea.png")]
    # package.module:factory + a weights_only state dict: a real torchvision architecture
    assert main(["predict", "--model", "torchvision.models:resnet18", "--weights", str(tmp_path / "r18.pth"), *common]) == 0
    factory_out = capsys.readouterr().out
    assert factory_out.splitlines()[1].split()[1].startswith("class")
    # TorchScript of the same network gives the same answer
    torch.jit.save(torch.jit.script(net), tmp_path / "r18.ts")
    assert main(["predict", "--model", str(tmp_path / "r18.ts"), *common]) == 0
    assert capsys.readouterr().out == factory_out
    # a pickled module is refused unless trusted
    torch.save(net, tmp_path / "r18_pickled.pt")
    assert main(["predict", "--model", str(tmp_path / "r18_pickled.pt"), *common]) == 2
    assert "--trust-pickle" in capsys.readouterr().err
    assert main(["predict", "--model", str(tmp_path / "r18_pickled.pt"), "--trust-pickle", *common]) == 0
    assert capsys.readouterr().out == factory_out


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--model", "torchvision.models:no_such_net"], "has no callable 'no_such_net'"),
        (["--model", "no_such_package_xyz:make"], "cannot import 'no_such_package_xyz'"),
        (["--model", "STATE"], "holds a state dict, not a model"),
        (["--model", "WRONGW"], "do not fit"),
        (["--model", "mobilenet_v2_imagenet", "--mean", "0.5"], "--mean is for user models"),
        (["--model", "mobilenet_v2_imagenet", "--feature-layer", "features.99"], "feature_layer 'features.99' not found"),
    ],
)
def test_user_model_errors(extra, message, photo_files, tmp_path, capsys):
    torch.save(_tiny_net().state_dict(), tmp_path / "tiny.pth")
    extra = [str(tmp_path / "tiny.pth") if a == "STATE" else a for a in extra]
    if "WRONGW" in extra:
        extra = ["--model", "torchvision.models:resnet18", "--weights", str(tmp_path / "tiny.pth")]
    assert main(["predict", *extra, str(photo_files / "chelsea.png")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
