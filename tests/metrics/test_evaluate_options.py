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


def test_cli_metric_param_reaches_the_metric_and_is_checked(tmp_path, capsys):
    import json

    from cnnlens.cli import main

    args = ["evaluate", "--model", "mnist_cnn", "--dataset", "mnist", "--limit", "2", "--methods", "saliency",
            "--no-random", "--quiet"]
    out = tmp_path / "a"
    assert main([*args, "--metrics", "max_sensitivity", "--metric-param", "max_sensitivity.radius=0.05",
                 "--metric-param", "max-sensitivity.n_samples=2", "--out", str(out)]) == 0
    params = json.loads((out / "results" / "saliency.json").read_text())["results"]["max_sensitivity"]["params"]
    assert params["radius"] == 0.05 and params["n_samples"] == 2
    capsys.readouterr()
    assert main([*args, "--metrics", "sparseness", "--metric-param", "max_sensitivity.radius=0.05",
                 "--out", str(tmp_path / "b")]) == 2
    assert "is not in --metrics" in capsys.readouterr().err
    assert main([*args, "--metrics", "max_sensitivity", "--metric-param", "radius=0.05", "--out", str(tmp_path / "c")]) == 2
    assert "METRIC.KEY=VALUE" in capsys.readouterr().err
