"""Attribution maps into an output folder: what ``cnnlens explain`` writes (docs/algorithms.md §2, §8).

Writes into ``out``: one overlay PNG per image and method (``<index>_<name>_<method>.png``, ``+`` written as ``p``), a
grid PNG (rows: images; columns: the image, then one overlay per method), ``maps.npz`` with the
raw maps (``<method>`` → ``(N, H, W)``, ``<method>__targets``, ``names``) and ``params.json``
(model, inputs, every method's recorded parameters). All files are written atomically.

Example::

    cnnlens explain --model mobilenet_v2_imagenet --dataset photos --limit 2 \\
        --method gradcam,scorecam,lime --out runs/explain
"""
from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from ..errors import CnnlensError

__all__ = ["run_explain"]


def run_explain(clf: Any, images: Any, names: list[str], methods: list[str], out: Path, *, target: Any = None,
                seed: int = 0, batch_size: int = 64, layer: str | None = None,
                method_params: dict[str, dict[str, Any]] | None = None, source: dict[str, Any] | None = None,
                progress: bool = True) -> list[Path]:
    """Explain ``images`` with every method and write the outputs described in the module
    docstring into ``out``. ``method_params`` maps a method name to its own options, passed to
    :func:`cnnlens.explain` as they are (it checks them against the method). Returns the written paths."""
    import numpy as np

    from .._imaging import file_stem, grid_png, method_slug, png_bytes, safe_name
    from .._io import atomic_write_bytes, atomic_write_text
    from .._progress import bar
    from . import explain, method_info

    method_params = method_params or {}
    infos = [method_info(m) for m in methods]
    if layer is not None and not any(i.uses_layer for i in infos):
        raise CnnlensError(f"--layer is only read by layer methods; none of {', '.join(methods)} reads a layer")
    pixels = (images.detach().float().clamp(0, 1).cpu())
    rgb = pixels.expand(-1, 3, -1, -1) if pixels.shape[1] == 1 else pixels
    base = np.round(rgb.permute(0, 2, 3, 1).numpy() * 255).astype(np.uint8)
    written: list[Path] = []
    overlays: dict[str, Any] = {}
    arrays: dict[str, Any] = {"names": np.array(names)}
    record: dict[str, Any] = {"source": source or {}, "names": names, "methods": {}}
    for info in bar(infos, desc="explain", progress=progress, min_total=1, leave=True):
        exp = explain(clf, images, info.name, target=target, seed=seed, batch_size=batch_size,
                      layer=layer if info.uses_layer else None, **method_params.get(info.name, {}))
        pics = exp.overlay(pixels)
        overlays[info.name] = pics
        for i, pic in enumerate(pics):
            path = out / f"{i:04d}_{safe_name(file_stem(names[i]))}_{method_slug(info.name)}.png"
            atomic_write_bytes(path, png_bytes(pic))
            written.append(path)
        arrays[info.name] = exp.maps.detach().cpu().numpy()
        arrays[f"{info.name}__targets"] = exp.targets.cpu().numpy()
        record["methods"][info.name] = {
            "params": exp.params, "info": exp.info,
            "targets": [clf.class_name(int(t)) for t in exp.targets.tolist()],
        }
    grid = out / "grid.png"
    atomic_write_bytes(grid, grid_png(base, overlays, len(names)))
    bio = io.BytesIO()
    np.savez_compressed(bio, **arrays)
    atomic_write_bytes(out / "maps.npz", bio.getvalue())
    atomic_write_text(out / "params.json", json.dumps(record, indent=2, default=str, sort_keys=True))
    return [*written, grid, out / "maps.npz", out / "params.json"]
