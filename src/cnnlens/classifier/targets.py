"""Targets of the :class:`~cnnlens.Classifier` (docs/algorithms.md §0): the explained class per image, class names."""
from __future__ import annotations

from collections.abc import Sequence

import torch

from .. import validation
from ..errors import CnnlensError, one_line

__all__ = ["TargetsMixin"]


class TargetsMixin:
    """Target resolution and class names (mixed into :class:`~cnnlens.Classifier`)."""

    class_names: list[str] | None
    _num_classes: int | None

    @property
    def num_classes(self) -> int | None:
        """Number of classes: ``len(class_names)``, or the logits width seen in the last forward
        pass (2 for one-output models); ``None`` before any forward pass without names."""
        if self.class_names is not None:
            return len(self.class_names)
        return self._num_classes

    def targets(self, x: torch.Tensor, target: int | Sequence[int] | torch.Tensor | None, batch_size: int = 256) -> torch.Tensor:
        """Resolve ``target`` (§0): ``None`` → predicted class; an int → the same class for
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
        """The name of class ``index`` (its number as a string when the model has no class
        names); an index that is not a whole number in range is refused."""
        n = len(self.class_names) if self.class_names else getattr(self, "_num_classes", None)
        if n is not None:
            index = validation.integer("class index", index, minimum=0, maximum=n - 1)
        else:
            index = validation.integer("class index", index, minimum=0)
        if self.class_names:
            return self.class_names[index]
        return str(index)
