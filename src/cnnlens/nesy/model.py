"""The NeSy model: CNN up to the filter layer + a FOLD-SE-M rule-set (docs/algorithms.md §6.1, §6.5–§6.8).

Example::

    >>> import torch
    >>> from cnnlens import zoo                                     # doctest: +SKIP
    >>> from cnnlens.nesy import NeSyModel                          # doctest: +SKIP
    >>> clf = zoo.load_classifier("mnist_cnn")                      # doctest: +SKIP
    >>> tr, te = zoo.load_dataset("mnist", "train"), zoo.load_dataset("mnist", "test")  # doctest: +SKIP
    >>> nesy = NeSyModel.fit(clf, tr.images, tr.labels, binarization="threshold")  # doctest: +SKIP
    >>> nesy.evaluate(te.images, te.labels)["accuracy"]            # doctest: +SKIP
    0.66

Binarization (§6.1): ``"sigmoid"`` for sparsity-trained models (bit = 1 iff Norm − θ > 0
with the θ fixed for training, = ``round(sigmoid(Norm − θ))``; θ = 0 for TS5), ``"threshold"``
for CE-only / NE (θ = h1·μ + h2·σ recomputed on the final model over ``x``, bit = 1 iff
Norm ≥ θ). ``"sigmoid"`` without ``theta`` also computes θ from ``x``.

No default class (§6.1): :meth:`NeSyModel.predict` gives −1 where no rule fires; such an
image counts as wrong (accuracy) and disagreeing (fidelity), and :meth:`evaluate` reports how
many there were. Rules are learned for every class, two-class tasks included
(``FoldSEM(positive_class=None)``): FOLD-SE's binary convention leaves one class to the default.
"""
from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from .. import validation
from .._io import atomic_write_text
from ..classifier import Classifier
from ..errors import CnnlensError, one_line
from .binarize import binarize, default_layer, filter_norms, model_classes, thresholds
from .fold import FoldSEM, read_model_json
from .labelling import FilterLabel, label_filters
from .program import Justification, RuleSet

__all__ = ["NeSyModel"]

_FORMAT = "cnnlens.NeSyModel"
_FILTER = re.compile(r"f(\d+)\Z")


def _filter_index(pred: str) -> int | None:
    m = _FILTER.match(pred)
    return int(m.group(1)) if m else None


def _labels_np(clf: Classifier, x: torch.Tensor, y: Any) -> np.ndarray:
    """``y`` as int64 class indices, one per image of ``x``: whole numbers in the model's range
    (:func:`cnnlens.validation.class_labels`; the class count from one probe forward if unknown)."""
    return validation.class_labels("y", y, x.shape[0], model_classes(clf, x)).numpy()


def _fold_params(params: Any) -> dict[str, Any]:
    """``fold_params`` checked against :class:`FoldSEM`'s parameters (ratio and tail have their
    own arguments)."""
    if params is None:
        return {}
    if not isinstance(params, dict):
        raise CnnlensError(f"fold_params must be a dict of FoldSEM parameters, got {type(params).__name__}")
    valid = set(FoldSEM().get_params()) - {"ratio", "tail"}
    wrong = sorted(str(k) for k in params if k not in valid)
    if wrong:
        raise CnnlensError(f"fold_params: unknown FoldSEM parameter(s) {', '.join(wrong)}; "
                           f"valid: {', '.join(sorted(valid))} (ratio and tail are fit's own arguments)")
    return dict(params)


def _theta(theta: Any) -> torch.Tensor:
    try:
        th = torch.as_tensor(theta, dtype=torch.float32).flatten().cpu()
    except (TypeError, ValueError, RuntimeError):
        raise CnnlensError(f"theta must be a number or a sequence of numbers, got {theta!r}"[:200]) from None
    if not bool(torch.isfinite(th).all()):
        raise CnnlensError(f"theta must hold finite numbers (a NaN threshold never fires), got {th[:8].tolist()}")
    return th


@dataclass
class NeSyModel:
    """A fitted NeSy model; build it with :meth:`fit` (or :meth:`load`).

    Attributes: ``clf``, ``rules`` (:class:`RuleSet`, raw ``f<j>`` predicates, no default class),
    ``theta`` ``(F,)``, ``binarization``, ``layer``, ``norm``, ``n_filters``, ``labels``
    (``{"f37": "grass1"}`` after :meth:`label`), ``labelled_rules``, ``fit_info``.
    """

    clf: Classifier
    rules: RuleSet
    theta: torch.Tensor
    binarization: str
    layer: str
    n_filters: int
    norm: str = "fro"
    batch_size: int = 64
    labels: dict[str, str] = field(default_factory=dict)
    label_details: list[dict] = field(default_factory=list)
    fit_info: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._check_rules()
        self.theta = _theta(self.theta)
        if self.theta.numel() == 1 and self.n_filters != 1:
            self.theta = self.theta.expand(self.n_filters).clone()
        if self.theta.numel() != self.n_filters:
            raise CnnlensError(f"theta has {self.theta.numel()} values for {self.n_filters} filters")
        if self.binarization not in ("sigmoid", "threshold"):
            raise CnnlensError(f"binarization must be 'sigmoid' or 'threshold', got {self.binarization!r}")

    # ------------------------------------------------------------------ building
    @classmethod
    def fit(cls, clf: Classifier, x: torch.Tensor, y: Any, binarization: str | None = None,
            theta: torch.Tensor | float | None = None, ratio: float = 0.8, tail: float = 5e-3,
            layer: str | nn.Module | None = None, norm: str = "fro", h1: float = 0.6, h2: float = 0.7,
            batch_size: int = 64, fold_params: dict[str, Any] | None = None) -> NeSyModel:
        """Binarize ``layer``'s filters on the training images ``x`` into a 0/1 table and learn
        the rules with ``FoldSEM(ratio, tail, **fold_params)`` (§6.1, §6.5). ``y``: class
        indices ``(N,)``.

        ``binarization``: ``"sigmoid"`` (bit = 1 iff Norm − θ > 0) needs the θ the sparsity loss
        was trained with (``theta=train(...).theta``) — refitting θ on the final model is not what
        the paper does, so it is refused; ``"threshold"`` (post-hoc, CE/NE) fits θ = h1·μ + h2·σ
        on ``x`` (a given ``theta`` is used instead); None (default): ``"sigmoid"`` when
        ``theta`` is given, else ``"threshold"``. ``fold_params``: further :class:`FoldSEM`
        parameters (e.g. ``{"tail_base": "train"}``, ``{"catch_all": False}``); rules are
        learned for every class (``positive_class=None``) unless it says otherwise."""
        if not isinstance(clf, Classifier):
            raise CnnlensError(f"clf must be a cnnlens.Classifier, got {type(clf).__name__}")
        if binarization is None:
            binarization = "threshold" if theta is None else "sigmoid"
        if binarization not in ("sigmoid", "threshold"):
            raise CnnlensError(f"binarization must be 'sigmoid' or 'threshold', got {binarization!r}")
        if binarization == "sigmoid" and theta is None:
            raise CnnlensError("binarization='sigmoid' needs theta= (the θ the sparsity loss was trained "
                               "with, e.g. train(...).theta); for post-hoc binarization use binarization='threshold'")
        for name, value in (("ratio", ratio), ("tail", tail), ("h1", h1), ("h2", h2)):
            validation.real(name, value)
        fold_kw = _fold_params(fold_params)
        if theta is not None:
            theta = _theta(theta)
        x = clf.check_input(x)
        yy = _labels_np(clf, x, y)
        if len(np.unique(yy)) < 2:
            raise CnnlensError(f"the training images have a single class ({int(yy[0])}); NeSy needs at least two classes")
        lay = default_layer(clf) if layer is None else layer
        lay_name = clf.layer_module(lay, x)[1]
        norms = filter_norms(clf, x, lay, norm=norm, batch_size=batch_size)
        F_ = norms.shape[1]
        if theta is None:
            th = thresholds(norms, h1, h2)
            theta_src = "fitted on x (h1·μ + h2·σ)"
        else:
            th = theta.to(norms.device)
            if th.numel() == 1:
                th = th.expand(F_).clone()
            if th.numel() != F_:
                raise CnnlensError(f"theta has {th.numel()} values but layer {lay_name!r} has {F_} filters")
            theta_src = "given"
        bits = binarize(norms, th.to(norms.device), binarization).cpu().numpy()
        # positive_class=None: every class gets rules, also with two classes. FOLD-SE's binary
        # convention (rules for one class, the other is the default) would leave every image of
        # the other class with no rule firing, since the NeSy model has no default class.
        fold = FoldSEM(**{"ratio": ratio, "tail": tail, "positive_class": None, **fold_kw}).fit(bits, yy)
        raw = fold.rules_
        rules = RuleSet(raw.rules, None)  # no default class (§6.1)
        info = {"n_train": int(x.shape[0]), "ratio": ratio, "tail": tail, "theta": theta_src,
                "active_share": float(bits.mean()), "h1": h1, "h2": h2,
                "fold_default": int(fold.default_class_), "fold_params": {
                    k: v for k, v in fold.get_params().items() if k not in ("ratio", "tail")}}
        return cls(clf, rules, th.cpu(), binarization, lay_name, F_, norm, batch_size, fit_info=info)

    def _check_rules(self) -> None:
        derived = set(self.rules.derived)
        wrong = []
        for p in self.rules.predicates:
            if p in derived:
                continue
            j = _filter_index(p)
            if j is None or j >= self.n_filters:
                wrong.append(p)
        if wrong:
            raise CnnlensError(
                f"the rule set names filter predicate(s) {', '.join(wrong[:10])} that layer "
                f"{self.layer!r} does not have (it has {self.n_filters} filters, f0..f{self.n_filters - 1})"
            )

    # ------------------------------------------------------------------ inference
    def norms(self, x: torch.Tensor) -> torch.Tensor:
        """Filter norms ``(N, F)`` of the model's layer (§6.1)."""
        n = filter_norms(self.clf, x, self.layer, norm=self.norm, batch_size=self.batch_size)
        if n.shape[1] != self.n_filters:
            raise CnnlensError(f"layer {self.layer!r} now has {n.shape[1]} filters, the rules were fit on {self.n_filters}")
        return n

    def binarize(self, x: torch.Tensor) -> np.ndarray:
        """The 0/1 table ``(N, F)`` (uint8) of images ``x``."""
        return binarize(self.norms(x), self.theta.to(self.clf.device), self.binarization).cpu().numpy()

    def _table(self, bits: np.ndarray) -> dict[str, np.ndarray]:
        table = {p: bits[:, _filter_index(p)] for p in self.rules.predicates if _filter_index(p) is not None}
        if not table:
            table["__n__"] = np.zeros(bits.shape[0])
        return table

    def predict_bits(self, bits: np.ndarray) -> np.ndarray:
        """Class index per row of a 0/1 table; −1 where no rule fires."""
        idx = self.rules.predict_rule(self._table(bits))
        cls = np.array([int(r.cls) for r in self.rules.target_rules] + [-1], dtype=np.int64)
        return cls[idx]

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Class indices ``(N,)`` (int64) from the rules; −1 where no rule fires (batched)."""
        return torch.from_numpy(self.predict_bits(self.binarize(x)))

    def evaluate(self, x: torch.Tensor, y: Any) -> dict[str, Any]:
        """§6.7 metrics on ``(x, y)``: ``accuracy`` (NeSy; no-fire = wrong), ``fidelity``
        (share equal to the CNN's prediction; no-fire = disagree), ``cnn_accuracy``, ``size``
        (body literals incl. ``not abN``), ``n_rules``, ``n_filters`` (distinct filters),
        ``no_fire`` (count), ``n``; diagnostics ``accuracy_fold_default`` / ``fidelity_fold_default``:
        the same with no-fire images given FOLD-SE-M's default class (not the NeSy metric)."""
        x = self.clf.check_input(x)
        yy = _labels_np(self.clf, x, y)
        pred = self.predict(x).numpy()
        cnn = self.clf.predict(x, batch_size=self.batch_size).cpu().numpy()
        dflt = self.fit_info.get("fold_default")
        filled = np.where(pred == -1, dflt if dflt is not None else -1, pred)
        return {
            "accuracy": float((pred == yy).mean()),
            "fidelity": float((pred == cnn).mean()),
            "cnn_accuracy": float((cnn == yy).mean()),
            "size": int(self.rules.size),
            "n_rules": int(self.rules.n_rules),
            "n_filters": int(len([p for p in self.rules.predicates if _filter_index(p) is not None])),
            "no_fire": int((pred == -1).sum()),
            "n": int(x.shape[0]),
            "accuracy_fold_default": float((filled == yy).mean()),
            "fidelity_fold_default": float((filled == cnn).mean()),
        }

    # ------------------------------------------------------------------ explanation
    @property
    def labelled_rules(self) -> RuleSet:
        """The rules with filter predicates renamed to their concept labels (after :meth:`label`)."""
        return self.rules.rename(self.labels) if self.labels else self.rules

    def justify(self, image: torch.Tensor, name: str = "img") -> Justification:
        """s(CASP)-style justification of one image (NESY Fig. 3; §6.6): the rule that fired
        and why, recursively through exceptions; labelled predicates after :meth:`label`.
        ``.text`` and ``.to_json()``; ``.prediction`` is the class constant (``None``: no rule
        fired)."""
        x = self.clf.check_input(image)
        if x.shape[0] != 1:
            raise CnnlensError(f"justify explains one image, got {x.shape[0]}")
        bits = self.binarize(x)
        row = {self.labels.get(p, p): bits[:, _filter_index(p)] for p in self.rules.predicates
               if _filter_index(p) is not None}
        return self.labelled_rules.justify(row, name=name)

    def label(self, images: torch.Tensor, masks: torch.Tensor, concept_names: Sequence[str],
              m: int = 10, margin: float = 0.05, top: int = 10) -> RuleSet:
        """Label the filters in the rules with concepts (§6.8) and return the labelled
        rule-set (also kept as :attr:`labelled_rules`; :attr:`labels` maps ``f<j>`` → label)."""
        preds = [p for p in self.rules.predicates if _filter_index(p) is not None]
        x = self.clf.check_input(images)
        norms = self.norms(x)
        found: list[FilterLabel] = label_filters(
            self.clf, x, masks, concept_names, [_filter_index(p) for p in preds], self.layer,
            m=m, margin=margin, top=top, batch_size=self.batch_size, norms=norms)
        self.labels = {p: fl.label for p, fl in zip(preds, found)}
        self.label_details = [fl.to_dict() for fl in found]
        return self.labelled_rules

    # ------------------------------------------------------------------ persistence
    def to_dict(self) -> dict:
        return {
            "format": _FORMAT, "version": 1,
            "program": self.rules.to_asp("scasp", default_comment=False),
            "theta": self.theta.tolist(), "binarization": self.binarization, "layer": self.layer,
            "n_filters": self.n_filters, "norm": self.norm, "labels": self.labels,
            "label_details": self.label_details, "fit_info": self.fit_info,
            "class_names": self.clf.class_names,
            "size": self.rules.size, "n_rules": self.rules.n_rules,
            "labelled_program": self.labelled_rules.to_asp("scasp", default_comment=False),
        }

    def save(self, path: str | os.PathLike) -> None:
        """Write the rules, θ, layer and labels as JSON (atomic)."""
        atomic_write_text(path, json.dumps(self.to_dict(), indent=1))

    @classmethod
    def load(cls, path: str | os.PathLike, clf: Classifier, batch_size: int = 64) -> NeSyModel:
        """Read a model written by :meth:`save` for the classifier ``clf`` (its layer must have
        the filters the rules name)."""
        obj = read_model_json(path, "NeSy model")
        p = os.fspath(path)
        if obj.get("format") != _FORMAT:
            raise CnnlensError(f"{p} is not a NeSy model file (format {_FORMAT!r})")
        try:
            rules = RuleSet.from_asp(obj["program"])
            layer = obj["layer"]
            _, lay_name = clf.layer_module(layer)
            n_filters = int(obj["n_filters"])
            probe = clf.probe_input()
            if probe is not None:  # the filters the classifier's layer really has
                n_filters = int(filter_norms(clf, probe, lay_name, batch_size=1).shape[1])
            model = cls(clf, RuleSet(rules.rules, None), torch.tensor(obj["theta"]), obj["binarization"],
                        lay_name, n_filters, obj.get("norm", "fro"), batch_size,
                        dict(obj.get("labels", {})), list(obj.get("label_details", [])), dict(obj.get("fit_info", {})))
        except KeyError as exc:
            raise CnnlensError(f"{p}: NeSy model file lacks the field {exc.args[0]!r}") from None
        except CnnlensError as exc:
            raise CnnlensError(f"{p}: {exc}") from None
        except (TypeError, ValueError, AttributeError, RuntimeError) as exc:
            raise CnnlensError(f"{p}: damaged NeSy model file ({one_line(exc)})") from None
        return model

    @classmethod
    def from_rules(cls, clf: Classifier, rules: RuleSet | str, theta: torch.Tensor | float,
                   binarization: str = "sigmoid", layer: str | nn.Module | None = None,
                   x: torch.Tensor | None = None, norm: str = "fro") -> NeSyModel:
        """A NeSy model from a given rule set (ASP text or :class:`RuleSet`) over filter
        predicates ``f<j>``; raises if the rules name filters the layer lacks."""
        if isinstance(rules, str):
            rules = RuleSet.from_asp(rules)
        lay = default_layer(clf) if layer is None else layer
        probe = x[:1] if x is not None else clf.probe_input()
        if probe is None:
            raise CnnlensError("give x (an image) or a Classifier with input_shape to count the layer's filters")
        n = filter_norms(clf, probe, lay, norm=norm, batch_size=1)
        return cls(clf, RuleSet(rules.rules, None), theta, binarization, clf.layer_module(lay, probe)[1],
                   n.shape[1], norm)
