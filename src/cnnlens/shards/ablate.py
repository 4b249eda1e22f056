"""Sharded Dynamic Ablation (docs/algorithms.md §4, §11): image ranges of one rule, merged into
what ``cnnlens ablate`` writes (:mod:`cnnlens.ablation.files`).

A shard runs :func:`~cnnlens.ablation.core.dynamic_ablation` on its images with ``first_index``
= its start (each image's proposals come from its own seed stream), writes the images' PNGs and
rule files, and stores mask, cam, MAR, targets, accepted steps, evaluations and rule texts. The
merge writes ``summary.json``, ``mar.csv`` and ``ablation.npz`` (streamed). ``evaluations``,
``rounds`` and ``seconds`` count work done, which depends on how many images share a batched
round, so they (and ``summary.json``'s ``seconds``) differ between layouts; the masks, cams and
MAR do not.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from ._core import TASKS, Context, ShardSpec, load_all, merge_info, plan, write_npz_stream
from .engines import execute

__all__ = ["ablate_sharded", "plan_ablate", "merge_ablate"]

_PARAMS = ("rule", "iterations", "k", "alpha_step", "fc", "superpixels", "seed", "batch_size", "sequential")


def _compute(spec: ShardSpec, ctx: Context) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    from ..ablation.core import dynamic_ablation
    from ..ablation.files import write_image_files
    from ..data.stream import image_chunk

    c = spec.config
    x = image_chunk(ctx.images, spec.start, spec.stop)
    res = dynamic_ablation(ctx.clf, x, first_index=spec.start, progress=False, **{k: c[k] for k in _PARAMS})
    masks, cams = res.mask.cpu().numpy(), res.cam.float().cpu().numpy()
    write_image_files(Path(ctx.out), x.detach().float().cpu().numpy(), masks, cams, res.rule, res.rule_text,
                      list(ctx.names[spec.start:spec.stop]), spec.start)
    arrays = {"mask": masks, "cam": cams, "mar": res.mar.cpu().numpy(), "targets": res.targets.cpu().numpy(),
              "accepted": res.accepted.cpu().numpy(), "evaluations": res.evaluations.cpu().numpy()}
    meta = {"rule_text": res.rule_text, "params": res.params, "seconds": res.seconds, "rounds": res.rounds,
            "classes": [ctx.clf.class_name(int(t)) for t in res.targets.tolist()]}
    return arrays, json.loads(json.dumps(meta, default=str))


TASKS["ablate"] = _compute


def plan_ablate(out: str | os.PathLike[str], names: list[str], shard_size: int | None, *,
                source: dict[str, Any] | None = None, **params: Any) -> list[ShardSpec]:
    """The shards of an ablate run (label ``da_pos``/``da_neg``; config: every DA parameter, source)."""
    from .. import __version__

    cfg = {**{k: params[k] for k in _PARAMS}, "source": source or {}, "version": __version__}
    return plan("ablate", out, [f"da_{params['rule']}"], len(names), shard_size, lambda _: cfg, names)


def merge_ablate(specs: list[ShardSpec], out: str | os.PathLike[str], names: list[str], *, model: Any = None,
                 verbose: bool = True) -> tuple[dict[str, Any], list[Path]]:
    """Write ``summary.json``, ``mar.csv`` and ``ablation.npz`` from the shard files; returns
    ``(summary, files)`` where ``files`` include the per-image files of the shards."""
    import torch

    from ..ablation.files import image_row, write_run_files

    out = Path(out)
    n = len(names)
    rows: list[dict[str, Any]] = []
    mar_parts, acc_parts, params, seconds, sizes = [], [], [], 0.0, []
    first: dict[str, Any] = {}
    for spec, data in load_all(specs):
        meta = data["meta"]
        first = first or data
        for j in range(spec.n):
            i = spec.start + j
            rows.append(image_row(i, names[i], meta["classes"][j], float(data["mar"][j]), int(data["accepted"][j]),
                                  int(data["evaluations"][j]), meta["rule_text"][j]))
            if verbose:
                print(f"{names[i]}: {meta['rule_text'][j]}")
        mar_parts.append(data["mar"])
        acc_parts.append(data["accepted"])
        params.append(meta["params"])
        sizes.append(spec.n)
        seconds += float(meta["seconds"])
    mar = torch.from_numpy(np.concatenate(mar_parts)).double()
    summary = {"rule": first["meta"]["params"]["rule"],
               "mar": {"mean": float(mar.mean()), "std": float(mar.std(unbiased=False)), "n": int(mar.numel())},
               "params": merge_info(params, sizes), "model": model, "seconds": seconds}

    def parts(key: str):
        return lambda: (d[key] for _, d in load_all(specs))

    write_npz_stream(out / "ablation.npz", [(k, (n, *first[k].shape[1:]), first[k].dtype, parts(k))
                                            for k in ("mask", "cam", "mar", "targets", "accepted")])
    files = write_run_files(out, summary, rows, None)
    per_image = [out / f"{i:04d}_{_stem(names[i])}_{s}" for i in range(n)
                 for s in ("original.png", "region.png", "heatmap.png", "rule.txt")]
    accepted = np.concatenate(acc_parts).astype(np.float64)
    return {**summary, "accepted_mean": float(torch.from_numpy(accepted).mean())}, [*per_image, *files]


def _stem(name: str) -> str:
    from .._imaging import safe_name

    return safe_name(Path(str(name)).stem)


def ablate_sharded(clf: Any, images: Any, names: list[str], out: str | os.PathLike[str], *, shard_size: int | None,
                   rule: str = "pos", iterations: int = 500, k: int = 4, alpha_step: float = 0.2, fc: float = 0.95,
                   superpixels: int = 500, seed: int = 0, batch_size: int = 64, sequential: bool = False,
                   model: Any = None, source: dict[str, Any] | None = None,
                   progress: bool = True, engine: str = "local", address: str | None = None,
                   workers: int | None = None) -> tuple[dict[str, Any], list[Path]]:
    """Plan, run (resuming finished shards; ``engine``, ``address``, ``workers``: as in
    :func:`~cnnlens.shards.explain_sharded`) and merge a Dynamic Ablation run over
    ``images`` (a tensor, an ImageDataset or an ImageStream). Returns ``(summary, written files)``."""
    from ..ablation.core import _check_params

    _check_params(rule, iterations, k, alpha_step, fc, batch_size)
    params = {"rule": rule, "iterations": int(iterations), "k": int(k), "alpha_step": float(alpha_step),
              "fc": float(fc), "superpixels": int(superpixels), "seed": int(seed), "batch_size": int(batch_size),
              "sequential": bool(sequential)}
    specs = plan_ablate(out, names, shard_size, source=source or {"model": model}, **params)
    ctx = Context(clf, images, names, Path(out))
    execute(specs, ctx, engine=engine, address=address, workers=workers, progress=progress)
    return merge_ablate(specs, out, names, model=model)
