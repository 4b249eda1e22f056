"""`--out` and `--report` on the command line (hardening issue, items 1 and 4, and the CLI-wide rule):

- a ``--report`` page shows only the files this run wrote, never an earlier run's left in the folder;
- ``--out`` is checked before any work by one helper (:func:`cnnlens.cli.options.check_out`): a file
  where a folder is needed, a folder where a file is needed, a file in the parent path — one line,
  exit 2, naming ``--out`` (never a hidden temp file);
- every CLI failure is one line on stderr and exit 2: ``OSError`` subclasses and argparse usage errors
  too; ``--debug`` still raises.
"""
from __future__ import annotations

import errno
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnlens import CnnlensError
from cnnlens.cli import main
from cnnlens.cli.options import check_out
from cnnlens.report import load_manifest

BOGUS_MODEL = ["--model", "no_such_model_file.pt"]
M = [*BOGUS_MODEL, "--dataset", "mnist"]  # if the model loads first, the message names the model


def _digits(folder: Path, n: int = 2, seed: int = 0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        Image.fromarray((rng.random((28, 28)) * 255).astype(np.uint8)).save(folder / f"d{seed}_{i}.png")
    return folder


def _shown(out: Path) -> set[str]:
    """Every file path the results manifest of ``out`` shows (pictures and captions of text blocks)."""
    shown: set[str] = set()
    for sec in load_manifest(out)["sections"]:
        for b in sec["blocks"]:
            if b["type"] == "image":
                shown.add(b["path"])
            elif b["type"] == "gallery":
                shown.update(it["path"] for it in b["items"])
            elif b["type"] == "pre":
                shown.add(b["caption"])
    return shown


# ------------------------------------------------------------------ item 1: a stale report
def test_explain_report_shows_only_this_runs_files(tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    old = _digits(tmp_path / "old", 3, seed=1)
    assert main(["explain", "--model", "mnist_cnn", "--images", str(old), "--method", "saliency",
                 "--quiet", "--out", str(out)]) == 0
    (out / "notes.md").write_text("# a stray note\n")
    (out / "stray.png").write_bytes((out / "grid.png").read_bytes())
    new = _digits(tmp_path / "new", 1, seed=2)
    assert main(["explain", "--model", "mnist_cnn", "--images", str(new), "--method", "gradcam",
                 "--quiet", "--out", str(out), "--report"]) == 0
    shown = _shown(out)
    assert "grid.png" in shown and "params.json" in shown
    assert any(p.endswith("_gradcam.png") for p in shown), shown
    assert not [p for p in shown if "saliency" in p or p in ("stray.png", "notes.md") or "d1_" in p], shown
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "saliency" not in page and "a stray note" not in page


def test_ablate_report_shows_only_this_runs_files(tmp_path: Path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / "0007_old_region.png").write_bytes(b"\x89PNG stale")  # an earlier run's picture (not even valid)
    (out / "0007_old_rule.txt").write_text("old rule\n")
    imgs = _digits(tmp_path / "imgs", 1)
    assert main(["ablate", "--model", "mnist_cnn", "--images", str(imgs), "--iterations", "3", "--superpixels", "0",
                 "--quiet", "--out", str(out), "--report"]) == 0
    shown = _shown(out)
    assert "summary.json" in shown and any(p.endswith("_region.png") for p in shown)
    assert not [p for p in shown if "0007_old" in p], shown


def test_evaluate_report_leaves_out_an_earlier_runs_results(tmp_path: Path) -> None:
    out = tmp_path / "run"
    base = ["evaluate", "--model", "mnist_cnn", "--dataset", "mnist", "--limit", "2", "--metrics", "ad",
            "--no-random", "--quiet", "--out", str(out)]
    assert main([*base, "--methods", "saliency"]) == 0
    assert main([*base, "--methods", "gradcam", "--report"]) == 0
    shown = _shown(out)
    assert {"results/gradcam.json", "table.md", "table.json"} <= shown and "results/saliency.json" not in shown, shown


def test_represent_report_shows_only_this_runs_files(tmp_path: Path) -> None:
    out = tmp_path / "run"
    (out / "heatmaps").mkdir(parents=True)
    (out / "heatmaps" / "0003_old_ri.png").write_bytes(b"stale")
    (out / "reuse_table.md").write_text("| an earlier evaluation |\n")
    assert main(["represent", "--model", "mnist_cnn", "--reference", "mnist", "--reference-size", "60",
                 "--n-boundaries", "3", "--dataset", "mnist", "--limit", "1", "--top", "2", "--cell", "32",
                 "--quiet", "--out", str(out), "--report"]) == 0
    shown = _shown(out)
    assert "summary.json" in shown and any(p.endswith("_gallery.png") for p in shown), shown
    assert "heatmaps/0003_old_ri.png" not in shown and "reuse_table.md" not in shown, shown


def test_report_from_outputs_never_globs(tmp_path: Path) -> None:
    from cnnlens.report.outputs import report_from_outputs

    (tmp_path / "old.png").write_bytes(b"stale")
    (tmp_path / "old.md").write_text("stale")
    (tmp_path / "table.md").write_text("| a |\n")
    page = report_from_outputs(tmp_path, files=[tmp_path / "table.md"], title="t", command="evaluate",
                               model="m", data="d", params={}, seed=0)
    assert _shown(tmp_path) == {"table.md"} and "stale" not in page.read_text(encoding="utf-8")
    with pytest.raises(CnnlensError, match="outside"):
        report_from_outputs(tmp_path / "sub", files=[tmp_path / "table.md"], title="t", command="c",
                            model="m", data="d", params={}, seed=0)


# ------------------------------------------------------------------ item 4: --out checked first, one line
def _setup(d: Path) -> dict[str, str]:
    (d / "afile").write_text("x")
    (d / "adir").mkdir()
    (d / "t.csv").write_text("a,b,label\n1,0,x\n0,1,y\n1,1,x\n")
    (d / "rules.json").write_text("{}")
    return {"file": str(d / "afile"), "dir": str(d / "adir"), "csv": str(d / "t.csv"), "rules": str(d / "rules.json"),
            "d": str(d)}


OUT_CASES = {
    # a folder target under a file, or a file where a folder is needed
    "explain-out-under-a-file": (["explain", *M, "--out", "{file}/sub"], "is a file, not a folder"),
    "explain-out-a-file": (["explain", *M, "--out", "{file}"], "exists and is not a folder"),
    "evaluate-out-a-file": (["evaluate", *M, "--out", "{file}"], "exists and is not a folder"),
    "ablate-out-a-file": (["ablate", *M, "--out", "{file}"], "exists and is not a folder"),
    "ablate-out-under-a-file": (["ablate", *M, "--out", "{file}/x/y"], "is a file, not a folder"),
    "represent-out-a-file": (["represent", *BOGUS_MODEL, "--reference", "mnist", "--evaluate", "--out", "{file}"],
                             "exists and is not a folder"),
    "nesy-train-out-a-file": (["nesy", "train", *M, "--out", "{file}"], "exists and is not a folder"),
    "demo-out-a-file": (["demo", "--quick", "--out", "{file}"], "exists and is not a folder"),
    # a file target that is a folder, or under a file
    "report-out-a-folder": (["report", "{dir}", "--out", "{dir}"], "is a folder"),
    "report-out-under-a-file": (["report", "{dir}", "--out", "{file}/r.html"], "is a file, not a folder"),
    "fold-train-out-a-folder": (["fold", "train", "--csv", "{csv}", "--label", "label", "--out", "{dir}"], "is a folder"),
    "fold-train-out-under-a-file": (["fold", "train", "--csv", "{csv}", "--label", "label", "--out", "{file}/m.json"],
                                    "is a file, not a folder"),
    "fold-predict-out-a-folder": (["fold", "predict", "--model", "{rules}", "--csv", "{csv}", "--out", "{dir}"], "is a folder"),
    "nesy-extract-out-a-folder": (["nesy", "extract", *M, "--out", "{dir}"], "is a folder"),
    "nesy-label-out-trailing-slash": (["nesy", "label", *M, "--rules", "{rules}", "--out", "{d}/new/"], "names a folder"),
    "nesy-predict-out-a-folder": (["nesy", "predict", *M, "--rules", "{rules}", "--out", "{dir}"], "is a folder"),
    "nesy-justify-out-a-folder": (["nesy", "justify", *M, "--rules", "{rules}", "--out", "{dir}"], "is a folder"),
    "out-empty": (["explain", *M, "--out", ""], "--out is empty"),
}


@pytest.mark.parametrize("case", sorted(OUT_CASES))
def test_bad_out_is_one_line_before_any_work(case, tmp_path: Path, capsys) -> None:
    argv, message = OUT_CASES[case]
    files = _setup(tmp_path)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    assert main([a.format(**files) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and "--out" in err, err
    assert message in err, err
    assert ".tmp" not in err  # never the hidden temp file of an atomic write
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before  # nothing written


def test_check_out_accepts_and_refuses(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    assert check_out(tmp_path / "new" / "deeper", "folder") == tmp_path / "new" / "deeper"
    assert check_out(tmp_path, "folder") == tmp_path
    assert check_out(tmp_path / "f", "file") == tmp_path / "f"
    assert check_out(tmp_path / "a" / "b.json", "file") == tmp_path / "a" / "b.json"
    assert not (tmp_path / "new").exists() and not (tmp_path / "a").exists()  # checking creates nothing
    with pytest.raises(CnnlensError, match="--out .* exists and is not a folder"):
        check_out(tmp_path / "f", "folder")
    with pytest.raises(CnnlensError, match="is a folder"):
        check_out(tmp_path, "file")
    with pytest.raises(CnnlensError, match="--rules-out"):
        check_out(tmp_path / "f" / "x", "file", option="--rules-out")


# ------------------------------------------------------------------ CLI-wide: one line, exit 2
@pytest.mark.parametrize("exc", [
    PermissionError(errno.EACCES, "Permission denied", "/x/y"),
    NotADirectoryError(errno.ENOTDIR, "Not a directory", "/x/y"),
    FileExistsError(errno.EEXIST, "File exists", "/x/y"),
    IsADirectoryError(errno.EISDIR, "Is a directory", "/x/y"),
    OSError(errno.ENOSPC, "No space left on device"),
])
def test_os_errors_are_one_line_and_debug_raises(exc, monkeypatch, capsys) -> None:
    import cnnlens.cli.models as models_cmd

    def boom(kind):
        raise exc

    monkeypatch.setattr(models_cmd, "print_catalog", boom)
    assert main(["models"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("cnnlens models: error: ") and exc.strerror in err, err
    with pytest.raises(type(exc)):
        main(["--debug", "models"])


def test_internal_errors_are_one_line_and_debug_raises(monkeypatch, capsys) -> None:
    import cnnlens.cli.models as models_cmd

    def boom(kind):
        raise TypeError("unsupported operand\nsecond line")

    monkeypatch.setattr(models_cmd, "print_catalog", boom)
    assert main(["models"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "internal error: TypeError: unsupported operand" in err and "--debug" in err, err
    with pytest.raises(TypeError):
        main(["--debug", "models"])


@pytest.mark.parametrize("argv, message", [
    (["explain", "--out", "o", "--bogus"], "unrecognized arguments: --bogus"),
    (["explain"], "the following arguments are required: --out"),
    (["explain", "--out", "o", "--batch-size", "many"], "invalid int value"),
    (["fold", "train", "--csv", "x", "--label", "y", "--heuristic", "nope", "--out", "m.json"], "invalid choice"),
    (["no-such-command"], "invalid choice"),
])
def test_usage_errors_are_one_line(argv, message, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("cnnlens") and "error:" in err and message in err, err
    assert "usage:" not in err and "--help" in err


def test_report_command_into_a_folder_names_no_temp_file(tmp_path: Path, capsys) -> None:
    from cnnlens.report import ReportBuilder

    b = ReportBuilder(tmp_path / "res", title="t")
    b.section("s", "S", model="m", data="d", params={}, seed=0).text("hi")
    b.save()
    (tmp_path / "page").mkdir()
    assert main(["report", str(tmp_path / "res"), "--out", str(tmp_path / "page")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and ".tmp" not in err and "is a folder" in err, err
    assert main(["report", str(tmp_path / "res"), "--out", str(tmp_path / "page" / "r.html")]) == 0
    assert json.loads((tmp_path / "res" / "manifest.json").read_text())["title"] == "t"


def test_atomic_write_into_a_folder_names_the_target_not_the_temp_file(tmp_path: Path) -> None:
    from cnnlens._io import atomic_write_text

    (tmp_path / "d").mkdir()
    with pytest.raises(IsADirectoryError) as exc:
        atomic_write_text(tmp_path / "d", "x")
    assert ".tmp" not in str(exc.value) and str(tmp_path / "d") in str(exc.value)
    assert [p.name for p in tmp_path.iterdir()] == ["d"]  # the temp file is gone
