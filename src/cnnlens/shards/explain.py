"""Sharded ``explain`` (docs/algorithms.md §11): method × image range, merged into what
:func:`cnnlens.attribution.run.run_explain` writes.

A shard explains its images with ``first_index`` = its first image's position and writes their
overlay PNGs (``<index>_<name>_<method>.png``, the run-wide index) and its shard file (maps,
targets, the method's recorded params and info). The merge writes ``maps.npz`` (streamed, one
shard at a time), ``params.json`` and ``grid.png`` (its first :data:`GRID_ROWS` images).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from .._imaging import file_stem, grid_png, method_slug, png_bytes, safe_name
from .._io import atomic_write_bytes, atomic_write_text
from ..errors import CnnlensError
from ..explanation import Explanation
from ._core import TASKS, Context, ShardSpec, _target_list, load_all, merge_info, plan, shard_target, write_npz_stream
from .engines import execute

__all__ = ["explain_sharded", "plan_explain", "merge_explain", "GRID_ROWS"]

#: rows of the merged grid.png (a data set's grid would be too large to draw whole)
GRID_ROWS = 100


def _pixels(x: Any) -> Any:
    return x.detach().float().clamp(0, 1).cpu()


def _overlay_name(index: int, name: str, method: str) -> str:
    return f"{index:04d}_{safe_name(file_stem(name))}_{method_slug(method)}.png"


def _compute(spec: ShardSpec, ctx: Context) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    from ..attribution import explain
    from ..data.stream import image_chunk

    c = spec.config
    x = image_chunk(ctx.images, spec.start, spec.stop)
    exp = explain(ctx.clf, x, c["method"], target=shard_target(c["target"], spec), seed=c["seed"], batch_size=c["batch_size"],
                  layer=c["layer"], first_index=spec.start, **ctx.extra.get("method_params", {}).get(spec.label, {}))
    for j, pic in enumerate(exp.overlay(_pixels(x))):
        i = spec.start + j
        atomic_write_bytes(Path(ctx.out) / _overlay_name(i, ctx.names[i], spec.label), png_bytes(pic))
    meta = {"params": exp.params, "info": exp.info,
            "targets": [ctx.clf.class_name(int(t)) for t in exp.targets.tolist()]}
    return {"maps": exp.maps.detach().cpu().numpy(), "targets": exp.targets.cpu().numpy()}, json.loads(
        json.dumps(meta, default=str))


TASKS["explain"] = _compute


def plan_explain(out: str | os.PathLike[str], methods: list[str], names: list[str], shard_size: int | None, *,
                 target: Any = None, seed: int = 0, batch_size: int = 64, layer: str | None = None,
                 method_params: dict[str, dict[str, Any]] | None = None, source: dict[str, Any] | None = None) -> list[ShardSpec]:
    """The shards of an explain run (config: method, its params, target, seed, batch size, layer, source)."""
    from .. import __version__
    from ..attribution import method_info

    method_params = method_params or {}

    def config(m: str) -> dict[str, Any]:
        return {"method": m, "params": method_params.get(m, {}), "target": target, "seed": seed,
                "batch_size": batch_size, "layer": layer if method_info(m).uses_layer else None,
                "source": source or {}, "version": __version__}

    return plan("explain", out, methods, len(names), shard_size, config, names)


def merge_explain(specs: list[ShardSpec], ctx: Context, methods: list[str], source: dict[str, Any] | None = None) -> list[Path]:
    """Write ``maps.npz``, ``params.json`` and ``grid.png`` from the shard files; returns the written paths
    (overlay PNGs included)."""
    import torch

    from ..data.stream import image_chunk

    out, names = Path(ctx.out), list(ctx.names)
    n = len(names)
    by_method = {m: [s for s in specs if s.label == m] for m in methods}
    record: dict[str, Any] = {"source": source or {}, "names": names, "methods": {}}
    first: dict[str, Any] = {}
    for m, ss in by_method.items():
        metas, sizes = [], []
        for s, data in load_all(ss):
            metas.append(data["meta"])
            sizes.append(s.n)
            if s.start == 0:
                first[m] = data
        params = merge_info([d["params"] for d in metas], sizes)
        params["first_index"] = 0
        record["methods"][m] = {"params": params, "info": merge_info([d["info"] for d in metas], sizes),
                                "targets": [t for d in metas for t in d["targets"]]}

    def parts(m: str, key: str):
        return lambda: (data[key] for _, data in load_all(by_method[m]))

    entries: list[tuple[str, tuple[int, ...], Any, Any]] = [("names", (n,), np.array(names).dtype, lambda: [np.array(names)])]
    for m in methods:
        d = first[m]
        entries.append((m, (n, *d["maps"].shape[1:]), d["maps"].dtype, parts(m, "maps")))
        entries.append((f"{m}__targets", (n,), d["targets"].dtype, parts(m, "targets")))
    write_npz_stream(out / "maps.npz", entries)
    atomic_write_text(out / "params.json", json.dumps(record, indent=2, default=str, sort_keys=True))
    rows = min(n, GRID_ROWS)
    pixels = _pixels(image_chunk(ctx.images, 0, rows))
    rgb = pixels.expand(-1, 3, -1, -1) if pixels.shape[1] == 1 else pixels
    base = np.round(rgb.permute(0, 2, 3, 1).numpy() * 255).astype(np.uint8)
    overlays = {}
    for m in methods:
        maps = np.concatenate([data["maps"] for _, data in load_all([s for s in by_method[m] if s.start < rows])])[:rows]
        targets = np.zeros(rows, dtype=np.int64)
        overlays[m] = Explanation(torch.from_numpy(maps), torch.from_numpy(targets), m).overlay(pixels)
    atomic_write_bytes(out / "grid.png", grid_png(base, overlays, rows))
    written = [out / _overlay_name(i, names[i], m) for m in methods for i in range(n)]
    return [*written, out / "grid.png", out / "maps.npz", out / "params.json"]


def explain_sharded(clf: Any, images: Any, names: list[str], methods: list[str], out: str | os.PathLike[str], *,
                    shard_size: int | None, target: Any = None, seed: int = 0, batch_size: int = 64,
                    layer: str | None = None, method_params: dict[str, dict[str, Any]] | None = None,
                    source: dict[str, Any] | None = None, progress: bool = True, engine: str = "local",
                    address: str | None = None, workers: int | None = None) -> list[Path]:
    """Plan, run (resuming finished shards; ``engine="local"`` in process, ``"ray"`` on Ray actors
    with ``address``/``workers``, :mod:`cnnlens.shards.ray_engine`) and merge an explain run; the
    outputs are those of :func:`~cnnlens.attribution.run.run_explain` (see the module docstring)."""
    from ..attribution import method_info

    infos = [method_info(m) for m in methods]
    if layer is not None and not any(i.uses_layer for i in infos):
        raise CnnlensError(f"--layer is only read by layer methods; none of {', '.join(methods)} reads a layer")
    if len(names) != len(images):
        raise CnnlensError(f"{len(names)} names for {len(images)} images")
    specs = plan_explain(out, methods, names, shard_size, target=_target_list(target), seed=seed, batch_size=batch_size,
                         layer=layer, method_params=method_params, source=source)
    ctx = Context(clf, images, names, Path(out), extra={"method_params": method_params or {}})
    execute(specs, ctx, engine=engine, address=address, workers=workers, progress=progress)
    return merge_explain(specs, ctx, methods, source)
