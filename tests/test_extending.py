"""docs/extending.md does what it says, and the other ways in work: a module of the package found
without editing a list, a user module registered by being imported, a ``cnnlens.methods`` entry
point.

The guide's examples register into the process-wide registries (there is no public way to
unregister), as ``tests/test_docs.py`` does too. The tests that add methods or metrics of their
own run on copies of the registries (``monkeypatch``), so nothing they register outlives them.
"""
from __future__ import annotations

import importlib
import re
import sys
import textwrap
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest
import torch
from torch import nn

import cnnlens
import cnnlens._plugins
import cnnlens.attribution as attribution
import cnnlens.metrics
from cnnlens import CnnlensError
from cnnlens.metrics import registry

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "extending.md"


def _run_guide() -> list[dict]:
    """Every python block of the guide in a fresh namespace of its own, as tests/test_docs.py runs them."""
    spaces = []
    for block in re.findall(r"```python\n(.*?)```", GUIDE.read_text(), flags=re.S):
        ns: dict = {}
        exec(compile(block, str(GUIDE), "exec"), ns)
        spaces.append(ns)
    return spaces


@pytest.fixture(scope="module")
def guide() -> tuple[dict, dict]:
    method_ns, metric_ns = _run_guide()
    return method_ns, metric_ns


@pytest.fixture()
def own_registries(monkeypatch):
    """Copies of both registries for this test; the originals come back afterwards. The built-in
    modules are loaded into the originals first: a module imported while a copy is in place would
    register into the copy only, and an imported module never registers again."""
    cnnlens.methods()
    cnnlens.metrics.list_metrics()
    monkeypatch.setattr(attribution, "_REGISTRY", dict(attribution._REGISTRY))
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    monkeypatch.setattr(registry, "_ALIASES", dict(registry._ALIASES))


def _tiny_classifier() -> cnnlens.Classifier:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8 * 8, 3)).eval()
    return cnnlens.Classifier(net)


# ---------------------------------------------------------------- the method example


def test_new_method_is_listed_with_its_parameters(guide):
    assert {"gradient_x_input", "example_mean_activation"} <= set(cnnlens.methods())
    info = attribution.method_info("gradient_x_input")
    assert info.params == ("absolute",) and not info.uses_layer and not info.stochastic
    assert info.description.startswith("gradient × input")
    assert attribution.method_info("example_mean_activation").uses_layer


def test_new_method_explains_and_finds_the_evidence(guide):
    ns, _ = guide
    e, x, clf = ns["e"], ns["x"], ns["clf"]
    assert e.method == "gradient_x_input" and e.maps.shape == (4, 64, 64) and e.attributions.shape == (4, 3, 64, 64)
    assert e.params["absolute"] is False and e.params["seed"] == 0 and "version" in e.params
    # the red-disc detector's only evidence is the disc: gradient x input is zero elsewhere
    disc = (ns["data"].masks[ns["has_disc"]][:4] == ns["data"].concept_names.index("red_disc"))
    assert e.maps.abs()[~disc].max() == 0 and (e.maps[disc] > 0).any()
    assert clf.predict(x).tolist() == [1, 1, 1, 1]


def test_new_method_parameter_check(guide):
    ns, _ = guide
    clf, x = ns["clf"], ns["x"][:1]
    with pytest.raises(CnnlensError, match=r"has no parameter 'absolut'; valid: absolute$"):
        cnnlens.explain(clf, x, "gradient_x_input", absolut=True)
    with pytest.raises(CnnlensError, match="absolute must be True or False, got 1"):
        cnnlens.explain(clf, x, "gradient_x_input", absolute=1)
    with pytest.raises(CnnlensError, match="does not read a layer"):
        cnnlens.explain(clf, x, "gradient_x_input", layer="0")
    assert cnnlens.explain(clf, x, "gradient_x_input", absolute=True).maps.min() >= 0


def test_new_method_in_compare_and_evaluate(guide):
    ns, _ = guide
    table = ns["table"]
    assert table.rows == ["saliency", "gradient_x_input", "random"]
    assert "| gradient_x_input |" in table.to_markdown()
    # it finds the disc: deleting its top pixels first kills the score far faster than random order
    assert table.value("gradient_x_input", "dauc") < table.value("random", "dauc") - 0.3
    res = ns["res"]
    assert res["dauc"].params["method"] == "gradient_x_input" and res["dauc"].direction == "↓"


# ---------------------------------------------------------------- the metric example


def test_new_metrics_are_listed_with_their_direction(guide):
    names = cnnlens.metrics.list_metrics()
    assert {"example_energy_in_mask", "example_insertion_at_50"} <= set(names)
    assert names.index("example_energy_in_mask") > names.index("mar")  # after the built-in ones
    info = cnnlens.metrics.metric_info("example_energy_in_mask")
    assert (info.direction, info.needs, info.percent, info.scalar, info.default) == ("↑", ("maps", "masks"), True, True, False)
    assert cnnlens.metrics.metric_info("example_insertion_at_50").needs == ("maps", "insertion")
    assert "example_energy_in_mask" not in cnnlens.metrics.default_metrics()


def test_new_metrics_in_evaluate_results(guide):
    _, ns = guide
    res = ns["res"]
    assert list(res) == ["example_energy_in_mask", "iauc", "example_insertion_at_50"]
    energy = res["example_energy_in_mask"]
    assert energy.name == "example_energy_in_mask" and energy.direction == "↑"
    assert energy.per_image.shape == (4,) and torch.allclose(energy.per_image, torch.ones(4, dtype=torch.float64))
    assert energy.params["method"] == "saliency" and energy.n_constant == 0
    at50 = res["example_insertion_at_50"]
    assert at50.direction == "↑" and at50.params["inserted"] == 0.5 and at50.params["n_steps"] == 16
    # the same cached game as IAUC's
    assert torch.equal(at50.per_image, res["iauc"].curves[:, 8])


def test_new_metrics_are_compare_columns(guide):
    _, ns = guide
    table = ns["table"]
    head = table.to_markdown(percent=True).splitlines()[0]
    assert head == "| method | IAUC ↑ | EXAMPLE_INSERTION_AT_50 ↑ | EXAMPLE_ENERGY_IN_MASK % ↑ |"
    assert table.value("saliency", "example_energy_in_mask") == pytest.approx(1.0)
    random_share = table.value("random", "example_energy_in_mask")
    assert random_share == pytest.approx(float(ns["masks"].float().mean()), abs=0.02)
    assert table.results["gradcam"]["example_energy_in_mask"].direction == "↑"
    assert "example_energy_in_mask_mean" in table.to_csv()


def test_metric_needing_masks_without_masks(guide):
    _, ns = guide
    with pytest.raises(CnnlensError, match=r"needs masks; pass evaluate\(\.\.\., masks=\.\.\.\)"):
        cnnlens.evaluate(ns["clf"], ns["x"], ns["e"], metrics=["example_energy_in_mask"])
    with pytest.raises(CnnlensError, match="masks must have shape"):
        cnnlens.evaluate(ns["clf"], ns["x"], ns["e"], metrics=["example_energy_in_mask"], masks=ns["masks"][:2])


# ---------------------------------------------------------------- registering twice


def test_guide_runs_again_in_the_same_process(guide):
    before = (attribution.method_info("gradient_x_input").fn, registry.metric_info("example_energy_in_mask").fn)
    method_ns, metric_ns = _run_guide()  # new function objects, same module and qualified names
    after = (attribution.method_info("gradient_x_input").fn, registry.metric_info("example_energy_in_mask").fn)
    assert after == (method_ns["gradient_x_input"], metric_ns["energy_in_mask"]) and after[0] is not before[0]


def test_another_function_under_a_taken_name_is_refused(guide, own_registries):
    def other(clf, x, targets, *, seed, batch_size, layer):
        raise AssertionError("never called")

    with pytest.raises(CnnlensError, match="'gradient_x_input' is registered twice"):
        attribution.register("gradient_x_input")(other)
    with pytest.raises(CnnlensError, match="'example_energy_in_mask' is registered twice"):
        registry.register("example_energy_in_mask", direction="↑")(other)
    assert attribution.method_info("gradient_x_input").fn is not other


# ---------------------------------------------------------------- the other ways in

METHOD_MODULE = '''
import torch
from cnnlens import Explanation
from cnnlens.attribution import register


@register({name!r})
def brightness(clf, x, targets, *, seed, batch_size, layer, power=1.0):
    """Pixel brightness to a power (a test method)."""
    return Explanation(maps=x.mean(dim=1) ** power, targets=targets, params={{"power": power}})
'''


def _drop_modules(prefix: str) -> None:
    for name in [m for m in sys.modules if m == prefix or m.startswith(prefix + ".")]:
        del sys.modules[name]


def test_user_module_registers_by_being_imported(tmp_path, monkeypatch, own_registries):
    (tmp_path / "cnnlens_test_user_methods.py").write_text(METHOD_MODULE.format(name="example_user_module"))
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        importlib.import_module("cnnlens_test_user_methods")
        assert "example_user_module" in cnnlens.methods()
        clf, x = _tiny_classifier(), torch.rand(2, 3, 8, 8)
        e = cnnlens.explain(clf, x, "example_user_module", power=2.0)
        assert torch.allclose(e.maps, x.mean(dim=1) ** 2) and e.params["power"] == 2.0
        with pytest.raises(CnnlensError, match="valid: power"):
            cnnlens.explain(clf, x, "example_user_module", pow=2)
        table = cnnlens.compare(clf, x, methods=["example_user_module"], metrics=["dauc"], step=16)
        assert table.rows == ["example_user_module", "random"]
    finally:
        _drop_modules("cnnlens_test_user_methods")
    assert "example_user_module" in attribution._REGISTRY  # only in this test's copy (own_registries)


def test_new_module_in_the_package_is_found_without_a_list(tmp_path, monkeypatch, own_registries):
    """A file dropped among cnnlens.attribution's modules (here: a second folder on the package's
    __path__) registers on the first call to methods(); a metric module likewise."""
    (tmp_path / "attr").mkdir()
    (tmp_path / "attr" / "zz_test_brightness.py").write_text(METHOD_MODULE.format(name="example_package_module"))
    (tmp_path / "metr").mkdir()
    (tmp_path / "metr" / "zz_test_mean_map.py").write_text(textwrap.dedent('''
        from .registry import register


        @register("example_mean_map", direction="↑", needs=("maps",))
        def mean_map(ctx):
            """Mean map value per image (a test metric)."""
            return ctx.result(ctx.maps.mean(dim=(1, 2)), dict(ctx.common))
    '''))
    monkeypatch.setattr(attribution, "__path__", [*attribution.__path__, str(tmp_path / "attr")])
    monkeypatch.setattr(cnnlens.metrics, "__path__", [*cnnlens.metrics.__path__, str(tmp_path / "metr")])
    monkeypatch.setattr(attribution._load_providers, "loaded", False)
    monkeypatch.setattr(registry._load_builtin, "loaded", False)
    try:
        assert "example_package_module" in cnnlens.methods()
        assert "example_mean_map" in cnnlens.metrics.list_metrics()
        clf, x = _tiny_classifier(), torch.rand(2, 3, 8, 8)
        e = cnnlens.explain(clf, x, "example_package_module")
        res = cnnlens.evaluate(clf, x, e, metrics=["example_mean_map"])
        assert torch.allclose(res["example_mean_map"].per_image, x.mean(dim=(1, 2, 3)).double())
    finally:
        _drop_modules("cnnlens.attribution.zz_test_brightness")
        _drop_modules("cnnlens.metrics.zz_test_mean_map")


def test_entry_point_registers_a_third_party_method(tmp_path, monkeypatch, own_registries):
    """The ``cnnlens.methods`` entry-point group: methods() loads each entry point once."""
    pkg = tmp_path / "cnnlens_test_plugin"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "methods.py").write_text(METHOD_MODULE.format(name="example_entry_point"))
    monkeypatch.syspath_prepend(str(tmp_path))
    asked = []

    def fake_entry_points(*, group):
        asked.append(group)
        if group != "cnnlens.methods":
            return []
        return [EntryPoint(name="plugin", value="cnnlens_test_plugin.methods", group=group)]

    monkeypatch.setattr(cnnlens._plugins, "entry_points", fake_entry_points)
    monkeypatch.setattr(attribution._load_providers, "loaded", False)
    try:
        assert "example_entry_point" in cnnlens.methods()
        cnnlens.methods()
        assert asked == ["cnnlens.methods"]  # loaded once
        clf, x = _tiny_classifier(), torch.rand(2, 3, 8, 8)
        table = cnnlens.compare(clf, x, methods=["saliency", "example_entry_point"], metrics=["dauc"], step=16)
        assert table.rows == ["saliency", "example_entry_point", "random"]
        assert table.results["example_entry_point"]["dauc"].params["method"] == "example_entry_point"
    finally:
        _drop_modules("cnnlens_test_plugin")


def test_a_user_cannot_take_a_builtin_name_and_can_unregister_their_own():
    from cnnlens.attribution import register, unregister

    with pytest.raises(cnnlens.CnnlensError, match="registered twice"):
        @register("gradcam")
        def _mine(clf, x, targets, *, seed, batch_size, layer):
            raise AssertionError("never called")
    assert "gradcam" in cnnlens.methods() and cnnlens.attribution.method_info("gradcam").fn.__module__ == "cnnlens.attribution.cam"

    @register("test_unregister_me")
    def _tmp(clf, x, targets, *, seed, batch_size, layer):
        raise AssertionError("never called")
    assert "test_unregister_me" in cnnlens.methods()
    unregister("test_unregister_me")
    assert "test_unregister_me" not in cnnlens.methods()

    import cnnlens.metrics as M

    @M.register("test_unregister_metric", direction="↑", aliases=("test_unreg_alias",))
    def _metric(ctx):
        raise AssertionError("never called")
    assert M.metric_info("test_unreg_alias").name == "test_unregister_metric"
    M.unregister("test_unreg_alias")
    assert "test_unregister_metric" not in M.list_metrics()
    with pytest.raises(cnnlens.CnnlensError, match="unknown metric"):
        M.metric_info("test_unreg_alias")


def test_a_broken_plugin_is_skipped_with_a_warning(monkeypatch, own_registries):
    """A third-party entry point that fails to import must not take the built-in methods down."""
    def fake_entry_points(*, group):
        return [EntryPoint(name="broken", value="cnnlens_no_such_plugin_module.methods", group=group)]

    monkeypatch.setattr(cnnlens._plugins, "entry_points", fake_entry_points)
    monkeypatch.setattr(attribution._load_providers, "loaded", False)
    with pytest.warns(RuntimeWarning, match="entry point 'broken' .* failed to load and is skipped"):
        names = cnnlens.methods()
    assert "gradcam" in names and "saliency" in names
    assert "gradcam" in cnnlens.methods()  # loaded once: no second warning, no error
