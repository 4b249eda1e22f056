"""Image files and ImageFolder datasets (SPEC §7): real reads, grey/RGB, corrupt files."""
import numpy as np
import pytest
import torch
from PIL import Image

from cnnlens import CnnlensError, ImageReadError
from cnnlens.data import load_image_folder, load_images, read_image, resize_center_crop


def _write(path, arr):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


@pytest.fixture()
def folder(tmp_path):
    rng = np.random.default_rng(0)
    _write(tmp_path / "cat" / "a.png", rng.integers(0, 256, (6, 5, 3), dtype=np.uint8))
    _write(tmp_path / "cat" / "b.jpg", rng.integers(0, 256, (6, 5, 3), dtype=np.uint8))
    _write(tmp_path / "dog" / "c.png", rng.integers(0, 256, (6, 5), dtype=np.uint8))  # grey
    (tmp_path / "dog" / "notes.txt").write_text("not an image, ignored by extension")
    return tmp_path


def test_folder_layout_labels_and_values(folder):
    ds = load_image_folder(folder)
    assert ds.class_names == ["cat", "dog"]
    assert ds.labels.tolist() == [0, 0, 1]
    assert ds.names == ["cat/a.png", "cat/b.jpg", "dog/c.png"]
    assert ds.images.shape == (3, 3, 6, 5) and ds.images.dtype == torch.float32
    raw = np.asarray(Image.open(folder / "cat" / "a.png"), dtype=np.float32) / 255
    torch.testing.assert_close(ds.images[0], torch.from_numpy(raw).permute(2, 0, 1))
    grey = load_image_folder(folder, mode="L")
    assert grey.images.shape == (3, 1, 6, 5)


def test_corrupt_file_is_named_or_skipped_and_counted(folder):
    bad = folder / "dog" / "broken.png"
    bad.write_bytes(b"this is text, not a PNG")
    with pytest.raises(ImageReadError, match="broken.png"):
        load_image_folder(folder)
    ds = load_image_folder(folder, skip_bad=True)
    assert len(ds) == 3 and ds.skipped == [str(bad)]


def test_text_file_as_image_is_a_one_line_error(tmp_path):
    f = tmp_path / "x.png"
    f.write_text("hello")
    with pytest.raises(ImageReadError) as info:
        read_image(f)
    assert "cannot read image" in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(ImageReadError, match="not found"):
        read_image(tmp_path / "missing.png")


def test_sizes_must_match_unless_resized(tmp_path):
    _write(tmp_path / "a.png", np.zeros((10, 20, 3), np.uint8))
    _write(tmp_path / "b.png", np.zeros((30, 30, 3), np.uint8))
    with pytest.raises(CnnlensError, match="different sizes.*size="):
        load_images([tmp_path / "a.png", tmp_path / "b.png"])
    ds = load_images([tmp_path / "a.png", tmp_path / "b.png"], size=8)
    assert ds.images.shape == (2, 3, 8, 8) and ds.labels.tolist() == [-1, -1]


def test_resize_center_crop_geometry():
    img = torch.zeros(3, 100, 200)
    img[:, :, 90:110] = 1.0  # a vertical bar in the middle survives the centre crop
    out = resize_center_crop(img, 224, resize_to=256)
    assert out.shape == (3, 224, 224)
    assert out[:, :, 112].mean() > 0.9 and out[:, :, 0].max() < 0.05


def test_empty_and_missing_folders(tmp_path):
    with pytest.raises(CnnlensError, match="not found"):
        load_image_folder(tmp_path / "nope")
    with pytest.raises(CnnlensError, match="no class sub-folders"):
        load_image_folder(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(CnnlensError, match="no readable images"):
        load_image_folder(tmp_path)


def test_resize_center_crop_matches_torchvision_imagenet_transform():
    tv_transforms = pytest.importorskip("torchvision.transforms")
    skimage_data = pytest.importorskip("skimage.data")
    for arr in (skimage_data.chelsea(), skimage_data.coffee(), skimage_data.rocket()):
        img = torch.from_numpy(arr).permute(2, 0, 1).float() / 255
        ref = tv_transforms.CenterCrop(224)(tv_transforms.Resize(256, antialias=True)(img)).clamp(0, 1)
        torch.testing.assert_close(resize_center_crop(img, 224, 256), ref, rtol=0, atol=1e-6)
