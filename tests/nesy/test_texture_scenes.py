"""texture_scenes: real textures, exact masks, the class rule, seeding, any size (SPEC §6.8, §9)."""
from __future__ import annotations

import json

import numpy as np
import torch

from cnnlens import zoo
from cnnlens.data.texture_scenes import CLASSES, CONCEPTS, save_scene_folder, scene_class, texture_scenes


def test_masks_are_exact_and_classes_follow_the_rule():
    ds = texture_scenes(40, size=48, seed=3)
    assert ds.images.shape == (40, 3, 48, 48) and ds.masks.shape == (40, 48, 48)
    assert ds.concept_names == list(CONCEPTS) and ds.class_names == list(CLASSES)
    red, blue = CONCEPTS.index("red_disc"), CONCEPTS.index("blue_square")
    img = ds.images.permute(0, 2, 3, 1)
    assert torch.allclose(img[ds.masks == red], torch.tensor([0.9, 0.1, 0.1]))
    assert torch.allclose(img[ds.masks == blue], torch.tensor([0.1, 0.2, 0.9]))
    for i in range(40):
        present = {CONCEPTS[c] for c in torch.unique(ds.masks[i]).tolist() if c > 0}
        assert scene_class(present) == int(ds.labels[i])
    # textured pixels are real texture (many distinct grey levels), not a flat colour
    brick = img[ds.masks == CONCEPTS.index("brick")]
    assert brick.shape[0] == 0 or len(torch.unique(brick[:, 0])) > 20
    assert len(torch.unique(ds.labels)) == 4


def test_seeded_prefix_and_any_size():
    a, b = texture_scenes(6, size=32, seed=1), texture_scenes(3, size=32, seed=1)
    assert torch.equal(a.images[:3], b.images) and torch.equal(a.masks[:3], b.masks)
    assert not torch.equal(texture_scenes(3, size=32, seed=2).images, b.images)
    for size in (16, 96):
        ds = texture_scenes(2, size=size, seed=0)
        assert ds.images.shape[-1] == size and float(ds.images.min()) >= 0 and float(ds.images.max()) <= 1


def test_zoo_and_folder(tmp_path):
    ds = zoo.load_dataset("texture_scenes", split="test")
    assert len(ds) == 500 and ds.images.shape[1:] == (3, 64, 64) and hasattr(ds, "masks")
    sub = ds.subset(slice(0, 5))
    assert sub.masks.shape == (5, 64, 64)
    root = save_scene_folder(sub, tmp_path / "scenes")
    assert json.loads((root / "concepts.json").read_text())["concepts"] == list(CONCEPTS)
    masks = sorted((root / "masks").rglob("*.png"))
    assert len(masks) == 5
    from PIL import Image

    m0 = np.asarray(Image.open(root / "masks" / CLASSES[int(sub.labels[0])] / f"{sub.names[0]}.png"))
    assert np.array_equal(m0, sub.masks[0].numpy())
