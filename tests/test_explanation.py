"""Explanation result type (SPEC §0, §2): normalisation, overlays, atomic save/load."""
import numpy as np
import pytest
import torch
from PIL import Image

from cnnlens import CnnlensError, Explanation
from cnnlens.explanation import jet, minmax_normalize, upsample


def _expl(n=2):
    maps = torch.arange(n * 12, dtype=torch.float32).reshape(n, 3, 4)
    return Explanation(maps=maps, targets=list(range(n)), method="grad cam", params={"seed": 3, "layer": "layer4"})


def test_normalized_is_per_image_minmax_and_constant_maps_are_zero():
    maps = torch.stack([torch.tensor([[1.0, 3.0], [5.0, 9.0]]), torch.full((2, 2), 7.0)])
    e = Explanation(maps=maps, targets=[0, 1], method="m")
    out = e.normalized().maps
    torch.testing.assert_close(out[0], torch.tensor([[0.0, 0.25], [0.5, 1.0]]))
    torch.testing.assert_close(out[1], torch.zeros(2, 2))
    assert e.maps[0, 0, 0] == 1.0  # raw values kept
    assert not torch.isnan(minmax_normalize(torch.zeros(3, 5, 5))).any()


def test_jet_endpoints_and_overlay_values():
    np.testing.assert_allclose(jet(np.array([0.0, 0.5, 1.0])), [[0, 0, 0.5], [0.5, 1, 0.5], [0.5, 0, 0]])
    e = _expl(1)
    alone = e.overlay()
    assert alone.dtype == np.uint8 and alone.shape == (1, 3, 4, 3)
    assert tuple(alone[0, 0, 0]) == (0, 0, 128) and tuple(alone[0, -1, -1]) == (128, 0, 0)
    images = torch.ones(1, 3, 3, 4)
    blended = e.overlay(images, alpha=0.5)
    assert tuple(blended[0, -1, -1]) == (191, 128, 128)  # 0.5*(0.5,0,0) + 0.5*1 → 0.75, 0.5, 0.5
    grey = e.overlay(torch.zeros(1, 1, 3, 4), alpha=1.0)
    np.testing.assert_array_equal(grey, alone)


def test_overlay_rejects_mismatched_images():
    e = _expl(2)
    with pytest.raises(CnnlensError, match=r"images must have shape \(2, C, H, W\)"):
        e.overlay(torch.zeros(1, 3, 3, 4))
    with pytest.raises(CnnlensError, match="maps are"):
        e.overlay(torch.zeros(2, 3, 5, 5))
    with pytest.raises(CnnlensError, match="alpha"):
        e.overlay(alpha=2.0)


def test_save_writes_pngs_and_npz_that_load_back(tmp_path):
    e = _expl(2)
    written = e.save(tmp_path / "out", images=torch.rand(2, 3, 3, 4), names=["chelsea", "a/b c"])
    names = sorted(p.name for p in written)
    assert names == ["0000_chelsea_grad_cam.png", "0001_a_b_c_grad_cam.png", "explanation.npz"]
    png = np.asarray(Image.open(tmp_path / "out" / "0000_chelsea_grad_cam.png"))
    assert png.shape == (3, 4, 3)
    back = Explanation.load(tmp_path / "out")
    torch.testing.assert_close(back.maps, e.maps)
    assert back.targets.tolist() == [0, 1] and back.method == "grad cam" and back.params == e.params
    assert not list((tmp_path / "out").glob("*.tmp"))  # atomic writes leave no temp files


def test_bad_constructions():
    with pytest.raises(CnnlensError, match=r"\(N, H, W\)"):
        Explanation(maps=torch.zeros(3, 3), targets=[0], method="m")
    with pytest.raises(CnnlensError, match="2 targets for 1 maps"):
        Explanation(maps=torch.zeros(1, 3, 3), targets=[0, 1], method="m")


def test_upsample_shape_and_identity():
    m = torch.rand(2, 7, 7)
    assert upsample(m, (224, 224)).shape == (2, 224, 224)
    assert upsample(m, (7, 7)) is m


def test_saved_files_get_the_umask_mode_not_0600(tmp_path):
    import os

    from cnnlens._io import atomic_write_text, current_umask

    old = os.umask(0o027)
    try:
        assert current_umask() == 0o027
        e = Explanation(maps=torch.rand(1, 4, 4), targets=[0], method="m")
        written = e.save(tmp_path / "new")  # a new folder appears in one rename
        for p in written:
            assert os.stat(p).st_mode & 0o777 == 0o640, p
        assert os.stat(tmp_path / "new").st_mode & 0o777 == 0o750
        e.save(tmp_path / "new")  # into the existing folder: files replaced, same modes
        assert all(os.stat(p).st_mode & 0o777 == 0o640 for p in written)
        atomic_write_text(tmp_path / "a.txt", "x")
        assert os.stat(tmp_path / "a.txt").st_mode & 0o777 == 0o640
        os.chmod(tmp_path / "a.txt", 0o600)  # a replaced file keeps its own mode
        atomic_write_text(tmp_path / "a.txt", "y")
        assert os.stat(tmp_path / "a.txt").st_mode & 0o777 == 0o600
    finally:
        os.umask(old)
    assert not [p for p in tmp_path.rglob("*") if p.name.startswith(".")]
