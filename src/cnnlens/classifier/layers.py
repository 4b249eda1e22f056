"""Layers of the :class:`~cnnlens.Classifier` (docs/algorithms.md §1): hook contexts, the feature layer
(``"auto"`` resolution, per-call ``layer=``), ψ = ``features(x)`` and the head G(t) (§5)."""
from __future__ import annotations

import contextlib
import threading
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn

from .. import validation
from ..errors import CnnlensError

__all__ = ["LayersMixin"]

_POOLING = (nn.modules.pooling._MaxPoolNd, nn.modules.pooling._AvgPoolNd, nn.modules.pooling._AdaptiveAvgPoolNd,
            nn.modules.pooling._AdaptiveMaxPoolNd, nn.modules.pooling._LPPoolNd)
_PASS = (nn.modules.dropout._DropoutNd, nn.Identity)  # carry their input on: never the alternative


class LayersMixin:
    """Hook contexts and layer access (mixed into :class:`~cnnlens.Classifier`)."""

    model: nn.Module
    input_shape: tuple[int, int, int] | None
    _lock: threading.RLock
    _module_names: dict[int, str]
    _feature_module: nn.Module | None
    _feature_name: str | None
    _auto: bool

    @contextlib.contextmanager
    def hooks(self, *registrations: tuple[nn.Module, str, Callable[..., Any]]) -> Iterator[None]:
        """Register ``(module, kind, fn)`` hooks (kind: ``"forward"``, ``"forward_pre"``,
        ``"full_backward"``) for the duration of the ``with`` block; all are removed on exit,
        also when the block raises."""
        handles = []
        self._lock.acquire()
        try:
            for module, kind, fn in registrations:
                register = {
                    "forward": module.register_forward_hook,
                    "forward_pre": module.register_forward_pre_hook,
                    "full_backward": module.register_full_backward_hook,
                }.get(kind)
                if register is None:
                    raise CnnlensError(f"unknown hook kind {kind!r}")
                try:
                    handles.append(register(fn))
                except RuntimeError:
                    if not isinstance(module, torch.jit.ScriptModule):
                        raise
                    raise CnnlensError(
                        f"cannot hook layer {self._module_names.get(id(module), type(module).__name__)!r}: "
                        "it is TorchScript, which runs no Python hooks; explain the original nn.Module"
                    ) from None
            yield
        finally:
            for h in handles:
                h.remove()
            self._lock.release()

    def _trace_4d_outputs(self, x: torch.Tensor) -> list[tuple[str, tuple[int, ...]]]:
        """Names and shapes of modules producing 4-D tensors, in the order they finish."""
        finished: list[tuple[str, tuple[int, ...]]] = []

        def record(module: nn.Module, _inp: Any, out: Any) -> None:
            if isinstance(out, torch.Tensor) and out.dim() == 4:
                finished.append((self._module_names[id(module)], tuple(out.shape)))

        scripted = self._inside_torchscript()
        regs = [(m, "forward", record) for name, m in self.model.named_modules() if name and id(m) not in scripted]
        with self.hooks(*regs), torch.no_grad():
            self.forward_unchecked(x)
        return finished

    def _inside_torchscript(self) -> set[int]:
        """``id`` of every module that is or lies inside a TorchScript module (scripted or traced):
        their forward hooks cannot be registered or never run."""
        return {id(s) for m in self.model.modules() if isinstance(m, torch.jit.ScriptModule) for s in m.modules()}

    def torchscript_owner(self, module: nn.Module | None = None) -> str | None:
        """Where TorchScript hides ``module`` (``None``: any part of the model): ``"the model"`` or
        ``"module 'name'"`` for the outermost scripted/traced module containing it; ``None`` if
        ``module`` (or the whole model) is plain Python."""
        for name, m in self.model.named_modules():
            if isinstance(m, torch.jit.ScriptModule) and (module is None or any(s is module for s in m.modules())):
                return f"module {name!r}" if name else "the model"
        return None

    def probe_input(self) -> torch.Tensor | None:
        """A ``(1, *input_shape)`` batch of 0.5 for probe forwards; ``None`` without ``input_shape``."""
        if self.input_shape is None:
            return None
        dtype = next((p.dtype for p in self.model.parameters() if p.is_floating_point()), torch.float32)
        return torch.full((1, *self.input_shape), 0.5, device=self.device, dtype=dtype)

    def candidate_layers(self, x: torch.Tensor | None = None) -> list[str]:
        """Names of modules whose output is 4-D, in forward order (needs ``x`` or ``input_shape``;
        otherwise the modules that are or contain a ``Conv2d``)."""
        probe = x[:1] if x is not None else self.probe_input()
        if probe is not None:
            seen: dict[str, None] = {}
            for name, _ in self._trace_4d_outputs(probe):
                seen.setdefault(name, None)
            return list(seen)
        return [
            name
            for name, m in self.model.named_modules()
            if name and name.count(".") <= 1 and any(isinstance(c, nn.Conv2d) for c in m.modules())
        ]

    def resolve_feature_layer(self, x: torch.Tensor | None = None) -> str:
        """Resolve ``feature_layer="auto"`` (§1): the module that last finishes producing a
        4-D tensor with spatial size > 1. Uses ``x`` (or ``input_shape``) for one probe forward."""
        if self._feature_name is not None:
            return self._feature_name
        if not self._auto:
            raise CnnlensError("this Classifier has feature_layer=None; pass feature_layer='auto' or a layer name")
        probe = x[:1] if x is not None else self.probe_input()
        if probe is None:
            raise CnnlensError(
                "feature_layer='auto' is resolved on first use: call features(x) first, "
                "or give Classifier(..., input_shape=(C, H, W))"
            )
        probe = self.check_input(probe)
        spatial = [(n, s) for n, s in self._trace_4d_outputs(probe) if s[2] * s[3] > 1]
        if not spatial:
            raise CnnlensError(
                "feature_layer='auto' found no module with a 4-D output of spatial size > 1; "
                "this model needs an explicit feature_layer, or feature_layer=None"
            )
        name = spatial[-1][0]
        self._feature_name = name
        self._feature_module = dict(self.model.named_modules())[name]
        self._warn_auto_pick(spatial)
        return name

    def _warn_auto_pick(self, spatial: list[tuple[str, tuple[int, ...]]]) -> None:
        """Warn once when the ``"auto"`` pick is itself a pooling module (VGG's ``avgpool``; a container
        that ends in pooling, such as the MNIST CNN's ``features``, is not) or has as many channels
        as the model has classes (SqueezeNet's class map), naming the last earlier layer that is
        neither (the convolutional alternative; dropout/identity excluded)."""
        modules = dict(self.model.named_modules())
        k = getattr(self, "num_classes", None)

        def odd(i: int) -> str | None:
            if isinstance(modules[spatial[i][0]], _POOLING):
                return "a pooling layer"
            if k is not None and k > 2 and spatial[i][1][1] == k:
                return f"{k} channels, as many as the model has classes (a class map)"
            return None

        why = odd(len(spatial) - 1)
        if why is None or getattr(self, "_auto_warned", False):
            return
        self._auto_warned = True
        name, shape = spatial[-1]
        alt = next((spatial[i] for i in range(len(spatial) - 2, -1, -1)
                    if spatial[i][0] != name and odd(i) is None and not isinstance(modules[spatial[i][0]], _PASS)), None)
        hint = (f"the last convolutional alternative is {alt[0]!r} ({alt[1][1]} channels, {alt[1][2]}×{alt[1][3]}); "
                f"pass feature_layer={alt[0]!r}") if alt else "pass an explicit feature_layer="
        warnings.warn(
            f"feature_layer='auto' picked {name!r} ({type(modules[name]).__name__}, {shape[1]} channels, "
            f"{shape[2]}×{shape[3]}), which is {why}; {hint} to explain convolutional features",
            UserWarning, stacklevel=4,
        )

    @property
    def feature_layer_name(self) -> str | None:
        """Dotted name of the feature layer (resolving ``"auto"`` via ``input_shape`` if needed)."""
        if self._feature_name is None and self._auto:
            return self.resolve_feature_layer()
        return self._feature_name

    @property
    def feature_module(self) -> nn.Module:
        _ = self.feature_layer_name  # resolves "auto" when possible
        if self._feature_module is None:
            raise CnnlensError("this Classifier has no feature layer (feature_layer=None)")
        return self._feature_module

    def _feature_module_for(self, x: torch.Tensor) -> nn.Module:
        if self._feature_module is None:
            self.resolve_feature_layer(x)
        assert self._feature_module is not None
        return self._feature_module

    def layer_module(self, layer: str | nn.Module | None = None, x: torch.Tensor | None = None) -> tuple[nn.Module, str]:
        """``(module, dotted name)`` of ``layer``: ``None`` → the Classifier's feature layer;
        a dotted name or a submodule → that layer, for one call (§1 per-call ``layer=``)."""
        if layer is None:
            module = self._feature_module_for(x) if x is not None else self.feature_module
            assert self._feature_name is not None
            return module, self._feature_name
        if isinstance(layer, nn.Module):
            if id(layer) not in self._module_names:
                raise CnnlensError("layer module is not a submodule of the model")
            return layer, self._module_names[id(layer)]
        if isinstance(layer, str):
            modules = dict(self.model.named_modules())
            if layer == "" or layer not in modules:
                raise CnnlensError(
                    f"layer {layer!r} not found; layers with 4-D outputs: "
                    f"{', '.join(self.candidate_layers(x)) or '(none found)'}"
                )
            return modules[layer], layer
        raise CnnlensError(f"layer must be None, a layer name or a module, got {type(layer).__name__}")

    def forward_with_features(
        self, x: torch.Tensor, layer: str | nn.Module | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One forward pass returning ``(features ψ(x), logits)``, both on the autograd graph
        (Grad-CAM and friends differentiate the logits with respect to ψ). ``layer`` overrides
        the feature layer for this call."""
        x = self.check_input(x)
        module, name = self.layer_module(layer, x)
        captured: list[torch.Tensor] = []

        def grab(_m: nn.Module, _inp: Any, out: Any) -> torch.Tensor:
            if not isinstance(out, torch.Tensor):
                raise CnnlensError(f"feature layer {name!r} returned {type(out).__name__}, not a tensor")
            if torch.is_grad_enabled() and not out.requires_grad and out.is_floating_point():
                # a frozen model (every parameter requires_grad=False) and an input without grad:
                # ψ becomes a leaf so that ∂logits/∂ψ exists; the user's parameters stay untouched
                out = out.detach().requires_grad_(True)
            captured.append(out)
            # the rest of the network gets a copy: an in-place op after the layer (ReLU(inplace),
            # `out += identity`, DenseNet's F.relu(..., inplace=True)) changes the copy, never ψ,
            # and the logits stay differentiable with respect to ψ
            return out.clone()

        with self.hooks((module, "forward", grab)):
            logits = self.forward_unchecked(x)
        if len(captured) != 1:
            raise CnnlensError(
                f"feature layer {name!r} ran {len(captured)} times in one forward pass; "
                "choose a layer that runs exactly once"
            )
        return captured[0], logits

    def features(
        self, x: torch.Tensor, batch_size: int | None = None, layer: str | nn.Module | None = None
    ) -> torch.Tensor:
        """ψ(x), the feature-layer output (the layer's own output, unchanged by any in-place op that
        follows it in the network). With ``batch_size``: chunked, without gradients."""
        if batch_size is None:
            return self.forward_with_features(x, layer)[0]
        batch_size = validation.batch_size(batch_size)
        x = self.check_input(x)
        with torch.no_grad():
            return torch.cat([self.forward_with_features(c, layer)[0] for c in x.split(batch_size)])

    def head(self, x: torch.Tensor, t: torch.Tensor, layer: str | nn.Module | None = None) -> torch.Tensor:
        """G(t): the logits obtained when the feature-layer output for ``x`` is replaced by ``t``.

        Computed through the real network (a forward hook substitutes the layer's output), so it
        is differentiable in ``t`` (RI needs ∂ΔG/∂ψ, §5). ``t`` must have the feature shape
        ``(N, ...)`` of ``features(x)``; it may be a leaf with ``requires_grad``. The network gets a
        copy of ``t`` (cast to the layer's dtype), so the caller's ``t`` is never changed by an
        in-place op after the layer.
        """
        x = self.check_input(x)
        module, name = self.layer_module(layer, x)
        if not isinstance(t, torch.Tensor):
            raise CnnlensError(f"t must be a tensor, got {type(t).__name__}")
        if not t.is_floating_point():
            raise CnnlensError(f"t must be a floating tensor, got dtype {t.dtype}")
        if t.dim() == 0 or t.shape[0] != x.shape[0]:
            raise CnnlensError(f"t has shape {tuple(t.shape)} for {x.shape[0]} images; expected ({x.shape[0]}, ...)")
        t = t.to(self.device)
        calls = [0]

        def substitute(_m: nn.Module, _inp: Any, out: Any) -> torch.Tensor:
            calls[0] += 1
            if not isinstance(out, torch.Tensor):
                raise CnnlensError(f"feature layer {name!r} returned {type(out).__name__}, not a tensor")
            if out.shape != t.shape:
                raise CnnlensError(
                    f"t has shape {tuple(t.shape)} but feature layer {name!r} "
                    f"outputs {tuple(out.shape)}"
                )
            return t.to(out.dtype) if t.dtype != out.dtype else t.clone()

        with self.hooks((module, "forward", substitute)):
            logits = self.forward_unchecked(x)
        if calls[0] != 1:
            raise CnnlensError(
                f"feature layer {name!r} ran {calls[0]} times in one forward pass; "
                "choose a layer that runs exactly once"
            )
        return logits
