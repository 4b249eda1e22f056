"""Forward passes and modes of the :class:`~cnnlens.Classifier` (docs/algorithms.md §1): the eval guard, train
mode for §6 training, normalisation, output selection, one-output expansion, logits/probs/predict."""
from __future__ import annotations

import contextlib
import threading
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import torch

from .. import validation
from ..errors import CnnlensError, ModelError, one_line

if TYPE_CHECKING:
    from torch import nn

__all__ = ["ForwardMixin", "channels_last"]


def channels_last(x: torch.Tensor) -> torch.Tensor:
    """``x`` ``(N, C, H, W)`` laid out channels-last. For one channel, ``contiguous(memory_format=
    channels_last)`` keeps the plain strides (both layouts are the same memory), and convolutions
    then take the plain path; explicit strides ``(H·W, 1, W, 1)`` mark the batch as channels-last."""
    if x.shape[1] != 1:
        return x.contiguous(memory_format=torch.channels_last)
    n, _, h, w = x.shape
    out = torch.empty_strided(x.shape, (h * w, 1, w, 1), dtype=x.dtype, device=x.device)
    return out.copy_(x)


class ForwardMixin:
    """Forward passes and modes (mixed into :class:`~cnnlens.Classifier`)."""

    model: nn.Module
    output: Any
    class_names: list[str] | None
    _lock: threading.RLock
    _train_depth: int
    _num_classes: int | None
    _mean: torch.Tensor | None
    _std: torch.Tensor | None

    @property
    def mean(self) -> torch.Tensor | None:
        """The pixel-space mean ``(1, C, 1, 1)`` (or ``(1, 1, 1, 1)``) subtracted before the model;
        ``None`` without normalisation. It is the colour the model sees as 0 (§0 ``"mean"``)."""
        return self._mean

    @property
    def std(self) -> torch.Tensor | None:
        """The pixel-space std ``(1, C, 1, 1)`` the centred input is divided by; ``None`` without."""
        return self._std

    @contextlib.contextmanager
    def training(self) -> Iterator[Any]:
        """Run the model in train mode inside the ``with`` block (§1, §6 training).

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
        warning naming them (§1). Never inside :meth:`training`."""
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

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """Apply ``(x - mean) / std`` (§0); a no-op without mean/std."""
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
            # one output unit = binary sigmoid classifier (§1): z -> [-z/2, z/2], so that
            # softmax gives [1 - sigmoid(z), sigmoid(z)] and both classes have gradients
            out = torch.cat([-0.5 * out, 0.5 * out], dim=1)
        return out

    _channels_last_ok = True  # cleared for a model that fails on channels-last input

    def forward_unchecked(self, x: torch.Tensor, fast_layout: bool = False) -> torch.Tensor:
        """Logits of an already checked batch: normalise → model → output selection → binary
        expansion, without :meth:`check_input` (perturbation loops whose inputs may overshoot
        [0, 1] slightly, recorded forward passes of LRP/DeepLIFT). ``fast_layout`` (no-grad
        scoring only): a CPU batch goes in as channels-last, which oneDNN's convolutions run
        ~1.4× faster (MobileNetV2; ~1.6× on the 1-channel MNIST CNN, BENCHMARKS.md); same logits
        up to float round-off. A model that cannot take it (``.view`` on its input) is remembered
        and gets the plain layout. A float64 batch keeps the plain layout: oneDNN has no
        channels-last float64 kernels, so the reordering never helps (1.03–1.06× the plain time on
        the MNIST CNN, ~2× reported on larger models; benchmarks/results/issue21). float16/bfloat16
        keep channels-last (unchanged; their timings on a shared 2-core CPU were inconclusive)."""
        with self._lock:
            self._ensure_eval()
            try:
                xn = self.normalize(x)
                if (fast_layout and self._channels_last_ok and xn.dim() == 4 and xn.device.type == "cpu"
                        and xn.dtype != torch.float64):
                    try:
                        out = self.model(channels_last(xn))
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
            return self.forward_unchecked(x)
        batch_size = validation.batch_size(batch_size)
        with torch.no_grad():
            return torch.cat([self.forward_unchecked(c, fast_layout=True) for c in x.split(batch_size)])

    __call__ = logits

    def probs(self, x: torch.Tensor, batch_size: int | None = None) -> torch.Tensor:
        """Softmax probabilities ``(N, K)`` (§0 score)."""
        return torch.softmax(self.logits(x, batch_size), dim=1)

    def predict(self, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        """Predicted class indices ``(N,)`` (int64)."""
        return self.logits(x, batch_size=batch_size).argmax(dim=1)
