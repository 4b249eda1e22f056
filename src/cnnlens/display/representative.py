"""Notebook display of an :class:`~cnnlens.Interpretation`: per input its heatmap, the top covered
reference images (Eq. 6 ranking) with the same heatmap weights reused, and the Euclidean
neighbours in ψ-space, as in the demo report's RI section."""
from __future__ import annotations

from typing import Any

from ..errors import CnnlensError
from . import card, figure, more, picture, short_list, show_image
from .pictures import heat, rgb

__all__ = ["to_html", "plot", "summary"]

MAX_INPUTS = 4


def summary(it: Any) -> str:
    n = len(it)
    parts = [f"{n} input{'s' if n != 1 else ''}", f"predicted {short_list(it.targets.tolist())}",
             f"|P| {short_list([c['P'] for c in it.counts])}", f"|C| {short_list([c['C'] for c in it.counts])}"]
    if it.maps is not None:
        parts.append(f"heatmaps {it.maps.shape[1]}×{it.maps.shape[2]}")
    return f"Interpretation({', '.join(parts)})"


def _class(it: Any, c: int) -> str:
    try:
        return str(it.interpreter.clf.class_name(int(c)))
    except Exception:  # a class index the model does not name
        return str(int(c))


def _whole(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise CnnlensError(f"{name} must be a whole number >= {low}, got {value!r}")
    return value


def _input_picture(it: Any, i: int) -> tuple[Any, str] | None:
    inputs = getattr(it, "inputs", None)
    if it.maps is not None:
        return heat(it.maps[i:i + 1], None if inputs is None else inputs[i:i + 1])[0], "input + heatmap"
    if inputs is not None:
        return rgb(inputs[i:i + 1])[0], "input"
    return None


def _reused(it: Any, i: int, idx: Any) -> list[Any]:
    """Reference images ``idx`` with input ``i``'s heatmap weights reused (plain images when the
    layer gives no 2-D maps)."""
    if len(idx) == 0:
        return []
    ref = it.interpreter.reference_images[idx]
    try:
        return list(heat(it.heatmap(ref, index=i), ref))
    except CnnlensError:
        return list(rgb(ref))


def _neighbour_index(it: Any, i: int, k: int) -> Any:
    return it.neighbours[i][:k] if it.neighbours.shape[1] else it.neighbours[i][:0]


def to_html(it: Any, max_inputs: int = MAX_INPUTS, k: int = 6) -> str:
    """One block: per input (the first ``max_inputs``) its predicted class and counts, its heatmap
    (over the input), its top-``k`` covered reference images with the reused heatmap and its
    ``k`` Euclidean neighbours."""
    _whole("max_inputs", max_inputs, 1)
    _whole("k", k, 0)
    n = len(it)
    groups = []
    for i in range(min(n, max_inputs)):
        c = it.counts[i]
        first = _input_picture(it, i)
        top = it.covered[i][:k]
        near = _neighbour_index(it, i, k)
        figs = [] if first is None else [picture(first[0], f"#{i} {first[1]}")]
        labels = it.interpreter.predictions_
        figs += [picture(p, f"covered {r + 1} · ref {int(j)} · {_class(it, labels[j])}")
                 for r, (p, j) in enumerate(zip(_reused(it, i, top), top.tolist()))]
        groups.append({"label": f"input #{i}: predicted {_class(it, it.targets[i])} · |P| = {c['P']} boundaries · "
                                f"|C| = {c['C']} covered ({c['C_minus_D']} same class, {c['C_and_D']} other) · "
                                f"δ = {c['delta']}; then the top {len(top)} covered references (Eq. 6), same weights",
                       "figures": figs})
        if len(near):
            groups.append({"label": f"input #{i}: Euclidean nearest neighbours in ψ-space, same weights",
                           "figures": [picture(p, f"neighbour {r + 1} · ref {int(j)} · {_class(it, labels[j])}")
                                       for r, (p, j) in enumerate(zip(_reused(it, i, near), near.tolist()))]})
    ri = it.interpreter
    facts = [("inputs", str(n)), ("reference images", str(len(ri.reference_images))),
             ("boundaries |Q|", str(ri.n_boundaries)), ("layer", str(ri.layer_name))]
    return card("Interpretation", facts=facts, groups=groups,
                notes=[more(n, min(n, max_inputs), "inputs")])


def plot(it: Any, index: int = 0, k: int = 5) -> Any:
    """A figure for input ``index``: the input and its heatmap (top row), its top-``k`` covered
    reference images with the reused heatmap (middle row) and its ``k`` Euclidean neighbours
    (bottom row); titles give the reference index and predicted class."""
    _whole("k", k, 1)
    _whole("index", index, 0)
    if index >= len(it):
        raise CnnlensError(f"index {index} out of range for an interpretation of {len(it)} inputs")
    inputs = getattr(it, "inputs", None)
    first: list[tuple[Any, str]] = []
    if inputs is not None:
        first.append((rgb(inputs[index:index + 1])[0], f"input #{index}"))
    if it.maps is not None:
        first.append((heat(it.maps[index:index + 1], None if inputs is None else inputs[index:index + 1])[0],
                      f"heatmap: {_class(it, it.targets[index])}"))
    top = it.covered[index][:k]
    near = _neighbour_index(it, index, k)
    labels = it.interpreter.predictions_
    rows = [first,
            [(p, f"covered {r + 1}: {_class(it, labels[j])}") for r, (p, j) in enumerate(zip(_reused(it, index, top), top.tolist()))],
            [(p, f"neighbour {r + 1}: {_class(it, labels[j])}") for r, (p, j) in enumerate(zip(_reused(it, index, near), near.tolist()))]]
    rows = [r for r in rows if r]
    cols = max(len(r) for r in rows)
    c = it.counts[index]
    fig, axes = figure(len(rows), cols, cell=1.6, title=f"input #{index}: |P| = {c['P']}, |C| = {c['C']} "
                                                          f"({c['C_and_D']} of other classes); rows: input, covered (Eq. 6), neighbours")
    for r, row in enumerate(rows):
        for j, (pic, title) in enumerate(row):
            show_image(axes[r, j], pic, title)
    for r, row in enumerate(rows):  # remove the empty cells, keep only drawn axes
        for ax in axes[r, len(row):]:
            fig.delaxes(ax)
    return fig
