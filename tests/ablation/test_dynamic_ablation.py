"""Dynamic Ablation (SPEC §4): rule invariants on real models, batched == sequential, toy oracle,
bad input."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import cnnlens
from cnnlens import zoo
from cnnlens.ablation import AblationResult, dynamic_ablation
from cnnlens.errors import CnnlensError
from tests.ablation.toys import SquareMeanNet, square
from tests.conftest import no_hooks_left


@pytest.fixture(scope="module")
def mnist():
    clf = zoo.load_classifier("mnist_cnn")
    ds = zoo.load_dataset("mnist")
    return clf, ds.images[::701][:4]


@pytest.fixture(scope="module")
def faces():
    clf = zoo.load_classifier("onet_face")
    ds = zoo.load_dataset("lfw_faces")
    return clf, torch.cat([ds.images[:1], ds.images[100:101]])


def _predict(clf, x):
    return clf.predict(x)


@pytest.mark.parametrize("superpixels", [0, 100])
def test_pos_rule_invariant_mnist(mnist, superpixels):
    clf, x = mnist
    res = dynamic_ablation(clf, x, rule="pos", iterations=40, superpixels=superpixels, seed=1)
    y = _predict(clf, x)
    assert isinstance(res, AblationResult)
    assert res.mask.shape == (4, 28, 28) and res.mask.dtype == torch.bool
    # Pos-R: the final mask ⊗ image is still classified as the original class
    kept = x * res.mask.unsqueeze(1).float()
    assert torch.equal(_predict(clf, kept), y)
    assert torch.equal(res.targets, y)
    assert (res.accepted > 0).all() and (res.mar < 1).all()
    assert torch.allclose(res.mar, res.mask.flatten(1).double().mean(1))
    assert torch.equal(res.iterations, torch.full((4,), 40))
    assert (res.evaluations >= res.iterations).all()
    assert float(res.cam.max()) == 1.0 and float(res.cam.min()) >= 0.0
    for i, text in enumerate(res.rule_text):
        assert text.startswith("if region P of x is present then x is classified as")
        assert repr(clf.class_name(int(y[i]))) in text
    if superpixels:
        # a superpixel is either fully in or fully out of the mask
        for i in range(4):
            seg, m = res.segments[i].flatten(), res.mask[i].flatten()
            for s in seg.unique():
                vals = m[seg == s]
                assert bool(vals.all()) or not bool(vals.any())


def test_neg_rule_invariant_faces(faces):
    clf, x = faces
    res = dynamic_ablation(clf, x, rule="neg", iterations=40, superpixels=0, seed=2)
    y = _predict(clf, x)
    removed = x * (~res.mask).unsqueeze(1).float()
    pred = _predict(clf, removed)
    hit = res.accepted > 0
    # Neg-R: (J − m) ⊗ image is not classified as the original class (where anything was accepted)
    assert bool(hit.any())
    assert bool((pred[hit] != y[hit]).all())
    assert all(t.startswith("if region P of x is absent then x is not classified as") for t in res.rule_text)
    # where nothing was accepted: m = J, cam = 0, MAR = 1 (SPEC §4)
    assert bool(res.mask[~hit].all()) and float(res.cam[~hit].abs().sum()) == 0.0
    assert bool((res.mar[~hit] == 1).all())


def test_pos_rule_invariant_faces(faces):
    clf, x = faces
    res = dynamic_ablation(clf, x, rule="pos", iterations=30, superpixels=50, seed=0)
    assert torch.equal(_predict(clf, x * res.mask.unsqueeze(1).float()), _predict(clf, x))


def _toy(size=24):
    q = square(size, 4, 12, 6)
    return cnnlens.Classifier(SquareMeanNet(q).eval()), q


def test_batched_equals_sequential_on_injected_stream():
    clf, _ = _toy()
    x = torch.ones(3, 1, 24, 24)
    n, iters, k = 3, 80, 4
    stream = torch.rand(n, iters + 1, 3, k, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    seq = dynamic_ablation(clf, x, iterations=iters, k=k, superpixels=0, sequential=True, proposals=stream)
    bat = dynamic_ablation(clf, x, iterations=iters, k=k, superpixels=0, proposals=stream, speculation=4.0)
    assert bat.rounds < seq.rounds  # speculative proposals: fewer model rounds
    assert (bat.evaluations >= seq.evaluations).all()
    assert torch.equal(seq.mask, bat.mask)
    assert torch.equal(seq.accepted, bat.accepted)
    assert torch.equal(seq.cam, bat.cam)
    assert torch.equal(seq.circles, bat.circles)
    # the iteration of every accepted step, counted the same way by both chains
    assert seq.accept_iterations == bat.accept_iterations
    assert [len(a) for a in seq.accept_iterations] == seq.accepted.tolist()
    assert all(a == sorted(set(a)) and (not a or 1 <= a[0] and a[-1] <= iters) for a in seq.accept_iterations)
    assert any(seq.accept_iterations)
    # the same stream given as one generator (iterable) per image
    gens = [(row.numpy() for row in stream[i]) for i in range(n)]
    it = dynamic_ablation(clf, x, iterations=iters, k=k, superpixels=0, proposals=gens)
    assert torch.equal(it.mask, seq.mask)


def test_batched_equals_sequential_real_model(mnist):
    clf, x = mnist
    kw = dict(rule="pos", iterations=30, superpixels=0, seed=3)
    seq = dynamic_ablation(clf, x[:2], sequential=True, **kw)
    bat = dynamic_ablation(clf, x[:2], **kw)
    assert torch.equal(seq.mask, bat.mask) and torch.equal(seq.accepted, bat.accepted)
    assert seq.rounds == 60 and torch.equal(seq.evaluations, seq.iterations)


def test_speculation_changes_speed_not_result(mnist):
    clf, x = mnist
    a = dynamic_ablation(clf, x[:2], iterations=40, superpixels=0, seed=4, speculation=0.2)
    b = dynamic_ablation(clf, x[:2], iterations=40, superpixels=0, seed=4, speculation=8.0, batch_size=128)
    assert torch.equal(a.mask, b.mask) and torch.equal(a.accepted, b.accepted)
    assert b.rounds < a.rounds


def test_image_chain_independent_of_batch(mnist):
    clf, x = mnist
    full = dynamic_ablation(clf, x[:3], iterations=30, superpixels=0, seed=7)
    # image i always uses stream (seed, i): the first two images alone give the same chains
    part = dynamic_ablation(clf, x[:2], iterations=30, superpixels=0, seed=7)
    assert torch.equal(full.mask[:2], part.mask)


def test_toy_square_pos_mask_near_square():
    clf, q = _toy(32)
    q = square(32, 6, 18, 8)
    clf = cnnlens.Classifier(SquareMeanNet(q).eval())
    res = dynamic_ablation(clf, torch.ones(2, 1, 32, 32), rule="pos", iterations=500, superpixels=0, seed=0)
    near = torch.zeros(32, 32, dtype=torch.bool)
    near[6 - 3 : 6 + 8 + 3, 18 - 3 : 18 + 8 + 3] = True  # the square grown by 3 pixels
    for m in res.mask:
        assert m[q].float().mean() > 0.9  # the rule needs > 90% of the square
        assert not bool((m & ~near).any())  # nothing far from the square
        assert int(m.sum()) < 2 * int(q.sum())


def test_no_acceptance_reports_J_and_mar_1():
    q = torch.ones(16, 16, dtype=torch.bool)  # the whole image must be kept: nothing can pass
    clf = cnnlens.Classifier(SquareMeanNet(q, thresh=0.999).eval())
    with pytest.warns(UserWarning, match="no step was accepted"):
        res = dynamic_ablation(clf, torch.ones(2, 1, 16, 16), iterations=30, superpixels=0)
    assert torch.equal(res.accepted, torch.zeros(2, dtype=torch.long))
    assert bool(res.mask.all()) and float(res.cam.abs().sum()) == 0.0
    assert torch.equal(res.mar, torch.ones(2, dtype=torch.float64))
    assert not torch.isnan(res.cam).any()


def test_no_acceptance_warns_naming_the_images():
    q = torch.ones(16, 16, dtype=torch.bool)
    clf = cnnlens.Classifier(SquareMeanNet(q, thresh=0.999).eval())
    # image 0 (all ones, class 1) can accept nothing; image 1 (all zeros, class 0) accepts every step
    x = torch.stack([torch.ones(1, 16, 16), torch.zeros(1, 16, 16)])
    with pytest.warns(UserWarning) as rec:
        res = dynamic_ablation(clf, x, iterations=20, superpixels=0)
    msgs = [str(w.message) for w in rec if "no step was accepted" in str(w.message)]
    assert len(msgs) == 1 and "\n" not in msgs[0]
    assert "1 of 2 image(s) (image 0)" in msgs[0]
    assert "superpixels=0" not in msgs[0]  # already pixel mode: not suggested
    for hint in ("iterations", "fc"):
        assert hint in msgs[0]
    assert res.accepted.tolist()[0] == 0 and res.accepted.tolist()[1] > 0


def test_explain_da_methods_and_model_untouched(mnist):
    clf, x = mnist
    assert {"da_pos", "da_neg"} <= set(cnnlens.methods())
    state = {k: v.clone() for k, v in clf.model.state_dict().items()}
    grads = [p.requires_grad for p in clf.model.parameters()]
    e = cnnlens.explain(clf, x[:2], "da_pos", iterations=30, superpixels=0, seed=1)
    assert e.maps.shape == (2, 28, 28) and e.method == "da_pos"
    assert e.params["iterations"] == 30 and e.params["k"] == 4 and e.params["fc"] == 0.95
    assert e.params["seed"] == 1 and len(e.info["mar"]) == 2
    res = dynamic_ablation(clf, x[:2], iterations=30, superpixels=0, seed=1)
    assert torch.equal(e.maps, res.cam)
    e2 = cnnlens.explain(clf, x[:2], "da_neg", iterations=20, superpixels=0)
    assert e2.method == "da_neg"
    assert all(torch.equal(v, clf.model.state_dict()[k]) for k, v in state.items())
    assert grads == [p.requires_grad for p in clf.model.parameters()]
    assert no_hooks_left(clf.model) and not clf.model.training


def test_top_level_names():
    assert cnnlens.dynamic_ablation is dynamic_ablation
    assert cnnlens.AblationResult is AblationResult


@pytest.mark.parametrize(
    "kw, msg",
    [
        (dict(k=0), "k"),
        (dict(k=2.5), "k"),
        (dict(fc=0.0), "fc"),
        (dict(fc=1.5), "fc"),
        (dict(fc=float("nan")), "fc"),
        (dict(iterations=0), "iterations"),
        (dict(rule="both"), "rule"),
        (dict(superpixels=-1), "superpixels"),
        (dict(alpha_step=-0.1), "alpha_step"),
        (dict(batch_size=0), "batch_size"),
        (dict(speculation=0), "speculation"),
    ],
)
def test_bad_parameters(mnist, kw, msg):
    clf, x = mnist
    with pytest.raises(CnnlensError, match=msg):
        dynamic_ablation(clf, x[:1], iterations=kw.pop("iterations", 5), **kw)


def test_fc_one_is_allowed(mnist):
    clf, x = mnist
    res = dynamic_ablation(clf, x[:1], iterations=10, fc=1.0, superpixels=0)
    assert res.params["fc"] == 1.0


def test_explicit_other_target_is_an_error(mnist):
    clf, x = mnist
    y = clf.predict(x)
    other = (y + 1) % 10
    with pytest.raises(CnnlensError, match="explicit target differs"):
        dynamic_ablation(clf, x, rule="pos", iterations=5, target=other)
    with pytest.raises(CnnlensError, match="explicit target differs"):
        cnnlens.explain(clf, x, "da_neg", target=other, iterations=5)
    # the predicted class given explicitly is fine
    res = dynamic_ablation(clf, x, rule="pos", iterations=5, superpixels=0, target=y)
    assert torch.equal(res.targets, y)


def test_bad_proposals_and_images(mnist):
    clf, x = mnist
    with pytest.raises(CnnlensError, match="shape"):
        dynamic_ablation(clf, x[:1], iterations=5, proposals=torch.rand(1, 3, 3, 4))
    with pytest.raises(CnnlensError, match="yielded"):
        dynamic_ablation(clf, x[:1], iterations=5, proposals=[iter([np.zeros((3, 4))])])
    with pytest.raises(CnnlensError, match="uniforms"):
        dynamic_ablation(clf, x[:1], iterations=5, proposals=torch.full((1, 6, 3, 4), 2.0, dtype=torch.float64))
    with pytest.raises(CnnlensError, match="NaN"):
        dynamic_ablation(clf, torch.full((1, 1, 28, 28), float("nan")), iterations=5)
