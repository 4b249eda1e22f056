"""The NESY tables in EXPERIMENTS.md recompute from the committed results files (issue 26):
every table row experiments/nesy_report.py derives from them appears verbatim in EXPERIMENTS.md,
and every run records its epochs, lr schedule, stopping epoch and code version."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import load_script

ROOT = Path(__file__).resolve().parents[2]
RES = ROOT / "experiments" / "results"


def _report():
    return load_script("experiments", "nesy_report")


rep = _report()
DOC = (ROOT / "EXPERIMENTS.md").read_text()


def _rows(md: str) -> list[str]:
    return [line for line in md.splitlines() if line.startswith("|") and not line.startswith("|---")]


def _load(name: str) -> dict:
    return json.loads((RES / name).read_text())


@pytest.mark.parametrize("block", sorted(rep.BLOCKS))
def test_experiments_md_blocks_recompute(block):
    """Each <!-- nesy26:NAME --> block of EXPERIMENTS.md equals what nesy_report makes from the
    committed results files (python experiments/nesy_report.py --update-md EXPERIMENTS.md)."""
    start, end = f"<!-- nesy26:{block} -->\n", f"<!-- /nesy26:{block} -->"
    if start not in DOC:
        pytest.skip(f"EXPERIMENTS.md has no {block} block")
    body = DOC.split(start, 1)[1].split(end, 1)[0]
    assert body.strip() == rep.BLOCKS[block]().strip()


@pytest.mark.parametrize("name", ["nesy_conv/results.json", "nesy/results_fixed_5ep.json"])
def test_every_run_records_its_schedule(name):
    if not (RES / name).exists():
        pytest.skip(f"{name} not committed yet")
    for r in _load(name)["runs"]:
        s = r["settings"]
        assert r["code_version"] and r["epochs_run"] == len(r["history"]) >= 1
        assert {"epochs", "lr", "lr_factor", "lr_patience", "patience", "ce_epochs"} <= set(s)
        assert all("lr" in h and "val_loss" in h for h in r["history"])


def test_paired_ts3_minus_ne_on_a_fixture():
    """TS3 − NE is paired by seed; a seed only one strategy has is left out; the pooled interval is
    the t interval over every pair."""
    from scipy import stats

    def run(subset, strategy, seed, acc, size):
        return {"subset": subset, "strategy": strategy, "seed": seed, "accuracy": acc, "size": size}

    res = {"runs": [run("A", "TS3", 0, 0.80, 10), run("A", "NE", 0, 0.70, 40), run("A", "TS3", 1, 0.90, 20),
                    run("A", "NE", 1, 0.90, 20), run("A", "TS3", 2, 0.5, 1),  # seed 2: no NE run
                    run("B", "TS3", 0, 0.60, 5), run("B", "NE", 0, 0.65, 5)]}
    (line,) = rep.paired_lines(res, ["A", "B"])
    assert "A: +5.0 points" in line and "(seeds 0, 1)" in line and "size × 0.50" in line
    assert "B: -5.0 points (one seed, no interval)" in line
    d = [10.0, 0.0, -5.0]
    h = stats.t.ppf(0.975, 2) * stats.tstd(d) / 3 ** 0.5
    assert f"N = 3 pairs): {sum(d) / 3:+.1f} points [{sum(d) / 3 - h:+.1f}, {sum(d) / 3 + h:+.1f}]" in line
