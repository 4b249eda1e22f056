"""``compare``: methods × metrics on one model and image set, in OVERVIEW's layout (docs/algorithms.md §3).

Rows are methods (plus a random-map baseline row), columns IAUC ↑, DAUC ↓, IC ↑, DC ↑, AD ↓,
IIC ↑; each cell is mean ± std over the images, and the per-image values are kept. Every method
explains the same targets (the prediction by default) and every game shares one seeded
tie-breaking permutation.

Example::

    >>> import torch
    >>> from torch import nn
    >>> import cnnlens
    >>> net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
    ...                     nn.Flatten(), nn.Linear(4, 3)).eval()
    >>> clf = cnnlens.Classifier(net)
    >>> table = cnnlens.compare(clf, torch.rand(2, 1, 8, 8), methods=["saliency"], metrics=["dauc", "ad"])
    >>> table.rows
    ['saliency', 'random']
    >>> print(table.to_markdown().splitlines()[0])
    | method | DAUC ↓ | AD ↓ |
"""
from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from .. import seeding, validation
from .._io import atomic_write_bytes, atomic_write_text
from .._progress import bar as progress_bar
from ..errors import CnnlensError, one_line
from ..explanation import Explanation
from ._common import DEFAULT_BATCH_SIZE, MetricResult, check_classifier, make_result
from .evaluate import evaluate
from .registry import canonical_metric, default_metrics, metric_info

__all__ = ["compare", "ComparisonTable", "random_maps", "RANDOM_LABEL", "result_from_dict", "evaluate_row"]

RANDOM_LABEL = "random"


def _jsonable(v: Any) -> bool:
    try:
        json.dumps(v)
    except (TypeError, ValueError):
        return False
    return True


def random_maps(n: int, size: tuple[int, int], seed: int, device: torch.device | str = "cpu",
                first_index: int = 0) -> torch.Tensor:
    """The random baseline: i.i.d. uniform ``(n, H, W)`` maps (no ties); image i's map from its seed
    stream ``(seed, first_index + i)`` (§11)."""
    gens = seeding.image_generators(seed, n, "compare.random_maps", first_index)
    return torch.stack([torch.rand(size, generator=g) for g in gens]).to(device)


def result_from_dict(d: Mapping[str, Any]) -> MetricResult:
    """Rebuild a :class:`MetricResult` from :meth:`MetricResult.to_dict` (a loaded result keeps
    only the mean curve, as ``curves`` of shape ``(1, K + 1)``)."""
    mean = d["mean"]
    mean = torch.tensor(mean, dtype=torch.float64) if isinstance(mean, list) else float(mean)
    curves = torch.tensor(d["mean_curve"], dtype=torch.float64).unsqueeze(0) if d.get("mean_curve") else None
    return MetricResult(d["name"], torch.tensor(d["per_image"], dtype=torch.float64), mean,
                        float(d.get("std", float("nan"))), dict(d.get("params", {})), int(d.get("n_constant", 0)),
                        curves, d.get("direction") or _direction(d["name"]))


def _direction(name: str) -> str:
    """The registered direction of ``name`` (``"↑"`` for a metric no longer registered)."""
    try:
        return metric_info(name).direction
    except CnnlensError:
        return "↑"


@dataclasses.dataclass
class ComparisonTable:
    """Methods × metrics results (§3 comparison).

    Attributes:
        results: ``{row label: {metric: MetricResult}}`` in row order (the random baseline last).
        metrics: the metric names (columns), as asked.
        params: the shared settings (protocol, score, seed, targets, number of images …).
        seconds: explaining time per row (seconds; 0 for the random baseline).
    """

    results: dict[str, dict[str, MetricResult]]
    metrics: list[str]
    params: dict[str, Any] = dataclasses.field(default_factory=dict)
    seconds: dict[str, float] = dataclasses.field(default_factory=dict)

    @property
    def rows(self) -> list[str]:
        return list(self.results)

    def _columns(self) -> list[str]:
        return [m for m in self.metrics if metric_info(m).scalar]

    def value(self, row: str, metric: str) -> float:
        """Mean of ``metric`` in ``row``."""
        if row not in self.results:
            raise CnnlensError(f"no row {row!r}; rows: {', '.join(map(repr, self.results))}")
        if metric not in self.results[row]:
            raise CnnlensError(f"row {row!r} has no metric {metric!r}; metrics: {', '.join(map(repr, self.results[row]))}")
        return float(self.results[row][metric].mean)

    def to_markdown(self, digits: int = 3, percent: bool = False) -> str:
        """The table in OVERVIEW's layout: rows methods, columns with ↑/↓, cells ``mean ± std``.
        ``percent=True`` prints AD and IIC ×100 (they are stored as fractions)."""
        cols = self._columns()
        infos = [metric_info(c) for c in cols]
        head = ["method"] + [f"{i.name.upper()}{' %' if percent and i.percent else ''} {i.direction}" for i in infos]
        lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["---:"] * len(cols)) + "|"]
        for row, res in self.results.items():
            cells = [row]
            for c in cols:
                r = res[c]
                scale = 100.0 if percent and metric_info(r.name).percent else 1.0
                cells.append(f"{r.mean * scale:.{digits}f} ± {r.std * scale:.{digits}f}")
            lines.append("| " + " | ".join(cells) + " |")
        n = self.params.get("n_images")
        if n is not None:
            lines.append("")
            lines.append(f"{n} images, protocol {self.params.get('protocol')}, score {self.params.get('score')}; "
                         "mean ± std over images.")
        return "\n".join(lines) + "\n"

    def __str__(self) -> str:
        return self.to_markdown()

    def __repr__(self) -> str:
        from ..display.tables import summary

        return summary(self)

    def _repr_html_(self) -> str:
        return self.to_html()

    def to_html(self, max_rows: int = 40) -> str:
        """A self-contained HTML table (what Jupyter shows): methods × metrics with ↑/↓, ``mean ±
        std`` per cell, the best mean per column in bold, the settings folded."""
        from ..display.tables import to_html

        return to_html(self, max_rows)

    def plot(self):
        """A matplotlib :class:`~matplotlib.figure.Figure` (not shown; ``fig.savefig(path)``): one
        dot chart per metric, mean ± std per row, titled with the metric's direction."""
        from ..display.tables import plot

        return plot(self)

    def to_csv(self, path: str | os.PathLike[str] | None = None, per_image: bool = False) -> str:
        """CSV text (written atomically to ``path`` when given). Default: one row per method with
        ``<metric>_mean`` and ``<metric>_std`` columns; ``per_image=True``: long format
        ``method, metric, image, value``."""
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        cols = self._columns()
        if per_image:
            w.writerow(["method", "metric", "image", "value"])
            for row, res in self.results.items():
                for c in cols:
                    for i, v in enumerate(res[c].per_image.tolist()):
                        w.writerow([row, canonical_metric(c), i, repr(float(v))])
        else:
            w.writerow(["method"] + [f"{canonical_metric(c)}_{s}" for c in cols for s in ("mean", "std")]
                       + ["n_images"])
            for row, res in self.results.items():
                vals = []
                for c in cols:
                    vals += [repr(float(res[c].mean)), repr(float(res[c].std))]
                n = res[cols[0]].per_image.shape[0] if cols else ""
                w.writerow([row] + vals + [n])
        text = buf.getvalue()
        if path is not None:
            atomic_write_text(path, text)
        return text

    def to_dict(self) -> dict[str, Any]:
        return {
            "params": self.params,
            "metrics": list(self.metrics),
            "seconds": self.seconds,
            "results": {row: {m: r.to_dict() for m, r in res.items()} for row, res in self.results.items()},
        }

    def to_json(self, path: str | os.PathLike[str] | None = None) -> str:
        """JSON text with every parameter, mean, std, per-image value and mean curve (written
        atomically to ``path`` when given)."""
        text = json.dumps(self.to_dict(), indent=1, default=str)
        if path is not None:
            atomic_write_text(path, text)
        return text

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ComparisonTable:
        """Rebuild a table from :meth:`to_dict` (e.g. a loaded ``table.json``); anything else is
        a :class:`CnnlensError`."""
        try:
            return cls({row: {m: result_from_dict(r) for m, r in res.items()} for row, res in d["results"].items()},
                       list(d["metrics"]), dict(d.get("params", {})), dict(d.get("seconds", {})))
        except (KeyError, TypeError, ValueError, AttributeError, RuntimeError) as exc:
            raise CnnlensError(f"not a ComparisonTable dict (from to_dict / table.json): {one_line(exc)}") from None

    def plot_curves(self, path: str | os.PathLike[str]) -> None:
        """A PNG of the mean insertion (IAUC's game) and deletion (DAUC's game) curves per row."""
        import matplotlib

        matplotlib.use("Agg", force=False)
        from matplotlib.figure import Figure

        fig = Figure(figsize=(10, 4), dpi=110)
        axes = fig.subplots(1, 2)
        for ax, key, title in ((axes[0], ("iauc", "ic"), "insertion"), (axes[1], ("dauc", "dc"), "deletion")):
            drawn = False
            for row, res in self.results.items():
                r = next((res[m] for m in res if canonical_metric(m) in key and res[m].curves is not None), None)
                if r is None:
                    continue
                curve = r.curves.mean(0).numpy()
                xs = torch.linspace(0, 1, curve.shape[0]).numpy()
                label = row
                auc_name = key[0]
                auc_res = next((res[m] for m in res if canonical_metric(m) == auc_name), None)
                if auc_res is not None:
                    label = f"{row} ({auc_name.upper()} {auc_res.mean:.3f})"
                ax.plot(xs, curve, label=label, linestyle="--" if row == RANDOM_LABEL else "-")
                drawn = True
            ax.set_title(f"mean {title} curve")
            ax.set_xlabel("fraction of cells " + ("inserted" if title == "insertion" else "deleted"))
            ax.set_ylabel(f"target {self.params.get('score', 'prob')}")
            if drawn:
                ax.legend(fontsize=7)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        atomic_write_bytes(path, buf.getvalue())


def _method_entries(methods: Any, method_params: Mapping[str, Mapping[str, Any]] | None) -> list[tuple[str, Any, dict[str, Any]]]:
    """Normalise ``methods`` to ``(label, name or Explanation, params)``."""
    from ..attribution import method_info
    from ..attribution import methods as registered

    if method_params is not None and not isinstance(method_params, Mapping):
        raise CnnlensError(f"method_params must be a dict {{method name: params}}, got {type(method_params).__name__}")
    for name, params in (method_params or {}).items():
        if not isinstance(params, Mapping):
            raise CnnlensError(f"method_params[{name!r}] must be a dict of explain() params, got {type(params).__name__}")
    if methods is None:
        methods = registered()
    if isinstance(methods, (str, Explanation)):
        methods = [methods]
    if isinstance(methods, Mapping):
        methods = list(methods.items())
    methods = list(methods)
    if not methods:
        raise CnnlensError("methods is empty; give at least one method name (None runs every registered method)")
    entries: list[tuple[str, Any, dict[str, Any]]] = []
    for m in methods:
        if isinstance(m, Explanation):
            entries.append((m.method, m, {}))
            continue
        if isinstance(m, tuple) and len(m) == 2 and isinstance(m[0], str):
            label, spec = m
            if isinstance(spec, Explanation):
                entries.append((label, spec, {}))
                continue
            if not isinstance(spec, Mapping):
                raise CnnlensError(f"methods entry {label!r}: give an Explanation or a dict of explain() params")
            spec = dict(spec)
            name = spec.pop("method", label)
            method_info(name)
            entries.append((label, name, spec))
            continue
        if not isinstance(m, str):
            raise CnnlensError(f"methods entries must be names, Explanations or (label, params) pairs, got {m!r}")
        method_info(m)  # unknown names list the valid ones
        entries.append((m, m, dict((method_params or {}).get(m, {}))))
    labels = [e[0] for e in entries]
    if method_params:
        plain = [m for m in methods if isinstance(m, str)]
        stray = [k for k in method_params if k not in plain]
        if stray:
            raise CnnlensError(f"method_params has entries for {', '.join(map(repr, stray))}, not among the methods "
                               f"run by name: {', '.join(plain) if plain else 'none'}")
    dup = {lab for lab in labels if labels.count(lab) > 1}
    if dup:
        raise CnnlensError(f"methods has duplicate labels {sorted(dup)}; give (label, params) pairs")
    if RANDOM_LABEL in labels:
        raise CnnlensError(f"{RANDOM_LABEL!r} is the baseline row's label; rename that method")
    return entries


def _usable_rows(done: Mapping[str, Any] | None, metrics: list[str], n: int) -> dict[str, dict[str, MetricResult]]:
    """The rows of ``done`` that hold a :class:`MetricResult` for every metric asked, with one value
    per image of ``n``; any other row is recomputed, with a warning saying why."""
    if done is None:
        return {}
    if not isinstance(done, Mapping):
        raise CnnlensError(f"done must be a dict {{row label: {{metric: MetricResult}}}}, got {type(done).__name__}")
    usable: dict[str, dict[str, MetricResult]] = {}
    for label, row in done.items():
        if not isinstance(row, Mapping):
            problem = f"is a {type(row).__name__}, not a dict of results"
        else:
            missing = [m for m in metrics if not isinstance(row.get(m), MetricResult)]
            problem = f"lacks {', '.join(missing)}" if missing else ""
            if not problem and any(row[m].per_image.shape[:1] != (n,) for m in metrics):
                problem = f"does not hold one value per image for {n} images"
        if problem:
            warnings.warn(f"done row {label!r} {problem}; recomputing it", RuntimeWarning, stacklevel=3)
        else:
            usable[label] = dict(row)
    return usable


def _evaluate_random(clf: Any, x: torch.Tensor, maps: torch.Tensor, progress: bool, common: dict[str, Any],
                     evaluate_params: dict[str, Any]) -> dict[str, MetricResult]:
    """The random row: metrics that re-run the explanation's method (``needs`` ``method``, e.g.
    max-sensitivity) have no method to re-run there and get NaN, said so in their params."""
    metrics = list(common["metrics"])
    runnable = [m for m in metrics if "method" not in metric_info(m).needs]
    kept = {canonical_metric(m) for m in runnable}
    mp = evaluate_params.get("metric_params")
    params = dict(evaluate_params)
    if isinstance(mp, dict):
        params["metric_params"] = {k: v for k, v in mp.items() if canonical_metric(k) in kept}
    res = evaluate(clf, x, maps, progress=progress, **{**common, "metrics": runnable}, **params) if runnable else {}
    out: dict[str, MetricResult] = {}
    for name in metrics:
        if name in res:
            out[name] = res[name]
        else:
            out[name] = make_result(canonical_metric(name), torch.full((x.shape[0],), float("nan")),
                                    {"not_applicable": "random maps have no method to re-run"},
                                    direction=metric_info(name).direction)
        out[name].params["method"] = RANDOM_LABEL
    return out


def evaluate_row(clf: Any, x: torch.Tensor, spec: Any, params: Mapping[str, Any], *, targets: torch.Tensor,
                 progress: bool, common: Mapping[str, Any], evaluate_params: Mapping[str, Any]) -> tuple[dict[str, MetricResult], float]:
    """One row of :func:`compare`: explain ``x`` with ``spec`` (a method name, an Explanation, or
    ``None`` for the random baseline) and evaluate the maps; ``common`` holds evaluate's
    ``metrics``, ``protocol``, ``batch_size``, ``seed``, ``target`` and ``first_index``. Returns
    ``(results, seconds spent explaining)`` (the sharded runner calls it per image range)."""
    from ..attribution import explain

    seed, first_index = common["seed"], common["first_index"]
    t0 = time.perf_counter()
    if spec is None:
        maps: Any = random_maps(x.shape[0], tuple(x.shape[2:]), seed, x.device, first_index)
    elif isinstance(spec, Explanation):
        maps = spec
    else:
        if spec in ("ri", "ace") and params.get("reference") is None:
            # RI and ACE need reference images: by default the evaluated images themselves
            params = {**params, "reference": x}
        maps = explain(clf, x, spec, target=targets, seed=seed, batch_size=common["batch_size"],
                       first_index=first_index, **params)
    seconds = time.perf_counter() - t0
    if spec is None:  # metrics that re-run a method are NaN here (said so in their params)
        return _evaluate_random(clf, x, maps, progress, dict(common), dict(evaluate_params)), seconds
    res = evaluate(clf, x, maps, progress=progress, **common, **evaluate_params)
    if isinstance(maps, Explanation):
        for r in res.values():
            r.params["explain_params"] = {k: v for k, v in maps.params.items() if k != "target" and _jsonable(v)}
    return res, seconds


def compare(
    clf: Any,
    x: torch.Tensor,
    methods: Sequence[Any] | Mapping[str, Any] | None = None,
    metrics: Sequence[str] | None = None,
    protocol: str = "rise",
    target: Any = None,
    seed: int = 0,
    batch_size: int = DEFAULT_BATCH_SIZE,
    method_params: Mapping[str, Mapping[str, Any]] | None = None,
    random_baseline: bool = True,
    progress: bool = False,
    first_index: int = 0,
    on_result: Callable[[str, dict[str, MetricResult], float], None] | None = None,
    done: Mapping[str, dict[str, MetricResult]] | None = None,
    **evaluate_params: Any,
) -> ComparisonTable:
    """Run every method × metric on one model and image set (§3 comparison).

    Args:
        clf: the :class:`~cnnlens.Classifier`.
        x: images ``(N, C, H, W)`` in [0, 1].
        methods: method names (default: every registered method), Explanations, or
            ``(label, {"method": name, **explain params})`` pairs.
        metrics: metric names (default IAUC, DAUC, IC, DC, AD, IIC).
        protocol: ``"rise"`` or ``"gomez"`` (see :func:`~cnnlens.metrics.evaluate`).
        target: class per image; ``None`` → the prediction, shared by every method.
        seed: explain seed and the shared tie-breaking permutation; also seeds the random maps.
        batch_size: forward batch size for explaining and evaluating.
        method_params: ``{method name: explain params}`` for plain names (e.g.
            ``{"gradcam": {"layer": "model.20"}}``). ``ri`` without ``reference`` uses ``x``
            itself as its reference images.
        random_baseline: add the ``random`` row (uniform random maps at image resolution).
        progress: progress bars.
        first_index: data-set position of ``x[0]`` (per-image seed streams, §11).
        on_result: called ``on_result(label, results, seconds)`` as each row completes (the
            command line writes each row to disk there, so finished work is never lost).
        done: rows already computed (``{label: {metric: MetricResult}}``), reused, not re-run.
        **evaluate_params: further :func:`~cnnlens.metrics.evaluate` options (score, step,
            substrates, mode, keep, clip, labels, fractions).

    Returns:
        A :class:`ComparisonTable`.
    """
    from .. import __version__

    clf = check_classifier(clf)
    batch_size = validation.batch_size(batch_size)
    random_baseline = validation.flag("random_baseline", random_baseline)
    progress = validation.flag("progress", progress)
    metrics = list(default_metrics()) if metrics is None else [metrics] if isinstance(metrics, str) else list(metrics)
    if not metrics:
        raise CnnlensError("metrics is empty; give at least one metric name (None for the defaults)")
    for m in metrics:
        canonical_metric(m)
    entries = _method_entries(methods, method_params)
    if on_result is not None and not callable(on_result):
        raise CnnlensError(f"on_result must be a callable (label, results, seconds) or None, got {type(on_result).__name__}")
    # evaluate()'s own keywords, checked before any method runs (not after the first one)
    taken = ("clf", "x", "explanation", "progress", "metrics", "protocol", "batch_size", "seed", "target", "first_index")
    valid, _ = validation.accepted_params(evaluate, skip=taken)
    validation.known_params("compare (passing on to evaluate)", evaluate_params, valid)
    x = clf.check_input(x)
    targets = clf.targets(x, target, batch_size=batch_size)
    first_index = validation.integer("first_index", first_index, minimum=0)
    common = dict(metrics=metrics, protocol=protocol, batch_size=batch_size, seed=seed, target=targets,
                  first_index=first_index)
    results: dict[str, dict[str, MetricResult]] = {}
    seconds: dict[str, float] = {}
    done = _usable_rows(done, metrics, int(x.shape[0]))
    rows = entries + ([(RANDOM_LABEL, None, {})] if random_baseline else [])
    bar = None
    if progress:
        bar = progress_bar(total=len(rows), desc="methods", unit="method", leave=True)
    try:
        for label, spec, params in rows:
            if bar is not None:
                bar.set_postfix_str(label)
            if label in done:
                results[label] = done[label]
                seconds[label] = float("nan")
            else:
                res, seconds[label] = evaluate_row(clf, x, spec, params, targets=targets, progress=progress,
                                                   common=common, evaluate_params=evaluate_params)
                results[label] = res
                if on_result is not None:
                    on_result(label, res, seconds[label])
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    params = {"protocol": protocol, "n_images": int(x.shape[0]), "seed": seed, "batch_size": batch_size,
              "score": evaluate_params.get("score", "prob"), "targets": targets.tolist(), "version": __version__,
              **{k: v for k, v in evaluate_params.items() if k not in ("labels", "masks", "second_model")}}
    return ComparisonTable(results, metrics, params, seconds)
