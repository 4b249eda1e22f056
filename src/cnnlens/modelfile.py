"""Loading user models from files for the command line (docs/algorithms.md §1 "Model files").

Three forms, safest first:

- ``package.module:factory`` with ``weights=FILE``: the factory builds the architecture (e.g.
  ``torchvision.models:resnet18``, with ``model_kwargs`` such as ``{"num_classes": 10}``) and
  the state dict is read with ``torch.load(..., weights_only=True)`` — no code runs from the
  file. Without weights it is refused unless asked for (``--weights none``).
- a TorchScript file (``torch.jit.save``): loaded with ``torch.jit.load``.
- a pickled ``nn.Module`` (``torch.save(model)``): unpickling can run arbitrary code, so it is
  refused unless ``trust_pickle=True`` (``--trust-pickle`` on the command line).
"""
from __future__ import annotations

import importlib
import os
import pickle
import warnings
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .errors import CnnlensError, one_line

__all__ = ["load_model_file"]


_ZIP_MAGIC = b"PK\x03\x04"


def _head(path: Path, n: int = 8) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read(n)
    except OSError as exc:
        raise CnnlensError(f"cannot read {path}: {one_line(exc)}") from None


def _is_torchscript(path: Path) -> bool:
    if not _head(path).startswith(_ZIP_MAGIC):
        return False
    try:
        with zipfile.ZipFile(path) as zf:
            return any("/code/" in n or n.endswith("constants.pkl") for n in zf.namelist())
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise CnnlensError(f"{path} is a damaged zip archive ({one_line(exc)}); save the model again") from None


def _check_torch_file(path: Path, what: str) -> None:
    """Refuse files that are neither a torch.save zip archive nor a legacy torch pickle."""
    head = _head(path)
    if not head:
        raise CnnlensError(f"{what} {path} is empty")
    if not (head.startswith(_ZIP_MAGIC) or head[:1] == b"\x80"):
        raise CnnlensError(
            f"{what} {path} is not a PyTorch file (neither a torch.save/torch.jit.save zip archive "
            "nor a legacy torch pickle)"
        )


def _read_state_dict(weights: str | os.PathLike[str], map_location: str | torch.device) -> dict:
    p = Path(weights)
    if not p.is_file():
        raise CnnlensError(f"weights file not found: {p}")
    _check_torch_file(p, "weights file")
    try:
        state = torch.load(p, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CnnlensError(
            f"{p} is not a plain state dict (weights_only loading refused it: {one_line(str(exc))})"
        ) from None
    except Exception as exc:  # RuntimeError, EOFError, OSError, BadZipFile, …
        raise CnnlensError(f"cannot read weights {p}: {one_line(exc)}") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise CnnlensError(f"{p} holds a {type(state).__name__}, not a state dict")
    bad = [k for k, v in state.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise CnnlensError(f"{p} is not a state dict of tensors (entry {str(bad[0])[:60]!r})")
    return state


def _fit_state(state: dict, model: nn.Module, spec: str, weights: Any) -> dict:
    """Check ``state`` against ``model`` before loading: keys and shapes, with a hint for a
    fine-tuned head (``--model-kwargs``); strips a DataParallel ``module.`` prefix."""
    own = model.state_dict()
    if state and all(k.startswith("module.") for k in state) and not any(k.startswith("module.") for k in own):
        state = {k[len("module."):]: v for k, v in state.items()}
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    if missing or unexpected:
        raise CnnlensError(
            f"weights {weights} do not fit {spec}: {len(missing)} missing keys "
            f"(e.g. {missing[:2]}), {len(unexpected)} unexpected (e.g. {unexpected[:2]})"
        )
    mismatched = [(k, tuple(state[k].shape), tuple(own[k].shape)) for k in own if tuple(state[k].shape) != tuple(own[k].shape)]
    if mismatched:
        k, got, want = mismatched[-1]
        hint = ""
        if len(got) == len(want) and got[1:] == want[1:] and got[0] != want[0]:
            hint = f"; a different head? pass --model-kwargs '{{\"num_classes\": {got[0]}}}' (or the factory's own argument)"
        shown = ", ".join(f"{n}: file {g}, model {w}" for n, g, w in mismatched[:2])
        raise CnnlensError(f"weights {weights} do not fit {spec}: {len(mismatched)} shape mismatch(es) ({shown}){hint}")
    return state


def _from_factory(
    spec: str,
    weights: str | os.PathLike[str] | None,
    map_location: str | torch.device,
    model_kwargs: dict[str, Any] | None = None,
    allow_no_weights: bool = False,
) -> nn.Module:
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise CnnlensError(f"model {spec!r}: expected 'package.module:factory'")
    if model_kwargs is not None and not isinstance(model_kwargs, dict):
        raise CnnlensError(f"model keyword arguments must be a dict, got {type(model_kwargs).__name__}")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # ImportError, or any error raised while importing the user's module
        raise CnnlensError(f"model {spec!r}: cannot import {module_name!r} ({one_line(exc)})") from None
    factory = getattr(module, attr, None)
    if factory is None or not callable(factory):
        raise CnnlensError(f"model {spec!r}: {module_name!r} has no callable {attr!r}")
    if weights is None and not allow_no_weights:
        raise CnnlensError(
            f"model {spec!r} needs --weights FILE (a state dict); without it the network would run "
            "on its initial (usually random) weights — pass --weights none if the factory itself "
            "returns a trained model"
        )
    try:
        model = factory(**(model_kwargs or {}))
    except Exception as exc:
        raise CnnlensError(f"model {spec!r}: the factory raised {one_line(exc)}") from None
    if not isinstance(model, nn.Module):
        raise CnnlensError(f"model {spec!r}: the factory returned {type(model).__name__}, not an nn.Module")
    if weights is not None:
        state = _fit_state(_read_state_dict(weights, map_location), model, spec, weights)
        try:
            model.load_state_dict(state, strict=True)
        except Exception as exc:
            raise CnnlensError(f"weights {weights} do not fit {spec}: {one_line(exc)}") from None
    return model.to(map_location)


def load_model_file(
    spec: str,
    weights: str | os.PathLike[str] | None = None,
    trust_pickle: bool = False,
    map_location: str | torch.device = "cpu",
    model_kwargs: dict[str, Any] | None = None,
    allow_no_weights: bool = False,
) -> nn.Module:
    """Load a model given as ``module:factory`` (+ ``weights``), a TorchScript file, or — only
    with ``trust_pickle=True`` — a pickled ``nn.Module``. Errors name the file and the fix.

    A factory model needs ``weights`` unless ``allow_no_weights=True`` (``--weights none``),
    so a network never runs silently on random weights; ``model_kwargs`` are passed to the
    factory (``{"num_classes": 10}`` for a fine-tuned head). The loaded model is put in eval
    mode (it is a fresh object built here, not the caller's model)."""
    model = _load(spec, weights, trust_pickle, map_location, model_kwargs, allow_no_weights)
    model.eval()
    return model


def _load(spec, weights, trust_pickle, map_location, model_kwargs, allow_no_weights) -> nn.Module:
    p = Path(spec)
    if not p.exists() and ":" in spec:
        return _from_factory(spec, weights, map_location, model_kwargs, allow_no_weights)
    if not p.is_file():
        raise CnnlensError(f"model {spec!r} is neither a bundled model, a file, nor 'package.module:factory'")
    if weights is not None:
        raise CnnlensError("--weights goes with a 'package.module:factory' model, not with a model file")
    if model_kwargs:
        raise CnnlensError("--model-kwargs go with a 'package.module:factory' model, not with a model file")
    _check_torch_file(p, "model file")
    if _is_torchscript(p):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)  # "torch.jit.load is deprecated"
                return torch.jit.load(str(p), map_location=map_location)
        except Exception as exc:
            raise CnnlensError(f"cannot load TorchScript model {p}: {one_line(exc)}") from None
    try:
        obj = torch.load(p, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:
        if not trust_pickle:
            raise CnnlensError(
                f"{p} holds a pickled model; unpickling it can run arbitrary code. Pass --trust-pickle "
                "if you trust the file, or save a state dict and use 'package.module:factory' --weights"
            ) from None
        try:
            obj = torch.load(p, map_location=map_location, weights_only=False)
        except Exception as exc:  # missing class definitions, corrupt pickles, …
            raise CnnlensError(f"cannot unpickle model file {p}: {one_line(exc)}") from None
    except Exception as exc:
        raise CnnlensError(f"cannot read model file {p}: {one_line(exc)}") from None
    if isinstance(obj, dict):
        raise CnnlensError(
            f"{p} holds a state dict, not a model: give the architecture as "
            f"'package.module:factory' and this file as --weights"
        )
    if not isinstance(obj, nn.Module):
        raise CnnlensError(f"{p} holds a {type(obj).__name__}, not a torch.nn.Module")
    return obj
