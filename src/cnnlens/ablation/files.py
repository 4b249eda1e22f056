"""What ``cnnlens ablate`` writes per image and for the run (docs/algorithms.md §4, §8), shared
by the single-call and the sharded runs (:mod:`cnnlens.shards.ablate`).

Per image ``<index>_<name>_original.png``, ``_region.png`` (Pos-R: only the region kept; Neg-R:
the region blacked out), ``_heatmap.png`` and ``_rule.txt``; for the run ``summary.json``,
``mar.csv`` and ``ablation.npz`` (mask, cam, mar, targets, accepted).
"""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["write_image_files", "image_row", "write_run_files", "MIN_SIDE"]

MIN_SIDE = 112  # small images (MNIST, faces) are enlarged (nearest) in the PNGs for viewing


def write_image_files(out: Path, x: np.ndarray, masks: np.ndarray, cams: np.ndarray, rule: str,
                      rule_texts: list[str], names: list[str], start: int = 0) -> list[Path]:
    """The four files of each image ``start + j`` (``x`` ``(n, C, H, W)`` float, ``masks`` bool)."""
    from .._imaging import png_bytes, safe_name, to_rgb_uint8
    from .._io import atomic_write_bytes, atomic_write_text
    from ..explanation import jet

    written = []
    for j, name in enumerate(names):
        stem = f"{start + j:04d}_{safe_name(Path(str(name)).stem)}"
        keep = masks[j] if rule == "pos" else ~masks[j]
        region = x[j] * keep[None].astype(np.float32)
        original = to_rgb_uint8(x[j])
        heat = 0.5 * jet(cams[j]) + 0.5 * original.astype(np.float64) / 255.0
        for suffix, data in (("original.png", png_bytes(original, min_side=MIN_SIDE)),
                             ("region.png", png_bytes(to_rgb_uint8(region), min_side=MIN_SIDE)),
                             ("heatmap.png", png_bytes(np.round(heat * 255).astype(np.uint8), min_side=MIN_SIDE))):
            atomic_write_bytes(out / f"{stem}_{suffix}", data)
            written.append(out / f"{stem}_{suffix}")
        atomic_write_text(out / f"{stem}_rule.txt", rule_texts[j] + "\n")
        written.append(out / f"{stem}_rule.txt")
    return written


def image_row(index: int, name: str, class_name: str, mar: float, accepted: int, evaluations: int,
              rule: str) -> dict[str, Any]:
    """One row of ``mar.csv`` / ``summary.json``'s ``images``."""
    return {"index": index, "name": str(name), "class": class_name, "mar": float(mar), "accepted": int(accepted),
            "evaluations": int(evaluations), "rule": rule}


def write_run_files(out: Path, summary: dict[str, Any], rows: list[dict[str, Any]], npz: bytes | None) -> list[Path]:
    """``summary.json`` (``summary`` plus ``images``: the rows), ``mar.csv`` and ``ablation.npz``
    (already encoded, or ``None`` when the caller wrote it)."""
    from .._io import atomic_write_bytes, atomic_write_text

    atomic_write_text(out / "summary.json", json.dumps({**summary, "images": rows}, indent=2))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(out / "mar.csv", buf.getvalue())
    if npz is not None:
        atomic_write_bytes(out / "ablation.npz", npz)
    return [out / "summary.json", out / "mar.csv", out / "ablation.npz"]
