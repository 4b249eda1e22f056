"""The :class:`Classifier` itself: construction, device/dtype, input checks (docs/algorithms.md §1); the other
concerns live in :mod:`.forward`, :mod:`.layers` and :mod:`.targets`."""
from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from ..errors import CnnlensError
from .forward import ForwardMixin
from .inputs import RANGE_SLACK, as_class_names, as_input_shape, as_stat
from .layers import LayersMixin
from .targets import TargetsMixin

__all__ = ["Classifier"]


class Classifier(ForwardMixin, LayersMixin, TargetsMixin):
    """Wrap a PyTorch image classifier (§1).

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
        # one forward pass (with its hook substitutions) at a time per Classifier (§1)
        self._lock = threading.RLock()
        self._num_classes: int | None = None
        self._ensure_eval()
        self._mean = as_stat(mean, "mean")
        self._std = as_stat(std, "std")
        if self._mean is not None and self._std is not None:
            cm, cs = self._mean.shape[1], self._std.shape[1]
            if cm > 1 and cs > 1 and cm != cs:
                raise CnnlensError(f"mean has {cm} values but std has {cs}")
        self.output = output
        self.class_names = as_class_names(class_names)
        self.input_shape = as_input_shape(input_shape)
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
        """Per-channel mean/std must match the channels the model takes (§0)."""
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
        # module names are keyed by id(): an unpickled or deep-copied model has other ids
        self._module_names = {id(m): name for name, m in self.model.named_modules() if name}

    def __repr__(self) -> str:
        return f"Classifier({type(self.model).__name__}, feature_layer={self.feature_layer_spec!r}, device={self.device})"

    @property
    def feature_layer_spec(self) -> str | None:
        """The ``feature_layer=`` this Classifier was built with: a dotted name, ``"auto"`` or ``None``."""
        return self._feature_name if self._feature_name is not None else ("auto" if self._auto else None)

    def with_model(self, model: nn.Module) -> Classifier:
        """A Classifier with this one's settings (normalisation, feature layer, class names, output,
        input shape) around another ``model`` of the same architecture — e.g. a re-initialised copy
        for the sanity checks; this Classifier and its model are not touched."""
        return Classifier(model, mean=self.mean, std=self.std, feature_layer=self.feature_layer_spec,
                          class_names=self.class_names, output=self.output, input_shape=self.input_shape)

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
        are cast to it (§0). ``None`` for a model without floating tensors."""
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

    def check_input(self, x: Any) -> torch.Tensor:
        """Validate a pixel-space batch and move it to the model's device and floating dtype.

        Accepts ``(N, C, H, W)`` or a single ``(C, H, W)`` image (a batch dimension is added).
        Any floating dtype is accepted and cast to the model's (float64 from
        ``torch.from_numpy(img / 255.)``, float16, bfloat16, §0). Raises
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
        if lo < -RANGE_SLACK or hi > 1 + RANGE_SLACK:
            hint = "; divide by 255" if hi > 2 else ""
            raise CnnlensError(
                f"images must be in pixel space [0, 1] (normalisation happens inside the Classifier), "
                f"got values in [{lo:.3g}, {hi:.3g}]{hint}"
            )
        device, dtype = self._device_dtype()
        return x.to(device=device, dtype=dtype if dtype is not None else x.dtype)
