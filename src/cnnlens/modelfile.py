"""Loading user models from files for the command line (SPEC §1 "Model files").

Three forms, safest first:

- ``package.module:factory`` with ``weights=FILE``: the factory builds the architecture (e.g.
  ``torchvision.models:resnet18``) and the state dict is read with
  ``torch.load(..., weights_only=True)`` — no code runs from the file.
- a TorchScript file (``torch.jit.save``): loaded with ``torch.jit.load``.
- a pickled ``nn.Module`` (``torch.save(model)``): unpickling can run arbitrary code, so it is
  refused unless ``trust_pickle=True`` (``--trust-pickle`` on the command line).
"""
from __future__ import annotations

import importlib
import os
import pickle
import zipfile
from pathlib import Path

import torch
from torch import nn

from .errors import CnnlensError

__all__ = ["load_model_file"]


def _is_torchscript(path: Path) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as zf:
        return any("/code/" in n or n.endswith("constants.pkl") for n in zf.namelist())


def _read_state_dict(weights: str | os.PathLike[str], map_location: str | torch.device) -> dict:
    p = Path(weights)
    if not p.is_file():
        raise CnnlensError(f"weights file not found: {p}")
    try:
        state = torch.load(p, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CnnlensError(
            f"{p} is not a plain state dict (weights_only loading refused it: {str(exc).splitlines()[0]})"
        ) from None
    except (RuntimeError, EOFError, OSError) as exc:
        raise CnnlensError(f"cannot read weights {p}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise CnnlensError(f"{p} holds a {type(state).__name__}, not a state dict")
    return state


def _from_factory(spec: str, weights: str | os.PathLike[str] | None, map_location: str | torch.device) -> nn.Module:
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise CnnlensError(f"model {spec!r}: expected 'package.module:factory'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise CnnlensError(f"model {spec!r}: cannot import {module_name!r} ({exc})") from None
    factory = getattr(module, attr, None)
    if factory is None or not callable(factory):
        raise CnnlensError(f"model {spec!r}: {module_name!r} has no callable {attr!r}")
    model = factory()
    if not isinstance(model, nn.Module):
        raise CnnlensError(f"model {spec!r}: the factory returned {type(model).__name__}, not an nn.Module")
    if weights is not None:
        state = _read_state_dict(weights, map_location)
        result = model.load_state_dict(state, strict=False)
        if result.missing_keys or result.unexpected_keys:
            raise CnnlensError(
                f"weights {weights} do not fit {spec}: {len(result.missing_keys)} missing keys "
                f"(e.g. {result.missing_keys[:2]}), {len(result.unexpected_keys)} unexpected "
                f"(e.g. {result.unexpected_keys[:2]})"
            )
    return model.to(map_location)


def load_model_file(
    spec: str,
    weights: str | os.PathLike[str] | None = None,
    trust_pickle: bool = False,
    map_location: str | torch.device = "cpu",
) -> nn.Module:
    """Load a model given as ``module:factory`` (+ ``weights``), a TorchScript file, or — only
    with ``trust_pickle=True`` — a pickled ``nn.Module``. Errors name the file and the fix."""
    p = Path(spec)
    if not p.exists() and ":" in spec:
        return _from_factory(spec, weights, map_location)
    if not p.is_file():
        raise CnnlensError(f"model {spec!r} is neither a bundled model, a file, nor 'package.module:factory'")
    if weights is not None:
        raise CnnlensError("--weights goes with a 'package.module:factory' model, not with a model file")
    if _is_torchscript(p):
        try:
            return torch.jit.load(str(p), map_location=map_location)
        except RuntimeError as exc:
            raise CnnlensError(f"cannot load TorchScript model {p}: {str(exc).splitlines()[0]}") from None
    try:
        obj = torch.load(p, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:
        if not trust_pickle:
            raise CnnlensError(
                f"{p} holds a pickled model; unpickling it can run arbitrary code. Pass --trust-pickle "
                "if you trust the file, or save a state dict and use 'package.module:factory' --weights"
            ) from None
        obj = torch.load(p, map_location=map_location, weights_only=False)
    except (RuntimeError, EOFError, OSError) as exc:
        raise CnnlensError(f"cannot read model file {p}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    if isinstance(obj, dict):
        raise CnnlensError(
            f"{p} holds a state dict, not a model: give the architecture as "
            f"'package.module:factory' and this file as --weights"
        )
    if not isinstance(obj, nn.Module):
        raise CnnlensError(f"{p} holds a {type(obj).__name__}, not a torch.nn.Module")
    return obj
