"""RI Table 1 done the paper's way (experiments/ri_table1.py, issue 25): the committed per-unit
files recompute every number of the table in EXPERIMENTS.md (no model runs), the draw layout,
the statistics on a hand-made fixture, and the ACE row's whole-segment keep masks."""
from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "experiments" / "results" / "ri_table1"


def _load():
    if "ri_table1" in sys.modules:
        return sys.modules["ri_table1"]
    spec = importlib.util.spec_from_file_location("ri_table1", ROOT / "experiments" / "ri_table1.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["ri_table1"] = mod
    spec.loader.exec_module(mod)
    return mod


t1 = _load()


# ------------------------------------------------------------------------------------ draws
def test_cyclic_windows_least_overlap() -> None:
    w = t1.windows(6000, 2500)
    counts = np.bincount(np.concatenate(w), minlength=6000)
    assert set(np.unique(counts)) == {2, 3}  # each image in ⌊12500/6000⌋ or ⌈·⌉ draws
    ov = t1.overlaps(w)
    assert ov["max"] == pytest.approx(0.52) and ov["min"] == pytest.approx(0.04)
    assert ov["mean"] == pytest.approx(0.28)  # the least possible mean pairwise overlap


def test_draw_indices_per_class_and_deterministic() -> None:
    labels = np.repeat([0, 1], [6000, 5000])
    a = t1.draw_indices(labels, 2500, 1, 0)
    assert np.array_equal(a, t1.draw_indices(labels, 2500, 1, 0))
    assert np.bincount(labels[a]).tolist() == [2500, 2500]
    assert not np.array_equal(a, t1.draw_indices(labels, 2500, 2, 0))
    s = t1.unseen_indices(2000, 1000, 0, 0)
    assert s.size == 1000 and np.unique(s).size == 1000


# ------------------------------------------------------------------------------------ stats
def _unit(task, method, seed, ad, ai, c="01", assigned=(0, 1), centre_cls=(0, 1), covered=None):
    settings = {k: [int(round(t1.AD_SCALE * v)) for v in ad] for k in t1.SETTINGS}
    bits = {k: "".join("1" if v else "0" for v in ai) for k in t1.SETTINGS}
    extra = {"covered": covered} if covered is not None else {}
    return {"task": task, "method": method, "seed": seed, "AD": settings, "AI": bits, "c": c,
            "assigned": list(assigned), "centre_cls": list(centre_cls), "flip_keep20": "10", "extra": extra}


def test_table_stats_on_fixture() -> None:
    units = [
        _unit("tk", "ri", 0, [0.1, 0.3], [1, 0], covered="11"), _unit("tk", "ri", 1, [0.2, 0.2], [0, 0], covered="10"),
        _unit("tk", "gradcam", 0, [0.3, 0.5], [0, 0]), _unit("tk", "gradcam", 1, [0.4, 0.4], [1, 1]),
        _unit("tk", "scorecam", 0, [0.2, 0.2], [0, 1], assigned=(1, 1)),
        _unit("tk", "scorecam", 1, [0.1, 0.5], [0, 0], assigned=(1, 1)),
    ]
    s = t1.table_stats(units, n_boot=200)["tasks"]["tk"]
    ri = s["methods"]["ri"]["settings"]["keep20"]
    assert ri["mAD_per_seed"] == pytest.approx([20.0, 20.0]) and ri["mAD"] == pytest.approx(20.0)
    assert ri["mAD_std"] == pytest.approx(0.0)
    assert ri["mAI_per_seed"] == pytest.approx([50.0, 0.0]) and ri["mAI_std"] == pytest.approx(np.std([50, 0], ddof=1))
    assert s["methods"]["ri"]["coverage"] == pytest.approx(75.0)
    assert s["methods"]["ri"]["flip_keep20"] == pytest.approx(50.0)
    assert s["methods"]["scorecam"]["mismatch"] == pytest.approx(50.0)  # image 0 (c=0) reuses a class-1 centre
    p = s["pairs"]["keep20"]
    assert p["best"] == "scorecam"  # 25 % < Grad-CAM 40 %
    assert p["per_seed_diff"] == pytest.approx([0.0, -10.0]) and p["mean_diff"] == pytest.approx(-5.0)
    assert p["ri_wins"] == 1 and p["ci"][0] <= -5.0 <= p["ci"][1]
    md = t1.table_markdown({"tasks": {"tk": s}})
    assert "| tk | RI | 2 | 20.00 ± 0.00 | 25.00 ± 35.36 |" in md
    assert "| tk | keep20 | Score-CAM | 2 | -5.00 |" in md


def test_ace_pair_on_its_seeds_and_one_run_rows() -> None:
    """ACE (here one seed) is paired with RI on the seeds it has; a one-run row shows no std."""
    units = [_unit("tk", "ri", 0, [0.1, 0.3], [1, 0], covered="11"), _unit("tk", "ri", 1, [0.2, 0.2], [0, 0], covered="11"),
             _unit("tk", "gradcam", 0, [0.1, 0.1], [0, 0]), _unit("tk", "gradcam", 1, [0.1, 0.1], [0, 0]),
             _unit("tk", "ace", 0, [0.6, 0.4], [0, 0])]
    units[-1]["extra"] = {"kept_share_keep10": [0.0, 0.12], "kept_share_keep20": [0.0, 0.12],
                          "kept_share_keep40": [0.0, 0.3]}
    s = t1.table_stats(units, n_boot=200)["tasks"]["tk"]
    kept = s["methods"]["ace"]["kept"]
    assert kept["keep10"] == pytest.approx({"mean": 6.0, "empty": 50.0, "over_p": 50.0})
    assert kept["keep20"] == pytest.approx({"mean": 6.0, "empty": 50.0, "over_p": 0.0})
    assert kept["keep40"]["mean"] == pytest.approx(15.0) and "kept" not in s["methods"]["ri"]
    assert s["pairs"]["keep20"]["best"] == "gradcam"
    pa = s["pairs_ace"]["keep20"]
    assert pa["seeds"] == [0] and pa["per_seed_diff"] == pytest.approx([-30.0]) and pa["ri_wins"] == 1
    assert pa["ci"][0] <= -30.0 <= pa["ci"][1]
    md = t1.table_markdown({"tasks": {"tk": s}})
    assert "| tk | ACE | 1 | 50.00 (1 run) | 0.00 (1 run) |" in md
    assert "| tk | keep20 | ACE | 1 | -30.00 |" in md
    assert "| tk | 6.0 / 50.0 / 50.0 | 6.0 / 50.0 / 0.0 | 15.0 / 50.0 / 0.0 |" in md


# ------------------------------------------------------------------------------------ committed results
def _units():
    units = t1.load_units(RESULTS)
    if not units:
        pytest.fail(f"no per-unit files under {RESULTS}")
    return units


def test_committed_units_recompute_table() -> None:
    stored = json.loads((RESULTS / "table.json").read_text())
    fresh = json.loads(json.dumps(t1.table_stats(_units(), black=t1.load_black(RESULTS))))
    _close(fresh, stored)
    md = (RESULTS / "table.md").read_text()
    assert md == t1.table_markdown(fresh)


def _close(a, b, path="") -> bool:
    if isinstance(a, dict):
        assert set(a) == set(b), path
        return all(_close(a[k], b[k], f"{path}.{k}") for k in a)
    if isinstance(a, list):
        assert len(a) == len(b), path
        return all(_close(x, y, f"{path}[]") for x, y in zip(a, b))
    if isinstance(a, float):
        assert a == pytest.approx(b, abs=1e-9), path
        return True
    assert a == b, path
    return True


def test_experiments_md_holds_the_table() -> None:
    text = (ROOT / "EXPERIMENTS.md").read_text()
    for name in ("table.md", "boundaries.md", "fills.md"):
        for line in (RESULTS / name).read_text().splitlines():
            if line.startswith("|"):
                assert line in text, (name, line)


def test_units_are_complete_and_consistent() -> None:
    for u in _units():
        n = len(u["c"])
        assert n == u["sizes"]["S"] == len(u["assigned"]) == len(u["flip_keep20"])
        for k in t1.SETTINGS:
            assert len(u["AD"][k]) == n == len(u["AI"][k])
            assert all(0 <= v <= t1.AD_SCALE for v in u["AD"][k])
        assert u["sizes"]["Q"] == 50 and u["sizes"]["V"] == 10 * len(u["classes"])
        assert u["fill"].startswith("black")
        if u["method"] == "ri":
            assert len(u["extra"]["covered"]) == n


def test_boundary_table_recomputes() -> None:
    stored = json.loads((RESULTS / "boundaries.json").read_text())
    _close(json.loads(json.dumps(t1.boundary_stats(_units()))), stored["tasks"])
    two_class = [t for t, v in stored["tasks"].items() if t != "fashion4"]
    for t in two_class:  # C = 2: every Eq. 2 boundary separates the two classes
        assert np.mean(stored["tasks"][t]["share_Q_sep"]) == pytest.approx(1.0)


# ------------------------------------------------------------------------------------ ACE unit
def test_ace_unit_scores_whole_segment_keep_masks() -> None:
    """The ACE row scores the reuse object's keep masks (whole segments until > p of the pixels,
    the rest black) — not a top-p of the heatmap — and its flip column is the masked image's class."""
    from types import SimpleNamespace

    import torch
    from torch import nn

    import cnnlens
    from cnnlens.metrics import average_drop_increase

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 8 * 8, 2)).eval()
    clf = cnnlens.Classifier(net, feature_layer="1")
    x = torch.rand(3, 1, 8, 8)
    c = clf.predict(x)
    left = torch.zeros(3, 8, 8, dtype=torch.bool)
    left[:, :, :4] = True  # one segment of half the image: the keep-20 % mask keeps all of it
    asked = []

    class Reuse:
        def keep_masks(self, keep):
            asked.append(keep)
            return left if keep < 0.5 else torch.ones_like(left)

    st = SimpleNamespace(td=SimpleNamespace(clf=clf), x_s=x, c_s=c, seed=0, batch_size=8)
    maps = left.float() * 0.7
    out = t1.score_maps(st, maps, "ace", Reuse())
    assert asked == list(t1.KEEPS)
    want, _ = average_drop_increase(clf, x, left.float(), c, mode="soft")
    assert out["AD"]["keep20"] == [int(round(t1.AD_SCALE * float(v))) for v in want]
    assert out["flip_keep20"] == "".join("1" if b else "0" for b in (clf.predict(x * left[:, None]) != c).tolist())
    soft, _ = average_drop_increase(clf, x, maps, c, mode="soft")
    assert out["AD"]["soft"] == [int(round(t1.AD_SCALE * float(v))) for v in soft]


# ------------------------------------------------------------------------------------ fill sensitivity
def test_fill_units_recompute_and_black_matches_table1() -> None:
    units = t1.load_fill_units(RESULTS)
    if not units:
        pytest.fail(f"no fill units under {RESULTS}")
    _close(json.loads(json.dumps(t1.fill_stats(units))), json.loads((RESULTS / "fills.json").read_text()))
    assert (RESULTS / "fills.md").read_text() == t1.fill_markdown(t1.fill_stats(units))
    main = {(u["task"], u["seed"], u["method"]): u for u in _units()}
    for f in units:  # the black fill is Table 1's keep-20 % masking: same images, same kept pixels
        m = main[(f["task"], f["seed"], f["method"])]
        assert f["c"] == m["c"]
        a, b = np.asarray(f["AD"]["black"]), np.asarray(m["AD"]["keep20"])
        assert np.abs(a - b).max() <= 1  # ≤ 1e-4 (separate forward batches)
        assert f["flip"]["black"] == m["flip_keep20"]
