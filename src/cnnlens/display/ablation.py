"""Notebook display of an :class:`~cnnlens.AblationResult`: per image the region P (kept for
Pos-R, removed for Neg-R) beside the accumulated cam, with the if-then rule and the MAR."""
from __future__ import annotations

from typing import Any

from . import MAX_IMAGES, card, drop_unused, figure, more, params_text, picture, short_list, show_image
from .explanation import _count
from .pictures import heat, hstack, mask_picture, rgb

__all__ = ["to_html", "plot", "summary"]


def summary(res: Any) -> str:
    n, h, w = res.mask.shape
    s = res.mar_summary()
    return (f"AblationResult(rule={res.rule!r}, {n} image{'s' if n != 1 else ''} {h}×{w}, "
            f"MAR {s['mean']:.3f} ± {s['std']:.3f}, accepted={short_list(res.accepted.tolist())}, "
            f"iterations={short_list(sorted(set(res.iterations.tolist())), 3)})")


def _name(res: Any) -> str:
    return "Pos-R" if res.rule == "pos" else "Neg-R"


def _check(res: Any, images: Any) -> Any:
    if images is None:
        return None
    if getattr(images, "ndim", 0) != 4 or len(images) != len(res) or tuple(images.shape[-2:]) != tuple(res.mask.shape[-2:]):
        from ..errors import CnnlensError

        raise CnnlensError(f"images must have shape ({len(res)}, C, {res.mask.shape[1]}, {res.mask.shape[2]}) "
                           f"like the masks, got {tuple(getattr(images, 'shape', ())) or type(images).__name__}")
    return rgb(images)


def _panels(res: Any, base: Any, i: int) -> tuple[Any, Any]:
    region = mask_picture(res.mask[i], None if base is None else base[i], keep=res.rule == "pos")
    cam = heat(res.cam[i:i + 1], None if base is None else _tensor(base[i]))[0]
    return region, cam


def _tensor(pic: Any) -> Any:
    import torch

    return torch.from_numpy(pic).permute(2, 0, 1)[None].float() / 255.0


def to_html(res: Any, images: Any = None, max_images: int = MAX_IMAGES) -> str:
    """One block: rule, MAR, accepted steps; per image (the first ``max_images``) one picture — the
    region P beside the cam, over ``images`` when given — captioned with its rule and MAR."""
    n, h, w = res.mask.shape
    k = _count(max_images, n)
    base = _check(res, images)
    figs = []
    for i in range(k):
        figs.append(picture(hstack(list(_panels(res, base, i))),
                            f"#{i} · MAR {float(res.mar[i]):.1%} · {int(res.accepted[i])} accepted · {res.rule_text[i]}",
                            max_side=330))
    s = res.mar_summary()
    facts = [("images", f"{n} × {h}×{w}"), ("MAR", f"{s['mean']:.3f} ± {s['std']:.3f}"),
             ("accepted", short_list(res.accepted.tolist())), ("seconds", f"{res.seconds:.2f}")]
    region = "kept region P (the rest is black)" if res.rule == "pos" else "removed region P (blacked out)"
    return card("AblationResult", name=_name(res), facts=facts,
                groups=[{"label": f"left: {region}; right: the cam (Σ accepted masks)", "figures": figs}],
                notes=[more(n, k, "images")], details=params_text(res.params))


def plot(res: Any, images: Any = None, max_images: int = MAX_IMAGES) -> Any:
    """A figure with one row per image (the first ``max_images``): the image (when given), the
    region P and the cam; the region's title gives the MAR."""
    n = len(res)
    k = _count(max_images, n)
    base = _check(res, images)
    cols = 2 if base is None else 3
    rule = res.rule_text[0].split(" then ")[0] if res.rule_text else ""
    fig, axes = figure(k, cols, title=f"Dynamic Ablation {_name(res)}: {rule} …" + (f" (first {k} of {n})" if k < n else ""))
    for i in range(k):
        region, cam = _panels(res, base, i)
        row = axes[i]
        if base is not None:
            show_image(row[0], base[i], f"#{i}")
        what = "kept" if res.rule == "pos" else "removed"
        show_image(row[cols - 2], region, f"#{i} {what} P (MAR {float(res.mar[i]):.1%})")
        show_image(row[cols - 1], cam, "cam")
    drop_unused(fig, axes, k * cols)
    return fig
