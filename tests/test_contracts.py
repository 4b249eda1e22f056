"""Contracts every registered attribution method and every registered metric keeps (architecture
issue, item 10). The parametrisation is read from the registries at import time —
``cnnlens.methods()`` and ``cnnlens.metrics.list_metrics()`` — so a newly registered method or
metric gets every test here without editing this file.

Methods: ``(N, H, W)`` finite maps, ``(N,)`` targets, the registered name; bit-for-bit determinism
for a fixed seed; the user's model untouched (values, flags, hooks, ``requires_grad``, ``.grad``)
and the input batch untouched; bad arguments → :class:`CnnlensError` (an unknown keyword names the
valid parameters); ``params`` records the common knobs and every method parameter passed.

Metrics: a :class:`MetricResult` with the registered name and direction, finite per-image values
with first dimension N, determinism, the model untouched, ``params`` recording protocol, seed and
batch size, under both protocols for metrics that read maps; unknown names list the available
ones; aliases resolve. Inputs a metric ``needs`` are supplied generically (masks, a second model,
a Dynamic Ablation result), so future metrics run too.

Everything runs on a tiny conv net (3×16×16 inputs, 3 classes) with reduced budgets for the
expensive methods (:data:`SMALL`); a method missing from that dict is called with no parameters.
"""
from __future__ import annotations

import functools
import math
from typing import Any

import pytest
import torch
from torch import nn

import cnnlens
import cnnlens.metrics as M
from cnnlens import CnnlensError
from cnnlens.attribution import method_info
from cnnlens.metrics import MetricResult
from tests.conftest import no_hooks_left

# the contract budgets are tiny (8 DA iterations): a chain that accepts no step is expected here,
# and its warning (tested in tests/ablation) would only clutter the contract run
pytestmark = pytest.mark.filterwarnings("ignore:dynamic_ablation rule=.*no step was accepted:UserWarning")

N, H, W = 3, 16, 16
MEAN, STD = [0.5, 0.5, 0.5], [0.25, 0.25, 0.25]
SEED, BATCH = 3, 48  # not the defaults, so params must record what was passed


def tiny_net(seed: int = 0) -> nn.Module:
    """A small conv net whose class follows the dominant colour channel (so reference images span
    several predicted classes, as RI needs), with BatchNorm buffers and one frozen parameter."""
    g = torch.Generator().manual_seed(seed)
    net = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Conv2d(6, 6, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                        nn.Linear(6, 3))
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.1)
        for o in range(6):
            net[0].weight[o, o % 3, 1, 1] += 1.0
            net[4].weight[o, o, 1, 1] += 1.0
            net[8].weight[o % 3, o] += 4.0
        net[1].running_mean.copy_(torch.rand(6, generator=g) * 0.1)
        net[1].running_var.copy_(0.5 + torch.rand(6, generator=g))
    net[0].bias.requires_grad_(False)  # the user's own choice; must survive every call
    return net.eval()


def images(n: int, seed: int) -> torch.Tensor:
    """``n`` images in [0, 1], image i dominated by colour channel ``i % 3``."""
    g = torch.Generator().manual_seed(seed)
    x = 0.3 * torch.rand(n, 3, H, W, generator=g)
    for i in range(n):
        x[i, i % 3] += 0.6 * torch.rand(H, W, generator=g)
    return x


def make_clf(seed: int = 0) -> cnnlens.Classifier:
    # feature layer "3" (max-pool output): RI's head then has hidden layers (no degenerate warning)
    return cnnlens.Classifier(tiny_net(seed), mean=MEAN, std=STD, feature_layer="3")


REFERENCE = images(12, 1)

# reduced budgets of the expensive methods; a method not listed here is called with {}
SMALL: dict[str, dict[str, Any]] = {
    "lime": {"num_samples": 32},  # quickshift scaled to 16×16: 3–8 superpixels (slic with 8 gave 1, a constant map)
    "rise": {"n_masks": 16},
    "extremal_perturbation": {"iterations": 3, "levels": 2, "max_blur": 2.0},
    "da_pos": {"iterations": 8, "superpixels": 0},
    "da_neg": {"iterations": 8, "superpixels": 0},
    "ri": {"reference": REFERENCE, "n_boundaries": 4},
    "ace": {"reference": REFERENCE, "n_segments": (4, 8), "n_clusters": 4, "n_members": 10, "n_random": 4},
}

METHODS = cnnlens.methods()
METRICS = M.list_metrics()
MAP_INPUTS = {"maps", "insertion", "deletion"}
PROTOCOLS = ("rise", "gomez")
METRIC_CASES = [
    pytest.param(m, p, id=f"{m}-{p}")
    for m in METRICS
    for p in (PROTOCOLS if set(M.metric_info(m).needs) & MAP_INPUTS else ("rise",))
]
ALIASES = [(a, m) for m in METRICS for a in M.metric_info(m).aliases]


def small(method: str) -> dict[str, Any]:
    return dict(SMALL.get(method, {}))


# ---------------------------------------------------------------------------- model snapshots
def snapshot(model: nn.Module) -> dict[str, Any]:
    return {
        "state": {k: v.detach().clone() for k, v in model.state_dict(keep_vars=True).items()},
        "ids": {k: id(v) for k, v in model.state_dict(keep_vars=True).items()},
        "requires_grad": {k: p.requires_grad for k, p in model.named_parameters()},
        "training": {k: m.training for k, m in model.named_modules()},
        "grad": {k: p.grad is None for k, p in model.named_parameters()},
        "modules": [(k, type(m)) for k, m in model.named_modules()],
    }


def untouched_problems(model: nn.Module, before: dict[str, Any]) -> list[str]:
    """What changed in ``model`` since ``before`` (empty: nothing)."""
    after = snapshot(model)
    problems = []
    live = model.state_dict(keep_vars=True)
    if set(live) != set(before["state"]):
        problems.append(f"state_dict keys changed: {sorted(set(live) ^ set(before['state']))}")
    changed = [k for k, v in before["state"].items() if k in live and not torch.equal(live[k].detach(), v)]
    if changed:
        problems.append(f"parameters/buffers changed: {changed}")
    if after["ids"] != before["ids"]:
        problems.append("parameters/buffers were replaced by other tensors")
    for key in ("requires_grad", "training", "grad", "modules"):
        if after[key] != before[key]:
            diff = [k for k in before[key] if after[key].get(k) != before[key][k]] if isinstance(before[key], dict) \
                else "module tree"
            problems.append(f"{key} changed: {diff}")
    if not no_hooks_left(model):
        problems.append("hooks left on the model")
    return problems


# ---------------------------------------------------------------------------- method runs (cached)
@functools.cache
def method_run(method: str) -> dict[str, Any]:
    """Two identical explain() calls on a fresh model, with snapshots around them."""
    clf = make_clf()
    x = images(N, 2)
    x0 = x.clone()
    before = snapshot(clf.model)
    params = small(method)
    e1 = cnnlens.explain(clf, x, method, seed=SEED, batch_size=BATCH, **params)
    e2 = cnnlens.explain(clf, x, method, seed=SEED, batch_size=BATCH, **params)
    return {"clf": clf, "x": x, "x0": x0, "before": before, "e1": e1, "e2": e2, "params": params,
            "problems": untouched_problems(clf.model, before)}


@pytest.mark.parametrize("method", METHODS)
def test_method_shapes_finite_and_name(method):
    run = method_run(method)
    e = run["e1"]
    assert isinstance(e, cnnlens.Explanation)
    assert tuple(e.maps.shape) == (N, H, W), f"{method}: maps {tuple(e.maps.shape)}, expected {(N, H, W)}"
    assert e.maps.is_floating_point(), f"{method}: maps dtype {e.maps.dtype}"
    assert torch.isfinite(e.maps).all(), f"{method}: non-finite map values"
    assert isinstance(e.targets, torch.Tensor) and tuple(e.targets.shape) == (N,), \
        f"{method}: targets {getattr(e.targets, 'shape', e.targets)}"
    assert not e.targets.is_floating_point()
    assert e.method == method == method_info(method).name


@pytest.mark.parametrize("method", METHODS)
def test_method_is_deterministic_for_a_fixed_seed(method):
    run = method_run(method)
    e1, e2 = run["e1"], run["e2"]
    assert torch.equal(e1.maps, e2.maps), f"{method}: two calls with seed={SEED} differ " \
        f"(max |Δ| = {float((e1.maps - e2.maps).abs().max())})"
    assert torch.equal(e1.targets, e2.targets)
    if e1.layer_maps is not None or e2.layer_maps is not None:
        assert e1.layer_maps is not None and e2.layer_maps is not None and torch.equal(e1.layer_maps, e2.layer_maps)


@pytest.mark.parametrize("method", [m for m in METHODS if not method_info(m).stochastic])
def test_deterministic_method_ignores_the_seed(method):
    """A method registered as not stochastic gives the same maps for any seed."""
    run = method_run(method)
    other = cnnlens.explain(run["clf"], run["x"], method, seed=SEED + 1, batch_size=BATCH, **run["params"])
    assert torch.equal(other.maps, run["e1"].maps), f"{method} is registered stochastic=False but depends on the seed"


@pytest.mark.parametrize("method", METHODS)
def test_method_leaves_model_and_input_untouched(method):
    run = method_run(method)
    assert not run["problems"], f"{method}: " + "; ".join(run["problems"])
    assert torch.equal(run["x"], run["x0"]), f"{method}: the input batch was modified"


@pytest.mark.parametrize("method", METHODS)
def test_method_records_params(method):
    run = method_run(method)
    p = run["e1"].params
    for key in ("method", "seed", "batch_size", "target", "version"):
        assert key in p, f"{method}: params lacks {key!r} (has {sorted(p)})"
    assert p["method"] == method and p["seed"] == SEED and p["batch_size"] == BATCH
    assert p["version"] == cnnlens.__version__
    missing = [k for k in run["params"] if k not in p]
    assert not missing, f"{method}: passed parameter(s) {missing} not recorded in params (has {sorted(p)})"
    for k, v in run["params"].items():
        if not isinstance(v, torch.Tensor):
            assert p[k] == v, f"{method}: params[{k!r}] = {p[k]!r}, passed {v!r}"


@pytest.mark.parametrize("method", METHODS)
def test_method_unknown_keyword_names_the_valid_parameters(method):
    clf = make_clf()
    with pytest.raises(CnnlensError) as err:
        cnnlens.explain(clf, images(N, 2), method, no_such_option=1, **small(method))
    msg = str(err.value)
    assert "no_such_option" in msg, msg
    missing = [p for p in method_info(method).params if p not in msg]
    assert not missing, f"{method}: the message does not name {missing}: {msg}"


@pytest.mark.parametrize("bad", [{"batch_size": 0}, {"seed": "x"}], ids=["batch_size=0", "seed=x"])
@pytest.mark.parametrize("method", METHODS)
def test_method_rejects_bad_common_arguments(method, bad):
    clf = make_clf()
    with pytest.raises(CnnlensError, match=next(iter(bad))):
        cnnlens.explain(clf, images(N, 2), method, **{**small(method), **bad})
    assert no_hooks_left(clf.model)


# ---------------------------------------------------------------------------- metric runs
def evaluate_inputs(name: str, clf: cnnlens.Classifier, x: torch.Tensor) -> tuple[Any, dict[str, Any]]:
    """The explanation and the optional ``evaluate`` inputs that metric ``name`` needs."""
    needs = set(M.metric_info(name).needs)
    kwargs: dict[str, Any] = {}
    if "masks" in needs:
        kwargs["masks"] = torch.rand(x.shape[0], x.shape[2], x.shape[3], generator=torch.Generator().manual_seed(5)) > 0.5
    if "second_model" in needs:
        kwargs["second_model"] = make_clf(seed=1)
    if "ablation" in needs:
        explanation = cnnlens.dynamic_ablation(clf, x, iterations=8, superpixels=0, seed=0, batch_size=BATCH)
    else:  # gradcam: cheap, re-runnable (needs "method"), and has layer maps (the gomez preset reads them)
        explanation = cnnlens.explain(clf, x, "gradcam")
    return explanation, kwargs


@functools.cache
def metric_run(name: str, protocol: str) -> dict[str, Any]:
    clf = make_clf()
    x = images(N, 2)
    explanation, kwargs = evaluate_inputs(name, clf, x)
    before = snapshot(clf.model)
    out = [cnnlens.evaluate(clf, x, explanation, metrics=[name], protocol=protocol, seed=SEED, batch_size=BATCH,
                            **kwargs) for _ in range(2)]
    return {"r1": out[0], "r2": out[1], "problems": untouched_problems(clf.model, before)}


@pytest.mark.parametrize("name, protocol", METRIC_CASES)
def test_metric_result_shape_name_direction(name, protocol):
    info = M.metric_info(name)
    res = metric_run(name, protocol)["r1"]
    assert list(res) == [name]
    r = res[name]
    assert isinstance(r, MetricResult), type(r)
    assert r.name == name and r.direction == info.direction, (r.name, r.direction, info.direction)
    assert isinstance(r.per_image, torch.Tensor) and r.per_image.shape[0] == N, f"{name}: {tuple(r.per_image.shape)}"
    assert torch.isfinite(r.per_image).all(), f"{name}/{protocol}: non-finite per-image values {r.per_image}"
    if info.scalar:
        assert tuple(r.per_image.shape) == (N,), f"{name} is registered scalar but per_image is {tuple(r.per_image.shape)}"
        assert math.isfinite(float(r.mean)), f"{name}/{protocol}: mean {r.mean}"


@pytest.mark.parametrize("name, protocol", METRIC_CASES)
def test_metric_is_deterministic_for_a_fixed_seed(name, protocol):
    run = metric_run(name, protocol)
    a, b = run["r1"][name], run["r2"][name]
    assert torch.equal(a.per_image, b.per_image), f"{name}/{protocol}: {a.per_image} vs {b.per_image}"
    assert (a.curves is None) == (b.curves is None)
    if a.curves is not None:
        assert torch.equal(a.curves, b.curves)
    assert a.n_constant == b.n_constant


@pytest.mark.parametrize("name, protocol", METRIC_CASES)
def test_metric_leaves_model_untouched(name, protocol):
    problems = metric_run(name, protocol)["problems"]
    assert not problems, f"{name}/{protocol}: " + "; ".join(problems)


@pytest.mark.parametrize("name, protocol", METRIC_CASES)
def test_metric_records_params(name, protocol):
    p = metric_run(name, protocol)["r1"][name].params
    for key, value in (("protocol", protocol), ("seed", SEED), ("batch_size", BATCH)):
        assert key in p, f"{name}: params lacks {key!r} (has {sorted(p)})"
        assert p[key] == value, f"{name}: params[{key!r}] = {p[key]!r}, expected {value!r}"


def test_unknown_metric_lists_the_available_ones():
    clf = make_clf()
    x = images(N, 2)
    for call in (lambda: cnnlens.evaluate(clf, x, torch.rand(N, H, W), metrics=["no_such_metric"]),
                 lambda: M.metric_info("no_such_metric")):
        with pytest.raises(CnnlensError) as err:
            call()
        msg = str(err.value)
        assert "no_such_metric" in msg
        missing = [m for m in METRICS if m not in msg]
        assert not missing, f"the message does not list {missing}: {msg}"


@pytest.mark.parametrize("name", METRICS)
def test_metric_name_resolves_to_itself(name):
    info = M.metric_info(name)
    assert info.name == name and M.metric_info(name.upper()).name == name
    assert info.direction in ("↑", "↓")
    assert set(info.needs) <= set(M.registry.INPUTS)


@pytest.mark.parametrize("alias, name", ALIASES or [pytest.param(None, None, marks=pytest.mark.skip("no aliases"))])
def test_alias_resolves(alias, name):
    assert M.metric_info(alias).name == name
    assert M.metric_info(alias.upper()).name == name
    assert alias not in METRICS


def test_untouched_detector_sees_each_kind_of_change():
    """The model-untouched check fails on each change it guards against."""
    changes = {
        "parameters/buffers changed": lambda net: net[1].running_mean.add_(1.0),
        "replaced": lambda net: setattr(net[8], "bias", nn.Parameter(net[8].bias.detach().clone())),
        "requires_grad changed": lambda net: net[0].bias.requires_grad_(True),
        "training changed": lambda net: net[1].train(),
        "grad changed": lambda net: setattr(net[8].weight, "grad", torch.zeros_like(net[8].weight)),
        "hooks left": lambda net: net[4].register_forward_hook(lambda *a: None),
    }
    for what, change in changes.items():
        net = tiny_net()
        before = snapshot(net)
        assert not untouched_problems(net, before)
        change(net)
        problems = untouched_problems(net, before)
        assert any(what in p for p in problems), (what, problems)


# ---------------------------------------------------------------------------- batch independence
# Extremal perturbation optimises its masks: the batch-size rounding of the forwards (batched
# convolutions sum in another order than a single image's) is amplified step by step (~1e-4 after
# a few steps), so the batch and the single image are compared with one image per chunk, which
# makes them the same computation (as tests/test_seed_streams.py does).
ONE_PER_CHUNK = {"extremal_perturbation"}


@pytest.mark.parametrize("method", METHODS)
def test_method_is_batch_independent(method):
    """``explain(x[i:i+1], first_index=i, seed=s)`` equals ``explain(x, seed=s)[i]`` (§11).

    Per-image randomness (LIME, DA) comes from ``SeedSequence([seed, first_index + i, stream])``;
    randomness shared by a run (RISE's masks, extremal perturbation's jitter, RI's sampled
    boundaries) is the same numbers for any batch, so those methods are batch independent too as
    long as the run's inputs other than ``x`` are the same — for RI the same reference set (its
    boundaries are sampled from R with the seed, never from ``x``). RI's boundaries themselves are
    exempt from per-image streams: they are shared by design (one region structure per run)."""
    clf = make_clf()
    x = images(4, 2)
    params = small(method)
    batch = 1 if method in ONE_PER_CHUNK else BATCH
    full = cnnlens.explain(clf, x, method, seed=SEED, batch_size=batch, **params)
    for i in (1, 3):
        one = cnnlens.explain(clf, x[i:i + 1], method, seed=SEED, first_index=i, batch_size=batch, **params)
        assert torch.equal(one.targets, full.targets[i:i + 1]), method
        torch.testing.assert_close(one.maps[0], full.maps[i], rtol=1e-6, atol=1e-6,
                                   msg=lambda m: f"{method}: image {i} alone differs from the batch: {m}")
    shifted = cnnlens.explain(clf, x[2:4], method, seed=SEED, first_index=2, batch_size=batch, **params)
    torch.testing.assert_close(shifted.maps, full.maps[2:4], rtol=1e-6, atol=1e-6,
                               msg=lambda m: f"{method}: images 2:4 differ from the batch: {m}")


def test_ri_with_a_prepared_interpreter_is_batch_independent():
    """RI over one prepared RepresentativeInterpreter (the same R and Q for every call)."""
    clf = make_clf()
    x = images(4, 2)
    ri = cnnlens.RepresentativeInterpreter(clf, REFERENCE, n_boundaries=4, seed=SEED)
    full = cnnlens.explain(clf, x, "ri", reference=ri)
    for i in range(4):
        one = cnnlens.explain(clf, x[i:i + 1], "ri", reference=ri, first_index=i)
        torch.testing.assert_close(one.maps[0], full.maps[i], rtol=1e-6, atol=1e-6)
