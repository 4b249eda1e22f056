"""Semantic labelling (SPEC §6.8) against an oracle: colour-detector filters on texture_scenes."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from cnnlens import Classifier
from cnnlens.data.texture_scenes import texture_scenes
from cnnlens.errors import CnnlensError
from cnnlens.nesy import NeSyModel
from cnnlens.nesy.labelling import concept_shares, label_filters, label_match_test, sanitize_concept


def _colour_net() -> Classifier:
    """1x1 filters: f0 red detector, f1 blue detector, f2 red again, f3 green-ish (grass)."""
    conv = nn.Conv2d(3, 4, 1)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([[2.0, -2.0, -2.0], [-2.0, -2.0, 2.0], [3.0, -3.0, -3.0],
                                        [-1.0, 2.0, -1.0]]).view(4, 3, 1, 1))
        conv.bias.copy_(torch.tensor([-0.5, -0.5, -0.5, -0.2]))
    net = nn.Sequential(conv, nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 4)).eval()
    return Classifier(net, input_shape=(3, 32, 32))


@pytest.fixture(scope="module")
def scenes():
    return texture_scenes(60, size=32, seed=5)


def test_concept_shares_by_hand():
    act = torch.tensor([[[1.0, 1.0], [0.0, 2.0]], [[0.0, 0.0], [0.0, 0.0]]])
    masks = torch.tensor([[[0, 1], [1, 1]], [[0, 0], [0, 0]]])
    assert concept_shares(act, masks, 3).tolist() == [[0.25, 0.75, 0.0], [0.0, 0.0, 0.0]]


def test_colour_filters_get_their_concepts(scenes):
    clf = _colour_net()
    labels = label_filters(clf, scenes.images, scenes.masks, scenes.concept_names, [0, 1, 2, 3], layer="1")
    by = {fl.filter: fl for fl in labels}
    assert by[0].label == "red_disc1" and by[0].concepts == ["red_disc"]
    assert by[1].label == "blue_square1"
    assert by[2].label == "red_disc2"  # global per-concept counter
    assert "grass" in by[3].concepts
    assert by[0].scores[0] > 0.9 and len(by[0].images) == 10


def test_nesy_label_rewrites_rules(scenes):
    clf = _colour_net()
    nesy = NeSyModel.from_rules(clf, "target(X,2) :- f0(X), not ab1(X).\ntarget(X,3) :- f1(X).\nab1(X) :- f2(X).",
                                theta=1.0, layer="1")
    labelled = nesy.label(scenes.images, scenes.masks, scenes.concept_names)
    text = labelled.to_asp()
    assert "red_disc1(X)" in text and "blue_square1(X)" in text and "red_disc2(X)" in text
    assert "f0" not in text
    i = int(scenes.masks.flatten(1).eq(4).any(1).nonzero()[0])
    j = nesy.justify(scenes.images[i])
    assert "red_disc" in j.text


def test_bad_masks(scenes):
    clf = _colour_net()
    with pytest.raises(CnnlensError, match="pixels but the images"):
        label_filters(clf, scenes.images, scenes.masks[:, :16, :16], scenes.concept_names, [0], layer="1")
    with pytest.raises(CnnlensError, match="masks for"):
        label_filters(clf, scenes.images, scenes.masks[:5], scenes.concept_names, [0], layer="1")
    with pytest.raises(CnnlensError, match="concept indices"):
        label_filters(clf, scenes.images, scenes.masks, scenes.concept_names[:3], [0], layer="1")
    with pytest.raises(CnnlensError, match="do not exist"):
        label_filters(clf, scenes.images, scenes.masks, scenes.concept_names, [7], layer="1")


def test_sanitize():
    assert sanitize_concept("Red disc") == "red_disc"
    assert sanitize_concept("wall3") == "wall"
    assert sanitize_concept("3d") == "c_3d"


# --- label_match_test: the random-label baseline (issue 26 item 5) ---------------------------------
def _exact_permutation_shares(occ, labels):
    """Every permutation of the predicates' labels, enumerated: the exact null distribution."""
    import itertools

    preds = sorted({p for p, _ in occ})
    out = []
    for perm in itertools.permutations([labels[p] for p in preds]):
        lab = dict(zip(preds, perm))
        out.append(sum(bool(set(e) & set(lab[p])) for p, e in occ) / len(occ))
    return out


def test_label_match_test_against_exact_permutations():
    occ = [("f1", {"grass"}), ("f1", {"grass"}), ("f2", {"brick", "grass"}), ("f3", {"brick"}),
           ("f4", {"gravel"})]
    labels = {"f1": ["grass"], "f2": ["brick"], "f3": ["background"], "f4": ["gravel", "background"]}
    exact = _exact_permutation_shares(occ, labels)
    r = label_match_test(occ, labels, n_perm=20_000, seed=3)
    assert r["observed"] == pytest.approx(4 / 5) and r["n"] == 5 and r["n_predicates"] == 4
    assert r["baseline_mean"] == pytest.approx(sum(exact) / len(exact), abs=0.01)
    p_exact = sum(s >= r["observed"] - 1e-12 for s in exact) / len(exact)
    assert r["p_value"] == pytest.approx(p_exact, abs=0.01)
    lo, hi = r["baseline_ci95"]
    assert min(exact) <= lo <= hi <= max(exact)
    # seeded: the same call gives the same numbers, another seed close ones
    assert label_match_test(occ, labels, n_perm=20_000, seed=3) == r
    assert label_match_test(occ, labels, n_perm=20_000, seed=4)["baseline_mean"] == pytest.approx(
        r["baseline_mean"], abs=0.01)


def test_label_match_test_same_labels_everywhere_is_not_significant():
    occ = [(f"f{i}", {"brick"}) for i in range(6)]
    labels = {f"f{i}": ["brick"] for i in range(6)}
    r = label_match_test(occ, labels, n_perm=500)
    assert r["observed"] == 1.0 and r["baseline_mean"] == 1.0 and r["p_value"] == 1.0


def test_label_match_test_pool_of_layer_filters():
    # 2 rule predicates, both class-defining; the layer has 8 filters, 2 of them class-defining
    occ = [("f0", {"brick", "grass"}), ("f5", {"brick", "grass"})]
    labels = {"f0": ["brick"], "f5": ["grass"]}
    pool = [["brick"], ["grass"]] + [["background"]] * 6
    r = label_match_test(occ, labels, pool=pool, n_perm=20_000, seed=0)
    assert r["observed"] == 1.0
    assert r["baseline_mean"] == pytest.approx(2 / 8, abs=0.01)  # E[share] = 2/8 per predicate
    assert r["p_value"] == pytest.approx(1 / 28, abs=0.006)     # both draws defining: C(2,2)/C(8,2)
    with pytest.raises(CnnlensError, match="pool has 1 labels"):
        label_match_test(occ, labels, pool=[["brick"]])


def test_label_match_test_bad_input():
    with pytest.raises(CnnlensError, match="no label for predicate"):
        label_match_test([("f9", {"brick"})], {"f0": ["brick"]})
    with pytest.raises(CnnlensError, match="n_perm"):
        label_match_test([("f0", {"brick"})], {"f0": ["brick"]}, n_perm=0)
    r = label_match_test([], {})
    assert r["n"] == 0 and r["observed"] != r["observed"]  # NaN: nothing to count


def test_label_match_test_returns_the_permutation_shares():
    occ = [("f1", {"grass"}), ("f2", {"brick"}), ("f3", {"brick"})]
    lab = {"f1": ["grass"], "f2": ["brick"], "f3": ["background"]}
    r = label_match_test(occ, lab, n_perm=300, seed=1, return_shares=True)
    assert r["shares"].shape == (300,) and r["shares"].mean() == pytest.approx(r["baseline_mean"])
    assert "shares" not in label_match_test(occ, lab, n_perm=300, seed=1)
