"""`cnnlens ablate` (SPEC §4, §8)."""
from __future__ import annotations

import json

from cnnlens.cli import main


def test_ablate_dataset_writes_outputs(tmp_path, capsys):
    out = tmp_path / "da"
    rc = main(["ablate", "--model", "mnist_cnn", "--dataset", "mnist", "--limit", "2", "--iterations", "15",
               "--superpixels", "0", "--rule", "pos", "--seed", "1", "--out", str(out)])
    assert rc == 0
    names = sorted(p.name for p in out.iterdir())
    for kind in ("original", "region", "heatmap"):
        assert sum(n.endswith(f"_{kind}.png") for n in names) == 2
    assert sum(n.endswith("_rule.txt") for n in names) == 2
    summary = json.loads((out / "summary.json").read_text())
    assert summary["mar"]["n"] == 2 and 0 < summary["mar"]["mean"] <= 1
    assert summary["params"]["iterations"] == 15 and summary["params"]["seed"] == 1
    assert (out / "mar.csv").read_text().startswith("index,name,class,mar")
    text = capsys.readouterr().out
    assert "if region P of x is present then x is classified as" in text and "MAR:" in text


def test_ablate_bad_input_exit_2(tmp_path, capsys):
    base = ["ablate", "--model", "mnist_cnn", "--out", str(tmp_path / "o")]
    assert main(base + ["--dataset", "mnist", "--limit", "1", "--fc", "1.5"]) == 2
    assert "fc" in capsys.readouterr().err
    assert main(base) == 2  # neither --images nor --dataset
    assert main(base + ["--images", str(tmp_path / "missing.png")]) == 2
