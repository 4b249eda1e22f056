"""evaluate() and the registry: inputs the chosen metrics do not read are named, not ignored silently."""
from __future__ import annotations

import warnings

import torch

import cnnlens
from cnnlens import zoo


def test_an_input_no_chosen_metric_reads_is_named_in_a_warning():
    clf = zoo.load_classifier("mnist_cnn")
    x = zoo.load_dataset("mnist").images[:2]
    e = cnnlens.explain(clf, x, "saliency")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cnnlens.evaluate(clf, x, e, metrics=["ad"], masks=torch.ones(2, 28, 28), second_model=clf)
    text = " ".join(str(w.message) for w in caught)
    assert "masks= is given but none of the metrics ['ad'] uses it" in text and "second_model=" in text
