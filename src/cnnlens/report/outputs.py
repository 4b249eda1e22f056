"""A report page from a command's outputs (``explain/evaluate/ablate/represent --report``;
docs/algorithms.md §8). It shows the files this run of the command wrote — the list the command
recorded, never a listing of the folder (which may hold an earlier run's files); it computes
nothing."""
from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..errors import CnnlensError

__all__ = ["report_from_outputs"]


def report_from_outputs(out: str | Path, *, files: Iterable[str | os.PathLike[str]], title: str, command: str,
                        model: str, data: str, params: dict[str, Any], seed: int | None) -> Path:
    """Build ``out/report.html`` from ``files``, the files a command wrote into ``out`` in this
    run: its pictures (grids and galleries first), its markdown tables, its small JSON records
    (parameters, image names and their class folders) and its rule/text files; other kinds
    (``.npz``, ``.csv``) are not shown. A file outside ``out`` is an error; one no longer there
    is left out. The page shows the files; it computes nothing."""
    from . import MANIFEST, ReportBuilder, write_report

    out = Path(out)
    root = out.resolve()
    rels: list[str] = []
    for f in files:
        path = Path(f)
        try:
            rel = path.resolve().relative_to(root).as_posix()
        except ValueError:
            raise CnnlensError(f"--report: {path} lies outside the output folder {out}") from None
        if rel not in rels and (out / rel).is_file():
            rels.append(rel)
    rels.sort()
    b = ReportBuilder(out, title=title)
    sec = b.section(command, title, model=model, data=data, params=params, seed=seed)
    pictures = [r for r in rels if r.endswith(".png")]
    firsts = [r for r in pictures if Path(r).stem in ("grid", "curves", "summary") or Path(r).stem.endswith("_grid")]
    for r in firsts:
        sec.image_file(r, caption=r)
    rest = [r for r in pictures if r not in firsts]
    if rest:
        sec.gallery([(r, Path(r).stem) for r in rest[:400]],
                    caption=f"{len(rest)} pictures" + (" (first 400 shown)" if len(rest) > 400 else ""))
    for r in (r for r in rels if r.endswith(".md")):
        sec.pre((out / r).read_text(encoding="utf-8", errors="replace"), caption=r)
    for r in (r for r in rels if r.endswith(".json")):
        if Path(r).name != MANIFEST and (out / r).stat().st_size <= 50_000:
            sec.pre((out / r).read_text(encoding="utf-8", errors="replace"), caption=r)
    for r in (r for r in rels if r.endswith((".txt", ".lp"))):
        sec.pre((out / r).read_text(encoding="utf-8", errors="replace")[:20000], caption=r)
    b.save()
    return write_report(out)
