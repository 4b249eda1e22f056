"""RepresentativeInterpreter (SPEC §5): exact boundaries, sides, heatmaps, ranking, errors, warnings."""
from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

import cnnlens
from cnnlens import Classifier, CnnlensError, RepresentativeInterpreter
from cnnlens.attribution.cam import cam_weights as cam_channel_weights
from cnnlens.explanation import minmax_normalize, upsample
from cnnlens.representative.evaluation import _cam_maps
from tests.conftest import no_hooks_left


def _net(classes: int = 3, hidden: int = 16, hidden_bias: float = 0.0) -> nn.Module:
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.ReLU(),  # "1" = ψ, (4, 6, 6) for 8×8 input
        nn.Flatten(), nn.Linear(4 * 6 * 6, hidden), nn.ReLU(), nn.Linear(hidden, classes),
    ).eval()
    with torch.no_grad():
        net[3].bias += hidden_bias
        # centre each class logit on a calibration set, so that random images get varied classes
        z = net(torch.rand(200, 1, 8, 8, generator=torch.Generator().manual_seed(99)))
        net[5].bias -= z.mean(0)
    return net


def _images(n: int, seed: int = 0, size: int = 8) -> torch.Tensor:
    return torch.rand(n, 1, size, size, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def setup():
    clf = Classifier(_net(), feature_layer="1")
    ref = _images(120)
    ri = RepresentativeInterpreter(clf, ref, n_boundaries=25, seed=3, batch_size=32)
    return clf, ref, ri


def _closed_form(net: nn.Module, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """W, b of ΔG at t (flattened) from the ReLU head's activation pattern (independent oracle)."""
    W1, b1, W2, b2 = net[3].weight, net[3].bias, net[5].weight, net[5].bias
    pre = W1 @ t + b1
    m = (pre > 0).to(t.dtype)
    z = W2 @ (m * pre) + b2
    c1, c2 = z.topk(2).indices.tolist()
    dw = W2[c1] - W2[c2]
    return (dw * m) @ W1, (dw * m) @ b1 + b2[c1] - b2[c2]


def test_boundaries_match_closed_form_and_are_affine_in_region(setup):
    clf, ref, ri = setup
    net = clf.model
    assert ri.W_.shape == (25, 4 * 6 * 6) and ri.sides_.shape == (120, 25)
    for h in range(5):
        t0 = ri.features_[ri.sample_[h]]
        W, b = _closed_form(net, t0)
        torch.testing.assert_close(ri.W_[h], W, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(ri.b_[h], b, rtol=1e-4, atol=1e-5)
        # ΔG along a small segment through ψ(x′) inside the linear region is the affine ⟨W, t⟩ + b
        d = torch.randn(t0.shape, generator=torch.Generator().manual_seed(h))
        d = d / d.norm() * 1e-3
        s = torch.linspace(-1, 1, 9)
        ts = t0[None] + s[:, None] * d[None]
        z = clf.head(ref[ri.sample_[h]].expand(9, -1, -1, -1), ts.reshape(9, 4, 6, 6))
        c1, c2 = ri.boundaries_.top2[h].tolist()
        dg = (z[:, c1] - z[:, c2]).detach()
        torch.testing.assert_close(dg, ts @ ri.W_[h] + ri.b_[h], rtol=1e-4, atol=1e-5)
        second = dg[2:] - 2 * dg[1:-1] + dg[:-2]
        assert second.abs().max() < 1e-5
    assert no_hooks_left(net)


def test_side_matrix_and_side_flip_agree_with_sign():
    # large hidden biases: every hidden ReLU is on near ψ, so G is affine and a two-class
    # boundary is the true decision boundary; crossing it flips the predicted class
    net = _net(classes=2, hidden_bias=50.0)
    ref = _images(60, seed=1)
    clf = Classifier(net, feature_layer="1")
    ri = RepresentativeInterpreter(clf, ref, n_boundaries=10, seed=0)
    proj = ri.features_ @ ri.W_.T + ri.b_
    assert torch.equal(ri.sides_, proj >= 0)
    for h in range(3):
        t0 = ri.features_[ri.sample_[h]]
        w, b = ri.W_[h], ri.b_[h]
        s_star = (t0 @ w + b) / (w @ w)
        ts = torch.stack([t0 - 0.99 * s_star * w, t0 - 1.01 * s_star * w])
        assert bool((net[3](ts) > 0).all())  # still inside the all-active region
        sides = (ts @ w + b) >= 0
        assert sides.tolist() == [True, False]
        z = clf.head(ref[ri.sample_[h]].expand(2, -1, -1, -1), ts.reshape(2, 4, 6, 6)).detach()
        c1 = int(ri.boundaries_.top2[h, 0])
        assert (z.argmax(1) == c1).tolist() == [True, False]


def test_interpret_counts_ranking_and_heatmap(setup):
    clf, ref, ri = setup
    x = _images(4, seed=9)
    it = ri.interpret(x, k=5)
    assert len(it) == 4 and it.maps.shape == (4, 8, 8) and it.neighbours.shape == (4, 5)
    preds = clf.predict(x)
    psi = clf.features(x).detach().reshape(4, -1)
    for i in range(4):
        c = it.counts[i]
        P = it.boundaries[i]
        assert c["P"] == P.numel() and c["C_and_D"] <= c["delta"]
        assert c["C"] == c["C_minus_D"] + c["C_and_D"] == it.covered[i].numel()
        # covered = same side as x for every h in P
        sx = (psi[i] @ ri.W_[P].T + ri.b_[P]) >= 0
        cov = (ri.sides_[:, P] == sx).all(1) if P.numel() else torch.ones(120, dtype=torch.bool)
        assert sorted(it.covered[i].tolist()) == cov.nonzero().squeeze(1).tolist()
        # Eq. 6 ranking, ascending
        d = ((ri.features_[it.covered[i]] - psi[i]) @ ri.W_[P].T).abs().sum(1)
        torch.testing.assert_close(it.distances[i], d, rtol=1e-4, atol=1e-4)
        assert bool((it.distances[i][1:] >= it.distances[i][:-1]).all())
        # in-D count against predictions
        in_d = ri.predictions_[it.covered[i]] != preds[i]
        assert int(in_d.sum()) == c["C_and_D"]
        # Euclidean neighbours
        eu = torch.cdist(psi[i:i + 1], ri.features_)[0]
        assert it.neighbours[i].tolist() == eu.topk(5, largest=False).indices.tolist()
    # the heatmap of x: mean over P of minmax(upsample(ReLU(α·ψ))), with W flipped to x's side
    i = int(max(range(4), key=lambda j: it.counts[j]["P"]))
    P = it.boundaries[i]
    sign = torch.where(psi[i] @ ri.W_[P].T + ri.b_[P] >= 0, 1.0, -1.0)
    alpha = (ri.W_[P] * sign[:, None]).reshape(-1, 4, 36).mean(2)
    torch.testing.assert_close(it.channel_weights[i], alpha)
    A = clf.features(x[i:i + 1]).detach()[0]
    maps = minmax_normalize(upsample(torch.relu(torch.einsum("pk,khw->phw", alpha, A)), (8, 8))).mean(0)
    torch.testing.assert_close(it.maps[i], maps)
    # reused unchanged on other images (the same α)
    others = ref[it.covered[i][:3]]
    h = it.heatmap(others, index=i)
    A2 = clf.features(others).detach()
    m2 = minmax_normalize(upsample(torch.relu(torch.einsum("pk,nkhw->nphw", alpha, A2)).reshape(-1, 6, 6), (8, 8)))
    torch.testing.assert_close(h, m2.reshape(3, -1, 8, 8).mean(1))
    torch.testing.assert_close(it.heatmap(x), it.maps)
    with pytest.raises(CnnlensError, match="index"):
        it.heatmap(others)
    assert no_hooks_left(clf.model)


def test_batch_equals_single(setup):
    clf, ref, ri = setup
    x = _images(3, seed=11)
    batch = ri.interpret(x)
    for i in range(3):
        one = ri.interpret(x[i:i + 1])
        assert one.boundaries[0].tolist() == batch.boundaries[i].tolist()
        assert one.covered[0].tolist() == batch.covered[i].tolist()
        torch.testing.assert_close(one.maps[0], batch.maps[i])


def test_reproducible_and_seeded():
    clf = Classifier(_net(), feature_layer="1")
    ref = _images(80)
    a = RepresentativeInterpreter(clf, ref, n_boundaries=10, seed=1)
    b = RepresentativeInterpreter(clf, ref, n_boundaries=10, seed=1)
    c = RepresentativeInterpreter(clf, ref, n_boundaries=10, seed=2)
    assert torch.equal(a.sample_, b.sample_) and not torch.equal(a.sample_, c.sample_)


def test_explain_ri_registered(setup):
    clf, ref, ri = setup
    assert "ri" in cnnlens.methods()
    x = _images(2, seed=5)
    e = cnnlens.explain(clf, x, "ri", reference=ref, n_boundaries=25, seed=3, batch_size=32)
    torch.testing.assert_close(e.maps, ri.interpret(x).maps)
    assert e.params["method"] == "ri" and e.params["n_boundaries"] == 25 and e.params["layer"] == "1"
    assert len(e.info["counts"]) == 2
    with pytest.raises(CnnlensError, match="reference"):
        cnnlens.explain(clf, x, "ri")
    wrong = (clf.predict(x) + 1) % 3
    with pytest.raises(CnnlensError, match="predicted class"):
        cnnlens.explain(clf, x, "ri", target=wrong, reference=ri)


def test_errors_empty_single_class_and_misfit_images():
    clf = Classifier(_net(), feature_layer="1")
    with pytest.raises(CnnlensError, match="empty"):
        RepresentativeInterpreter(clf, torch.zeros(0, 1, 8, 8))
    one_class = _net()
    with torch.no_grad():
        one_class[5].bias[:] = torch.tensor([1e6, 0.0, 0.0])
    with pytest.raises(CnnlensError, match="at least two predicted classes"):
        RepresentativeInterpreter(Classifier(one_class, feature_layer="1"), _images(20))
    ri = RepresentativeInterpreter(clf, _images(40), n_boundaries=5)
    with pytest.raises(CnnlensError, match="do not fit the model|model failed on a batch"):
        ri.interpret(_images(2, size=10))
    with pytest.raises(CnnlensError, match="channels"):
        ri.interpret(torch.rand(2, 3, 8, 8))
    with pytest.raises(CnnlensError, match=r"\[0, 1\]"):
        RepresentativeInterpreter(clf, _images(10) * 255)
    with pytest.raises(CnnlensError, match="n_boundaries"):
        RepresentativeInterpreter(clf, _images(10), n_boundaries=0)
    # a GAP model accepts other sizes but its features then differ from the references'
    gnet = nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
                         nn.Linear(12, 8), nn.ReLU(), nn.Linear(8, 3)).eval()
    with torch.no_grad():
        gnet[6].bias -= gnet(_images(40)).mean(0)
    gap = Classifier(gnet, feature_layer="1")
    ri2 = RepresentativeInterpreter(gap, _images(40), n_boundaries=5)
    with pytest.raises(CnnlensError, match="reference images' size"):
        ri2.interpret(_images(2, size=12))


def test_warnings_non_piecewise_linear_and_gap_linear():
    torch.manual_seed(0)
    sig = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(144, 8), nn.Sigmoid(),
                        nn.Linear(8, 3)).eval()
    with torch.no_grad():
        sig[5].bias -= sig(_images(40)).mean(0)
    with pytest.warns(UserWarning, match="not piecewise linear.*Sigmoid"):
        RepresentativeInterpreter(Classifier(sig, feature_layer="1"), _images(40), n_boundaries=5)
    gap = nn.Sequential(nn.Conv2d(1, 6, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                        nn.Linear(6, 3)).eval()
    with torch.no_grad():
        gap[4].bias -= gap(_images(60)).mean(0)
    with pytest.warns(UserWarning, match=r"global pooling \+ one linear layer.*C\(C-1\)/2 = 3.*found (\d+) distinct"):
        ri = RepresentativeInterpreter(Classifier(gap, feature_layer="1"), _images(60), n_boundaries=20)
    assert 1 <= ri.n_distinct_boundaries <= 3
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        RepresentativeInterpreter(Classifier(_net(), feature_layer="1"), _images(40), n_boundaries=5)


def test_gap_linear_warning_counts_the_model_classes():
    # 3-class GAP + linear head whose class 2 is never predicted (it is always the runner-up): C is
    # still 3 (the logits' width), not 1 + the highest predicted class (2), and the references give
    # boundaries 0|2 and 1|2 (and 0|1) — more than the C(C-1)/2 = 1 a 2-class count would allow
    torch.manual_seed(0)
    gap = nn.Sequential(nn.Conv2d(1, 6, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                        nn.Linear(6, 3)).eval()
    x = _images(60)
    with torch.no_grad():
        lin = gap[4]
        lin.weight.zero_()
        lin.weight[0, 0], lin.weight[0, 1], lin.weight[1, 0], lin.weight[1, 1] = 1.0, -1.0, -1.0, 1.0
        lin.weight[2, 2] = 0.01  # the runner-up logit leans on another channel: 0|2 and 1|2 differ
        lin.bias.zero_()
        z = gap(x)
        lin.bias[0], lin.bias[1] = -z[:, 0].median(), z[:, 0].median()
        lin.bias[2] = -z[:, 2].max() - 1e-4
    clf = Classifier(gap, feature_layer="1")
    assert set(clf.predict(x).tolist()) == {0, 1}
    with pytest.warns(UserWarning, match="global pooling") as rec:
        ri = RepresentativeInterpreter(clf, x, n_boundaries=20)
    msg = next(str(w.message) for w in rec if "global pooling" in str(w.message))
    assert "C = 3 classes" in msg and "C(C-1)/2 = 3 " in msg, msg
    assert 1 < ri.n_distinct_boundaries <= 3 and f"found {ri.n_distinct_boundaries} distinct" in msg


@pytest.mark.parametrize("method", ["gradcam", "gradcam++", "scorecam"])
def test_cam_weights_reproduce_the_attribution_maps(method):
    # the reuse baselines' weights, applied to their own image, give cnnlens.explain's maps
    torch.manual_seed(1)
    net = nn.Sequential(nn.Conv2d(1, 5, 3, padding=1), nn.ReLU(), nn.Conv2d(5, 6, 3), nn.ReLU(), nn.Flatten(),
                        nn.Linear(6 * 8 * 8, 10), nn.ReLU(), nn.Linear(10, 3)).eval()
    clf = Classifier(net, feature_layer="3")
    x = _images(3, seed=4, size=10)
    t = clf.predict(x)
    w = cam_channel_weights(clf, x, t, method, batch_size=4)
    ours = _cam_maps(clf.features(x).detach(), w, (10, 10))
    theirs = cnnlens.explain(clf, x, method, batch_size=4, **({"progress_bar": False} if method == "scorecam" else {}))
    torch.testing.assert_close(ours, minmax_normalize(theirs.maps), rtol=1e-4, atol=1e-5)


def test_module_docstring_example_runs():
    import doctest

    import cnnlens.representative.core as core

    result = doctest.testmod(core, optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_boundary_sampling_is_the_papers(setup):
    """RI §4.1: Q = Eq. 2 at a uniform sample of reference images (no class filter). Each sampled
    boundary separates the top-2 classes of *its own* image x′ — its top-1 is Class(x′) — so for an
    input x it separates Class(x) from another class only when Class(x) is among x′'s top two
    (issue 25: 100 % for C = 2, about 2/C when runner-up classes are spread evenly)."""
    clf, ref, ri = setup
    q = ri.boundaries_
    assert torch.equal(q.sample, ri.sample_) and q.sample.unique().numel() == ri.n_boundaries
    g = cnnlens.seeding.run_generator(ri.seed, "ri.boundaries")
    assert torch.equal(ri.sample_, torch.randperm(ref.shape[0], generator=g)[: ri.n_boundaries])
    assert torch.equal(q.top2[:, 0], ri.predictions_[q.sample])  # ΔG's top-1 class = Class(x′)
    logits = clf.logits(ref[q.sample])
    assert torch.equal(q.top2, logits.topk(2, dim=1).indices)
    # the separating share for an input of class c is the share of Q whose top-2 pair holds c
    c = int(ri.predictions_[0])
    share = ((q.top2 == c).any(1)).double().mean().item()
    assert 0.0 < share < 1.0  # 3 classes: some boundaries separate two other classes
