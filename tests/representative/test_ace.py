"""ACE (Automatic Concept-based Explanations; docs/algorithms.md §5, cnnlens.representative.ace).

The oracle is a hand-set model whose decision depends on one known texture: ψ = local variance
("energy") and local mean of the image in a 5×5 window; the class-1 logit is 10 × the mean
energy − 0.4, so an image is class 1 exactly when it holds the checkerboard square (whose place
is known per image). ACE's most important concept must be made of checkerboard segments, the
plain-background concept must not be important, and the heatmap mass must lie on the square.
"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import cnnlens
from cnnlens import CnnlensError
from cnnlens.representative import ACE, ace_reuse
from cnnlens.representative.ace import segment_images, segment_patches

SIZE, SIDE = 32, 12
OPTS = {"n_segments": (8, 16, 32), "n_clusters": 8, "n_members": 20, "n_random": 10, "pool": "flatten",
        "fill": 0.3}


class Energy(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = F.avg_pool2d(x, 5, 1, 2, count_include_pad=False)
        v = F.avg_pool2d(x * x, 5, 1, 2, count_include_pad=False) - m * m
        return torch.cat([v.clamp_min(0) * 10, m], 1)


class TextureNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.inp = nn.Conv2d(1, 1, 1)  # identity: tells the Classifier the input has 1 channel
        self.features = Energy()
        self.pool, self.flat, self.fc = nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2, 2)
        with torch.no_grad():
            self.inp.weight.fill_(1.0)
            self.inp.bias.zero_()
            self.fc.weight.copy_(torch.tensor([[0.0, 0.0], [10.0, 0.0]]))
            self.fc.bias.copy_(torch.tensor([0.0, -0.4]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.flat(self.pool(self.features(self.inp(x)))))


def scenes(textured: list[int], seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Grey 0.3 scenes with a 12×12 square at a random place: a 0.1/0.9 checkerboard where
    ``textured[i]``, else (every other image) a flat 0.6 square or nothing. Returns images and the
    squares' masks."""
    g = torch.Generator().manual_seed(seed)
    n = len(textured)
    x = torch.full((n, 1, SIZE, SIZE), 0.3)
    masks = torch.zeros(n, SIZE, SIZE, dtype=torch.bool)
    yy, xx = torch.meshgrid(torch.arange(SIZE), torch.arange(SIZE), indexing="ij")
    checker = torch.where((yy + xx) % 2 == 0, 0.9, 0.1)
    for i in range(n):
        r, c = torch.randint(0, SIZE - SIDE, (2,), generator=g).tolist()
        masks[i, r:r + SIDE, c:c + SIDE] = True
        if textured[i]:
            x[i, 0][masks[i]] = checker[masks[i]]
        elif i % 4 == 1:
            x[i, 0][masks[i]] = 0.6
    return x, masks


@pytest.fixture(scope="module")
def toy():
    torch.set_num_threads(1)
    clf = cnnlens.Classifier(TextureNet().eval(), feature_layer="features")
    labels = torch.tensor([1, 0] * 10)
    x, masks = scenes(labels.tolist(), 0)
    assert clf.predict(x).tolist() == labels.tolist()
    ace = ACE(clf, x[labels == 1], x[labels == 0], target=1, seed=0, **OPTS)
    test_x, test_masks = scenes([1, 1, 1, 0, 0, 0], 5)
    return {"clf": clf, "x": x, "masks": masks, "labels": labels, "ace": ace, "test_x": test_x,
            "test_masks": test_masks, "maps": ace.heatmaps(test_x)}


def _texture_share(ace: ACE, k: int, masks: torch.Tensor) -> float:
    """Mean share of concept k's member pixels inside the discovery images' squares."""
    shares = [float((m & masks[i]).sum() / m.sum()) for i, m in ace.concept_masks(k)]
    return sum(shares) / len(shares)


def test_the_most_important_concept_is_the_texture(toy):
    ace, disc_masks = toy["ace"], toy["masks"][toy["labels"] == 1]
    assert len(ace) >= 2 and bool(ace.important_.any())
    # importance (TCAV score), ties by TCAV magnitude: the ranking keep_masks uses
    rank = sorted(range(len(ace)), key=lambda k: (-float(ace.importance_[k]), -float(ace.tcav_magnitude_[k])))
    top = rank[0]
    assert ace.important_[top] and _texture_share(ace, top, disc_masks) > 0.8
    assert float(ace.p_values_[top]) < 0.05
    # the plain-background concept (no square pixel) is found and is not important
    background = [k for k in range(len(ace)) if _texture_share(ace, k, disc_masks) < 0.05]
    assert background and not any(bool(ace.important_[k]) for k in background)


def test_heatmap_mass_lies_on_the_texture(toy):
    maps, masks = toy["maps"], toy["test_masks"]
    assert maps.shape == (6, SIZE, SIZE) and bool((maps >= 0).all())
    for i in range(3):  # textured unseen images
        assert float((maps[i] * masks[i]).sum() / maps[i].sum()) > 0.7
    assert float(maps[3:].sum()) == 0.0  # no texture: no segment of an important concept


def test_keep_masks_add_segments_until_more_than_keep(toy):
    ace, x, masks = toy["ace"], toy["test_x"], toy["test_masks"]
    kept = ace.keep_masks(x, keep=0.1)
    frac = kept.flatten(1).float().mean(1)
    for i in range(3):
        assert float(frac[i]) > 0.1 and float((kept[i] & masks[i]).sum() / kept[i].sum()) > 0.7
    assert not kept[3:].any()
    # with a larger keep every important segment is in: the union of all of them (≤ 20 % here)
    full = ace.keep_masks(x, keep=0.9)
    assert torch.equal(full, ace.heatmaps(x) > 0)


def test_fixed_seed_is_reproducible_and_the_seed_matters(toy):
    clf, x, labels = toy["clf"], toy["x"], toy["labels"]
    again = ACE(clf, x[labels == 1], x[labels == 0], target=1, seed=0, **OPTS)
    assert torch.equal(again.heatmaps(toy["test_x"]), toy["maps"])
    assert torch.equal(again.tcav_, toy["ace"].tcav_)
    other = ACE(clf, x[labels == 1], x[labels == 0], target=1, seed=1, **OPTS)
    assert not torch.equal(other.tcav_, toy["ace"].tcav_) or not torch.equal(other.centres_, toy["ace"].centres_)


def test_segments_and_patches():
    x, masks = scenes([1], 3)
    segs = segment_images(x, (8, 16))[0]
    m = segs.masks()
    assert m.shape[1:] == (SIZE, SIZE) and len(segs) == m.shape[0] > 4
    assert len({bytes(s.flatten().numpy()) for s in m}) == m.shape[0]  # no repeated segment
    patches = segment_patches(x[0], m, torch.tensor([0.3]))
    assert patches.shape == (m.shape[0], 1, SIZE, SIZE) and bool(((patches >= 0) & (patches <= 1)).all())
    # a segment that is the whole image comes back unchanged
    whole = segment_patches(x[0], torch.ones(1, SIZE, SIZE, dtype=torch.bool), torch.tensor([0.3]))
    torch.testing.assert_close(whole[0], x[0])


# ------------------------------------------------------------------ through explain()
def test_explain_ace_shape_params_and_registration(toy):
    assert "ace" in cnnlens.methods() and cnnlens.methods().index("ace") == cnnlens.methods().index("ri") + 1
    info = cnnlens.attribution.method_info("ace")
    assert info.uses_layer and info.stochastic and "reference" in info.params and "max_images" in info.params
    clf, x = toy["clf"], toy["x"]
    e = cnnlens.explain(clf, toy["test_x"][:3], "ace", reference=x, seed=0, **OPTS)
    assert isinstance(e, cnnlens.Explanation) and e.maps.shape == (3, SIZE, SIZE) and e.method == "ace"
    assert e.targets.tolist() == [1, 1, 1]
    assert e.params["n_segments"] == (8, 16, 32) and e.params["max_images"] == 50 and e.params["fill"] == 0.3
    assert e.params["layer"] == "features" and e.params["seed_stream"] == "ace.concepts"
    assert e.info["classes"][1]["concepts"]
    for i in range(3):
        assert float((e.maps[i] * toy["test_masks"][i]).sum() / e.maps[i].sum()) > 0.7


def test_explain_with_a_prepared_ace_and_a_wrong_target(toy):
    clf, ace = toy["clf"], toy["ace"]
    e = cnnlens.explain(clf, toy["test_x"][:2], "ace", reference=ace)
    torch.testing.assert_close(e.maps, toy["maps"][:2])
    with pytest.raises(CnnlensError, match="ACE run of class"):
        cnnlens.explain(clf, toy["test_x"][3:4], "ace", reference=ace)  # predicted class 0


# ------------------------------------------------------------------ bad input: one line naming the problem
def _one_line(exc: pytest.ExceptionInfo) -> str:
    msg = str(exc.value)
    assert "\n" not in msg, msg
    return msg


def test_bad_input_errors_are_one_line(toy):
    clf, x, labels = toy["clf"], toy["x"], toy["labels"]
    pos, neg = x[labels == 1], x[labels == 0]
    with pytest.raises(CnnlensError) as e:  # too few segments to cluster
        ACE(clf, pos[:1], neg, target=1, n_segments=(2,), n_clusters=25)
    assert "too few to cluster" in _one_line(e) and "n_clusters=25" in str(e.value)
    with pytest.raises(CnnlensError) as e:  # one class: no image left for the random sets
        cnnlens.explain(clf, pos[:1], "ace", reference=pos, **OPTS)
    assert "one class" in _one_line(e)
    with pytest.raises(CnnlensError) as e:  # the explained class is absent from the reference
        cnnlens.explain(clf, pos[:1], "ace", reference=neg, **OPTS)
    assert "no reference image is predicted as class" in _one_line(e)
    with pytest.raises(CnnlensError) as e:
        cnnlens.explain(clf, pos[:1], "ace")
    assert "needs reference=" in _one_line(e)
    with pytest.raises(CnnlensError) as e:
        cnnlens.explain(clf, pos[:1], "ace", reference=x[:0])
    assert "empty" in _one_line(e)
    with pytest.raises(CnnlensError) as e:  # wrong size
        cnnlens.explain(clf, pos[:1], "ace", reference=torch.rand(4, 1, 16, 16))
    assert "shape" in _one_line(e)
    with pytest.raises(CnnlensError) as e:
        ACE(clf, pos, torch.rand(3, 3, SIZE, SIZE), target=1)
    assert "random images" in _one_line(e) and "channels" in str(e.value)
    for bad, name in (({"n_segments": ()}, "n_segments"), ({"n_random": 1}, "n_random"),
                      ({"pool": "max"}, "pool"), ({"alpha": 1.5}, "alpha"), ({"fill": 2.0}, "fill"),
                      ({"min_image_share": -0.1}, "min_image_share")):
        with pytest.raises(CnnlensError) as e:
            ACE(clf, pos, neg, target=1, **{**OPTS, **bad})
        assert name in _one_line(e)
    with pytest.raises(CnnlensError) as e:
        toy["ace"].assign(torch.rand(1, 1, 16, 16))
    assert "size" in _one_line(e)


# ------------------------------------------------------------------ reuse (RI Table 1's ACE row)
def test_ace_reuse_runs_once_per_cluster_and_scores_keep_masks(toy):
    clf, x, labels = toy["clf"], toy["x"], toy["labels"]
    # two "k-means clusters" of R: the 10 textured images with 3 others (class 1), the 7 others (class 0)
    clusters = torch.where((labels == 1) | (torch.arange(20) < 6), 0, 1)
    unseen = toy["test_x"]
    nearest = torch.tensor([0, 0, 0, 1, 1, 1])
    res = ace_reuse(clf, x, clusters, unseen, nearest, max_images=4, max_random_images=6, seed=0,
                    **{**OPTS, "n_members": 10})
    assert res.maps.shape == (6, SIZE, SIZE) and res.cluster_class.tolist() == [1, 0]
    assert [r.target for r in res.runs] == [1, 0] and res.runs[0].n_discovery == 4
    assert res.runs[0].n_random_images == 6 and not res.skipped
    kept = res.keep_masks(0.1)
    assert kept.shape == (6, SIZE, SIZE)
    assert all(float(kept[i].float().mean()) > 0.1 for i in range(3))
    ad, ai = res.scores(clf, unseen, clf.predict(unseen), keep=0.1)
    assert ad.shape == ai.shape == (6,) and bool(((ad >= 0) & (ad <= 1)).all())


def test_evaluate_reuse_has_an_ace_row(toy):
    """RI Table 1's fifth row through the reuse evaluation: methods=(…, "ace")."""
    import warnings

    clf, x = toy["clf"], toy["x"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # RI's degenerate-head notice (GAP + one linear layer)
        ri = cnnlens.RepresentativeInterpreter(clf, x, n_boundaries=4)
    table = ri.evaluate_reuse(toy["test_x"], seeds=1, methods=("ace",), per_class=None, n_unseen=None, n_centres=2,
                              progress=False, ace_params={**OPTS, "n_members": 10, "max_images": 4,
                                                          "max_random_images": 6})
    row = table.per_seed["ace"][0]
    assert set(row) == {"mAD", "mAI", "mismatch"} and 0 <= row["mAD"] <= 100 and 0 <= row["mAI"] <= 100
    assert "| ACE |" in table.to_markdown()
    with pytest.raises(CnnlensError, match="ace_params"):
        ri.evaluate_reuse(toy["test_x"], seeds=1, methods=("ace",), ace_params=[1])


def test_real_task_heatmaps_are_reproducible_for_a_fixed_seed():
    """On a shipped task model and real Fashion-MNIST images (Sneaker vs Ankle boot, 64²), two ACE
    runs with the same seed give identical concepts and heatmaps, and an important concept lights up
    its members' images."""
    from cnnlens import zoo
    from cnnlens.data.datasets import upsample_images

    clf = zoo.load_classifier("fashion_task_sneaker_boot")
    ds = zoo.load_dataset("fashion_mnist", split="test", classes=[7, 9])
    x = upsample_images(ds.images[:120], clf.input_shape[-1])
    pred = clf.predict(x)
    disc, rand = x[pred == 1][:30], x[pred == 0][:30]  # Ankle boot (class 1 of the task) vs Sneaker
    opts = {"n_segments": (8, 16), "n_clusters": 6, "n_members": 10, "n_random": 15}
    a = ACE(clf, disc, rand, target=1, seed=3, **opts)
    b = ACE(clf, disc, rand, target=1, seed=3, **opts)
    assert torch.equal(a.centres_, b.centres_) and torch.equal(a.tcav_, b.tcav_)
    assert bool(a.important_.any())
    imgs = torch.cat([disc, x[pred == 1][30:36]])  # the discovery images hold the concepts' members
    ma, mb = a.heatmaps(imgs), b.heatmaps(imgs)
    assert torch.equal(ma, mb) and float(ma.sum()) > 0
    unseen = imgs[30:]
    assert torch.equal(a.keep_masks(unseen, 0.2), b.keep_masks(unseen, 0.2))
