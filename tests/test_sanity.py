"""Sanity checks (issue 27, docs/algorithms.md §10.1): :mod:`cnnlens.sanity` and the ``mprt``/``drt`` metrics.

- **Oracle: Quantus 0.6.0** ``MPRT`` (cascading, ``layer_order="top_down"``) on the MNIST CNN
  with the same randomised weights (Quantus re-initialises each layer with ``reset_parameters()``
  after ``torch.manual_seed(seed + 1)``; cnnlens takes that procedure as its ``init`` callable) and
  the same maps (Quantus's ``explain_func`` calls ``cnnlens.explain``): the per-image Spearman
  correlations, with and without absolute values, agree to float tolerance at every layer.
- Quantus's ``ssim`` inside ``MPRT`` sees the maps flattened to 1-D (``reshape(B, -1)``), not the
  2-D maps of the paper, and it has no HOG measure: SSIM and HOG are checked on closed-form cases
  instead (identical and affinely related maps score 1; a sign flip gives Spearman −1 and
  Spearman-abs 1).
- Closed form: a map that does not depend on the weights has similarity 1 at every step; a
  randomised copy differs from the original in exactly the intended layers; the user's model is
  untouched; the data randomisation pair memorised / did not generalise as recorded.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

import cnnlens
import cnnlens.metrics as M
from cnnlens import CnnlensError, sanity, zoo
from cnnlens.attribution import register, unregister
from cnnlens.explanation import Explanation
from cnnlens.models.mnist_cnn import MNIST_MEAN, MNIST_STD
from tests.attribution._helpers import assert_unchanged, snapshot


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """Tiny models gain nothing from threads; on a busy machine two threads cost 10-50x."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def mnist():
    clf = zoo.load_classifier("mnist_cnn")
    x = zoo.load_dataset("mnist").images[:16]
    return clf, x


def _quantus_mprt(clf, x, method, abs_, seed=42):
    quantus = pytest.importorskip("quantus")

    def explain_func(model, inputs, targets, **_):
        c = cnnlens.Classifier(model, mean=MNIST_MEAN, std=MNIST_STD)
        e = cnnlens.explain(c, torch.as_tensor(inputs), method, target=torch.as_tensor(targets))
        return e.maps.detach().numpy()[:, None]

    y = clf.predict(x).numpy()
    metric = quantus.MPRT(layer_order="top_down", seed=seed, abs=abs_, normalise=False, disable_warnings=True,
                          display_progressbar=False)
    return metric(model=clf.model, x_batch=x.numpy(), y_batch=y, a_batch=None, explain_func=explain_func,
                  device="cpu", batch_size=len(y))


def _quantus_init(seed=42):
    def init(module, _seed):  # Quantus's procedure: the global seed seed + 1 before each reset
        torch.manual_seed(seed + 1)
        module.reset_parameters()
    return init


def test_cascading_spearman_matches_quantus(mnist):
    clf, x = mnist
    x, method = x[:8], "deeplift"  # signed maps, so that the abs variant differs
    res = sanity.model_randomisation(clf, x, [method], granularity="layer", init=_quantus_init(),
                                     measures=("spearman", "spearman_abs"))
    for abs_, measure in ((False, "spearman"), (True, "spearman_abs")):
        q = _quantus_mprt(clf, x, method, abs_)
        layers = [k for k in q if k != "original"]
        assert layers == res.steps == ["classifier.2", "classifier.0", "features.3", "features.0"]
        k = res.measures.index(measure)
        for s, layer in enumerate(layers):
            ours = res.values[method][s, k].numpy()
            np.testing.assert_allclose(ours, np.asarray(q[layer], dtype=float), atol=1e-9, rtol=0,
                                       err_msg=f"{method} {measure} at {layer}")
    assert not torch.allclose(res.values[method][:, 0], res.values[method][:, 1])


def test_closed_form_similarities():
    g = torch.Generator().manual_seed(1)
    a = torch.randn(3, 28, 28, generator=g)
    for b, measures in ((a, sanity.MEASURES), (3 * a, sanity.MEASURES), (3 * a + 2, ("spearman", "ssim", "hog"))):
        # identical / scaled maps score 1 everywhere; a shift changes |map|'s ranks, not the rest
        v, u = sanity.similarity(a, b, measures)
        torch.testing.assert_close(v, torch.ones_like(v), atol=1e-9, rtol=0)
        assert not u.any()
    v, _ = sanity.similarity(a, -a, ("spearman", "spearman_abs"))
    torch.testing.assert_close(v, torch.tensor([[-1.0] * 3, [1.0] * 3], dtype=torch.float64), atol=1e-12, rtol=0)
    # a constant map: Spearman and HOG undefined (0, counted); small maps use a smaller SSIM window/HOG cells
    v, u = sanity.similarity(torch.zeros(1, 12, 12), torch.rand(1, 12, 12, generator=g))
    assert u[[0, 1, 3]].all() and (v[[0, 1, 3]] == 0).all() and not u[2].any()
    # SSIM is the 2-D SSIM of the min-max normalised maps (the paper's), not Quantus's 1-D one
    from skimage.metrics import structural_similarity

    b = torch.rand(1, 28, 28, generator=g)
    a0, b0 = a[0].double(), b[0].double()
    ref = structural_similarity(((a0 - a0.min()) / (a0.max() - a0.min())).numpy(),
                                ((b0 - b0.min()) / (b0.max() - b0.min())).numpy(), data_range=1.0)
    assert abs(float(sanity.similarity(a[:1], b, ("ssim",))[0][0, 0]) - ref) < 1e-12
    with pytest.raises(CnnlensError, match="unknown similarity measure"):
        sanity.similarity(a, a, ("pearson",))


@pytest.fixture
def identity_method():
    @register("_test_image_map", description="the input image itself (does not depend on the weights)")
    def _image_map(clf, x, targets, *, seed, batch_size, layer):
        return Explanation(maps=x.mean(dim=1).detach(), targets=targets)

    yield "_test_image_map"
    unregister("_test_image_map")


def test_weight_independent_map_has_similarity_one(mnist, identity_method):
    clf, x = mnist
    before = snapshot(clf.model)
    for mode in ("cascading", "independent"):
        res = sanity.model_randomisation(clf, x[:4], [identity_method, "saliency"], mode=mode)
        v = res.values[identity_method]
        torch.testing.assert_close(v, torch.ones_like(v), atol=1e-9, rtol=0)
        assert (res.values["saliency"][-1, 0] < 0.5).all()  # while saliency does change
    assert_unchanged(clf.model, before)


def _differs(a: torch.nn.Module, b: torch.nn.Module) -> set[str]:
    sa, sb = a.state_dict(), b.state_dict()
    return {k.rsplit(".", 1)[0] for k in sa if not torch.equal(sa[k], sb[k])}


def test_randomised_copies_differ_in_exactly_the_intended_layers(mnist):
    clf, _ = mnist
    before = snapshot(clf.model)
    order = ["classifier.2", "classifier.0", "features.3", "features.0"]
    cascade = {}
    for k, (name, rclf) in enumerate(sanity.randomised_models(clf, "cascading", seed=5)):
        assert name == order[k] and rclf.model is not clf.model
        assert _differs(clf.model, rclf.model) == set(order[:k + 1])
        cascade[name] = {n: t.clone() for n, t in rclf.model.state_dict().items() if n.startswith(name + ".")}
    for name, rclf in sanity.randomised_models(clf, "independent", seed=5):
        assert _differs(clf.model, rclf.model) == {name}
        # one seed stream per layer: the same random weights as in the cascading run
        for n, t in cascade[name].items():
            assert torch.equal(rclf.model.state_dict()[n], t)
    full = sanity.fully_randomised(clf, seed=5)
    assert _differs(clf.model, full.model) == set(order)
    assert _differs(full.model, sanity.fully_randomised(clf, seed=5).model) == set()  # deterministic
    assert _differs(full.model, sanity.fully_randomised(clf, seed=6).model) == set(order)
    state = torch.random.get_rng_state()
    list(sanity.randomised_models(clf, init="normal"))
    assert torch.equal(state, torch.random.get_rng_state())  # the global RNG is left alone
    assert_unchanged(clf.model, before)


def test_blocks_of_a_staged_network():
    net = zoo.load_model("mobilenet_v2_imagenet") if _has("mobilenet_v2_imagenet") else None
    if net is None:
        pytest.skip("MobileNetV2 weights not installed")
    blocks = sanity.randomisation_blocks(net)
    names = [b[0] for b in blocks]
    assert names[:2] == ["features.0", "features.1"] and names[-1] == "classifier.1"
    assert len(names) == 20
    # a block holds its convs and BatchNorms; the layer granularity lists each of them
    assert "features.0.1" in dict(blocks)["features.0"]
    assert len(sanity.randomisation_blocks(net, "layer")) > 100
    # BatchNorm in a re-initialised block: weight 1, bias 0, running mean 0, running var 1
    clf = cnnlens.Classifier(net)
    name, rclf = next(sanity.randomised_models(clf, granularity="layer"))
    top_bn = dict(rclf.model.named_modules())["features.18.1"]
    name, rclf = next(iter(list(sanity.randomised_models(clf, granularity="block"))[1:2]))
    bn = dict(rclf.model.named_modules())["features.18.1"]
    assert name == "features.18" and float(bn.running_var.mean()) == 1.0 and float(bn.weight.detach().mean()) == 1.0
    assert top_bn is not bn


def _has(name: str) -> bool:
    return any(e.name == name and e.installed for e in zoo.catalog())


def test_result_table_dict_and_plot(mnist, tmp_path):
    clf, x = mnist
    mp = {"rise": {"grid": 4, "n_masks": 64}}
    res = sanity.model_randomisation(clf, x[:3], ["saliency", "rise"], seed=1, method_params=mp)
    assert res.params["method_params"]["rise"] == {"n_masks": 64, "grid": 4, "progress": False}
    # the reduced budgets are what a method gets without method_params, recorded
    entries = dict((e[0], e[2]) for e in sanity._method_entries(None, None, "reduced"))
    assert entries["lime"]["num_samples"] == sanity.REDUCED_BUDGETS["lime"]["num_samples"] == 200
    assert "n_masks" not in dict((e[0], e[2]) for e in sanity._method_entries(["rise"], None, "full"))["rise"]
    assert res.params["init"] == "reset" and res.params["granularity"] == "block"
    md = res.to_markdown()
    assert md.splitlines()[0] == "| method | Spearman abs | Spearman | SSIM | HOG |" and "| rise |" in md
    back = sanity.SanityResult.from_dict(__import__("json").loads(res.to_json(tmp_path / "r.json")))
    assert torch.equal(back.values["rise"], res.values["rise"]) and back.steps == res.steps
    fig = res.plot(["spearman_abs", "ssim"])
    assert len(fig.axes) == 2 and len(fig.axes[0].lines) >= 2
    res.save_plot(tmp_path / "p.png")
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"
    # the same seed holds RISE's masks fixed: two runs agree exactly
    again = sanity.model_randomisation(clf, x[:3], ["rise"], seed=1, method_params=mp)
    assert torch.equal(again.values["rise"], res.values["rise"])


def test_at_thins_the_cascade_and_independent_mode(mnist):
    clf, x = mnist
    full = sanity.model_randomisation(clf, x[:3], ["saliency"], measures=("spearman",))
    thin = sanity.model_randomisation(clf, x[:3], ["saliency"], measures=("spearman",), at=["classifier.0", "features.0"])
    assert thin.steps == ["classifier.0", "features.0"]
    assert torch.equal(thin.values["saliency"], full.values["saliency"][[1, 3]])
    ind = sanity.model_randomisation(clf, x[:3], ["saliency"], measures=("spearman",), mode="independent")
    assert ind.steps == full.steps and ind.kind == "independent"
    assert torch.equal(ind.values["saliency"][0], full.values["saliency"][0])  # the top layer alone: same model
    with pytest.raises(CnnlensError, match="not among the blocks"):
        sanity.model_randomisation(clf, x[:2], ["saliency"], at=["features.1"])


def test_bad_arguments(mnist):
    clf, x = mnist
    with pytest.raises(CnnlensError, match="granularity"):
        sanity.model_randomisation(clf, x[:2], ["saliency"], granularity="stage")
    with pytest.raises(CnnlensError, match="mode"):
        sanity.model_randomisation(clf, x[:2], ["saliency"], mode="bottom_up")
    with pytest.raises(CnnlensError, match="init"):
        sanity.model_randomisation(clf, x[:2], ["saliency"], init="xavier")
    with pytest.raises(CnnlensError, match="needs a reference set"):
        sanity.model_randomisation(clf, x[:2], ["ri"])
    with pytest.raises(CnnlensError, match="unknown method"):
        sanity.model_randomisation(clf, x[:2], ["nope"])
    assert "ri" not in sanity.sanity_methods() and "saliency" in sanity.sanity_methods()
    assert "ace" not in sanity.sanity_methods()


def test_data_randomisation_pair_and_metrics(mnist):
    clf, x = mnist
    true, rand = zoo.load_classifier("mnist_cnn_s"), zoo.load_classifier("mnist_cnn_s_random_labels")
    rec_t, rec_r = zoo.training_record("mnist_cnn_s"), zoo.training_record("mnist_cnn_s_random_labels")
    assert rec_r["train_accuracy"] >= 0.95 and rec_r["test_accuracy"] < 0.2  # memorised, chance on test
    assert rec_t["test_accuracy"] > 0.85 and rec_r["train_images"] == rec_t["train_images"] == 2000
    test = zoo.load_dataset("mnist", split="test").subset(slice(0, 200))
    assert float((rand.predict(test.images) == test.labels).float().mean()) < 0.25
    res = sanity.data_randomisation(true, rand, x[:4], ["saliency"])
    assert res.steps == ["random labels"] and res.values["saliency"].shape == (1, 4, 4)
    # the metrics: mprt agrees with the last cascading step, drt with data_randomisation
    e = cnnlens.explain(true, x[:4], "saliency")
    r = M.evaluate(true, x[:4], e, metrics=["mprt", "drt"], second_model=rand, seed=3)
    full = sanity.model_randomisation(true, x[:4], ["saliency"], seed=3, measures=("spearman_abs",))
    torch.testing.assert_close(r["mprt"].per_image, full.values["saliency"][-1, 0], atol=1e-12, rtol=0)
    torch.testing.assert_close(r["drt"].per_image, res.values["saliency"][0, 0], atol=1e-12, rtol=0)
    assert r["mprt"].direction == "↓" and r["mprt"].params["method"] == "saliency"
    with pytest.raises(CnnlensError, match="pass an Explanation"):
        M.evaluate(true, x[:4], e.maps, metrics=["mprt"])
    table = cnnlens.compare(true, x[:4], methods=["saliency"], metrics=["mprt"])
    assert table.value("saliency", "mprt") == pytest.approx(float(r["mprt"].per_image.mean()), abs=0.5)
    assert np.isnan(table.value("random", "mprt"))
