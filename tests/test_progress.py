"""`quiet_progress` (used by `cnnlens demo --no-progress`) silences the bars that methods show
for long work, even where the call asks for them."""
from __future__ import annotations

import cnnlens
from cnnlens import zoo
from cnnlens._progress import quiet_progress, silenced


def test_quiet_progress_silences_method_bars(capsys):
    clf = zoo.load_classifier("mnist_cnn")
    x = zoo.load_dataset("mnist").images[:1]
    cnnlens.explain(clf, x, "rise", n_masks=1100, batch_size=550)  # > 1000 forwards: a bar
    cnnlens.dynamic_ablation(clf, x, rule="pos", iterations=3, progress=True)
    err = capsys.readouterr().err
    assert "rise" in err and "dynamic ablation" in err
    assert not silenced()
    with quiet_progress():
        assert silenced()
        a = cnnlens.explain(clf, x, "rise", n_masks=1100, batch_size=550)
        cnnlens.dynamic_ablation(clf, x, rule="pos", iterations=3, progress=True)
    assert capsys.readouterr().err == "" and not silenced()
    assert a.maps.shape == (1, 28, 28)
