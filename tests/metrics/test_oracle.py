"""protocol="gomez" agrees with saliency-maps-metrics 0.0.26, the reference implementation of
Gomez et al. 2022 (IAUC, DAUC, IC, DC via Insertion/Deletion; AD, IIC via IIC_AD), ≤ 1e-5."""
import numpy as np
import pytest
import torch
from torch import nn

import cnnlens
from cnnlens import Explanation

if not hasattr(np, "trapz"):  # the reference calls np.trapz, removed in numpy 2
    np.trapz = np.trapezoid

smm_multi = pytest.importorskip("saliency_maps_metrics.multi_step_metrics")
smm_single = pytest.importorskip("saliency_maps_metrics.single_step_metrics")


def _model():
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(32, 4),
    ).eval()
    return net, cnnlens.Classifier(net, mean=[0.5, 0.4, 0.3], std=[0.2, 0.25, 0.3])


class ProbModel(nn.Module):
    """What the reference scores: the softmax output of the wrapped classifier."""

    def __init__(self, net, clf):
        super().__init__()
        self.net, self.clf = net, clf

    def forward(self, x):  # no range check: bicubic soft masks overshoot [0, 1] slightly
        return torch.softmax(self.net(self.clf.normalize(x)), dim=1)


def _reference_game(metric, model, x, maps, targets):
    scores, sal = metric.compute_scores(model, x, maps.unsqueeze(1), targets)
    aucs = smm_multi.compute_auc_metric(scores)
    corr = metric.compute_calibration_metric(scores, sal)
    return aucs, corr, scores


@pytest.mark.parametrize("map_size", [14, 28])
def test_gomez_games_match_reference(map_size):
    net, clf = _model()
    n = 3
    x = torch.rand(n, 3, 28, 28)
    maps = torch.rand(n, map_size, map_size)  # continuous values: no ties
    targets = clf.predict(x)
    expl = Explanation(maps=maps, targets=targets, method="test")
    ours = cnnlens.evaluate(clf, x, expl, metrics=["iauc", "dauc", "ic", "dc"], protocol="gomez", batch_size=50)
    model = ProbModel(net, clf)
    with torch.no_grad():
        iauc, ic, ins_scores = _reference_game(smm_multi.Insertion(), model, x, maps, targets)
        dauc, dc, del_scores = _reference_game(smm_multi.Deletion(), model, x, maps, targets)
    assert ours["iauc"].params["n_steps"] == 196
    np.testing.assert_allclose(ours["iauc"].curves.numpy(), ins_scores, atol=1e-5)
    np.testing.assert_allclose(ours["dauc"].curves.numpy(), del_scores, atol=1e-5)
    np.testing.assert_allclose(ours["iauc"].per_image.numpy(), iauc, atol=1e-5)
    np.testing.assert_allclose(ours["dauc"].per_image.numpy(), dauc, atol=1e-5)
    np.testing.assert_allclose(ours["ic"].per_image.numpy(), ic, atol=1e-5)
    np.testing.assert_allclose(ours["dc"].per_image.numpy(), dc, atol=1e-5)


def test_gomez_uses_the_native_layer_map():
    # a CAM-like explanation: the game runs on layer_maps (7x7 -> 49 cells, one per step)
    net, clf = _model()
    x = torch.rand(2, 3, 28, 28)
    layer = torch.rand(2, 7, 7)
    expl = Explanation(maps=torch.nn.functional.interpolate(layer.unsqueeze(1), size=(28, 28), mode="bilinear",
                                                            align_corners=False).squeeze(1),
                       targets=clf.predict(x), method="cam", layer_maps=layer)
    ours = cnnlens.evaluate(clf, x, expl, metrics=["dauc", "dc", "ad", "iic"], protocol="gomez")
    assert ours["dauc"].params["n_steps"] == 49 and ours["dauc"].params["res"] == [7, 7]
    model = ProbModel(net, clf)
    with torch.no_grad():
        dauc, dc, _ = _reference_game(smm_multi.Deletion(), model, x, layer, expl.targets)
    np.testing.assert_allclose(ours["dauc"].per_image.numpy(), dauc, atol=1e-5)
    np.testing.assert_allclose(ours["dc"].per_image.numpy(), dc, atol=1e-5)
    for i in range(2):  # IIC_AD min-max normalises over the whole batch: one image per call
        with torch.no_grad():
            ref = smm_single.IIC_AD()(model, x[i:i + 1], layer[i:i + 1].unsqueeze(1), expl.targets[i:i + 1])
        assert ours["ad"].per_image[i].item() == pytest.approx(float(ref["ad"]), abs=1e-5)
        assert ours["iic"].per_image[i].item() == pytest.approx(float(ref["iic"]), abs=1e-5)


def test_gomez_ad_iic_match_reference_many_images():
    net, clf = _model()
    torch.manual_seed(1)
    x = torch.rand(8, 3, 28, 28)
    maps = torch.randn(8, 14, 14)  # signed: min-max'd as they are
    targets = torch.randint(0, 4, (8,))
    ours = cnnlens.evaluate(clf, x, maps, metrics=["ad", "iic"], protocol="gomez", target=targets)
    model = ProbModel(net, clf)
    ad_ref, iic_ref = [], []
    for i in range(8):
        with torch.no_grad():
            r = smm_single.IIC_AD()(model, x[i:i + 1], maps[i:i + 1].unsqueeze(1), targets[i:i + 1])
        ad_ref.append(float(r["ad"]))
        iic_ref.append(float(r["iic"]))
    np.testing.assert_allclose(ours["ad"].per_image.numpy(), ad_ref, atol=1e-5)
    np.testing.assert_allclose(ours["iic"].per_image.numpy(), iic_ref, atol=1e-5)
    assert set(ours["iic"].per_image.tolist()) <= {0.0, 1.0}


def test_reference_crashes_where_step_does_not_divide_the_cells():
    # documented difference: with n = 15 * 15 = 225 cells the reference removes
    # 225 // 196 = 1 cell per step (225 steps, fine); with n = 20 * 20 = 400 it uses 2 per step
    # (200 steps, fine); with n = 397 (not a square map) it would ask topk for more cells than
    # exist. Our games take the remainder in the last step instead: n_steps = ceil(n / step).
    net, clf = _model()
    x = torch.rand(1, 3, 28, 28)
    res = cnnlens.evaluate(clf, x, torch.rand(1, 21, 21), metrics=["dauc"], protocol="gomez")
    # 441 cells, step 441 // 196 = 2 -> ceil(441 / 2) = 221 steps, the last one with 1 cell
    assert res["dauc"].params["step"] == 2 and res["dauc"].params["n_steps"] == 221
    with pytest.raises(RuntimeError):
        with torch.no_grad():
            smm_multi.Deletion().compute_scores(ProbModel(net, clf), x, torch.rand(1, 1, 21, 21), torch.tensor([0]))
