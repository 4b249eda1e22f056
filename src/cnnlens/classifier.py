"""The model wrapper every part of cnnlens shares (SPEC §1, §9).

:class:`Classifier` is the only place that knows about hooks, normalisation, output selection and
the feature layer. Images enter in pixel space ``[0, 1]`` as ``(N, C, H, W)`` float tensors; the
mean/std normalisation happens inside (SPEC §0), so every perturbation made by an explainer or a
metric stays in pixel space.

Example::

    >>> import torch
    >>> from torch import nn
    >>> from cnnlens import Classifier
    >>> net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3), nn.ReLU(),
    ...                     nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2)).eval()
    >>> clf = Classifier(net, mean=[0.5, 0.5, 0.5], std=[0.25, 0.25, 0.25])
    >>> x = torch.rand(2, 3, 16, 16)
    >>> clf.logits(x).shape
    torch.Size([2, 2])
    >>> clf.features(x).shape, clf.feature_layer_name
    (torch.Size([2, 4, 12, 12]), '3')
    >>> bool(torch.allclose(clf.head(x, clf.features(x)), clf.logits(x)))
    True
"""
from __future__ import annotations

import contextlib
import math
import numbers
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from torch import nn

from . import validation
from .errors import CnnlensError, ModelError, one_line

__all__ = ["Classifier"]

# pixel values may stray this far outside [0, 1] (interpolation overshoot, finite differences)
_RANGE_SLACK = 1e-2
# pixel-space std of [0, 1] images is at most 0.5; 0-255 statistics have std ~ 50-80
_MAX_STD = 5.0


def _as_stat(value: float | Sequence[float] | torch.Tensor | None, what: str) -> torch.Tensor | None:
    if value is None:
        return None
    if isinstance(value, (str, bytes)):
        raise CnnlensError(f"{what} must be a number or one number per channel, got the string {value[:40]!r}")
    try:
        t = torch.as_tensor(value, dtype=torch.float32).flatten()
    except (TypeError, ValueError, RuntimeError):
        raise CnnlensError(f"{what} must be a number or one number per channel, got {str(value)[:60]}") from None
    if t.numel() == 0:
        raise CnnlensError(f"{what} is empty; give one value or one value per channel")
    if not torch.isfinite(t).all():
        raise CnnlensError(f"{what} contains NaN or inf: {t.tolist()}")
    if what == "std" and (t <= 0).any():
        raise CnnlensError(f"std must be positive, got {t.tolist()}")
    if what == "mean" and ((t < 0).any() or (t > 1).any()):
        raise CnnlensError(
            f"mean {t.tolist()} is outside [0, 1]: mean/std are pixel-space statistics of images in "
            "[0, 1] (for 0-255 statistics divide them by 255)"
        )
    if what == "std" and (t > _MAX_STD).any():
        raise CnnlensError(
            f"std {t.tolist()} is above {_MAX_STD:g}: mean/std are pixel-space statistics of images in [0, 1] "
            "(for 0-255 statistics divide them by 255)"
        )
    return t.view(1, -1, 1, 1)


def _as_class_names(names: Any) -> list[str] | None:
    if names is None:
        return None
    if isinstance(names, (str, bytes)):
        raise CnnlensError("class_names must be a list of names (one per class), not a single string")
    try:
        out = [str(n) for n in names]
    except TypeError:
        raise CnnlensError(f"class_names must be a list of names, got {type(names).__name__}") from None
    if not out:
        raise CnnlensError("class_names is empty; give one name per class or None")
    return out


def _as_input_shape(shape: Any) -> tuple[int, int, int] | None:
    if shape is None:
        return None
    try:
        values = list(shape)
    except TypeError:
        raise CnnlensError(f"input_shape must be (C, H, W), got {shape!r}") from None
    if len(values) != 3 or any(
        isinstance(v, bool) or not isinstance(v, numbers.Integral) and not (isinstance(v, torch.Tensor) and not v.is_floating_point() and v.numel() == 1)
        for v in values
    ):
        raise CnnlensError(f"input_shape must be (C, H, W) with whole numbers, got {tuple(values)}")
    out = tuple(int(v) for v in values)
    if min(out) < 1:
        raise CnnlensError(f"input_shape must have positive sizes, got {out}")
    return out  # type: ignore[return-value]


def _channels_last(x: torch.Tensor) -> torch.Tensor:
    """``x`` ``(N, C, H, W)`` laid out channels-last. For one channel, ``contiguous(memory_format=
    channels_last)`` keeps the plain strides (both layouts are the same memory), and convolutions
    then take the plain path; explicit strides ``(H·W, 1, W, 1)`` mark the batch as channels-last."""
    if x.shape[1] != 1:
        return x.contiguous(memory_format=torch.channels_last)
    n, _, h, w = x.shape
    out = torch.empty_strided(x.shape, (h * w, 1, w, 1), dtype=x.dtype, device=x.device)
    return out.copy_(x)


class Classifier:
    """Wrap a PyTorch image classifier (SPEC §1).

    Args:
        model: an ``nn.Module`` mapping a normalised ``(N, C, H, W)`` batch to logits ``(N, K)``
            (or to a tuple/dict from which ``output`` selects the logits).
        mean, std: per-channel (or scalar) normalisation applied as ``(x - mean) / std`` to
            pixel-space input before the model. ``None`` means no normalisation.
        feature_layer: ``"auto"`` (the module that last finishes producing a 4-D tensor with
            spatial size > 1 during a forward pass, resolved on first use), a dotted module name
            (``"layer4"``, ``"features.29"``), an ``nn.Module`` inside ``model``, or ``None``.
        class_names: optional names of the output classes, in index order.
        output: optional callable selecting the logits tensor from a tuple/dict output.
        input_shape: optional ``(C, H, W)`` the model expects; used to resolve the feature layer
            before any data is seen and by the command line to prepare image files.

    The model is put in eval mode; if it was training, a warning says so. Hooks are only ever
    registered inside context managers and are removed even when the forward pass raises.
    """

    def __init__(
        self,
        model: nn.Module,
        mean: float | Sequence[float] | torch.Tensor | None = None,
        std: float | Sequence[float] | torch.Tensor | None = None,
        feature_layer: str | nn.Module | None = "auto",
        class_names: Sequence[str] | None = None,
        output: Callable[[Any], torch.Tensor] | None = None,
        input_shape: Sequence[int] | None = None,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise CnnlensError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        if output is not None and not callable(output):
            raise CnnlensError("output must be a callable that selects the logits from the model output")
        self.model = model
        self._train_depth = 0
        # one forward pass (with its hook substitutions) at a time per Classifier (SPEC §1)
        self._lock = threading.RLock()
        self._num_classes: int | None = None
        self._ensure_eval()
        self._mean = _as_stat(mean, "mean")
        self._std = _as_stat(std, "std")
        if self._mean is not None and self._std is not None:
            cm, cs = self._mean.shape[1], self._std.shape[1]
            if cm > 1 and cs > 1 and cm != cs:
                raise CnnlensError(f"mean has {cm} values but std has {cs}")
        self.output = output
        self.class_names = _as_class_names(class_names)
        self.input_shape = _as_input_shape(input_shape)
        self._check_stat_channels()
        self._module_names = {id(m): name for name, m in model.named_modules() if name}
        self._feature_module: nn.Module | None = None
        self._feature_name: str | None = None
        self._auto = False
        if feature_layer is None:
            pass
        elif isinstance(feature_layer, str) and feature_layer == "auto":
            self._auto = True
        elif isinstance(feature_layer, nn.Module):
            if id(feature_layer) not in self._module_names:
                raise CnnlensError("feature_layer module is not a submodule of the model")
            self._feature_module = feature_layer
            self._feature_name = self._module_names[id(feature_layer)]
        elif isinstance(feature_layer, str):
            modules = dict(model.named_modules())
            if feature_layer not in modules or feature_layer == "":
                raise CnnlensError(
                    f"feature_layer {feature_layer!r} not found; "
                    f"layers with 4-D outputs: {', '.join(self.candidate_layers()) or '(none found)'}"
                )
            self._feature_module = modules[feature_layer]
            self._feature_name = feature_layer
        else:
            raise CnnlensError(
                f"feature_layer must be 'auto', None, a layer name or a module, got {type(feature_layer).__name__}"
            )

    def _check_stat_channels(self) -> None:
        """Per-channel mean/std must match the channels the model takes (SPEC §0)."""
        n_stat = max((s.shape[1] for s in (self._mean, self._std) if s is not None), default=1)
        if n_stat == 1:
            return
        if self.input_shape is not None and self.input_shape[0] != n_stat:
            raise CnnlensError(
                f"mean/std have {n_stat} values but input_shape has {self.input_shape[0]} channels"
            )
        declared = getattr(self.model, "input_channels", None)
        if isinstance(declared, int) and declared != n_stat:
            raise CnnlensError(f"mean/std have {n_stat} values but the model takes {declared} channels")
        for name, m in self.model.named_modules():
            if isinstance(m, nn.Conv2d):
                if m.in_channels != n_stat and declared is None and self.input_shape is None:
                    raise CnnlensError(
                        f"mean/std have {n_stat} values but the model's first convolution "
                        f"{name or type(self.model).__name__!r} takes {m.in_channels} channels"
                    )
                break

    # ------------------------------------------------------------------ basics
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.pop("_lock", None)  # locks cannot be pickled or deep-copied
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        layer = self._feature_name or ("auto" if self._auto else None)
        return f"Classifier({type(self.model).__name__}, feature_layer={layer!r}, device={self.device})"

    @property
    def device(self) -> torch.device:
        """The device of the model's first parameter or buffer (CPU for a parameterless model)."""
        for t in self.model.parameters():
            return t.device
        for t in self.model.buffers():
            return t.device
        return torch.device("cpu")

    @property
    def dtype(self) -> torch.dtype | None:
        """The floating dtype of the model's first floating parameter (or buffer); input batches
        are cast to it (SPEC §0). ``None`` for a model without floating tensors."""
        return self._device_dtype()[1]

    def _device_dtype(self) -> tuple[torch.device, torch.dtype | None]:
        device: torch.device | None = None
        for group in (self.model.parameters(), self.model.buffers()):
            for t in group:
                if device is None:
                    device = t.device
                if t.is_floating_point():
                    return device, t.dtype
        return (device if device is not None else torch.device("cpu")), None

    @property
    def in_channels(self) -> int | None:
        """Channels the input must have: from ``input_shape``, per-channel mean/std, the model's
        ``input_channels`` attribute, or the first ``Conv2d``; ``None`` if unknown."""
        if self.input_shape is not None:
            return self.input_shape[0]
        for stat in (self._mean, self._std):
            if stat is not None and stat.shape[1] > 1:
                return int(stat.shape[1])
        declared = getattr(self.model, "input_channels", None)
        if isinstance(declared, int):
            return declared
        for m in self.model.modules():
            if isinstance(m, nn.Conv2d):
                return m.in_channels
        return None

    @contextlib.contextmanager
    def training(self) -> Iterator["Classifier"]:
        """Run the model in train mode inside the ``with`` block (SPEC §1, §6 training).

        The eval guard of explaining is suspended only here; on exit (also on an exception) the
        model is back in eval mode. Example::

            with clf.training():
                loss = F.cross_entropy(clf.logits(x), y)
        """
        with self._lock:
            self._train_depth += 1
            self.model.train()
        try:
            yield self
        finally:
            with self._lock:
                self._train_depth -= 1
                if self._train_depth == 0:
                    self.model.eval()

    @property
    def is_training(self) -> bool:
        """True inside :meth:`training`."""
        return self._train_depth > 0

    def _ensure_eval(self) -> None:
        """Switch the model to eval mode if it or **any submodule** is in train mode, with one
        warning naming them (SPEC §1). Never inside :meth:`training`."""
        if self._train_depth > 0:
            return
        if not any(m.training for m in self.model.modules()):
            return
        training = [name or "(the model itself)" for name, m in self.model.named_modules() if m.training]
        if training:
            shown = ", ".join(training[:5]) + (f" and {len(training) - 5} more" if len(training) > 5 else "")
            warnings.warn(
                f"{type(self.model).__name__} was in train mode ({len(training)} module(s): {shown}); "
                "cnnlens switched the model to eval mode "
                "(dropout off, batch-norm running statistics) so explanations are deterministic",
                UserWarning,
                stacklevel=3,
            )
            self.model.eval()

    def check_input(self, x: Any) -> torch.Tensor:
        """Validate a pixel-space batch and move it to the model's device and floating dtype.

        Accepts ``(N, C, H, W)`` or a single ``(C, H, W)`` image (a batch dimension is added).
        Any floating dtype is accepted and cast to the model's (float64 from
        ``torch.from_numpy(img / 255.)``, float16, bfloat16, SPEC §0). Raises
        :class:`CnnlensError` naming the problem for a non-tensor, a non-float dtype, wrong rank,
        channel count or an empty dimension, NaN/inf values, or values far outside ``[0, 1]``.
        The autograd graph of ``x`` is kept (gradient methods pass ``requires_grad`` batches).
        """
        if not isinstance(x, torch.Tensor):
            raise CnnlensError(f"images must be a torch.Tensor of shape (N, C, H, W), got {type(x).__name__}")
        if x.dim() == 3:
            x = x.unsqueeze(0)
        if x.dim() != 4:
            raise CnnlensError(f"images must have shape (N, C, H, W), got {tuple(x.shape)}")
        if not x.is_floating_point():
            hint = " (looks like 0-255 bytes: use x.float() / 255)" if x.dtype == torch.uint8 else ""
            raise CnnlensError(f"images must be a float tensor in [0, 1], got dtype {x.dtype}{hint}")
        if x.shape[0] == 0:
            raise CnnlensError("images is an empty batch (N = 0)")
        if x.numel() == 0:
            raise CnnlensError(f"images have an empty dimension: shape {tuple(x.shape)}")
        expected = self.in_channels
        if expected is not None and x.shape[1] != expected:
            raise CnnlensError(f"images have {x.shape[1]} channels but the model expects {expected}")
        # one pass over the data: NaN propagates through min/max, inf shows in them
        lo_t, hi_t = torch.aminmax(x.detach())
        lo, hi = float(lo_t), float(hi_t)
        if math.isnan(lo) or math.isnan(hi) or math.isinf(lo) or math.isinf(hi):
            raise CnnlensError("images contain NaN or inf values")
        if lo < -_RANGE_SLACK or hi > 1 + _RANGE_SLACK:
            hint = "; divide by 255" if hi > 2 else ""
            raise CnnlensError(
                f"images must be in pixel space [0, 1] (normalisation happens inside the Classifier), "
                f"got values in [{lo:.3g}, {hi:.3g}]{hint}"
            )
        device, dtype = self._device_dtype()
        return x.to(device=device, dtype=dtype if dtype is not None else x.dtype)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """Apply ``(x - mean) / std`` (SPEC §0); a no-op without mean/std."""
        if self._mean is not None:
            x = x - self._mean.to(device=x.device, dtype=x.dtype)
        if self._std is not None:
            x = x / self._std.to(device=x.device, dtype=x.dtype)
        return x

    def _select(self, out: Any, n: int) -> torch.Tensor:
        if self.output is not None:
            try:
                out = self.output(out)
            except CnnlensError:
                raise
            except Exception as exc:
                raise CnnlensError(f"the output= selector failed on the model's output: {one_line(exc)}") from exc
        if not isinstance(out, torch.Tensor):
            kind = type(out).__name__
            size = f" of {len(out)}" if isinstance(out, (tuple, list, dict)) else ""
            raise CnnlensError(
                f"model returned a {kind}{size}, not a logits tensor; pass "
                "output=lambda out: out[0] (or out['logits']) to select the logits"
            )
        if out.dim() != 2 or out.shape[0] != n:
            raise CnnlensError(
                f"the model returned logits of shape {tuple(out.shape)} for {n} images; "
                f"expected ({n}, classes)"
            )
        if not out.is_floating_point():
            raise CnnlensError(f"the model returned {out.dtype} logits; expected a floating tensor")
        k = 2 if out.shape[1] == 1 else int(out.shape[1])
        if self.class_names is not None and k != len(self.class_names):
            raise CnnlensError(f"the model has {k} outputs but {len(self.class_names)} class names were given")
        self._num_classes = k
        if out.shape[1] == 1:
            # one output unit = binary sigmoid classifier (SPEC §1): z -> [-z/2, z/2], so that
            # softmax gives [1 - sigmoid(z), sigmoid(z)] and both classes have gradients
            out = torch.cat([-0.5 * out, 0.5 * out], dim=1)
        return out

    _channels_last_ok = True  # cleared for a model that fails on channels-last input

    def _forward(self, x: torch.Tensor, fast_layout: bool = False) -> torch.Tensor:
        """normalise → model → output selection → binary expansion. ``fast_layout`` (no-grad
        scoring only): a CPU batch goes in as channels-last, which oneDNN's convolutions run
        ~1.4× faster (MobileNetV2; ~1.6× on the 1-channel MNIST CNN, BENCHMARKS.md); same logits
        up to float round-off. A model that cannot take it (``.view`` on its input) is remembered
        and gets the plain layout."""
        with self._lock:
            self._ensure_eval()
            try:
                xn = self.normalize(x)
                if fast_layout and self._channels_last_ok and xn.dim() == 4 and xn.device.type == "cpu":
                    try:
                        out = self.model(_channels_last(xn))
                    except RuntimeError:
                        out = self.model(xn.contiguous())  # fails again if not the layout
                        self._channels_last_ok = False
                else:
                    out = self.model(xn)
            except CnnlensError:
                raise
            except (RuntimeError, TypeError, IndexError, ValueError, NotImplementedError) as exc:
                if type(exc) not in (RuntimeError, TypeError, IndexError, ValueError, NotImplementedError):
                    raise  # a caller's own exception type (e.g. an early stop from a hook)
                raise ModelError(
                    f"the model failed on a batch of shape {tuple(x.shape)} ({x.dtype}): {one_line(exc)}"
                ) from exc
            return self._select(out, x.shape[0])

    # ------------------------------------------------------------------ outputs
    def logits(self, x: torch.Tensor, batch_size: int | None = None) -> torch.Tensor:
        """Logits ``(N, K)``. Without ``batch_size`` the autograd graph is kept (gradient
        methods need it); with ``batch_size`` the batch is scored in chunks without gradients."""
        x = self.check_input(x)
        if batch_size is None:
            return self._forward(x)
        batch_size = validation.batch_size(batch_size)
        with torch.no_grad():
            return torch.cat([self._forward(c, fast_layout=True) for c in x.split(batch_size)])

    __call__ = logits

    def probs(self, x: torch.Tensor, batch_size: int | None = None) -> torch.Tensor:
        """Softmax probabilities ``(N, K)`` (SPEC §0 score)."""
        return torch.softmax(self.logits(x, batch_size), dim=1)

    def predict(self, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        """Predicted class indices ``(N,)`` (int64)."""
        return self.logits(x, batch_size=batch_size).argmax(dim=1)

    # ------------------------------------------------------------------ hooks
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
                handles.append(register(fn))
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

        regs = [(m, "forward", record) for name, m in self.model.named_modules() if name]
        with self.hooks(*regs), torch.no_grad():
            self._forward(x)
        return finished

    def _probe_input(self) -> torch.Tensor | None:
        if self.input_shape is None:
            return None
        dtype = next((p.dtype for p in self.model.parameters() if p.is_floating_point()), torch.float32)
        return torch.full((1, *self.input_shape), 0.5, device=self.device, dtype=dtype)

    def candidate_layers(self, x: torch.Tensor | None = None) -> list[str]:
        """Names of modules whose output is 4-D, in forward order (needs ``x`` or ``input_shape``;
        otherwise the modules that are or contain a ``Conv2d``)."""
        probe = x[:1] if x is not None else self._probe_input()
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
        """Resolve ``feature_layer="auto"`` (SPEC §1): the module that last finishes producing a
        4-D tensor with spatial size > 1. Uses ``x`` (or ``input_shape``) for one probe forward."""
        if self._feature_name is not None:
            return self._feature_name
        if not self._auto:
            raise CnnlensError("this Classifier has feature_layer=None; pass feature_layer='auto' or a layer name")
        probe = x[:1] if x is not None else self._probe_input()
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
        return name

    @property
    def feature_layer_name(self) -> str | None:
        """Dotted name of the feature layer (resolving ``"auto"`` via ``input_shape`` if needed)."""
        if self._feature_name is None and self._auto:
            return self.resolve_feature_layer()
        return self._feature_name

    @property
    def feature_module(self) -> nn.Module:
        self.feature_layer_name  # resolves "auto" when possible
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
        a dotted name or a submodule → that layer, for one call (SPEC §1 per-call ``layer=``)."""
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
            captured.append(out)
            # the rest of the network gets a copy: an in-place op after the layer (ReLU(inplace),
            # `out += identity`, DenseNet's F.relu(..., inplace=True)) changes the copy, never ψ,
            # and the logits stay differentiable with respect to ψ
            return out.clone()

        with self.hooks((module, "forward", grab)):
            logits = self._forward(x)
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
        is differentiable in ``t`` (RI needs ∂ΔG/∂ψ, SPEC §5). ``t`` must have the feature shape
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
            logits = self._forward(x)
        if calls[0] != 1:
            raise CnnlensError(
                f"feature layer {name!r} ran {calls[0]} times in one forward pass; "
                "choose a layer that runs exactly once"
            )
        return logits

    # ------------------------------------------------------------------ helpers
    @property
    def num_classes(self) -> int | None:
        """Number of classes: ``len(class_names)``, or the logits width seen in the last forward
        pass (2 for one-output models); ``None`` before any forward pass without names."""
        if self.class_names is not None:
            return len(self.class_names)
        return self._num_classes

    def targets(self, x: torch.Tensor, target: int | Sequence[int] | torch.Tensor | None, batch_size: int = 256) -> torch.Tensor:
        """Resolve ``target`` (SPEC §0): ``None`` → predicted class; an int → the same class for
        every image; a sequence/tensor → one class per image. Returns ``(N,)`` int64.

        Targets must be whole numbers in ``[0, K)`` for a ``K``-class model (``K`` from the class
        names or from one probe forward pass); anything else is a :class:`CnnlensError`."""
        n = x.shape[0] if isinstance(x, torch.Tensor) and x.dim() == 4 else 1
        if target is None:
            return self.predict(x, batch_size=batch_size)
        if isinstance(target, (str, bytes)) or (isinstance(target, Sequence) and any(isinstance(v, (str, bytes)) for v in target)):
            raise CnnlensError(f"target must be class indices (int), got {target!r}"[:200])
        try:
            raw = torch.as_tensor(target)
        except (TypeError, ValueError, RuntimeError) as exc:
            raise CnnlensError(f"target must be an int or a sequence of ints: {one_line(exc)}") from None
        if raw.dtype == torch.bool or raw.is_complex():
            raise CnnlensError(f"target must be class indices (int), got dtype {raw.dtype}")
        if raw.is_floating_point():
            if not torch.isfinite(raw).all() or (raw != raw.round()).any():
                raise CnnlensError(f"target must be whole class indices, got {raw.flatten()[:8].tolist()}")
        t = raw.to(device=self.device, dtype=torch.long).flatten()
        if t.numel() == 1:
            t = t.expand(n).clone()
        if t.numel() != n:
            raise CnnlensError(f"target has {t.numel()} entries for {n} images")
        n_classes = self.num_classes
        if n_classes is None:
            with torch.no_grad():
                self.logits(x[:1] if isinstance(x, torch.Tensor) and x.dim() == 4 else x)
            n_classes = self.num_classes
        bad = (t < 0) | (t >= n_classes) if n_classes is not None else (t < 0)
        if bool(bad.any()):
            shown = t[bad][:8].tolist()
            raise CnnlensError(f"target {shown} out of range for a {n_classes or '?'}-class model (valid: 0 … {(n_classes or 1) - 1})")
        return t

    def class_name(self, index: int) -> str:
        if self.class_names and 0 <= index < len(self.class_names):
            return self.class_names[index]
        return str(index)

