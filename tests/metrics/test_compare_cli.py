"""compare() table and the `cnnlens evaluate` command (SPEC §3 comparison, §8)."""
import dataclasses
import json

import pytest
import torch
from torch import nn

import cnnlens
from cnnlens import Explanation
from cnnlens.cli import main
from cnnlens.errors import CnnlensError
from cnnlens.metrics import ComparisonTable


def _clf():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(),
                        nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(16, 3)).eval()
    return cnnlens.Classifier(net)


def test_compare_table_outputs(tmp_path):
    clf = _clf()
    x = torch.rand(3, 1, 10, 10)
    own = Explanation(maps=torch.rand(3, 10, 10), targets=clf.predict(x), method="mine")
    table = cnnlens.compare(clf, x, methods=["saliency", ("cam", {"method": "gradcam", "layer": "2"}), own],
                            metrics=["iauc", "dauc", "ic", "dc", "ad", "iic"], protocol="gomez")
    assert table.rows == ["saliency", "cam", "mine", "random"]
    md = table.to_markdown()
    assert md.splitlines()[0] == "| method | IAUC ↑ | DAUC ↓ | IC ↑ | DC ↑ | AD ↓ | IIC ↑ |"
    assert len(md.strip().splitlines()) == 2 + 4 + 2
    r = table.results["saliency"]["dauc"]
    assert f"{r.mean:.3f} ± {r.std:.3f}" in md.splitlines()[2]
    assert r.per_image.shape == (3,) and r.params["protocol"] == "gomez"
    # Grad-CAM is scored on its native layer map under the gomez preset
    assert table.results["cam"]["dauc"].params["res"] == [10, 10]
    assert table.results["cam"]["iauc"].params["explain_params"]["layer"] == "2"
    csv_text = table.to_csv(tmp_path / "t.csv")
    assert csv_text.splitlines()[0].startswith("method,iauc_mean,iauc_std,dauc_mean")
    assert len(table.to_csv(per_image=True).splitlines()) == 1 + 4 * 6 * 3
    table.to_json(tmp_path / "t.json")
    back = ComparisonTable.from_dict(json.loads((tmp_path / "t.json").read_text()))
    assert back.rows == table.rows
    assert back.value("mine", "ic") == pytest.approx(table.value("mine", "ic"))
    torch.testing.assert_close(back.results["mine"]["ad"].per_image, table.results["mine"]["ad"].per_image)
    table.plot_curves(tmp_path / "c.png")
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"
    # the random row is the same for every method list (seeded)
    t2 = cnnlens.compare(clf, x, methods=[own], metrics=["dauc"], protocol="gomez")
    torch.testing.assert_close(t2.results["random"]["dauc"].per_image, table.results["random"]["dauc"].per_image)


def test_compare_bad_input():
    clf = _clf()
    x = torch.rand(2, 1, 10, 10)
    with pytest.raises(CnnlensError, match="unknown method 'nope'"):
        cnnlens.compare(clf, x, methods=["nope"])
    with pytest.raises(CnnlensError, match="unknown metric"):
        cnnlens.compare(clf, x, methods=["saliency"], metrics=["auc"])
    with pytest.raises(CnnlensError, match="duplicate"):
        cnnlens.compare(clf, x, methods=["saliency", "saliency"])
    with pytest.raises(CnnlensError, match="unknown protocol"):
        cnnlens.compare(clf, x, methods=["saliency"], protocol="x")


@pytest.mark.parametrize("model,dataset", [("mnist_cnn", "mnist"), ("onet_face", "lfw_faces")])
def test_cli_evaluate_writes_table_and_resumes(tmp_path, capsys, model, dataset):
    pytest.importorskip("cnnlens.zoo")
    out = tmp_path / "ev"
    args = ["evaluate", "--model", model, "--dataset", dataset, "--n", "3", "--step", "25", "--quiet",
            "--methods", "saliency,gradcam,deeplift", "--out", str(out)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "| method | IAUC ↑ | DAUC ↓ | IC ↑ | DC ↑ | AD ↓ | IIC ↑ |" in printed
    for name in ("table.md", "table.csv", "per_image.csv", "table.json", "curves.png"):
        assert (out / name).is_file()
    data = json.loads((out / "table.json").read_text())
    assert list(data["results"]) == ["saliency", "gradcam", "deeplift", "random"]
    assert data["params"]["n_images"] == 3 and data["params"]["source"]["dataset"] == dataset
    stamp = (out / "results" / "gradcam.json").stat().st_mtime_ns
    # a re-run with the same settings reuses every finished method; new settings recompute
    assert main(args) == 0
    assert "reusing finished results of saliency, gradcam, deeplift, random" in capsys.readouterr().out
    assert (out / "results" / "gradcam.json").stat().st_mtime_ns == stamp
    assert main(args[:-2] + ["--protocol", "gomez", "--out", str(out)]) == 0
    assert "reusing" not in capsys.readouterr().out
    assert json.loads((out / "table.json").read_text())["params"]["protocol"] == "gomez"


def test_cli_evaluate_bad_usage(tmp_path, capsys):
    base = ["evaluate", "--model", "mnist_cnn", "--out", str(tmp_path / "o"), "--quiet"]
    assert main(base) == 2
    assert "exactly one of --dataset" in capsys.readouterr().err
    assert main(base + ["--dataset", "mnist", "--metrics", "auc"]) == 2
    assert "unknown metric 'auc'" in capsys.readouterr().err
    assert main(base + ["--dataset", "mnist", "--methods", "saliency", "--param", "gradcam.layer=x"]) == 2
    assert "not in --methods" in capsys.readouterr().err
    assert main(base + ["--dataset", "mnist", "--n", "0"]) == 2


# ---------------------------------------------------------------- hardening (items 5, 6)
def test_compare_and_evaluate_refuse_silently_wrong_input():
    clf = _clf()
    x = torch.rand(2, 1, 10, 10)
    maps = torch.rand(2, 10, 10)
    with pytest.raises(CnnlensError, match="methods is empty"):
        cnnlens.compare(clf, x, methods=[], metrics=["ad"])
    with pytest.raises(CnnlensError, match="metrics is empty"):
        cnnlens.compare(clf, x, methods=["saliency"], metrics=[])
    with pytest.raises(CnnlensError, match=r"method_params has entries for 'gradcampp', not among the methods run by name: gradcam"):
        cnnlens.compare(clf, x, methods=["gradcam"], metrics=["ad"], method_params={"gradcampp": {"relu": False}})
    for call in (lambda: cnnlens.evaluate(clf, x, maps, metrics=["ad"], target=1.5),
                 lambda: cnnlens.compare(clf, x, methods=["saliency"], metrics=["ad"], target=[1.5, 0])):
        with pytest.raises(CnnlensError, match="whole class indices"):
            call()
    with pytest.raises(CnnlensError, match="keep must be a number in"):
        cnnlens.evaluate(clf, x, maps, metrics=["ad"], keep=1.5)  # mode="soft": still a mistake
    with pytest.raises(CnnlensError, match="keep must be a number in"):
        cnnlens.metrics.average_drop_increase(clf, x, maps, keep=float("nan"))
    with pytest.raises(CnnlensError, match="clip must be True or False"):
        cnnlens.evaluate(clf, x, maps, metrics=["ad"], clip="no")
    with pytest.raises(CnnlensError, match=r"labels \[99\] out of range for a 3-class model"):
        cnnlens.evaluate(clf, x, maps, metrics=["insertion_game"], labels=[99, 0])
    with pytest.raises(CnnlensError, match="labels must be whole class indices"):
        cnnlens.metrics.insertion_game(clf, x, maps, labels=[0.5, 1])
    # unlabelled (-1) still means agreement
    assert cnnlens.metrics.insertion_game(clf, x, maps, labels=[-1, -1]).measure == "agreement"


def test_compare_done_rows_are_checked():
    clf = _clf()
    x = torch.rand(2, 1, 10, 10)
    full = cnnlens.compare(clf, x, methods=["saliency"], metrics=["dauc", "ad"], random_baseline=False)
    good = full.results["saliency"]
    # a row with every metric asked is reused as is
    again = cnnlens.compare(clf, x, methods=["saliency"], metrics=["dauc", "ad"], random_baseline=False,
                            done={"saliency": good})
    assert again.results["saliency"] is not good and again.results["saliency"]["ad"] is good["ad"]
    for bad, why in (({"dauc": good["dauc"]}, "lacks ad"), ({"dauc": good["dauc"], "ad": 0.5}, "lacks ad"),
                     ("oops", "not a dict"),
                     ({"dauc": good["dauc"], "ad": dataclasses.replace(good["ad"], per_image=torch.zeros(5))},
                      "one value per image")):
        with pytest.warns(RuntimeWarning, match=f"done row 'saliency' .*{why}.*recomputing it"):
            t = cnnlens.compare(clf, x, methods=["saliency"], metrics=["dauc", "ad"], random_baseline=False,
                                done={"saliency": bad})
        assert t.value("saliency", "ad") == pytest.approx(full.value("saliency", "ad"))


def _run(out, clf, x):
    from cnnlens.metrics.run import run_evaluate

    return run_evaluate(clf, x, None, out, methods=["saliency"], metrics=["dauc", "ad"], protocol="rise", seed=0,
                        batch_size=8, method_params={}, evaluate_params={"step": 25}, source={"test": 1},
                        random_baseline=False, progress=False)


@pytest.mark.parametrize("damage", ["no-results", "results-a-list", "result-not-a-dict", "per-image-words",
                                    "mean-a-dict", "missing-metric", "not-json", "not-utf8", "a-list"])
def test_damaged_results_file_is_recomputed_with_a_warning(damage, tmp_path, capsys):
    clf = _clf()
    x = torch.rand(2, 1, 10, 10)
    out = tmp_path / "ev"
    first = _run(out, clf, x)
    path = out / "results" / "saliency.json"
    stored = json.loads(path.read_text())
    res = stored["results"]
    if damage == "no-results":
        del stored["results"]
    elif damage == "results-a-list":
        stored["results"] = [1, 2]
    elif damage == "result-not-a-dict":
        res["ad"] = 3
    elif damage == "per-image-words":
        res["ad"]["per_image"] = ["a", "b"]
    elif damage == "mean-a-dict":
        res["ad"]["mean"] = {"x": 1}
    elif damage == "missing-metric":
        del res["ad"]
    elif damage == "a-list":
        stored = [stored]
    text = json.dumps(stored)
    if damage == "not-json":
        text = text[:40]
    path.write_bytes(b"\xff\xfe" + text.encode() if damage == "not-utf8" else text.encode())
    if damage == "a-list":  # not a results file of these settings: recomputed silently
        again = _run(out, clf, x)
    else:
        with pytest.warns(RuntimeWarning, match="recomputing"):
            again = _run(out, clf, x)
    assert again.value("saliency", "ad") == pytest.approx(first.value("saliency", "ad"))
    assert json.loads(path.read_text())["results"]["ad"]["mean"] == pytest.approx(first.value("saliency", "ad"))
