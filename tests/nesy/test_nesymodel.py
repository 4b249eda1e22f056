"""NeSyModel (SPEC §6.1, §6.6, §6.7): post-hoc rules on the bundled MNIST CNN, clingo agreement,
no-fire handling, justification, persistence and bad input."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from cnnlens import Classifier, zoo
from cnnlens.errors import CnnlensError
from cnnlens.nesy import NeSyModel

clingo = pytest.importorskip("clingo")


@pytest.fixture(scope="module")
def mnist_nesy():
    clf = zoo.load_classifier("mnist_cnn")
    tr, te = zoo.load_dataset("mnist", split="train"), zoo.load_dataset("mnist", split="test")
    nesy = NeSyModel.fit(clf, tr.images, tr.labels, binarization="threshold")
    return clf, nesy, te


def test_posthoc_mnist_accuracy_and_fidelity(mnist_nesy):
    """Fit on the 4,000 training digits, test on the other 1,000 (layer features.4, tail 5e-3).
    Measured here: NeSy accuracy 0.605, fidelity 0.604, 164 no-fire images with the FOLD-SE-M of
    commit 8f28e20; 0.675 / 0.674 / 0 with the FOLD-SE-M being reworked (issue 13) — the band
    below holds both."""
    clf, nesy, te = mnist_nesy
    m = nesy.evaluate(te.images, te.labels)
    print("post-hoc mnist_cnn NeSy:", m)
    assert nesy.layer == "features.4" and nesy.n_filters == 64
    assert 0.55 <= m["accuracy"] <= 0.75  # pinned: 0.605-0.675 (chance 0.1)
    assert m["cnn_accuracy"] > 0.99
    assert abs(m["fidelity"] - m["accuracy"]) <= 0.02  # the CNN is right on ~all digits
    pred = nesy.predict(te.images)
    assert m["no_fire"] == int((pred == -1).sum())
    # a no-fire image counts as wrong and as disagreeing
    hits = ((pred == te.labels) & (pred >= 0)).float().mean().item()
    assert m["accuracy"] == pytest.approx(hits)
    assert m["size"] == nesy.rules.size and m["n_rules"] == nesy.rules.n_rules
    assert m["n_filters"] == len(nesy.rules.predicates) <= 64
    assert nesy.rules.default is None


def _clingo_targets(program: str) -> set[tuple[str, int]]:
    ctl = clingo.Control(["--warn=none"])
    ctl.add("base", [], program + "\n#show target/2.\n")
    ctl.ground([("base", [])])
    models = []
    with ctl.solve(yield_=True) as h:
        for mdl in h:
            models.append(mdl.symbols(shown=True))
    assert len(models) == 1
    return {(s.arguments[0].name, s.arguments[1].number) for s in models[0]}


def test_rules_agree_with_clingo_on_nesy_table(mnist_nesy):
    _, nesy, te = mnist_nesy
    bits = nesy.binarize(te.images[:150])
    table = {p: bits[:, int(p[1:])] for p in nesy.rules.predicates}
    facts = nesy.rules.facts_asp(table)
    want = _clingo_targets(nesy.rules.to_asp("clingo") + facts)
    fired = nesy.rules.fired(table)
    ours = {(f"e{i}", int(nesy.rules.target_rules[k].cls)) for i, k in zip(*np.nonzero(fired))}
    assert ours == want and len(ours) > 50
    # first-match prediction: each image's prediction is among clingo's target atoms (or none fire)
    pred = nesy.predict_bits(bits)
    for i, p in enumerate(pred):
        atoms = {c for e, c in want if e == f"e{i}"}
        assert (p == -1 and not atoms) or p in atoms


def test_justify_text_and_json(mnist_nesy):
    _, nesy, te = mnist_nesy
    pred = nesy.predict(te.images[:20])
    i = int((pred >= 0).nonzero()[0])
    j = nesy.justify(te.images[i])
    assert int(j.prediction) == int(pred[i]) and "holds" in j.text
    obj = json.loads(j.to_json())
    assert obj["prediction"] == int(pred[i]) and obj["rule"] >= 1
    k = int((pred == -1).nonzero()[0]) if (pred == -1).any() else None
    if k is not None:
        assert nesy.justify(te.images[k]).prediction is None


def test_save_load_roundtrip_and_foreign_rules(mnist_nesy, tmp_path):
    clf, nesy, te = mnist_nesy
    path = tmp_path / "nesy.json"
    nesy.save(path)
    back = NeSyModel.load(path, clf)
    assert torch.equal(back.predict(te.images[:200]), nesy.predict(te.images[:200]))
    assert back.rules.to_asp() == nesy.rules.to_asp() and torch.equal(back.theta, nesy.theta)
    # a model whose layer has fewer filters than the rules name
    small = Classifier(nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(),
                                     nn.Linear(4 * 28 * 28, 10)).eval(), input_shape=(1, 28, 28))
    obj = json.loads(path.read_text())
    obj["layer"] = "1"
    (tmp_path / "other.json").write_text(json.dumps(obj))
    with pytest.raises(CnnlensError, match="does not have"):
        NeSyModel.load(tmp_path / "other.json", small)
    with pytest.raises(CnnlensError, match="f999"):
        NeSyModel.from_rules(clf, "target(X,1) :- f999(X).", theta=0.0)


def test_no_rule_fires_gives_minus_one():
    conv = nn.Conv2d(1, 2, 1, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([1.0, -1.0]).view(2, 1, 1, 1))
    clf = Classifier(nn.Sequential(conv, nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2, 2)).eval(),
                     input_shape=(1, 4, 4))
    nesy = NeSyModel.from_rules(clf, "target(X,1) :- f0(X), not ab1(X).\nab1(X) :- f1(X).", theta=0.0)
    x = torch.stack([torch.full((1, 4, 4), 0.5), torch.zeros(1, 4, 4)])
    assert nesy.predict(x).tolist() == [1, -1]  # f1 = relu(-x) never fires; f0 fires only on x > 0
    assert nesy.evaluate(x, torch.tensor([1, 0]))["no_fire"] == 1


def test_bad_input():
    clf = zoo.load_classifier("mnist_cnn")
    ds = zoo.load_dataset("mnist", split="test")
    with pytest.raises(CnnlensError, match="single class"):
        NeSyModel.fit(clf, ds.images[:10], torch.zeros(10, dtype=torch.long))
    with pytest.raises(CnnlensError, match="not spatial filter maps"):
        NeSyModel.fit(clf, ds.images[:50], ds.labels[:50], layer="classifier.0")
    with pytest.raises(CnnlensError, match="binarization"):
        NeSyModel.fit(clf, ds.images[:50], ds.labels[:50], binarization="round")


def test_sigmoid_needs_the_training_theta_and_fold_params_pass_through():
    """§6.1: the sigmoid binarization uses the θ the loss trained with — refitting θ on the final
    model is refused; None picks 'threshold' without θ; ``fold_params`` reach FoldSEM."""
    clf = zoo.load_classifier("mnist_cnn")
    ds = zoo.load_dataset("mnist", split="test")
    x, y = ds.images[:120], ds.labels[:120]
    with pytest.raises(CnnlensError, match=r"binarization='sigmoid' needs theta="):
        NeSyModel.fit(clf, x, y, binarization="sigmoid")
    auto = NeSyModel.fit(clf, x, y)
    thr = NeSyModel.fit(clf, x, y, binarization="threshold")
    assert auto.binarization == "threshold" and torch.equal(auto.theta, thr.theta)
    sig = NeSyModel.fit(clf, x, y, theta=thr.theta)
    assert sig.binarization == "sigmoid" and torch.equal(sig.theta, thr.theta)
    # the catch-all (default) covers every training row; without it some rows get no rule
    assert auto.fit_info["fold_params"]["catch_all"] is True
    assert auto.evaluate(x, y)["no_fire"] == 0
    off = NeSyModel.fit(clf, x, y, fold_params={"catch_all": False, "tail_base": "train"})
    assert off.fit_info["fold_params"]["tail_base"] == "train"
    assert off.rules.n_rules < auto.rules.n_rules
    with pytest.raises(CnnlensError, match="unknown FoldSEM parameter.*bogus"):
        NeSyModel.fit(clf, x, y, fold_params={"bogus": 1})
    with pytest.raises(CnnlensError, match="fold_params must be a dict"):
        NeSyModel.fit(clf, x, y, fold_params=[("catch_all", False)])
