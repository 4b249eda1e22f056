"""Streaming image sets (issue 23 item 1): ``cnnlens.data.ImageStream`` decodes lazily, by
ranges, exactly what the eager loaders load."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import cnnlens.data.stream as stream_mod
from cnnlens.data import ImageStream, image_chunk, load_image_folder, load_images
from cnnlens.errors import CnnlensError, ImageReadError


def _folder(root, n=7, size=(10, 12)):
    rng = np.random.default_rng(0)
    for i in range(n):
        d = root / ("a" if i % 2 else "b")
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(d / f"{i:02d}.png")
    return root


def test_stream_equals_the_eager_folder_loader(tmp_path):
    root = _folder(tmp_path / "f")
    eager = load_image_folder(root, size=8, mode="RGB")
    s = ImageStream(root, size=8, mode="RGB")
    assert len(s) == len(eager) == 7
    assert s.names == eager.names and s.class_names == eager.class_names
    assert torch.equal(s.labels, eager.labels)
    assert torch.equal(s[0:7], eager.images)  # bit-identical decode + resize/crop
    assert torch.equal(s[2:5], eager.images[2:5])
    assert torch.equal(torch.cat(list(s.batches(3))), eager.images)
    assert torch.equal(image_chunk(s, 1, 4), image_chunk(eager, 1, 4))
    sub = s.subset(slice(2, 6))
    assert len(sub) == 4 and sub.names == eager.names[2:6] and torch.equal(sub[0:4], eager.images[2:6])


def test_stream_of_files_and_flat_folder(tmp_path):
    root = _folder(tmp_path / "f", n=4)
    files = sorted(root.rglob("*.png"))
    eager = load_images(files, mode="L")
    s = ImageStream(files, mode="L")
    assert s.names == eager.names and (s.labels == -1).all() and torch.equal(s[0:4], eager.images)
    flat = tmp_path / "flat"
    flat.mkdir()
    for f in files:
        (flat / f.name).write_bytes(f.read_bytes())
    assert torch.equal(ImageStream(flat, mode="L")[0:4], load_images(sorted(flat.iterdir()), mode="L").images)


def test_stream_decodes_only_what_is_read(tmp_path, monkeypatch):
    root = _folder(tmp_path / "f", n=9)
    calls = []
    real = stream_mod.read_image
    monkeypatch.setattr(stream_mod, "read_image", lambda p, mode: calls.append(p) or real(p, mode))
    s = ImageStream(root)
    assert calls == []  # listing decodes nothing
    it = s.batches(4)
    first = next(it)
    assert first.shape[0] == 4 and len(calls) == 4  # one batch at a time, never the whole set
    next(it)
    assert len(calls) == 8
    s[5:6]
    assert len(calls) == 9


def test_stream_workers_give_the_same_tensor(tmp_path):
    root = _folder(tmp_path / "f", n=6)
    a = ImageStream(root, size=8)[0:6]
    b = ImageStream(root, size=8, num_workers=2)[0:6]
    assert torch.equal(a, b)


def test_stream_bad_files(tmp_path):
    root = _folder(tmp_path / "f", n=4)
    (root / "a" / "zz.png").write_bytes(b"not a png")
    s = ImageStream(root)
    assert len(s) == 5
    with pytest.raises(ImageReadError, match="zz.png"):
        s[0:5]
    skipping = ImageStream(root, skip_bad=True)
    assert len(skipping) == 4 and skipping.skipped and skipping[0:4].shape[0] == 4
    with pytest.raises(CnnlensError, match="contiguous"):
        s[[0, 1]]
    with pytest.raises(CnnlensError, match="not found"):
        ImageStream(tmp_path / "missing")
    sized = tmp_path / "sized"
    sized.mkdir()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(sized / "a.png")
    Image.fromarray(np.zeros((9, 8), np.uint8)).save(sized / "b.png")
    with pytest.raises(CnnlensError, match="different sizes"):
        ImageStream(sized)[0:2]
