"""Sanity checks for saliency maps (Adebayo et al. 2018): does a map depend on the model at all?
(docs/algorithms.md §10.1).

- **Model parameter randomisation** (:func:`model_randomisation`): re-initialise the model's
  blocks (or layers) from the output towards the input — *cascading*, one more block at each
  step — or one block at a time — *independent* — and measure, per image and step, how similar
  each method's map on the randomised copy is to its map on the trained model. A map that stays
  similar does not explain the model (the paper's finding for Guided Backprop).
- **Data randomisation** (:func:`data_randomisation`): the same similarities between the maps of
  a model trained on the true labels and of the same architecture trained to memorise permuted
  labels (the zoo's ``mnist_cnn_s`` / ``mnist_cnn_s_random_labels``).

Similarities (:data:`MEASURES`, :func:`similarity`): Spearman rank correlation of the maps'
absolute values (``spearman_abs``) and of the raw maps (``spearman``), SSIM of the min-max
normalised maps (``ssim``) and the Pearson correlation of their HOG features (``hog``).

The user's model is never touched: every randomised model is a deep copy. Each re-initialised
layer draws from its own seed stream (``sanity.init``, §11), so the layer's random weights are the
same in the cascading and the independent run and on any device.

Example::

    >>> import torch
    >>> from torch import nn
    >>> import cnnlens
    >>> from cnnlens import sanity
    >>> g = torch.Generator().manual_seed(0)
    >>> net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(),
    ...                     nn.Linear(4 * 8 * 8, 3)).eval()
    >>> clf = cnnlens.Classifier(net)
    >>> res = sanity.model_randomisation(clf, torch.rand(2, 1, 8, 8, generator=g), methods=["saliency", "gradcam"])
    >>> res.steps, res.measures
    (['3', '0'], ['spearman_abs', 'spearman', 'ssim', 'hog'])
    >>> res.values["saliency"].shape  # (steps, measures, images)
    torch.Size([2, 4, 2])
    >>> print(res.to_markdown().splitlines()[0])
    | method | Spearman abs | Spearman | SSIM | HOG |
    >>> fig = res.plot()  # the cascading curves, one panel per measure
"""
from __future__ import annotations

import copy
import dataclasses
import io
import json
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from . import seeding, validation
from ._io import atomic_write_text
from ._similarity import MEASURES, similarity, similarity_params
from .classifier import Classifier
from .errors import CnnlensError

__all__ = [
    "MEASURES",
    "REDUCED_BUDGETS",
    "OWN_DECISION",
    "NEEDS_REFERENCE",
    "SanityResult",
    "sanity_methods",
    "randomisation_blocks",
    "randomised_models",
    "fully_randomised",
    "similarity",
    "model_randomisation",
    "data_randomisation",
]

_LABELS = {"spearman_abs": "Spearman abs", "spearman": "Spearman", "ssim": "SSIM", "hog": "HOG"}

#: reduced budgets of the expensive methods (each is re-run once per randomisation step)
REDUCED_BUDGETS: dict[str, dict[str, Any]] = {
    "rise": {"n_masks": 500},
    "lime": {"num_samples": 200},
    "extremal_perturbation": {"iterations": 100},
    "da_pos": {"iterations": 50},
    "da_neg": {"iterations": 50},
}
#: methods that explain only the model's own prediction: on a randomised model they explain the
#: randomised model's prediction (recorded in the result's params)
OWN_DECISION: tuple[str, ...] = ("da_pos", "da_neg")
#: methods that need a reference set (left out by :func:`sanity_methods`)
NEEDS_REFERENCE: tuple[str, ...] = ("ri", "ace")

#: standard deviation of ``init="normal"`` (Adebayo et al. re-initialise from a truncated normal)
NORMAL_STD = 0.01
_CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)


def sanity_methods() -> list[str]:
    """Every registered method that needs no reference set (all but :data:`NEEDS_REFERENCE`)."""
    from .attribution import methods

    return [m for m in methods() if m not in NEEDS_REFERENCE]


# ------------------------------------------------------------------------------------ blocks
def _has_params(m: nn.Module, recurse: bool = True) -> bool:
    return next(m.parameters(recurse=recurse), None) is not None


def randomisation_blocks(model: nn.Module, granularity: str = "block") -> list[tuple[str, tuple[str, ...]]]:
    """The units re-initialised together, in the model's registration (≈ forward) order, each as
    ``(name, names of the modules with parameters inside it)``.

    ``granularity="block"``: the model's top-level containers (``nn.Sequential``, ``ModuleList``,
    ``ModuleDict``) are opened, and deeper containers whose children are themselves composite
    (a Sequential of residual blocks); every other child that holds parameters is one block — the
    stages of a network (MobileNetV2's ``features.0`` … ``features.18`` and ``classifier.1``, a
    ResNet's ``conv1``, ``bn1``, ``layer1.0`` … ``fc``), as Adebayo et al. grouped Inception v3's
    layers; a conv-BN-activation Sequential stays one block.
    ``granularity="layer"``: every module with parameters of its own (each conv, norm, linear).
    On a small plain net (the MNIST CNN) both give the same four layers.
    """
    if granularity not in ("block", "layer"):
        raise CnnlensError(f"granularity must be 'block' or 'layer', got {granularity!r}")
    names = {id(m): n for n, m in model.named_modules()}
    if granularity == "layer":
        return [(n, (n,)) for n, m in model.named_modules() if _has_params(m, recurse=False)]
    blocks: list[tuple[str, tuple[str, ...]]] = []
    if _has_params(model, recurse=False):
        blocks.append(("", ("",)))

    def composite(m: nn.Module) -> bool:  # a module whose children hold parameters
        return any(_has_params(c) for c in m.children())

    def visit(module: nn.Module, top: bool) -> None:
        for child in module.children():
            if isinstance(child, _CONTAINERS) and (top or any(composite(c) for c in child.children())):
                visit(child, False)
            elif _has_params(child):
                inner = tuple(names[id(m)] for m in child.modules() if _has_params(m, recurse=False))
                blocks.append((names[id(child)], inner))

    visit(model, True)
    return blocks


def _module_seed(seed: int, index: int) -> int:
    """The seed of the module at position ``index`` of ``model.named_modules()`` (§11 stream
    ``sanity.init``: ``SeedSequence([seed, index, stream])``)."""
    return seeding.image_int(seed, index, "sanity.init")


def _normal_init(module: nn.Module) -> None:
    with torch.no_grad():
        for p in module.parameters(recurse=False):
            nn.init.trunc_normal_(p, 0.0, NORMAL_STD, -2 * NORMAL_STD, 2 * NORMAL_STD)
    if hasattr(module, "reset_running_stats"):
        module.reset_running_stats()


def _reset_init(module: nn.Module) -> None:
    reset = getattr(module, "reset_parameters", None)
    if callable(reset):
        reset()
    else:  # a custom module with parameters of its own but no reset_parameters(): the normal init
        _normal_init(module)


def _init_fn(init: str | Callable[[nn.Module, int], None]) -> Callable[[nn.Module, int], None]:
    if callable(init):
        return init
    if init == "reset":
        return lambda m, _seed: _reset_init(m)
    if init == "normal":
        return lambda m, _seed: _normal_init(m)
    raise CnnlensError(f"init must be 'reset', 'normal' or a callable (module, seed), got {init!r}")


def _reinit(module: nn.Module, seed: int, init: Callable[[nn.Module, int], None]) -> None:
    """Re-initialise ``module``'s own parameters (and buffers) in place, on a CPU copy under the
    CPU generator seeded with ``seed`` (the global RNG state is restored): the same values on
    every device."""
    work = copy.deepcopy(module).cpu()
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)
        init(work, seed)
    with torch.no_grad():
        src = dict(work.named_parameters(recurse=False))
        for n, p in module.named_parameters(recurse=False):
            p.copy_(src[n].to(p.dtype))
        src_b = dict(work.named_buffers(recurse=False))
        for n, b in module.named_buffers(recurse=False):
            if n in src_b:
                b.copy_(src_b[n].to(b.dtype))


def _randomise(model: nn.Module, module_names: Sequence[str], seed: int,
               init: Callable[[nn.Module, int], None]) -> None:
    index = {n: i for i, (n, _) in enumerate(model.named_modules())}
    modules = dict(model.named_modules())
    for n in module_names:
        _reinit(modules[n], _module_seed(seed, index[n]), init)


def _with_model(clf: Classifier, model: nn.Module) -> Classifier:
    """A Classifier like ``clf`` (normalisation, feature layer, class names) around ``model``."""
    return clf.with_model(model)


def randomised_models(clf: Classifier, mode: str = "cascading", granularity: str = "block", seed: int = 0,
                      init: str | Callable[[nn.Module, int], None] = "reset") -> Iterator[tuple[str, Classifier]]:
    """Yield ``(block name, Classifier)`` for each step, from the top block down.

    ``mode="cascading"``: step k has the top k blocks re-initialised (one deep copy, re-initialised
    further at each step: a yielded Classifier is valid until the next step); ``"independent"``:
    step k has only block k re-initialised (a fresh deep copy per step). ``init``: ``"reset"``
    (each module's own ``reset_parameters()``), ``"normal"`` (truncated normal, σ = 0.01, cut at
    ±2σ; running statistics reset) or a callable ``init(module, seed)`` called with the global CPU
    generator already seeded. BatchNorm layers in a re-initialised block are reset too: weight 1,
    bias 0, running mean 0, running variance 1. The user's model is never modified.
    """
    if not isinstance(clf, Classifier):
        raise CnnlensError(f"clf must be a cnnlens.Classifier, got {type(clf).__name__}")
    if mode not in ("cascading", "independent"):
        raise CnnlensError(f"mode must be 'cascading' or 'independent', got {mode!r}")
    seed = validation.seed(seed)
    fn = _init_fn(init)
    blocks = randomisation_blocks(clf.model, granularity)
    if not blocks:
        raise CnnlensError("the model has no parameters to randomise")
    model = copy.deepcopy(clf.model) if mode == "cascading" else None
    for name, inner in reversed(blocks):
        if mode == "independent":
            model = copy.deepcopy(clf.model)
        assert model is not None
        _randomise(model, inner, seed, fn)
        yield (name or "<root>"), _with_model(clf, model)


def fully_randomised(clf: Classifier, seed: int = 0,
                     init: str | Callable[[nn.Module, int], None] = "reset") -> Classifier:
    """A deep copy of ``clf`` with every layer re-initialised (the last cascading step)."""
    model = copy.deepcopy(clf.model)
    names = [n for n, m in model.named_modules() if _has_params(m, recurse=False)]
    _randomise(model, names, validation.seed(seed), _init_fn(init))
    return _with_model(clf, model)


# ------------------------------------------------------------------------------------ similarity
@dataclasses.dataclass
class SanityResult:
    """Similarities between each method's maps on the original model and on randomised ones.

    Attributes:
        kind: ``"cascading"``, ``"independent"`` (model parameter randomisation) or ``"data"``.
        methods: method labels (rows).
        steps: the randomised blocks, top-down (``"random labels"`` for data randomisation);
            for ``"cascading"`` step k has blocks ``steps[:k + 1]`` re-initialised.
        measures: the similarity measures (:data:`MEASURES`).
        values: ``{method: (steps, measures, images)}`` float64 per-image similarities.
        n_undefined: ``{method: (steps, measures)}`` images whose value was undefined (set to 0).
        params: every setting (seed, init, granularity, targets, method parameters incl. the
            reduced budgets, similarity details, version).
        seconds: explaining time per method (all steps).
    """

    kind: str
    methods: list[str]
    steps: list[str]
    measures: list[str]
    values: dict[str, torch.Tensor]
    n_undefined: dict[str, torch.Tensor]
    params: dict[str, Any] = dataclasses.field(default_factory=dict)
    seconds: dict[str, float] = dataclasses.field(default_factory=dict)

    def _index(self, method: str, measure: str) -> int:
        if method not in self.values:
            raise CnnlensError(f"no method {method!r}; methods: {', '.join(self.methods)}")
        if measure not in self.measures:
            raise CnnlensError(f"no measure {measure!r}; measures: {', '.join(self.measures)}")
        return self.measures.index(measure)

    def per_image(self, method: str, measure: str = "spearman_abs", step: int = -1) -> torch.Tensor:
        """``(N,)`` similarities of ``method`` at ``step`` (default: the last, full randomisation
        for cascading)."""
        return self.values[method][step, self._index(method, measure)]

    def mean(self, method: str, measure: str = "spearman_abs") -> torch.Tensor:
        """``(steps,)`` mean similarity over the images at each step (the paper's curves)."""
        return self.values[method][:, self._index(method, measure)].mean(dim=1)

    def to_markdown(self, step: int = -1, digits: int = 3) -> str:
        """Rows methods, columns measures, cells ``mean ± std`` over images at ``step`` (default
        the last: every block re-initialised in the cascading run)."""
        head = ["method"] + [_LABELS.get(m, m) for m in self.measures]
        lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["---:"] * len(self.measures)) + "|"]
        for method in self.methods:
            v = self.values[method][step]
            cells = [method] + [f"{float(r.mean()):.{digits}f} ± {float(r.std(unbiased=False)):.{digits}f}" for r in v]
            lines.append("| " + " | ".join(cells) + " |")
        n = next(iter(self.values.values())).shape[2] if self.values else 0
        what = {"cascading": f"cascading randomisation down to {self.steps[step]!r}",
                "independent": f"independent randomisation of {self.steps[step]!r}",
                "data": "data randomisation (permuted labels)"}.get(self.kind, self.kind)
        lines += ["", f"{n} images, {what}; similarity to the original maps, mean ± std over images "
                      "(lower = the map depends more on the model)."]
        return "\n".join(lines) + "\n"

    def __str__(self) -> str:
        return self.to_markdown()

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind, "methods": list(self.methods), "steps": list(self.steps),
            "measures": list(self.measures), "params": self.params, "seconds": self.seconds,
            "values": {m: v.tolist() for m, v in self.values.items()},
            "n_undefined": {m: v.tolist() for m, v in self.n_undefined.items()},
        }

    def to_json(self, path: str | os.PathLike[str] | None = None) -> str:
        """JSON text with every per-image value and parameter (written atomically to ``path``)."""
        text = json.dumps(self.to_dict(), indent=1, default=str)
        if path is not None:
            atomic_write_text(path, text)
        return text

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SanityResult:
        try:
            return cls(str(d["kind"]), list(d["methods"]), list(d["steps"]), list(d["measures"]),
                       {m: torch.tensor(v, dtype=torch.float64) for m, v in d["values"].items()},
                       {m: torch.tensor(v, dtype=torch.long) for m, v in d["n_undefined"].items()},
                       dict(d.get("params", {})), dict(d.get("seconds", {})))
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise CnnlensError(f"not a SanityResult dict (from to_dict): {type(exc).__name__}: {exc}") from None

    def plot(self, measures: Sequence[str] | None = None) -> Any:
        """A matplotlib ``Figure``: one panel per measure, one curve per method — mean similarity
        (± std band) against the randomised block, "original" first (the paper's Fig. 2/4)."""
        import matplotlib

        matplotlib.use("Agg", force=False)
        from matplotlib.figure import Figure

        measures = list(self.measures if measures is None else measures)
        for m in measures:
            if m not in self.measures:
                raise CnnlensError(f"no measure {m!r}; measures: {', '.join(self.measures)}")
        fig = Figure(figsize=(4.2 * len(measures), 4.2), dpi=100)
        axes = fig.subplots(1, len(measures), squeeze=False)[0]
        labels = ["original"] + list(self.steps)
        xs = np.arange(len(labels))
        for ax, measure in zip(axes, measures):
            k = self.measures.index(measure)
            for i, method in enumerate(self.methods):
                v = self.values[method][:, k]
                mean = np.concatenate([[1.0], v.mean(dim=1).numpy()])
                std = np.concatenate([[0.0], v.std(dim=1, unbiased=False).numpy()])
                (line,) = ax.plot(xs, mean, marker="o", markersize=3, label=method,
                                  linestyle=("-", "--", ":")[(i // 10) % 3])  # the colours repeat after 10
                ax.fill_between(xs, mean - std, mean + std, alpha=0.12, color=line.get_color())
            ax.axhline(0.0, color="grey", linewidth=0.5)
            ax.set_title(_LABELS.get(measure, measure))
            ax.set_xticks(xs)
            ax.set_xticklabels(labels, rotation=70, fontsize=7)
            ax.set_ylim(-1.05 if measure != "ssim" else -0.05, 1.05)
            ax.set_xlabel({"cascading": "cascading randomisation (top block first)",
                           "independent": "independently randomised block",
                           "data": "model"}.get(self.kind, ""))
            ax.set_ylabel("similarity to the original map")
        axes[-1].legend(fontsize=7, loc="best")
        fig.tight_layout()
        return fig

    def save_plot(self, path: str | os.PathLike[str], measures: Sequence[str] | None = None) -> None:
        """:meth:`plot` as a PNG written atomically to ``path``."""
        from ._io import atomic_write_bytes

        buf = io.BytesIO()
        self.plot(measures).savefig(buf, format="png")
        atomic_write_bytes(path, buf.getvalue())


# ------------------------------------------------------------------------------------ runs
def _method_entries(methods: Any, method_params: Mapping[str, Mapping[str, Any]] | None,
                    budgets: str) -> list[tuple[str, str, dict[str, Any]]]:
    from .attribution import method_info

    validation.choice("budgets", budgets, ("reduced", "full"))
    if method_params is not None and not isinstance(method_params, Mapping):
        raise CnnlensError(f"method_params must be a dict {{method: params}}, got {type(method_params).__name__}")
    if methods is None:
        methods = sanity_methods()
    elif isinstance(methods, str):
        methods = [methods]
    methods = list(methods)
    if not methods:
        raise CnnlensError("methods is empty; give at least one method name (None: every method without a reference set)")
    out = []
    for m in methods:
        name = method_info(m).name  # an unknown name lists the valid ones
        if name in NEEDS_REFERENCE and "reference" not in (method_params or {}).get(name, {}):
            raise CnnlensError(f"method {name!r} needs a reference set: pass method_params={{{name!r}: "
                               "{'reference': images}}")
        params = dict(REDUCED_BUDGETS.get(name, {})) if budgets == "reduced" else {}
        params.update((method_params or {}).get(name, {}))
        if method_info(name).stochastic or name in OWN_DECISION or "progress" in method_info(name).params:
            params.setdefault("progress", False)
        out.append((name, name, params))
    stray = [k for k in (method_params or {}) if k not in [e[0] for e in out]]
    if stray:
        raise CnnlensError(f"method_params has entries for {', '.join(map(repr, stray))}, not among the methods")
    return out


def _explain(clf: Classifier, x: torch.Tensor, name: str, targets: torch.Tensor, seed: int, batch_size: int,
             first_index: int, params: dict[str, Any]) -> torch.Tensor:
    from .attribution import explain

    target = None if name in OWN_DECISION else targets
    return explain(clf, x, name, target=target, seed=seed, batch_size=batch_size, first_index=first_index,
                   **params).maps.detach()


def _run(kind: str, clf: Classifier, x: torch.Tensor, models: Iterator[tuple[str, Classifier]], methods: Any,
         target: Any, seed: int, measures: Sequence[str], budgets: str,
         method_params: Mapping[str, Mapping[str, Any]] | None, batch_size: int, first_index: int, progress: bool,
         extra: dict[str, Any]) -> SanityResult:
    from . import __version__
    from ._progress import bar as progress_bar

    if not isinstance(clf, Classifier):
        raise CnnlensError(f"clf must be a cnnlens.Classifier, got {type(clf).__name__}")
    batch_size = validation.batch_size(batch_size)
    seed = validation.seed(seed)
    first_index = validation.integer("first_index", first_index, minimum=0)
    progress = validation.flag("progress", progress)
    measures = [measures] if isinstance(measures, str) else list(measures)
    similarity(torch.zeros(1, 3, 3), torch.zeros(1, 3, 3), measures)  # unknown measures fail first
    entries = _method_entries(methods, method_params, budgets)
    x = clf.check_input(x)
    targets = clf.targets(x, target, batch_size=batch_size)
    seconds: dict[str, float] = {}
    originals: dict[str, torch.Tensor] = {}
    for label, name, params in entries:
        t0 = time.perf_counter()
        originals[label] = _explain(clf, x, name, targets, seed, batch_size, first_index, params)
        seconds[label] = time.perf_counter() - t0
    steps: list[str] = []
    vals: dict[str, list[torch.Tensor]] = {e[0]: [] for e in entries}
    undef: dict[str, list[torch.Tensor]] = {e[0]: [] for e in entries}
    bar = progress_bar(total=None, desc=f"sanity ({kind})", unit="step", leave=False) if progress else None
    try:
        for step, rclf in models:
            steps.append(step)
            for label, name, params in entries:
                t0 = time.perf_counter()
                maps = _explain(rclf, x, name, targets, seed, batch_size, first_index, params)
                seconds[label] += time.perf_counter() - t0
                v, u = similarity(originals[label], maps, measures)
                vals[label].append(v)
                undef[label].append(u.sum(dim=1))
            if bar is not None:
                bar.set_postfix_str(step)
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    shape = tuple(next(iter(originals.values())).shape[1:])
    params = {
        "kind": kind, "seed": seed, "batch_size": batch_size, "first_index": first_index,
        "n_images": int(x.shape[0]), "targets": targets.tolist(), "budgets": budgets,
        "method_params": {label: {k: v for k, v in p.items() if _plain(v)} for label, _, p in entries},
        "own_decision": [e[0] for e in entries if e[1] in OWN_DECISION],
        "similarity": similarity_params(shape), "version": __version__, **extra,
    }
    if params["own_decision"]:
        params["own_decision_note"] = ("these methods explain only a model's own prediction: on a randomised "
                                       "model they explain its prediction, not the original target")
    return SanityResult(kind, [e[0] for e in entries], steps, measures,
                        {k: torch.stack(v) for k, v in vals.items()}, {k: torch.stack(v) for k, v in undef.items()},
                        params, seconds)


def _plain(v: Any) -> bool:
    try:
        json.dumps(v)
    except (TypeError, ValueError):
        return False
    return True


def model_randomisation(
    clf: Classifier,
    x: torch.Tensor,
    methods: Sequence[str] | str | None = None,
    *,
    mode: str = "cascading",
    granularity: str = "block",
    target: Any = None,
    seed: int = 0,
    init: str | Callable[[nn.Module, int], None] = "reset",
    measures: Sequence[str] = MEASURES,
    budgets: str = "reduced",
    method_params: Mapping[str, Mapping[str, Any]] | None = None,
    batch_size: int = 64,
    first_index: int = 0,
    progress: bool = False,
    at: Sequence[str] | None = None,
) -> SanityResult:
    """Model parameter randomisation test (Adebayo et al. 2018; docs/algorithms.md §10.1).

    Args:
        clf: the :class:`~cnnlens.Classifier` (never modified).
        x: images ``(N, C, H, W)`` in [0, 1].
        methods: method names; ``None`` → :func:`sanity_methods` (every method without a
            reference set).
        mode: ``"cascading"`` (top block first, one more per step) or ``"independent"``.
        granularity: ``"block"`` or ``"layer"`` (:func:`randomisation_blocks`).
        target: classes explained; ``None`` → the original model's predictions, kept for every
            randomised model (methods in :data:`OWN_DECISION` explain the randomised model's own
            prediction, recorded).
        seed: seeds both the re-initialisation (stream ``sanity.init``) and the stochastic methods
            (the same seed for the original and randomised runs, so a method's own randomness —
            RISE's masks, LIME's samples — is held fixed).
        init: ``"reset"`` (each layer's ``reset_parameters()``), ``"normal"`` or a callable
            (:func:`randomised_models`).
        measures: similarity measures (:data:`MEASURES`).
        budgets: ``"reduced"`` (:data:`REDUCED_BUDGETS` for RISE, LIME, Extremal Perturbation and
            DA, recorded in ``params``) or ``"full"`` (the methods' defaults).
        method_params: ``{method: explain params}``, over the budgets.
        batch_size, first_index: as in :func:`~cnnlens.explain`.
        progress: a progress bar over the steps.
        at: block names after whose randomisation the maps are computed (default: every step);
            the cascade still re-initialises every block on the way, so ``at`` only thins the
            curve — for large networks and expensive methods.

    Returns:
        A :class:`SanityResult` with per-image similarities per method, step and measure.
    """
    validation.seed(seed)
    models = randomised_models(clf, mode, granularity, seed, init) if isinstance(clf, Classifier) else iter(())
    if at is not None:
        at = [at] if isinstance(at, str) else list(at)
        if isinstance(clf, Classifier):
            known = [b[0] or "<root>" for b in randomisation_blocks(clf.model, granularity)]
            bad = [a for a in at if a not in known]
            if bad or not at:
                raise CnnlensError(f"at: {bad or 'empty'} not among the {granularity}s: {', '.join(known)}")
        wanted = set(at)
        models = ((name, c) for name, c in models if name in wanted)
    extra = {"mode": mode, "granularity": granularity,
             "init": init if isinstance(init, str) else getattr(init, "__name__", "callable"),
             "init_seeds": "SeedSequence([seed, module index in named_modules(), stream sanity.init]) per module",
             "batchnorm": "reset with its block (weight 1, bias 0, running mean 0, running variance 1)",
             "at": None if at is None else list(at)}
    if isinstance(clf, Classifier):
        randomisation_blocks(clf.model, granularity)  # a bad granularity fails before any method runs
        if mode not in ("cascading", "independent"):
            raise CnnlensError(f"mode must be 'cascading' or 'independent', got {mode!r}")
        _init_fn(init)
    return _run(mode, clf, x, models, methods, target, seed, measures, budgets, method_params, batch_size,
                first_index, progress, extra)


def data_randomisation(
    clf: Classifier,
    clf_random: Classifier,
    x: torch.Tensor,
    methods: Sequence[str] | str | None = None,
    *,
    target: Any = None,
    seed: int = 0,
    measures: Sequence[str] = MEASURES,
    budgets: str = "reduced",
    method_params: Mapping[str, Mapping[str, Any]] | None = None,
    batch_size: int = 64,
    first_index: int = 0,
    progress: bool = False,
) -> SanityResult:
    """Data randomisation test (Adebayo et al. 2018; §10.1): the similarity of each
    method's maps on ``clf`` (trained on the true labels) and on ``clf_random`` (the same
    architecture trained on permuted labels), on the same images and targets (``None`` → ``clf``'s
    predictions). One step, ``"random labels"``. The zoo pair: ``mnist_cnn_s`` and
    ``mnist_cnn_s_random_labels``.
    """
    if not isinstance(clf_random, Classifier):
        raise CnnlensError(f"clf_random must be a cnnlens.Classifier, got {type(clf_random).__name__}")
    return _run("data", clf, x, iter([("random labels", clf_random)]), methods, target, seed, measures, budgets,
                method_params, batch_size, first_index, progress, {"random_model": repr(clf_random)})

