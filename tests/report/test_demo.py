"""`cnnlens demo --quick` end to end (issue 15): every section present, the page loads in
headless Chromium without errors and every image decodes; `cnnlens report` rebuilds the same
page; `--report` on a user image folder escapes a hostile class name."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnlens.cli import main
from cnnlens.report import render

from .test_report import browser_check

SECTIONS = ["photos", "faces", "metrics", "sanity", "ablation", "representative", "nesy"]


@pytest.fixture(scope="module")
def quick_demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    proc = subprocess.run([sys.executable, "-m", "cnnlens.cli", "demo", "--quick", "--out", str(out), "--no-progress"],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"report: {(out / 'report.html').resolve()}" in proc.stdout
    return out


def test_quick_demo_report_in_chromium(quick_demo: Path) -> None:
    page = quick_demo / "report.html"
    res = browser_check(page, quick_demo / "screenshot.png")
    assert res["sections"] == SECTIONS
    assert res["images"] >= 7 and res["bad"] == []
    # heatmap grids: the method names in a header row above their columns (issue 27 item 5)
    grids = res["grids"]
    assert [g["columns"][:3] for g in grids[:2]] == [["image", "saliency", "guided_backprop"]] * 2
    assert grids[2]["columns"][:3] == ["image", "Pos-R region kept", "Pos-R cam"]
    assert all(g["placed"] for g in grids), grids
    assert res["errors"] == [] and not [c for c in res["console"] if "rror" in c]
    assert (quick_demo / "screenshot.png").stat().st_size > 10_000
    # raw results beside the page
    for rel in ("photos/maps.npz", "metrics/table.csv", "metrics/table.json", "ablation/ablation.npz",
                "representative/interpretation.json", "nesy/mnist_rules.lp", "sanity/cascading.json",
                "manifest.json"):
        assert (quick_demo / rel).is_file(), rel
    text = page.read_text(encoding="utf-8")
    for needle in ("IAUC ↑", "DAUC ↓", "is classified as", "target(X,", "seed", "Sanity checks", "guided_backprop"):
        assert needle in text


def test_report_command_rebuilds_the_same_page(quick_demo: Path, tmp_path: Path) -> None:
    again = tmp_path / "again.html"
    assert main(["report", str(quick_demo), "--out", str(again)]) == 0
    assert again.read_text(encoding="utf-8") == (quick_demo / "report.html").read_text(encoding="utf-8")


def test_explain_report_escapes_hostile_class_names(tmp_path: Path) -> None:
    evil = "<img src=x onerror=alert(1)>"  # a folder name cannot hold "/", so no </script>
    folder = tmp_path / "imgs" / evil
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(2):
        Image.fromarray((rng.random((28, 28)) * 255).astype(np.uint8)).save(folder / f"d{i}.png")
    out = tmp_path / "out"
    assert main(["explain", "--model", "mnist_cnn", "--images", str(tmp_path / "imgs"), "--method", "gradcam",
                 "--out", str(out), "--report"]) == 0
    page = (out / "report.html").read_text(encoding="utf-8")
    assert evil not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    res = browser_check(out / "report.html")
    assert res["scripts"] == 1 and res["bad"] == [] and res["images"] >= 3
    assert render(out) == page
