"""Sharded ``evaluate``/``compare`` (docs/algorithms.md §11): row (method or the random
baseline) × image range, merged into what :func:`cnnlens.metrics.run.run_evaluate` writes.

A shard runs one row of :func:`~cnnlens.metrics.compare.compare` on its images
(:func:`~cnnlens.metrics.compare.evaluate_row`, ``first_index`` = its start) and stores every
metric's per-image values and curves. The merge concatenates them per row, recomputes mean and
std exactly as a single call does (so they are bit-identical when the per-image values are),
keeps each curve metric's mean curve only (as a loaded ``results/`` file does), and writes
``results/<row>.json``, ``table.md``, ``table.csv``, ``per_image.csv``, ``table.json`` and
``curves.png``.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._imaging import method_slug
from .._io import atomic_write_text
from ..errors import CnnlensError
from ._core import TASKS, Context, ShardSpec, _target_list, load_all, merge_info, plan, shard_target
from .engines import execute

__all__ = ["evaluate_sharded", "plan_evaluate", "merge_evaluate"]


def _compute(spec: ShardSpec, ctx: Context) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    from ..data.stream import image_chunk
    from ..metrics.compare import evaluate_row

    c = spec.config
    x = ctx.clf.check_input(image_chunk(ctx.images, spec.start, spec.stop))
    targets = ctx.clf.targets(x, shard_target(c["target"], spec), batch_size=c["batch_size"])
    evaluate_params = dict(c["evaluate_params"])
    if c["labels"]:
        evaluate_params["labels"] = torch.as_tensor(ctx.labels)[spec.start:spec.stop]
    common = {"metrics": c["metrics"], "protocol": c["protocol"], "batch_size": c["batch_size"], "seed": c["seed"],
              "target": targets, "first_index": spec.start}
    method_params = ctx.extra.get("method_params", {}).get(spec.label, {}) if c["method"] else {}
    res, seconds = evaluate_row(ctx.clf, x, c["method"], method_params, targets=targets, progress=False,
                                common=common, evaluate_params=evaluate_params)
    arrays: dict[str, np.ndarray] = {}
    metas = []
    for j, m in enumerate(c["metrics"]):
        r = res[m]
        arrays[f"m{j}_per_image"] = r.per_image.numpy()
        if r.curves is not None:
            arrays[f"m{j}_curves"] = r.curves.numpy()
        metas.append({"name": r.name, "scalar": not isinstance(r.mean, torch.Tensor), "direction": r.direction,
                      "n_constant": int(r.n_constant), "params": r.params})
    return arrays, json.loads(json.dumps({"metrics": metas, "seconds": seconds}, default=str))


TASKS["evaluate"] = _compute


def plan_evaluate(out: str | os.PathLike[str], methods: list[str], names: list[str], shard_size: int | None, *,
                  metrics: list[str], protocol: str = "rise", seed: int = 0, batch_size: int = 64,
                  method_params: dict[str, dict[str, Any]] | None = None, evaluate_params: dict[str, Any] | None = None,
                  source: dict[str, Any] | None = None, target: Any = None, labels: bool = False,
                  random_baseline: bool = True) -> list[ShardSpec]:
    """The shards of an evaluate run: every method row (and the ``random`` row) × image range."""
    from .. import __version__
    from ..metrics.compare import RANDOM_LABEL

    method_params = method_params or {}
    evaluate_params = {k: v for k, v in (evaluate_params or {}).items() if k != "labels"}
    rows = [*methods, *([RANDOM_LABEL] if random_baseline else [])]
    if RANDOM_LABEL in methods:
        raise CnnlensError(f"{RANDOM_LABEL!r} is the baseline row's label; rename that method")

    def config(row: str) -> dict[str, Any]:
        method = None if row == RANDOM_LABEL else row
        return {"method": method, "params": method_params.get(row, {}) if method else {}, "metrics": metrics,
                "protocol": protocol, "seed": seed, "batch_size": batch_size, "evaluate_params": evaluate_params,
                "source": source or {}, "target": target, "labels": bool(labels), "version": __version__}

    return plan("evaluate", out, rows, len(names), shard_size, config, names)


def _merge_row(specs: list[ShardSpec], n: int) -> tuple[dict[str, Any], float, list[int]]:
    """``({metric: MetricResult}, seconds, targets)`` of one row from its shards."""
    from ..metrics._common import MetricResult

    parts = list(load_all(specs))
    metas = [d["meta"]["metrics"] for _, d in parts]
    sizes = [s.n for s, _ in parts]
    seconds = float(sum(d["meta"]["seconds"] for _, d in parts))
    out: dict[str, Any] = {}
    targets: list[int] = []
    for j, first in enumerate(metas[0]):
        per_image = torch.from_numpy(np.concatenate([d[f"m{j}_per_image"] for _, d in parts]))
        if first["scalar"]:
            mean: Any = float(per_image.mean()) if per_image.numel() else float("nan")
            std = float(per_image.std(unbiased=False)) if per_image.numel() else float("nan")
        else:
            mean, std = per_image.mean(dim=0), float("nan")
        curves = None
        if f"m{j}_curves" in parts[0][1]:
            full = torch.from_numpy(np.concatenate([d[f"m{j}_curves"] for _, d in parts]))
            curves = full.mean(dim=0, keepdim=True)  # the mean curve (what the outputs read), not N curves
            del full
        params = merge_info([m[j]["params"] for m in metas], sizes)
        params.update(n_images=n, first_index=0)
        if isinstance(params.get("explain_params"), dict):
            params["explain_params"]["first_index"] = 0
        targets = list(params.get("targets", targets))
        out[first["name"]] = MetricResult(first["name"], per_image, mean, std, params,
                                          sum(int(m[j]["n_constant"]) for m in metas), curves, first["direction"])
    return out, seconds, targets


def merge_evaluate(specs: list[ShardSpec], out: str | os.PathLike[str], n: int, *, methods: list[str],
                   metrics: list[str], protocol: str, seed: int, batch_size: int,
                   method_params: dict[str, dict[str, Any]] | None, evaluate_params: dict[str, Any],
                   source: dict[str, Any], random_baseline: bool = True) -> tuple[Any, list[Path]]:
    """Write ``results/<row>.json`` and the tables from the shard files; returns ``(table, files)``."""
    from .. import __version__
    from ..metrics.compare import RANDOM_LABEL, ComparisonTable
    from ..metrics.run import evaluate_config, write_tables

    out = Path(out)
    method_params = method_params or {}
    rows = [*methods, *([RANDOM_LABEL] if random_baseline else [])]
    config = evaluate_config(source, metrics, protocol, seed, n, evaluate_params)
    results: dict[str, Any] = {}
    seconds: dict[str, float] = {}
    targets: list[int] = []
    for row in rows:
        results[row], seconds[row], targets = _merge_row([s for s in specs if s.label == row], n)
        payload = {"config": {**config, "method_params": method_params.get(row, {})}, "seconds": seconds[row],
                   "results": {m: r.to_dict() for m, r in results[row].items()}}
        atomic_write_text(out / "results" / f"{method_slug(row)}.json", json.dumps(payload, indent=1, default=str))
    params = {"protocol": protocol, "n_images": n, "seed": seed, "batch_size": batch_size,
              "score": evaluate_params.get("score", "prob"), "targets": targets, "version": __version__,
              **{k: v for k, v in evaluate_params.items() if k != "labels"}}
    table = ComparisonTable(results, list(metrics), params, seconds)
    table.params["source"] = source
    return table, write_tables(table, out, rows, list(metrics))


def evaluate_sharded(clf: Any, images: Any, names: list[str], out: str | os.PathLike[str], *, shard_size: int | None,
                     methods: list[str], metrics: list[str], protocol: str = "rise", seed: int = 0,
                     batch_size: int = 64, method_params: dict[str, dict[str, Any]] | None = None,
                     evaluate_params: dict[str, Any] | None = None, source: dict[str, Any] | None = None,
                     labels: Any = None, target: Any = None, random_baseline: bool = True,
                     progress: bool = True, engine: str = "local", address: str | None = None,
                     workers: int | None = None) -> tuple[Any, list[Path]]:
    """Plan, run (resuming finished shards; ``engine``, ``address``, ``workers``: as in
    :func:`~cnnlens.shards.explain_sharded`) and merge an evaluate run over ``images``
    (a tensor, an ImageDataset or an ImageStream); ``labels``: ground truth for ``insertion_game``.
    Returns ``(ComparisonTable, written files)``."""
    evaluate_params = dict(evaluate_params or {})
    if "labels" in evaluate_params:
        labels = evaluate_params.pop("labels")
    method_params = method_params or {}
    for m in ("ri", "ace"):
        if m in methods and method_params.get(m, {}).get("reference") is None and shard_size is not None:
            raise CnnlensError(f"sharded evaluate of {m!r} needs {m}.reference (by default {m.upper()} uses the "
                               f"evaluated images, which would be each shard's own); give reference images or leave "
                               f"{m} out")
    if len(names) != len(images):
        raise CnnlensError(f"{len(names)} names for {len(images)} images")
    target = _target_list(target)
    specs = plan_evaluate(out, methods, names, shard_size, metrics=metrics, protocol=protocol, seed=seed,
                          batch_size=batch_size, method_params=method_params, evaluate_params=evaluate_params,
                          source=source, target=target, labels=labels is not None, random_baseline=random_baseline)
    ctx = Context(clf, images, names, Path(out), labels=labels, extra={"method_params": method_params})
    execute(specs, ctx, engine=engine, address=address, workers=workers, progress=progress)
    return merge_evaluate(specs, out, len(names), methods=methods, metrics=metrics, protocol=protocol, seed=seed,
                          batch_size=batch_size, method_params=method_params, evaluate_params=evaluate_params,
                          source=source or {}, random_baseline=random_baseline)
