"""Notebook display of a :class:`~cnnlens.metrics.compare.ComparisonTable`: the methods × metrics
table with directions and the best value per column, and a dot chart per metric."""
from __future__ import annotations

import math
from typing import Any

from . import card, params_text, short_list

__all__ = ["to_html", "plot", "summary"]

MAX_ROWS = 40
_RANDOM = "random"  # the baseline row's label (compare.RANDOM_LABEL)


def _columns(table: Any) -> list[tuple[str, str]]:
    """``(metric, direction)`` of the scalar columns, the direction read from the results."""
    cols = []
    for m in table._columns():
        first = next((res[m] for res in table.results.values() if m in res), None)
        cols.append((m, getattr(first, "direction", "↑")))
    return cols


def summary(table: Any) -> str:
    rows = list(table.results)
    n = table.params.get("n_images")
    return (f"ComparisonTable({len(rows)} rows × {len(table.metrics)} metrics: rows {short_list(rows, 6)}, "
            f"metrics {short_list(table.metrics, 8)}" + (f", {n} images, protocol {table.params.get('protocol')}" if n else "")
            + ")")


def _best(values: list[float], direction: str, labels: list[str]) -> float | None:
    """The best finite mean among the methods (the random baseline is a reference, not a contender,
    unless it is the only row)."""
    finite = [v for v, lab in zip(values, labels) if math.isfinite(v) and (lab != _RANDOM or len(labels) == 1)]
    if not finite:
        return None
    return max(finite) if direction == "↑" else min(finite)


def to_html(table: Any, max_rows: int = MAX_ROWS) -> str:
    """One block: rows are methods, columns the scalar metrics with ↑/↓ (cells ``mean ± std``,
    the best mean per column in bold, the random baseline greyed), then explaining seconds."""
    cols = _columns(table)
    rows = list(table.results.items())
    shown = rows[:max_rows]
    labels = [label for label, _ in rows]
    best = {m: _best([float(res[m].mean) if m in res else math.nan for _, res in rows], d, labels) for m, d in cols}
    has_seconds = any(label in table.seconds for label, _ in shown)
    body = []
    for label, res in shown:
        muted = label == _RANDOM
        cells = [{"text": label, "best": False, "muted": muted}]
        for m, _ in cols:
            r = res.get(m)
            if r is None:
                cells.append({"text": "–", "best": False, "muted": True})
                continue
            mean = float(r.mean)
            cells.append({"text": f"{mean:.3f} ± {float(r.std):.3f}", "best": best[m] is not None and mean == best[m],
                          "muted": muted})
        if has_seconds:
            s = table.seconds.get(label)
            cells.append({"text": "" if s is None or not math.isfinite(s) else f"{s:.2f}", "best": False, "muted": True})
        body.append(cells)
    columns = ["method"] + [f"{m.upper()} {d}" for m, d in cols] + (["seconds"] if has_seconds else [])
    p = table.params
    caption = ("mean ± std over images; bold: the best method per column (↑ higher is better, ↓ lower is better); "
               "random: uniform random maps, the baseline")
    facts = [("rows", str(len(rows))), ("metrics", str(len(cols)))]
    if p.get("n_images") is not None:
        facts += [("images", str(p["n_images"])), ("protocol", str(p.get("protocol"))), ("score", str(p.get("score")))]
    notes = [f"… {len(rows) - len(shown)} more rows not shown" if len(shown) < len(rows) else ""]
    other = [m for m in table.metrics if m not in dict(cols)]
    if other:
        notes.append(f"not shown as columns (not one number per image): {', '.join(map(str, other))}")
    return card("ComparisonTable", facts=facts, table={"columns": columns, "rows": body, "caption": caption},
                notes=notes, details=params_text({k: v for k, v in p.items() if k != "targets"}))


def plot(table: Any) -> Any:
    """One panel per scalar metric: each row's mean (dot) ± std (bar), the best row's dot filled
    darker; the panel title names the metric and its direction."""
    from .canvas import NotebookFigure as Figure

    cols = _columns(table)
    labels = list(table.results)
    if not cols:
        from ..errors import CnnlensError

        raise CnnlensError("the table has no scalar metric to plot")
    fig = Figure(figsize=(max(3.2, 2.6 * len(cols)), 0.9 + 0.32 * len(labels)), layout="constrained")
    axes = fig.subplots(1, len(cols), sharey=True, squeeze=False)[0]
    ys = list(range(len(labels)))[::-1]
    for ax, (m, d) in zip(axes, cols):
        means = [float(table.results[r][m].mean) if m in table.results[r] else math.nan for r in labels]
        stds = [float(table.results[r][m].std) if m in table.results[r] else math.nan for r in labels]
        best = _best(means, d, labels)
        for y, label, mu, sd in zip(ys, labels, means, stds):
            colour = "0.6" if label == _RANDOM else ("C3" if mu == best else "C0")
            ax.errorbar(mu, y, xerr=sd if math.isfinite(sd) else None, fmt="o", color=colour, capsize=2, ms=5)
        ax.set_title(f"{m.upper()} {d} ({'higher' if d == '↑' else 'lower'} is better)", fontsize=9)
        ax.grid(axis="x", alpha=0.3)
        ax.tick_params(labelsize=8)
    axes[0].set_yticks(ys, labels)
    n = table.params.get("n_images")
    if n is not None:
        fig.suptitle(f"mean ± std over {n} images (protocol {table.params.get('protocol')})", fontsize=9)
    return fig
