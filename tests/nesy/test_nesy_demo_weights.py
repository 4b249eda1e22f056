"""The demo's NeSy pair (issue 26 item 6): the shipped float16 weights of the sparsity-trained (TS3)
and post-hoc baseline (NE) fashion_vgg on Pullover vs Coat give, in the demo's own code, the
programs and test metrics their runs recorded (experiments/nesy_demo_weights.py)."""
from __future__ import annotations

import importlib.resources
import json

import pytest

from cnnlens.report.demo import DemoConfig, _nesy_sparse_pair

REC = importlib.resources.files("cnnlens").joinpath("weights/nesy_p2.json")


class _Section:
    def __init__(self):
        self.tables, self.pres = [], []

    def text(self, t):
        pass

    def table(self, header, rows, caption=""):
        self.tables.append((header, rows))

    def pre(self, text, caption=""):
        self.pres.append(text)


@pytest.mark.skipif(not REC.is_file(), reason="the demo's NeSy weights are not shipped in this checkout")
def test_shipped_pair_reproduces_the_recorded_runs():
    rec = json.loads(REC.read_text())
    assert {"TS3", "NE"} <= set(rec["models"])
    sec = _Section()
    out = _nesy_sparse_pair(sec, DemoConfig(quick=True), ("accuracy", "fidelity", "size", "n_rules", "no_fire"))
    for name, m in rec["models"].items():
        run = m["run"]
        for key in ("accuracy", "fidelity", "cnn_accuracy", "size", "n_rules", "no_fire"):
            assert out[name][key] == pytest.approx(run[key], abs=0.005), (name, key)
    assert len(sec.tables) == 1 and len(sec.pres) == len(rec["models"])
