"""Notebook display of an :class:`~cnnlens.Explanation`: its heatmaps (over the images when given)."""
from __future__ import annotations

from typing import Any

from . import MAX_IMAGES, card, class_label, drop_unused, figure, more, params_text, picture, short_list, show_image

__all__ = ["to_html", "plot", "summary"]


def summary(e: Any) -> str:
    """The short ``repr``: method, count and size of the maps, the first targets, parameter names."""
    n, h, w = e.maps.shape
    parts = [f"method={e.method!r}", f"{n} map{'s' if n != 1 else ''} {h}×{w}", f"targets={short_list(e.targets.tolist())}"]
    if e.layer_maps is not None:
        parts.append(f"layer_maps {e.layer_maps.shape[1]}×{e.layer_maps.shape[2]}")
    if e.attributions is not None:
        parts.append(f"attributions {tuple(e.attributions.shape[1:])}")
    if e.params:
        keys = sorted(map(str, e.params))
        parts.append("params: " + ", ".join(keys[:8]) + (", …" if len(keys) > 8 else ""))
    return f"Explanation({', '.join(parts)})"


def _count(max_images: int, n: int) -> int:
    if isinstance(max_images, bool) or not isinstance(max_images, int) or max_images < 1:
        from ..errors import CnnlensError

        raise CnnlensError(f"max_images must be a whole number >= 1, got {max_images!r}")
    return min(n, max_images)


def _pictures(e: Any, images: Any, k: int, alpha: float = 0.5) -> Any:
    """uint8 overlays of the first ``k`` maps (``alpha=0``: the images themselves)."""
    if images is not None and (getattr(images, "ndim", 0) != 4 or len(images) != len(e)):
        from ..errors import CnnlensError

        raise CnnlensError(f"images must have shape ({len(e)}, C, H, W) like the maps, got "
                           f"{tuple(getattr(images, 'shape', ())) or type(images).__name__}")
    sub = e if k == len(e) else type(e)(maps=e.maps[:k], targets=e.targets[:k], method=e.method)
    return sub.overlay(None if images is None else images[:k], alpha=alpha)


def to_html(e: Any, images: Any = None, max_images: int = MAX_IMAGES, class_names: Any = None) -> str:
    """One block: method, map count and size, targets; the first ``max_images`` heatmaps (over
    ``images`` ``(N, C, H, W)`` when given) captioned with their index and target; parameters folded."""
    n, h, w = e.maps.shape
    k = _count(max_images, n)
    pics = _pictures(e, images, k)
    figs = [picture(pics[i], f"#{i} · {class_label(int(e.targets[i]), class_names)}") for i in range(k)]
    facts = [("maps", f"{n} × {h}×{w}"), ("targets", short_list(e.targets.tolist()))]
    if e.layer_maps is not None:
        facts.append(("layer maps", f"{e.layer_maps.shape[1]}×{e.layer_maps.shape[2]}"))
    label = "heatmaps over the images" if images is not None else "heatmaps (normalised per map; pass images= to overlay)"
    return card("Explanation", name=e.method or "(no method)", facts=facts,
                groups=[{"label": label, "figures": figs}], notes=[more(n, k, "maps")],
                details=params_text({**e.params, **({"info": e.info} if e.info else {})}))


def plot(e: Any, images: Any = None, max_images: int = MAX_IMAGES, class_names: Any = None) -> Any:
    """A figure with one column per image (the first ``max_images``): the image above its overlay
    when ``images`` are given, else the heatmap alone; titles name the method and the target."""
    n = len(e)
    k = _count(max_images, n)
    pics = _pictures(e, images, k)
    rows = 1 if images is None else 2
    fig, axes = figure(rows, k, title=f"{e.method or 'explanation'}" + (f" (first {k} of {n})" if k < n else ""))
    base = None if images is None else _pictures(e, images, k, alpha=0.0)
    for i in range(k):
        title = f"#{i} · target {class_label(int(e.targets[i]), class_names)}"
        if base is not None:
            show_image(axes[0, i], base[i], f"#{i}")
        show_image(axes[rows - 1, i], pics[i], title)
    drop_unused(fig, axes, rows * k)
    return fig
