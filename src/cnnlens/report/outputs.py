"""A report page from a command's output folder (``explain/evaluate/ablate/represent --report``;
docs/algorithms.md §8). It shows the files the command wrote; it computes nothing."""
from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["report_from_outputs"]


def report_from_outputs(out: str | Path, *, title: str, command: str, model: str, data: str,
                        params: dict[str, Any], seed: int | None) -> Path:
    """Build ``out/report.html`` from what a command wrote into ``out``: its pictures (grids and
    galleries first), its markdown tables, its small JSON records (parameters, image names and
    their class folders) and its rule/text files. The page shows the files; it
    computes nothing."""
    from . import ReportBuilder, write_report

    out = Path(out)
    b = ReportBuilder(out, title=title)
    sec = b.section(command, title, model=model, data=data, params=params, seed=seed)
    pictures = sorted(p for p in out.rglob("*.png") if "figures" not in p.parts)
    firsts = [p for p in pictures if p.stem in ("grid", "curves", "summary") or p.stem.endswith("_grid")]
    for p in firsts:
        sec.image_file(p.relative_to(out).as_posix(), caption=p.relative_to(out).as_posix())
    rest = [p for p in pictures if p not in firsts]
    if rest:
        sec.gallery([(p.relative_to(out).as_posix(), p.stem) for p in rest[:400]],
                    caption=f"{len(rest)} pictures" + (" (first 400 shown)" if len(rest) > 400 else ""))
    for p in sorted(out.rglob("*.md")):
        sec.pre(p.read_text(encoding="utf-8"), caption=p.relative_to(out).as_posix())
    for p in sorted(out.rglob("*.json")):
        if p.name != "manifest.json" and p.stat().st_size <= 50_000:
            sec.pre(p.read_text(encoding="utf-8", errors="replace"), caption=p.relative_to(out).as_posix())
    for p in sorted(list(out.rglob("*.txt")) + list(out.rglob("*.lp"))):
        sec.pre(p.read_text(encoding="utf-8", errors="replace")[:20000], caption=p.relative_to(out).as_posix())
    b.save()
    return write_report(out)
