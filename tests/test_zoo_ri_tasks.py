"""The RI per-task zoo models (issue 25): ``fashion_task_*``, one FashionTaskCNN per RI Table 1
task, trained by experiments/train_zoo.py and shipped as package data."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from cnnlens import zoo
from cnnlens.data.datasets import upsample_images
from cnnlens.models.fashion import FASHION_CLASS_NAMES, FASHION_TASKS, TASK_SIZE, FashionTaskCNN

WEIGHTS = Path(__file__).resolve().parents[1] / "src" / "cnnlens" / "weights"
#: accuracy each task model must reach on its classes' full test split (recorded by train_zoo.py)
TARGET = {"fashion_task_tshirt_shirt": 0.85, "fashion_task_pullover_coat": 0.89,
          "fashion_task_sneaker_boot": 0.95, "fashion_task4": 0.80}

pytestmark = pytest.mark.skipif(not zoo.catalog()[zoo.list_models().index("fashion_task4")].installed,
                                reason="cnnlens weights not installed")


@pytest.mark.parametrize("name", list(FASHION_TASKS))
def test_weights_plain_small_and_recorded(name: str) -> None:
    path = WEIGHTS / f"{name}.pt"
    assert path.stat().st_size < 2 * 2 ** 20  # the shipped-weights budget: ≲ 1–2 MB per file
    state = torch.load(path, map_location="cpu", weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    FashionTaskCNN(len(FASHION_TASKS[name])).load_state_dict(state, strict=True)
    rec = zoo.training_record(name)
    assert rec is not None and rec["name"] == name
    assert rec["recipe"]["classes"] == list(FASHION_TASKS[name]) and rec["recipe"]["size"] == TASK_SIZE
    assert rec["test_accuracy"] >= TARGET[name]


@pytest.mark.parametrize("name", list(FASHION_TASKS))
def test_accuracy_on_fixed_subset(name: str) -> None:
    """Re-measured on the first ``check_subset`` test images of the task ≥ recorded − 1 point."""
    rec = zoo.training_record(name)
    clf = zoo.load_classifier(name)
    classes = list(FASHION_TASKS[name])
    data = zoo.load_dataset("fashion_mnist", split="test", classes=classes).subset(slice(0, rec["check_subset"]))
    assert clf.class_names == [FASHION_CLASS_NAMES[c] for c in classes] == data.class_names
    x = upsample_images(data.images, TASK_SIZE)
    assert clf.input_shape == tuple(x.shape[1:]) == (1, TASK_SIZE, TASK_SIZE)
    acc = (clf.predict(x, batch_size=500) == data.labels).float().mean().item()
    assert acc >= rec["check_accuracy"] - 0.01


def test_psi_reaches_the_whole_head() -> None:
    """ψ = ``features`` (32×8×8) feeds the FC–ReLU–FC head without pooling: every entry of ψ moves
    the logits (unlike fashion_vgg, whose head max-pools 7×7 → 3×3 and drops ψ's last row/column)."""
    clf = zoo.load_classifier("fashion_task4")
    assert clf.feature_layer_name == "features"
    head = list(clf.model.classifier)
    assert [type(m) for m in head] == [nn.Linear, nn.ReLU, nn.Linear]
    x = torch.rand(3, 1, TASK_SIZE, TASK_SIZE)
    psi, logits = clf.forward_with_features(x)
    assert tuple(psi.shape[1:]) == (32, 8, 8) and logits.shape == (3, 4)
    assert head[0].in_features == psi[0].numel()
    t = psi.detach().clone().requires_grad_(True)
    z = clf.head(x, t)
    top = z.detach().topk(2, dim=1).indices
    dg = z.gather(1, top[:, :1]) - z.gather(1, top[:, 1:])  # ΔG of Eq. 2
    (g,) = torch.autograd.grad(dg.sum(), t)
    assert (g.abs().sum(dim=(0, 1)) > 0).all()  # every spatial position of ψ moves ΔG


def test_fashion_vgg_head_drops_psi_edge() -> None:
    """The contrast that motivated the task models: fashion_vgg's head max-pools 7×7 → 3×3, so
    ψ's last row and column never reach G (∂ΔG/∂ψ is exactly 0 there)."""
    clf = zoo.load_classifier("fashion_vgg")
    x = torch.rand(4, 1, 28, 28)
    psi, _ = clf.forward_with_features(x)
    t = psi.detach().clone().requires_grad_(True)
    z = clf.head(x, t)
    top = z.detach().topk(2, dim=1).indices
    (g,) = torch.autograd.grad((z.gather(1, top[:, :1]) - z.gather(1, top[:, 1:])).sum(), t)
    assert g[:, :, 6, :].abs().sum() == 0 and g[:, :, :, 6].abs().sum() == 0
