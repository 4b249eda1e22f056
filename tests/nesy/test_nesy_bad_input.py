"""NeSy inputs that used to be silently wrong or crash (hardening issue item 7): every case is a
one-line :class:`CnnlensError` naming the problem — labels, θ, model files, training knobs, k."""
from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from cnnlens import Classifier
from cnnlens.errors import CnnlensError
from cnnlens.nesy import NeSyModel
from cnnlens.nesy.binarize import binarize, check_k, p_matrix
from cnnlens.nesy.train import train

NAN = float("nan")
Y = [0, 1, 0, 1, 0, 1]


def _clf(filters: int = 3) -> Classifier:
    torch.manual_seed(0)
    return Classifier(nn.Sequential(nn.Conv2d(3, filters, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                    nn.Linear(filters, 3)).eval())


def _x() -> torch.Tensor:
    return torch.rand(6, 3, 8, 8, generator=torch.Generator().manual_seed(1))


def _train(y=Y, **kw):
    return train(_clf(), (_x(), torch.tensor(y)), epochs=1, progress=False, **kw)


def _model_file(d, **changes) -> str:
    path = d / "m.json"
    NeSyModel.fit(_clf(), _x(), Y).save(path)
    obj = json.loads(path.read_text())
    obj.update(changes)
    path.write_text(json.dumps(obj))
    return str(path)


CASES = {
    "fit-float-labels": (lambda d: NeSyModel.fit(_clf(), _x(), [0.5, 1, 0, 1, 0, 1]), "y must be whole class indices"),
    "fit-label-out-of-range": (lambda d: NeSyModel.fit(_clf(), _x(), [99, 1, 0, 1, 0, 1]), r"y \[99\] out of range for a 3-class model"),
    "fit-unlabelled": (lambda d: NeSyModel.fit(_clf(), _x(), [-1, 1, 0, 1, 0, 1]), "unlabelled"),
    "fit-theta-nan": (lambda d: NeSyModel.fit(_clf(), _x(), Y, theta=NAN), "theta must hold finite numbers"),
    "fit-h1-inf": (lambda d: NeSyModel.fit(_clf(), _x(), Y, h1=float("inf")), "h1 must be a finite number"),
    "from-rules-theta-nan": (lambda d: NeSyModel.from_rules(_clf(), "target(X,0) :- f0(X).\n", NAN, x=_x()), "theta must hold finite"),
    "evaluate-float-labels": (lambda d: NeSyModel.fit(_clf(), _x(), Y).evaluate(_x(), [0.5] * 6), "whole class indices"),
    "evaluate-label-out-of-range": (lambda d: NeSyModel.fit(_clf(), _x(), Y).evaluate(_x(), [99] * 6), "out of range"),
    "binarize-theta-nan": (lambda d: binarize(torch.rand(2, 3), NAN, "sigmoid"), "theta must hold finite"),
    "load-missing-file": (lambda d: NeSyModel.load(d / "none.json", _clf()), r"none.json: cannot read"),
    "load-a-folder": (lambda d: NeSyModel.load(d, _clf()), "cannot read"),
    "load-not-utf8": (lambda d: (d / "b.json").write_bytes(b"\xff\xfe{") and NeSyModel.load(d / "b.json", _clf()), r"b.json: not a UTF-8"),
    "load-not-json": (lambda d: (d / "b.json").write_text("{oops") and NeSyModel.load(d / "b.json", _clf()), r"b.json: not valid JSON"),
    "load-theta-nan": (lambda d: NeSyModel.load(_model_file(d, theta=[NAN] * 3), _clf()), r"m.json: theta must hold finite"),
    "load-theta-words": (lambda d: NeSyModel.load(_model_file(d, theta=["a"] * 3), _clf()), r"m.json: damaged NeSy model file"),
    "load-n-filters-word": (lambda d: NeSyModel.load(_model_file(d, n_filters="x"), _clf()), r"m.json: damaged NeSy model file"),
    "load-no-program": (lambda d: NeSyModel.load(_model_file(d, program=None), _clf()), r"m.json"),
    "train-lr-nan": (lambda d: _train(lr=NAN), "lr must be a number > 0"),
    "train-weight-decay-inf": (lambda d: _train(weight_decay=float("inf")), "weight_decay"),
    "train-lr-factor-1": (lambda d: _train(lr_factor=1.0), "lr_factor"),
    "train-float-labels": (lambda d: _train([0.5, 1, 0, 1, 0, 1]), "whole class indices"),
    "train-resume-string": (lambda d: _train(resume="no"), "resume must be True or False"),
    "p-matrix-float-labels": (lambda d: p_matrix(_clf(8), _x(), [0.5, 1, 0, 1, 0, 1], k=1), "whole class indices"),
    "p-matrix-label-out-of-range": (lambda d: p_matrix(_clf(8), _x(), [99, 1, 0, 1, 0, 1], k=1), "out of range"),
    "k-too-large-no-valid-k": (lambda d: check_k(1000, 2, 3), r"3 filters, too few .*needs F >= 4"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_nesy_bad_input_is_a_clear_error(case, tmp_path):
    make, message = CASES[case]
    with pytest.raises(CnnlensError, match=message) as info:
        make(tmp_path)
    assert "\n" not in str(info.value)


def test_k_message_names_a_valid_k_when_there_is_one():
    with pytest.raises(CnnlensError, match=r"use k <= 2"):
        check_k(1000, 2, 8)
    check_k(2, 2, 8)


def test_losses_refuse_fractional_labels():
    from cnnlens.nesy.losses import SparsityLoss

    loss = SparsityLoss(torch.eye(2, 4), theta=0.0)
    with pytest.raises(CnnlensError, match="whole class indices"):
        loss(torch.rand(2, 4), torch.tensor([0.5, 1.0]))
