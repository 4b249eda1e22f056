"""The :class:`Explanation` result type and its explicit post-processing steps (docs/algorithms.md §0, §2).

An explanation keeps raw values: ``maps`` ``(N, H, W)`` at input resolution, optionally the
layer-resolution map and the full ``(N, C, H, W)`` pixel attribution. Normalisation, ReLU and
upsampling are explicit calls, never hidden.

Example::

    >>> import torch
    >>> from cnnlens import Explanation
    >>> e = Explanation(maps=torch.tensor([[[0., 2.], [4., 8.]]]), targets=torch.tensor([3]),
    ...                 method="demo", params={"seed": 0})
    >>> e.normalized().maps[0]
    tensor([[0.0000, 0.2500],
            [0.5000, 1.0000]])
    >>> e.overlay(torch.zeros(1, 3, 2, 2)).shape
    (1, 2, 2, 3)
"""
from __future__ import annotations

import dataclasses
import io
import json
import numbers
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from . import validation
from ._imaging import png_bytes, safe_name
from .errors import CnnlensError, one_line

__all__ = ["Explanation", "minmax_normalize", "upsample", "jet"]


def minmax_normalize(maps: torch.Tensor) -> torch.Tensor:
    """Per-map min-max normalisation of ``(N, H, W)`` maps to ``[0, 1]``; a constant map → zeros."""
    flat = maps.reshape(maps.shape[0], -1)
    lo = flat.min(dim=1, keepdim=True).values
    hi = flat.max(dim=1, keepdim=True).values
    span = hi - lo
    out = torch.where(span > 0, (flat - lo) / torch.where(span > 0, span, torch.ones_like(span)), torch.zeros_like(flat))
    return out.reshape(maps.shape)


def upsample(maps: torch.Tensor, size: tuple[int, int], mode: str = "bilinear") -> torch.Tensor:
    """Resize ``(N, h, w)`` maps to ``size`` = ``(H, W)`` (bilinear, ``align_corners=False``)."""
    if tuple(maps.shape[-2:]) == tuple(size):
        return maps
    return F.interpolate(maps.unsqueeze(1), size=size, mode=mode, align_corners=False).squeeze(1)


def jet(values: np.ndarray) -> np.ndarray:
    """The 'jet' colour map: values in ``[0, 1]`` → RGB floats in ``[0, 1]`` (shape ``(..., 3)``)."""
    v = np.clip(values, 0.0, 1.0)[..., None]
    centres = np.array([0.75, 0.5, 0.25])  # red, green, blue peaks
    return np.clip(1.5 - np.abs(4.0 * (v - centres)), 0.0, 1.0)


def _to_numpy_images(images: torch.Tensor | np.ndarray, n: int, size: tuple[int, int]) -> np.ndarray:
    try:
        raw = images.detach().cpu() if isinstance(images, torch.Tensor) else torch.as_tensor(images)
    except (TypeError, ValueError, RuntimeError):
        raise CnnlensError(f"images must be a (N, C, H, W) tensor or array, got {type(images).__name__}") from None
    if not raw.is_floating_point():
        raise CnnlensError(f"images must be floats in [0, 1], got dtype {raw.dtype}"
                           + ("; use images.float() / 255" if raw.dtype == torch.uint8 else ""))
    imgs = raw.float()
    if imgs.numel():
        if not bool(torch.isfinite(imgs).all()):
            raise CnnlensError("images contain NaN or inf values")
        lo, hi = float(imgs.min()), float(imgs.max())
        if lo < -0.05 or hi > 1.05:  # a little overshoot (bicubic resampling) is clamped below
            raise CnnlensError(f"images must be in [0, 1], got values in [{lo:g}, {hi:g}]"
                               + ("; divide by 255" if hi > 1.5 else ""))
    if imgs.dim() == 3:
        imgs = imgs.unsqueeze(0)
    if imgs.dim() != 4 or imgs.shape[0] != n:
        raise CnnlensError(f"images must have shape ({n}, C, H, W), got {tuple(imgs.shape)}")
    if imgs.shape[1] == 1:
        imgs = imgs.expand(-1, 3, -1, -1)
    elif imgs.shape[1] != 3:
        raise CnnlensError(f"images must have 1 or 3 channels, got {imgs.shape[1]}")
    if tuple(imgs.shape[-2:]) != size:
        raise CnnlensError(f"images are {tuple(imgs.shape[-2:])} but the maps are {size}")
    return imgs.clamp(0, 1).permute(0, 2, 3, 1).numpy()


def _check_values(what: str, t: torch.Tensor) -> None:
    """Finite real numbers only: a NaN or inf map would be drawn and scored as something else."""
    if t.dtype == torch.bool or t.is_complex():
        raise CnnlensError(f"{what} must hold real numbers, got dtype {t.dtype}")
    if t.is_floating_point() and not bool(torch.isfinite(t).all()):
        raise CnnlensError(f"{what} contains NaN or inf values")


@dataclasses.dataclass
class Explanation:
    """Attribution maps for a batch of images (§2).

    Attributes:
        maps: ``(N, H, W)`` raw map values at input resolution.
        targets: ``(N,)`` int64 explained classes.
        method: the method's registry name.
        params: every parameter that produced the maps (incl. seed, layer, version).
        layer_maps: optional ``(N, h, w)`` map at the feature layer's resolution.
        attributions: optional ``(N, C, H, W)`` pixel-space attribution.
        info: diagnostics computed with the maps (e.g. the LRP/DeepLIFT conservation report,
            counts of constant maps); JSON-serialisable values.
    """

    maps: torch.Tensor
    targets: torch.Tensor
    method: str = ""
    params: dict[str, Any] = dataclasses.field(default_factory=dict)
    layer_maps: torch.Tensor | None = None
    attributions: torch.Tensor | None = None
    info: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.maps, torch.Tensor) or self.maps.dim() != 3:
            shape = tuple(self.maps.shape) if isinstance(self.maps, torch.Tensor) else type(self.maps).__name__
            raise CnnlensError(f"Explanation.maps must be a (N, H, W) tensor, got {shape}")
        if self.maps.numel() == 0:
            raise CnnlensError(f"Explanation.maps is empty (shape {tuple(self.maps.shape)}); give at least one map")
        _check_values("Explanation.maps", self.maps)
        try:
            raw = torch.as_tensor(self.targets)
        except (TypeError, ValueError, RuntimeError):
            raise CnnlensError(f"Explanation.targets must be class indices (int), got {self.targets!r}"[:200]) from None
        if raw.dtype == torch.bool or raw.is_complex() or (
                raw.is_floating_point() and not bool((raw == raw.round()).all())):  # NaN fails too
            raise CnnlensError(f"Explanation.targets must be whole class indices, got {raw.flatten()[:8].tolist()}")
        self.targets = raw.to(torch.long).flatten()
        if bool((self.targets < 0).any()):
            raise CnnlensError(f"Explanation.targets must be class indices >= 0, got {self.targets[self.targets < 0][:8].tolist()}")
        if not isinstance(self.method, str):
            raise CnnlensError(f"Explanation.method must be a string (the method's name), got {type(self.method).__name__}")
        for what in ("params", "info"):
            if not isinstance(getattr(self, what), dict):
                raise CnnlensError(f"Explanation.{what} must be a dict, got {type(getattr(self, what)).__name__}")
        if self.targets.numel() != self.maps.shape[0]:
            raise CnnlensError(f"{self.targets.numel()} targets for {self.maps.shape[0]} maps")
        n = self.maps.shape[0]
        if self.layer_maps is not None:
            lm = self.layer_maps
            if not isinstance(lm, torch.Tensor) or lm.dim() != 3 or lm.shape[0] != n or lm.numel() == 0:
                shape = tuple(lm.shape) if isinstance(lm, torch.Tensor) else type(lm).__name__
                raise CnnlensError(f"Explanation.layer_maps must be a ({n}, h, w) tensor, got {shape}")
            _check_values("Explanation.layer_maps", lm)
        if self.attributions is not None:
            at = self.attributions
            if not isinstance(at, torch.Tensor) or at.dim() != 4 or at.shape[0] != n \
                    or tuple(at.shape[-2:]) != tuple(self.maps.shape[-2:]):
                shape = tuple(at.shape) if isinstance(at, torch.Tensor) else type(at).__name__
                raise CnnlensError(f"Explanation.attributions must be a ({n}, C, {self.maps.shape[1]}, "
                                   f"{self.maps.shape[2]}) tensor, got {shape}")
            _check_values("Explanation.attributions", at)

    def __len__(self) -> int:
        return self.maps.shape[0]

    def __repr__(self) -> str:
        from .display.explanation import summary

        return summary(self)

    def _repr_html_(self) -> str:
        return self.to_html()

    def to_html(self, images: torch.Tensor | np.ndarray | None = None, max_images: int = 8, class_names: Any = None) -> str:
        """A self-contained HTML block (what Jupyter shows): method, maps, targets, the first
        ``max_images`` heatmaps — over ``images`` ``(N, C, H, W)`` when given — and the parameters.
        ``class_names``: a sequence or ``clf.class_name`` to name the targets."""
        from .display.explanation import to_html

        return to_html(self, images, max_images, class_names)

    def plot(self, images: torch.Tensor | np.ndarray | None = None, max_images: int = 8, class_names: Any = None):
        """A matplotlib :class:`~matplotlib.figure.Figure` (not shown; ``fig.savefig(path)``): per
        image (the first ``max_images``) the image above its overlay when ``images`` are given, else
        the heatmap; titles name the method and the target."""
        from .display.explanation import plot

        return plot(self, images, max_images, class_names)

    def normalized(self) -> Explanation:
        """A copy whose maps are min-max normalised per image to ``[0, 1]`` (constant → 0)."""
        return dataclasses.replace(self, maps=minmax_normalize(self.maps.detach().float()))

    def overlay(self, images: torch.Tensor | np.ndarray | None = None, alpha: float = 0.5) -> np.ndarray:
        """RGB uint8 ``(N, H, W, 3)`` pictures: the normalised map in the 'jet' colours, blended
        with ``alpha`` over ``images`` (``(N, C, H, W)`` in [0, 1]) or alone without images."""
        if isinstance(alpha, (bool, str, bytes)) or not isinstance(alpha, numbers.Real) or not 0.0 <= alpha <= 1.0:
            raise CnnlensError(f"alpha must be in [0, 1], got {alpha!r}")
        heat = jet(self.normalized().maps.cpu().numpy())
        if images is not None:
            base = _to_numpy_images(images, len(self), tuple(self.maps.shape[-2:]))
            heat = alpha * heat + (1.0 - alpha) * base
        return np.round(heat * 255.0).astype(np.uint8)

    def save(self, path: str | os.PathLike[str], images: torch.Tensor | None = None, names: list[str] | None = None) -> list[Path]:
        """Write one PNG overlay per image and ``explanation.npz`` (maps, targets, params) into
        the folder ``path``. Returns the written paths.

        Atomic as a set: everything is first written into a hidden staging folder next to
        ``path``. A new folder appears with all files at once (one rename); into an existing
        folder the PNGs are moved first and ``explanation.npz`` last, so a present npz always
        belongs to a complete save. Staging folders left by a killed process are removed on the
        next save into the same place. Files get the usual ``0o666 & ~umask`` mode.
        """
        from PIL import Image  # local: keeps `import cnnlens` light

        folder = validation.path("path", path)
        if folder.exists() and not folder.is_dir():
            raise CnnlensError(f"{folder} exists and is not a folder")
        if names is not None and len(names) != len(self):
            raise CnnlensError(f"{len(names)} names for {len(self)} maps")
        pictures = self.overlay(images)
        blobs: list[tuple[str, bytes]] = []
        for i, pic in enumerate(pictures):
            stem = f"{i:04d}" + (f"_{safe_name(names[i])}" if names is not None else "")
            blobs.append((f"{stem}_{safe_name(self.method)}.png", png_bytes(Image.fromarray(pic))))
        arrays: dict[str, np.ndarray] = {
            "maps": self.maps.detach().cpu().numpy(),
            "targets": self.targets.cpu().numpy(),
            "method": np.array(self.method),
            "params": np.array(json.dumps(self.params, default=str, sort_keys=True)),
            "info": np.array(json.dumps(self.info, default=str, sort_keys=True)),
        }
        if self.layer_maps is not None:
            arrays["layer_maps"] = self.layer_maps.detach().cpu().numpy()
        bio = io.BytesIO()
        np.savez_compressed(bio, **arrays)
        blobs.append(("explanation.npz", bio.getvalue()))
        return _write_set(folder, blobs)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Explanation:
        """Read an explanation written by :meth:`save` (the folder or its ``explanation.npz``).

        A missing, truncated, corrupt or foreign file is a :class:`CnnlensError` naming the file
        and the problem (never a raw ``BadZipFile``/``KeyError``/``ValueError``); pickled arrays
        are refused."""
        p = validation.path("path", path)
        if p.is_dir():
            p = p / "explanation.npz"
        if not p.is_file():
            raise CnnlensError(f"no explanation at {p}" + (" (not a file)" if p.exists() else ""))
        try:
            data = np.load(io.BytesIO(p.read_bytes()), allow_pickle=False)  # no file handle to leak
            if not hasattr(data, "files"):
                raise _LoadProblem("not an .npz archive (a single .npy array)")
            with data:
                missing = [k for k in ("maps", "targets", "method", "params") if k not in data.files]
                if missing:
                    raise _LoadProblem(f"missing {', '.join(missing)}; not written by Explanation.save")
                arrays = {k: data[k] for k in data.files}
        except _LoadProblem as exc:
            raise CnnlensError(f"cannot load explanation {p}: {exc}") from None
        except ValueError as exc:
            why = "it holds pickled objects, which are refused" if "pickle" in str(exc) else one_line(exc)
            raise CnnlensError(f"cannot load explanation {p}: {why}") from None
        except Exception as exc:  # BadZipFile, EOFError, OSError, zlib.error, UnicodeDecodeError …
            raise CnnlensError(f"cannot load explanation {p}: corrupt or not an explanation file ({one_line(exc)})") from None
        try:
            return cls(
                maps=_numeric(arrays["maps"], "maps", 3),
                targets=_integers(arrays["targets"]),
                method=_string(arrays["method"], "method"),
                params=_json_dict(arrays["params"], "params"),
                layer_maps=_numeric(arrays["layer_maps"], "layer_maps", 3) if "layer_maps" in arrays else None,
                info=_json_dict(arrays["info"], "info") if "info" in arrays else {},
            )
        except (_LoadProblem, CnnlensError) as exc:
            raise CnnlensError(f"cannot load explanation {p}: {exc}") from None


class _LoadProblem(Exception):
    pass


def _numeric(a: np.ndarray, what: str, ndim: int) -> torch.Tensor:
    if a.dtype.kind not in "fiub" or a.dtype.kind == "b":
        raise _LoadProblem(f"{what} has dtype {a.dtype.name}; expected numbers")
    if a.ndim != ndim:
        raise _LoadProblem(f"{what} has shape {tuple(a.shape)}; expected {ndim} dimensions")
    return torch.from_numpy(np.ascontiguousarray(a).astype(np.float32 if a.dtype.kind != "f" else a.dtype, copy=False))


def _integers(a: np.ndarray) -> torch.Tensor:
    if a.dtype.kind not in "iu":
        raise _LoadProblem(f"targets have dtype {a.dtype.name}; expected integers")
    return torch.from_numpy(np.ascontiguousarray(a).astype(np.int64))


def _string(a: np.ndarray, what: str) -> str:
    if a.dtype.kind != "U" or a.ndim != 0:
        raise _LoadProblem(f"{what} is not a string")
    return str(a)


def _json_dict(a: np.ndarray, what: str) -> dict[str, Any]:
    text = _string(a, what)
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise _LoadProblem(f"{what} is not valid JSON ({one_line(exc)})") from None
    if not isinstance(value, dict):
        raise _LoadProblem(f"{what} is a JSON {type(value).__name__}, expected an object")
    return value


_STAGING = ".cnnlens-partial-"


def _remove_stale_staging(parent: Path, name: str) -> None:
    """Remove staging folders of ``name`` left by processes that no longer run."""
    import shutil

    prefix = f".{name}{_STAGING}"
    try:
        entries = list(parent.iterdir())
    except OSError:
        return
    for d in entries:
        if not d.name.startswith(prefix) or not d.is_dir():
            continue
        try:
            pid = int(d.name[len(prefix):].split("-")[0])
        except ValueError:
            continue
        if pid != os.getpid() and not _pid_alive(pid):
            shutil.rmtree(d, ignore_errors=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def _write_set(folder: Path, blobs: list[tuple[str, bytes]]) -> list[Path]:
    """Write ``(file name, bytes)`` into ``folder`` atomically as a set (see Explanation.save);
    the last blob is the commit marker."""
    import secrets
    import shutil

    from ._io import current_umask, default_file_mode

    given = folder
    folder = Path(os.path.abspath(folder))  # "." and "a/.." get a real name and parent
    parent = folder.parent
    parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_staging(parent, folder.name)
    staging = parent / f".{folder.name}{_STAGING}{os.getpid()}-{secrets.token_hex(4)}"
    mode = default_file_mode()
    staging.mkdir()
    try:
        for fname, data in blobs:
            target = staging / fname
            with open(target, "wb") as fh:
                fh.write(data)
            os.chmod(target, mode)
        if not folder.exists():
            try:
                os.chmod(staging, 0o777 & ~current_umask())  # mkdtemp-like 0o700 → a normal folder
                os.rename(staging, folder)
                return [given / fname for fname, _ in blobs]
            except OSError:
                folder.mkdir(parents=True, exist_ok=True)  # lost a race: fall back to moving files
        for fname, _ in blobs:
            os.replace(staging / fname, folder / fname)
        return [given / fname for fname, _ in blobs]
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)

