"""DA Table 1 at 224² (experiments/da224.py): the table is recomputed from stored per-image values
(no model runs)."""
from __future__ import annotations

import json
import types
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import load_script

ROOT = Path(__file__).resolve().parent.parent


def _load():
    return load_script("experiments", "da224")


da224 = _load()
MODELS = ["m_small", "m_big"]
SETTING = dict(da224.DEFAULT)


def _unit(model, image, mar, accepted, last=400, empty=False):
    return {"experiment": "table1", "model": model, "image": image, "mar": mar, "accepted": accepted,
            "stalled": last <= 250, "empty_mask": empty, "seconds": 1.0, "setting": SETTING,
            "setting_key": da224.setting_key(SETTING)}


FIXTURE = [
    _unit("m_small", "a", 0.10, 50), _unit("m_big", "a", 0.05, 60),
    _unit("m_small", "b", 0.20, 30, last=200), _unit("m_big", "b", 0.10, 40),
    _unit("m_small", "c", 0.30, 20), _unit("m_big", "c", 0.30, 20),
    _unit("m_small", "d", 1.00, 0, last=0), _unit("m_big", "d", 0.40, 10),   # never accepted (m_small)
    _unit("m_small", "e", 0.00, 5, empty=True), _unit("m_big", "e", 0.02, 5),  # empty mask
    _unit("m_big", "f", 0.5, 3),                                              # m_small missing: not common
]


def test_table1_from_fixture():
    s = da224.table1_stats(FIXTURE, MODELS, n_boot=2000)
    assert s["images"] == ["a", "b", "c", "d", "e"]
    assert s["never_accepted"] == {"d": ["m_small"]}
    assert s["used"] == ["a", "b", "c", "e"]
    small, big = s["models"]["m_small"], s["models"]["m_big"]
    assert small["n"] == big["n"] == 4
    assert small["mean"] == pytest.approx(np.mean([0.10, 0.20, 0.30, 0.00]))
    assert big["mean"] == pytest.approx(np.mean([0.05, 0.10, 0.30, 0.02]))
    assert small["stalled"] == 1 and big["stalled"] == 0
    assert small["empty_mask"] == ["e"] and big["empty_mask"] == []
    lo, hi = small["ci"]
    assert min(0.10, 0.20, 0.30, 0.00) <= lo <= small["mean"] <= hi <= 0.30
    (pr,) = s["pairs"]
    assert pr["mean"] == pytest.approx(np.mean([0.05, 0.10, 0.0, -0.02]))
    assert (pr["a_smaller"], pr["b_smaller"]) == (1, 2)
    md = da224.table1_markdown(s, None, MODELS)
    assert "| m_small | ? | ? | ? | 4 | 15.00% |" in md
    assert "d (m_small)" in md and "m_small: e" in md


def test_bootstrap_ci_is_seeded_and_brackets_the_mean():
    v = np.array([0.1, 0.2, 0.4, 0.8])
    assert da224.bootstrap_ci(v, 1000) == da224.bootstrap_ci(v, 1000)
    lo, hi = da224.bootstrap_ci(v, 1000)
    assert lo < v.mean() < hi
    assert da224.bootstrap_ci(np.array([0.3] * 5), 100) == pytest.approx((0.3, 0.3))


@pytest.mark.parametrize("experiment", ["table1", "table1_native"])
def test_stored_table1_recomputes(experiment):
    """The committed tables (experiments/results/da224/table1.md, the 224² primary, and
    table1_native.md, each model at its native resolution) follow from the committed per-image files."""
    md_path = da224.OUT / f"{experiment}.md"
    if not md_path.exists():
        pytest.skip(f"no stored DA {experiment} yet")
    units = da224.load_units(experiment, da224.setting_key(SETTING))
    meta = json.loads((da224.OUT / experiment / "meta.json").read_text())
    stats = da224.table1_stats(units, da224.MODELS)
    md = da224.table1_markdown(stats, meta, da224.MODELS, native=experiment == "table1_native")
    assert md in md_path.read_text()
    assert md in (ROOT / "EXPERIMENTS.md").read_text()


def test_stored_fig5_recomputes():
    """The committed Fig. 5 report follows from the per-image files and is the one in EXPERIMENTS.md."""
    md_path = da224.OUT / "fig5.md"
    if not md_path.exists():
        pytest.skip("no stored DA Fig. 5 yet")
    md = da224.fig5_report(0)
    assert md == md_path.read_text()
    assert md.rstrip("\n") in (ROOT / "EXPERIMENTS.md").read_text()


def _sweep_unit(image, st, mar, accepted=10, seconds=2.0, segments=480):
    return {"experiment": "table2", "model": da224.SWEEP_MODEL, "image": image, "mar": mar, "accepted": accepted,
            "stalled": False, "empty_mask": mar == 0, "seconds": seconds, "segments": segments, "setting": st,
            "setting_key": da224.setting_key(st)}


def test_sweep_settings_and_stats_from_fixture():
    t2 = da224.sweep_settings("table2")
    assert len(t2) == len(da224.TABLE2_K) * len(da224.TABLE2_SP) == 25
    f6 = da224.sweep_settings("fig6")
    # per rule: 10 α values + the 5 f_c values other than the default 0.95
    assert len(f6) == 2 * (10 + 5) and len({da224.setting_key(s) for s in f6}) == 30
    few = t2[:2]
    units = [_sweep_unit("a", few[0], 0.1), _sweep_unit("a", few[1], 0.3, accepted=0),
             _sweep_unit("b", few[0], 0.2), _sweep_unit("b", few[1], 0.5),
             _sweep_unit("c", few[0], 0.9)]  # c lacks the second setting: not paired, left out
    s = da224.sweep_stats(units, few, n_boot=500)
    # a has both settings but its second chain never accepted: paired, but left out of the table
    assert s["images"] == ["a", "b"] and s["used"] == ["b"]
    k0, k1 = (da224.setting_key(st) for st in few)
    r0, r1 = s["rows"][k0], s["rows"][k1]
    assert r0["n"] == r1["n"] == 1
    assert r0["mean"] == pytest.approx(0.2) and r1["mean"] == pytest.approx(0.5)
    assert r1["never_accepted"] == ["a"] and r0["never_accepted"] == []
    pr = da224.paired_row(s, k0, k1, n_boot=100)  # only b: both chains accepted there
    assert pr["n"] == 1 and pr["mean"] == pytest.approx(-0.3) and pr["a_lower"] == 1
    md = da224.table2_markdown({**s, "seed": 0, "iterations": 500})
    assert "| 1 | 0.200 [" in md and "/ 2.0 s" in md
    assert "Photos left out of the table (some setting's chain never accepted a step, MAR 1): a (k 1 / sp 100)." in md


def test_stored_sweeps_recompute():
    """Every stored Table 2 / Fig. 6 report equals the one recomputed from the per-image files, and
    EXPERIMENTS.md holds it."""
    for which in ("table2", "fig6"):
        stored = ROOT / "experiments" / "results" / "da224" / f"{which}_stats.json"
        if not stored.exists():
            continue
        old = json.loads(stored.read_text())
        settings = da224.sweep_settings(which, old.get("seed", 0), old.get("iterations", 500))
        keys = {da224.setting_key(st) for st in settings}
        units = [u for u in (json.loads(p.read_text())
                             for p in sorted((ROOT / "experiments" / "results" / "da224" / which).glob("*/*.json")))
                 if u["setting_key"] in keys]
        new = da224.sweep_stats(units, settings)
        assert new["images"] == old["images"] and new["used"] == old["used"]
        seed, its = old.get("seed", 0), old.get("iterations", 500)
        md = (da224.table2_markdown({**new, "seed": seed, "iterations": its}) if which == "table2"
              else da224.fig6_markdown(new, seed, its))
        assert md in (ROOT / "experiments" / "results" / "da224" / f"{which}.md").read_text()
        assert md in (ROOT / "EXPERIMENTS.md").read_text(), f"EXPERIMENTS.md lacks the current {which} report"
        if set(new["images"]) & set(da224.EXTRA_PHOTOS):
            labelled = da224.sweep_stats([u for u in units if u["image"] not in da224.EXTRA_PHOTOS], settings)
            lines = (da224.fig6_minimum_lines(new, labelled, seed, its) if which == "fig6" else
                     da224.table2_labelled_lines({**new, "seed": seed, "iterations": its}, labelled))
            assert lines in (ROOT / "EXPERIMENTS.md").read_text()
        for k, row in new["rows"].items():
            assert row["n"] == old["rows"][k]["n"]
            if row["n"]:
                assert row["mean"] == pytest.approx(old["rows"][k]["mean"], abs=1e-12)
                assert row["ci"] == pytest.approx(old["rows"][k]["ci"], abs=1e-12)


def test_photo_pack_round_trip(tmp_path, monkeypatch):
    """The photo pack a device run reads (experiments/da224_gpu.sh) gives the zoo's exact float
    crops for every model, without reading the installed photo files."""
    import torch

    from cnnlens import zoo
    from cnnlens.data import datasets
    from cnnlens.errors import AssetMissingError

    try:
        ref = {m: zoo.load_dataset("imagenet_photos", model=m)
               for m in ("mobilenet_v2_imagenet", "efficientnet_lite2_imagenet")}
    except AssetMissingError as e:
        pytest.skip(str(e))
    pack = tmp_path / "photos.npz"
    da224.pack_photos(str(pack))

    def no_files(*a, **k):
        raise AssertionError("read a photo file")

    monkeypatch.setattr(datasets, "_read_photo_file", no_files)
    for m, r in ref.items():
        got = da224.load_photos(m, str(pack))
        assert list(got.names) == list(r.names) and got.labels.tolist() == r.labels.tolist()
        assert torch.equal(got.images, r.images)
    assert datasets._read_photo_file is no_files  # restored after each load
    with pytest.raises(AssertionError, match="read a photo file"):
        zoo.load_dataset("imagenet_photos")


def test_fig6_photos_add_the_unlabelled_extras_after_the_labelled_set():
    """Table 2 and Fig. 6 run on the 18 labelled photos (same indices, so the same DA streams) and
    then the six unlabelled extras, cropped by the same code."""
    import torch

    from cnnlens import zoo
    from cnnlens.errors import AssetMissingError

    try:
        ref = zoo.load_dataset("imagenet_photos", model=da224.SWEEP_MODEL)
    except AssetMissingError as e:
        pytest.skip(str(e))
    got = da224.load_sweep_photos("fig6")
    assert da224.load_sweep_photos("table2").names == got.names
    n = len(ref.names)
    assert got.names == list(ref.names) + list(da224.EXTRA_PHOTOS)
    assert torch.equal(got.images[:n], ref.images) and got.labels[:n] == ref.labels.tolist()
    assert got.labels[n:] == [-1] * len(da224.EXTRA_PHOTOS)
    assert got.images.shape[1:] == ref.images.shape[1:]
    assert not set(da224.EXTRA_PHOTOS) & set(ref.names)
    assert all(float(im.std()) > 0.05 for im in got.images[n:])  # real photos, not blank reads


def test_model_subset_uses_the_stored_common_photos(tmp_path, monkeypatch):
    """A run on some of the models (a device call that carries only some weights) runs the photos
    the full run's meta.json lists, for every seed asked, into --out, and skips stored units."""
    import torch

    meta = json.loads((da224.REPO_OUT / "table1" / "meta.json").read_text())
    names = meta["images"]
    fake = types.SimpleNamespace(names=names, labels=torch.zeros(len(names), dtype=torch.long), class_names=["c"],
                                 images=torch.zeros(len(names), 3, 8, 8))
    calls = []

    class Clf:
        device = torch.device("cpu")

    monkeypatch.setattr(da224, "load_photos", lambda model, pack=None: fake)
    monkeypatch.setattr(da224, "load_model", lambda name, device="cpu": Clf())
    monkeypatch.setattr(da224, "run_da_unit", lambda clf, x, i, setting: calls.append((i, setting["seed"])) or {
        "target": 0, "mar": 0.5, "accepted": 1, "last_accept_iteration": 3, "seconds": 0.1})
    monkeypatch.setattr(da224, "write_unit", lambda experiment, m, ds, i, setting, res, rev, **kw: da224.unit_path(
        experiment, m, ds.names[i], setting).parent.mkdir(parents=True, exist_ok=True) or da224.unit_path(
        experiment, m, ds.names[i], setting).write_text("{}"))
    monkeypatch.setattr(da224, "OUT", tmp_path)
    argv = ["table1", "--models", "efficientnet_lite2_imagenet", "--seeds", "1", "2", "--out", str(tmp_path)]
    da224.main(argv)
    assert sorted(calls) == sorted((names.index(n), s) for n in meta["common"] for s in (1, 2))
    calls.clear()
    da224.main(argv)  # everything stored: nothing runs
    assert calls == []


def test_sweep_paired_rows_and_argmin_from_fixture(tmp_path):
    """Fig. 6: each value paired against the paper's optimum on the same photos, and the share of
    bootstrap resamples in which each value has the lowest mean MAR; a clear minimum gets 100 %."""
    f6 = da224.sweep_settings("fig6")
    # MAR = |α − 0.3| + photo offset for Pos-R α (minimum at 0.3, not the paper's 0.2); 0.5 elsewhere
    units = []
    for j, im in enumerate(["a", "b", "c", "d"]):
        for st in f6:
            alpha_sweep = st["rule"] == "pos" and st["fc"] == 0.95
            mar = abs(st["alpha_step"] - 0.3) + 0.01 * j if alpha_sweep else 0.5 + 0.01 * j
            units.append(_sweep_unit(im, st, mar, seconds=1.0 + st["alpha_step"]))
    s = da224.sweep_stats(units, f6, n_boot=500)
    key = {a: da224.setting_key(dict(da224.DEFAULT, alpha_step=a)) for a in da224.FIG6_ALPHAS}
    r = da224.paired_row(s, key[0.2], key[0.3], n_boot=500)
    assert r["n"] == 4 and r["mean"] == pytest.approx(0.1) and r["ci"] == pytest.approx([0.1, 0.1])
    assert r["a_lower"] == 0 and r["a_higher"] == 4 and r["time_ratio"] == pytest.approx(1.2 / 1.3)
    share = da224.argmin_share(s, [key[a] for a in da224.FIG6_ALPHAS], n_boot=200)
    assert share[da224.FIG6_ALPHAS.index(0.3)] == 1.0 and sum(share) == pytest.approx(1.0)
    md = da224.fig6_markdown(s)
    assert "| pos | α_step | 0.3 | 4 | +0.100 | [+0.100, +0.100] | 0 / 4 | 100% |" in md
    assert "| pos | α_step | 0.2 | 4 | (optimum) | – | – | 0% |" in md
    da224.fig6_plot(s, tmp_path / "fig6.png")
    assert (tmp_path / "fig6.png").stat().st_size > 10_000
    # photos a and b alone: the minimum stays at 0.3; the flat sweeps take their first value
    sub = da224.sweep_stats([u for u in units if u["image"] in ("a", "b")], f6, n_boot=500)
    mins = da224.fig6_minimum_lines(s, sub)
    assert "| pos | α_step | 0.3 (100%) | 0.3 (100%) |" in mins
    assert "all photos (N = 4) | labelled only (N = 2)" in mins


def test_pool_seeds_averages_per_photo_and_keeps_never_accepted_apart():
    def u(model, image, seed, mar, accepted):
        return dict(_unit(model, image, mar, accepted), setting=dict(SETTING, seed=seed))

    by_seed = {0: [u("m_small", "a", 0, 0.10, 50), u("m_big", "a", 0, 0.05, 60), u("m_small", "b", 0, 0.2, 30),
                   u("m_big", "b", 0, 0.1, 40), u("m_small", "c", 0, 0.3, 20)],
               1: [u("m_small", "a", 1, 0.20, 40), u("m_big", "a", 1, 0.07, 50), u("m_small", "b", 1, 1.0, 0),
                   u("m_big", "b", 1, 0.1, 40)]}  # c has no seed-1 unit: left out
    pooled = {(p["model"], p["image"]): p for p in da224.pool_seeds(by_seed)}
    assert set(pooled) == {("m_small", "a"), ("m_big", "a"), ("m_small", "b"), ("m_big", "b")}
    assert pooled[("m_small", "a")]["mar"] == pytest.approx(0.15) and pooled[("m_small", "a")]["accepted"] == 45
    assert pooled[("m_small", "b")]["accepted"] == 0  # never accepted in seed 1
    s = da224.table1_stats(list(pooled.values()), MODELS, n_boot=200)
    assert s["used"] == ["a"] and s["never_accepted"] == {"b": ["m_small"]}
    assert s["pairs"][0]["mean"] == pytest.approx(0.15 - 0.06)


def test_sweep_names_an_unknown_photo(monkeypatch):
    import torch

    from cnnlens import zoo

    fake = types.SimpleNamespace(names=["camera", "coffee"], images=torch.zeros(2, 3, 8, 8), labels=[0, 1], class_names=["a", "b"])
    monkeypatch.setattr(da224, "load_sweep_photos", lambda which: fake)
    monkeypatch.setattr(zoo, "load_classifier", lambda name: None)
    with pytest.raises(SystemExit, match=r"^table2 has no photo 'aero3'; its photos: camera, coffee$"):
        da224.main(["table2", "--images", "aero3", "camera"])


def test_table2_labelled_lines_compare_all_photos_with_the_labelled_ones():
    t2 = da224.sweep_settings("table2")
    # pixel mode 0.1 above sp = 500 on photos a, b; on the extra photo x it is 0.3 above
    units = [_sweep_unit(im, st, (0.2 + 0.01 * j) + ((0.1 if im != "x" else 0.3) if st["superpixels"] == 0 else 0.0))
             for j, im in enumerate(["a", "b", "x"]) for st in t2]
    s = da224.sweep_stats(units, t2, n_boot=200)
    lab = da224.sweep_stats([u for u in units if u["image"] != "x"], t2, n_boot=200)
    md = da224.table2_labelled_lines({**s, "seed": 0, "iterations": 500}, lab)
    assert "| k = 4: sp = 500 − pixel mode | -0.167 [" in md and "N = 3 | -0.100 [-0.100, -0.100], N = 2 |" in md
    assert "| k = 4: sp = 500 − sp = 50 | +0.000 [+0.000, +0.000], N = 3 | +0.000 [+0.000, +0.000], N = 2 |" in md
