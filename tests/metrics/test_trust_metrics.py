"""Localisation, sensitivity and complexity metrics (docs/algorithms.md §3): closed-form cases, and
Quantus 0.6.0 / captum as oracles on the bundled MNIST CNN with the same images, maps and noise.

Where Quantus's definition differs from the cited paper (relevance mass accuracy on signed maps,
the pointing game on constant maps or empty masks), the difference is pinned here and the paper's
formula is tested on a closed-form case instead."""
import numpy as np
import pytest
import torch
from torch import nn

import cnnlens
from cnnlens.errors import CnnlensError
from cnnlens.metrics import compare, evaluate
from cnnlens.metrics.complexity import entropy, gini
from cnnlens.metrics.localisation import pointing_game, relevance_mass_accuracy, relevance_rank_accuracy
from cnnlens.metrics.robustness import perturbations

N = 16
R, S = 0.02, 6  # radius and samples of the sensitivity oracles


@pytest.fixture(scope="module")
def mnist():
    from cnnlens import zoo

    torch.set_num_threads(1)
    clf = zoo.load_classifier("mnist_cnn")
    x = zoo.load_dataset("mnist").images[:N]
    exp = cnnlens.explain(clf, x, "saliency")
    masks = x[:, 0] > 0.5  # the digit's strokes
    return clf, x, exp, masks


# ---------------------------------------------------------------- closed-form cases
def test_map_equal_to_mask_is_perfect():
    g = torch.Generator().manual_seed(0)
    masks = torch.rand(5, 12, 12, generator=g) > 0.7
    maps = masks.float()
    assert pointing_game(maps, masks)[0].tolist() == [1.0] * 5
    assert relevance_mass_accuracy(maps, masks)[0].tolist() == [1.0] * 5
    assert relevance_rank_accuracy(maps, masks)[0].tolist() == [1.0] * 5


def test_localisation_paper_formulas():
    masks = torch.zeros(1, 4, 4, dtype=torch.bool)
    masks[0, 0, :2] = True  # K = 2
    maps = torch.zeros(1, 4, 4)
    maps[0, 0, 0], maps[0, 3, 3], maps[0, 2, 2], maps[0, 1, 1] = 3.0, 1.0, -5.0, 2.0
    # RMA: positive relevance only: 3 / (3 + 1 + 2)
    assert relevance_mass_accuracy(maps, masks)[0].item() == pytest.approx(0.5)
    # RRA: top-2 = {(0,0): 3, (1,1): 2}; one of them in M
    assert relevance_rank_accuracy(maps, masks)[0].item() == pytest.approx(0.5)
    assert pointing_game(maps, masks)[0].item() == 1.0
    # tolerance: the maximum at (3,3) is √13 ≈ 3.61 px from (0,1)
    far = torch.zeros(1, 4, 4)
    far[0, 3, 3] = 1.0
    assert pointing_game(far, masks, tolerance=3.5)[0].item() == 0.0
    assert pointing_game(far, masks, tolerance=3.7)[0].item() == 1.0


def test_constant_maps_and_empty_masks():
    masks = torch.zeros(2, 6, 6, dtype=torch.bool)
    masks[:, :3] = True
    const = torch.stack([torch.zeros(6, 6), torch.full((6, 6), 2.0)])
    assert pointing_game(const, masks) == (pytest.approx(torch.zeros(2, dtype=torch.float64)), 2)
    assert relevance_rank_accuracy(const, masks)[1] == 2
    rma, n_none = relevance_mass_accuracy(const, masks)
    assert rma.tolist() == [0.0, 0.5] and n_none == 1  # the positive constant map is defined: |M| / n
    bad = masks.clone()
    bad[1] = False
    with pytest.raises(CnnlensError, match="mask of image 1 is empty"):
        pointing_game(const, bad)


def test_constant_map_gini_zero_entropy_maximal():
    n = 7 * 9
    const = torch.full((2, 7, 9), 3.0)
    const[1] = -3.0
    g, _ = gini(const)
    h, _ = entropy(const)
    assert g.abs().max().item() < 1e-12
    assert h.tolist() == pytest.approx([np.log(n)] * 2)
    one = torch.zeros(1, 7, 9)
    one[0, 3, 4] = -2.0
    assert gini(one)[0].item() == pytest.approx((n - 1) / n) and entropy(one)[0].item() == 0.0
    assert gini(torch.zeros(1, 7, 9)) == (pytest.approx(torch.zeros(1, dtype=torch.float64)), 1)
    # a random map lies strictly between
    r = torch.rand(1, 7, 9, generator=torch.Generator().manual_seed(0))
    assert 0 < gini(r)[0].item() < (n - 1) / n and 0 < entropy(r)[0].item() < np.log(n)


def test_sensitivity_of_an_input_independent_map_is_zero():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(2 * 8 * 8, 3)).eval()  # saliency = max_c |w|, whatever x
    clf = cnnlens.Classifier(net)
    x = torch.rand(4, 2, 8, 8)
    exp = cnnlens.explain(clf, x, "saliency")
    res = evaluate(clf, x, exp, metrics=["max_sensitivity", "avg_sensitivity"],
                   metric_params={"avg_sensitivity": {"normalise": True, "n_samples": 3}})
    assert res["max_sensitivity"].per_image.abs().max().item() < 1e-6
    assert res["avg_sensitivity"].per_image.abs().max().item() < 1e-6
    assert res["avg_sensitivity"].params["n_samples"] == 3 and res["max_sensitivity"].params["radius"] == 0.02


def test_sensitivity_is_batch_independent_and_validated(mnist):
    clf, x, exp, _ = mnist
    whole = evaluate(clf, x[:6], cnnlens.explain(clf, x[:6], "saliency"),
                     metrics=["avg_sensitivity"], metric_params={"avg_sensitivity": {"n_samples": 2}})
    part = evaluate(clf, x[3:5], cnnlens.explain(clf, x[3:5], "saliency", first_index=3), first_index=3,
                    metrics=["avg_sensitivity"], metric_params={"avg_sensitivity": {"n_samples": 2}})
    np.testing.assert_allclose(part["avg_sensitivity"].per_image, whole["avg_sensitivity"].per_image[3:5], rtol=1e-6)
    with pytest.raises(CnnlensError, match="no option 'radus'"):
        evaluate(clf, x[:2], exp.maps[:2], metrics=["sparseness"], metric_params={"sparseness": {"radus": 1}})
    with pytest.raises(CnnlensError, match="not among the metrics"):
        evaluate(clf, x[:2], exp.maps[:2], metrics=["sparseness"], metric_params={"max_sensitivity": {}})
    with pytest.raises(CnnlensError, match="pass an Explanation"):
        evaluate(clf, x[:2], exp.maps[:2], metrics=["max_sensitivity"])
    with pytest.raises(CnnlensError, match="needs masks"):
        evaluate(clf, x[:2], exp.maps[:2], metrics=["pointing_game"])


def test_compare_random_row_has_no_sensitivity(mnist):
    clf, x, _, masks = mnist
    t = compare(clf, x[:3], methods=["saliency"], metrics=["rma", "max_sensitivity"], masks=masks[:3],
                metric_params={"max_sensitivity": {"n_samples": 2}})
    assert np.isnan(t.value("random", "max_sensitivity")) and not np.isnan(t.value("random", "rma"))
    assert t.value("saliency", "max_sensitivity") > 0


# ---------------------------------------------------------------- Quantus as the oracle
@pytest.fixture(scope="module")
def quantus():
    return pytest.importorskip("quantus")


def _np(exp_maps):
    return exp_maps.unsqueeze(1).numpy().astype(np.float32)


def test_localisation_matches_quantus(mnist, quantus):
    clf, x, exp, masks = mnist
    y = exp.targets.numpy()
    a, s = _np(exp.maps), masks.unsqueeze(1).numpy().astype(np.float32)
    res = evaluate(clf, x, exp, metrics=["pointing_game", "rma", "rra"], masks=masks)
    kw = dict(model=None, x_batch=x.numpy(), y_batch=y, a_batch=a, s_batch=s)
    q_pg = quantus.PointingGame(disable_warnings=True)(**kw)
    q_rma = quantus.RelevanceMassAccuracy(disable_warnings=True)(**kw)
    q_rra = quantus.RelevanceRankAccuracy(disable_warnings=True)(**kw)
    np.testing.assert_array_equal(res["pointing_game"].per_image.numpy(), np.asarray(q_pg, dtype=float))
    np.testing.assert_allclose(res["rma"].per_image.numpy(), q_rma, atol=1e-6)  # saliency ≥ 0: Σ R⁺ = Σ R
    np.testing.assert_allclose(res["rra"].per_image.numpy(), q_rra, atol=1e-12)
    assert 0 < res["rma"].mean < 1


def test_quantus_differs_from_the_paper_where_documented(quantus):
    masks = torch.zeros(1, 1, 4, 4)
    masks[0, 0, 0, :2] = 1
    signed = torch.zeros(1, 1, 4, 4)
    signed[0, 0, 0, 0], signed[0, 0, 3, 3] = 2.0, -1.0
    kw = dict(model=None, x_batch=np.zeros((1, 1, 4, 4), np.float32), y_batch=np.zeros(1, int),
              s_batch=masks.numpy())
    # RMA: Quantus sums signed relevance (2 / (2 − 1) = 2); Arras et al. count positive relevance only
    q = quantus.RelevanceMassAccuracy(disable_warnings=True, normalise=False)(a_batch=signed.numpy(), **kw)
    assert q[0] == pytest.approx(2.0)
    assert relevance_mass_accuracy(signed[:, 0], masks[:, 0])[0].item() == pytest.approx(1.0)
    # pointing game on a constant map: every pixel ties for the maximum, Quantus scores a hit; we
    # score 0 and count it
    # score 0 and count it (Quantus refuses a batch of constant maps only, so one more map goes along)
    a = np.ones((2, 1, 4, 4), np.float32)
    a[1, 0, 3, 3] = 2.0
    kw2 = dict(model=None, x_batch=np.zeros((2, 1, 4, 4), np.float32), y_batch=np.zeros(2, int),
               s_batch=np.concatenate([masks.numpy()] * 2))
    q = quantus.PointingGame(disable_warnings=True, normalise=False)(a_batch=a, **kw2)
    assert [bool(v) for v in q] == [True, False]
    assert pointing_game(torch.from_numpy(a[:, 0]), torch.cat([masks[:, 0]] * 2)) == (
        pytest.approx(torch.zeros(2, dtype=torch.float64)), 1)


def test_complexity_matches_quantus(mnist, quantus):
    clf, x, exp, _ = mnist
    res = evaluate(clf, x, exp, metrics=["sparseness", "complexity"])
    kw = dict(model=None, x_batch=x.numpy(), y_batch=exp.targets.numpy(), a_batch=_np(exp.maps))
    q_sp = quantus.Sparseness(disable_warnings=True)(**kw)  # |a| / max|a|, then + 1e-7
    q_cx = quantus.Complexity(disable_warnings=True)(**kw)
    np.testing.assert_allclose(res["sparseness"].per_image.numpy(), q_sp, atol=1e-5)
    np.testing.assert_allclose(res["complexity"].per_image.numpy(), q_cx, atol=1e-5)


def _saliency_np(clf):
    def explain_func(model, inputs, targets, **kwargs):
        with torch.enable_grad():
            m = cnnlens.explain(clf, torch.as_tensor(inputs), "saliency", target=torch.as_tensor(targets)).maps
        return m.unsqueeze(1).numpy()
    return explain_func


class _Replay:
    """Quantus's perturb_func: hands back the perturbed batches cnnlens drew (batch-major, sample-minor)."""

    def __init__(self, xs, batch_size):
        self.xs, self.b, self.calls = xs, batch_size, 0

    def __call__(self, arr, indices, **kwargs):
        n_samples = self.xs.shape[0]
        batch, step = divmod(self.calls, n_samples)
        self.calls += 1
        out = self.xs[step, batch * self.b: batch * self.b + arr.shape[0]]
        return out.reshape(arr.shape[0], -1).numpy()


class _Model(nn.Module):
    def __init__(self, clf):
        super().__init__()
        self.clf = clf

    def forward(self, x):
        return self.clf.forward_unchecked(x)


@pytest.mark.parametrize("normalise", [False, True])
def test_sensitivity_matches_quantus(mnist, quantus, normalise):
    clf, x, exp, _ = mnist
    res = evaluate(clf, x, exp, metrics=["max_sensitivity", "avg_sensitivity"],
                   metric_params={m: {"radius": R, "n_samples": S, "normalise": normalise}
                                  for m in ("max_sensitivity", "avg_sensitivity")})
    xs = (x.unsqueeze(0) + perturbations(x, R, S)).clamp(0, 1)  # the noise cnnlens drew (seed 0)
    denominator = {} if normalise else {"norm_denominator": lambda a: np.ones(a.shape[0])}
    for name, cls in (("max_sensitivity", quantus.MaxSensitivity), ("avg_sensitivity", quantus.AvgSensitivity)):
        metric = cls(nr_samples=S, perturb_func=_Replay(xs, 8), disable_warnings=True, **denominator)
        q = metric(model=_Model(clf).eval(), x_batch=x.numpy(), y_batch=exp.targets.numpy(), a_batch=_np(exp.maps),
                   explain_func=_saliency_np(clf), batch_size=8, device="cpu")
        np.testing.assert_allclose(res[name].per_image.numpy(), q, rtol=1e-5)


def test_max_sensitivity_matches_captum(mnist):
    captum_metrics = pytest.importorskip("captum.metrics")
    clf, x, exp, _ = mnist
    res = evaluate(clf, x, exp, metrics=["max_sensitivity"],
                   metric_params={"max_sensitivity": {"radius": R, "n_samples": S, "normalise": True}})
    xs = (x.unsqueeze(0) + perturbations(x, R, S)).clamp(0, 1)
    replay = xs.transpose(0, 1).reshape(N * S, *x.shape[1:])  # captum repeats each image S times in a row

    def explanation_func(inputs, target):
        with torch.enable_grad():
            x_in = inputs[0] if isinstance(inputs, tuple) else inputs
            return (cnnlens.explain(clf, x_in, "saliency", target=target).maps,)  # captum wants a tuple here

    ours = captum_metrics.sensitivity_max(explanation_func, x, perturb_func=lambda inp, r: replay,
                                          n_perturb_samples=S, perturb_radius=R, target=exp.targets)
    np.testing.assert_allclose(res["max_sensitivity"].per_image.numpy(), ours.double().numpy(), rtol=1e-5)


def test_cli_evaluate_with_masks(tmp_path, capsys):
    from cnnlens import zoo
    from cnnlens.cli import main

    masks = (zoo.load_dataset("mnist").images[:5, 0] > 0.5).numpy()
    np.save(tmp_path / "m.npy", masks)
    base = ["evaluate", "--model", "mnist_cnn", "--dataset", "mnist", "--n", "3", "--quiet", "--methods", "saliency",
            "--metrics", "pointing_game,rma,rra,sparseness,complexity,max_sensitivity", "--out", str(tmp_path / "o")]
    assert main(base) == 2
    assert "need ground-truth masks: --masks FILE" in capsys.readouterr().err
    assert main(base + ["--masks", str(tmp_path / "m.npy")]) == 0
    printed = capsys.readouterr().out
    assert "POINTING_GAME ↑" in printed and "MAX_SENSITIVITY ↓" in printed and "| random |" in printed


@pytest.mark.filterwarnings("ignore::FutureWarning")  # torch.jit.script/save on recent torch
def test_texture_scenes_class_masks_and_cli_derives_them(tmp_path, capsys):
    """texture_scenes: the ground truth of a scene is the region of the concepts that define its
    class; ``evaluate --dataset texture_scenes`` uses it when no --masks is given and leaves out
    the 'plain' scenes (defined by absent concepts: no region), with a warning."""
    from cnnlens import zoo
    from cnnlens.cli import main
    from cnnlens.data.texture_scenes import CLASS_OBJECTS

    ds = zoo.load_dataset("texture_scenes", split="test").subset(slice(0, 12))
    m = ds.class_masks()
    concept = {n: i for i, n in enumerate(ds.concept_names)}
    for i in range(12):
        want = torch.zeros(ds.masks.shape[1:], dtype=torch.bool)
        for c in CLASS_OBJECTS[ds.class_names[int(ds.labels[i])]]:
            want |= ds.masks[i] == concept[c]
        assert torch.equal(m[i], want)
    assert bool(m[ds.labels == 3].flatten(1).any(1).any()) is False  # plain: no region
    assert bool(m[ds.labels != 3].flatten(1).any(1).all())
    red = ds.class_masks(torch.full((12,), 2))  # another class's region on request
    assert torch.equal(red, ds.masks == concept["red_disc"])
    with pytest.raises(CnnlensError, match="classes has 3 entries for 12"):
        ds.class_masks([0, 1, 2])

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                              torch.nn.Flatten(), torch.nn.Linear(4, 4))
    path = tmp_path / "tiny.pt"
    torch.jit.save(torch.jit.script(net), str(path))
    n_plain = int((ds.labels == 3).sum())
    assert 0 < n_plain < 12
    out = tmp_path / "o"
    with pytest.warns(UserWarning, match=f"left out {n_plain} of 12 images with no ground-truth region"):
        code = main(["evaluate", "--model", str(path), "--dataset", "texture_scenes", "--split", "test",
                     "--limit", "12", "--quiet", "--methods", "saliency", "--metrics", "pointing_game,rma",
                     "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "POINTING_GAME ↑" in printed
