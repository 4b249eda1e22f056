"""Notebook display of the result types (issue 27 item 5): ``_repr_html_`` and ``.plot()``.

:class:`~cnnlens.Explanation`, :class:`~cnnlens.metrics.compare.ComparisonTable`,
:class:`~cnnlens.AblationResult`, :class:`~cnnlens.Interpretation` and
:class:`~cnnlens.nesy.RuleSet` render themselves in Jupyter: their ``_repr_html_`` is
``to_html()`` with the defaults, one compact self-contained block (pictures embedded as PNG data
URIs like the report's, no script, no network). Every string that comes from the results —
method names, row labels, class names, rule text, parameters — is HTML-escaped by the template
engine (jinja2 autoescape, as in :mod:`cnnlens.report`); at most :data:`MAX_IMAGES` pictures are
shown, with a line saying how many more there are.

``.plot()`` returns a :class:`matplotlib.figure.Figure` (a :class:`~cnnlens.display.canvas.NotebookFigure`)
built without pyplot: nothing is shown and no global figure is left open; save it with
``fig.savefig(path)``; in a notebook the returned figure displays itself once, with or without
``%matplotlib inline``.

The modules here render; the result classes keep thin ``to_html``/``plot`` methods that call them.
"""
from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from .._imaging import data_uri

__all__ = ["MAX_IMAGES", "render", "card", "picture", "figure", "show_image", "more", "short_list",
           "class_label", "params_text", "drop_unused"]

MAX_IMAGES = 8
"""Pictures shown by default in a notebook block (the rest are counted, not drawn)."""
_MIN_SIDE = 96  # small pictures (28×28 digits) are enlarged (nearest) to at least this
_MAX_SIDE = 160  # large pictures are shrunk to at most this before embedding (bounded size)
_PARAMS_LIMIT = 4000  # characters of the parameters' JSON shown

_FONT = "font-family:system-ui,-apple-system,'Segoe UI',sans-serif;font-size:13px;line-height:1.4;color:#1d2330"
_MUTED = "color:#4a5263"
_CELL = "border:1px solid #dde1e8;padding:2px 8px;text-align:right"

@functools.cache
def _env() -> Any:
    import jinja2

    return jinja2.Environment(loader=jinja2.PackageLoader("cnnlens.display", "templates"),
                              autoescape=True, undefined=jinja2.StrictUndefined)


def render(template: str, **context: Any) -> str:
    """Render ``templates/<template>`` with autoescape on, as the report does (every ``{{ value }}``
    is escaped unless it is already :class:`markupsafe.Markup`)."""
    return _env().get_template(template).render(**context)


def card(title: str, *, name: str = "", facts: Sequence[tuple[str, Any]] = (), groups: Sequence[dict[str, Any]] = (),
         table: dict[str, Any] | None = None, code: Sequence[Any] = (), notes: Sequence[str] = (),
         details: str = "", details_label: str = "parameters", style: str = "") -> str:
    """The one block layout of every result type: a title (and a ``name`` in code style), a line of
    ``(label, value)`` facts, groups of captioned pictures (``{"label", "figures": [picture(…)]}``),
    an optional table (``{"columns", "rows": [[{"text", "best", "muted"}]], "caption"}``), code
    lines (:class:`markupsafe.Markup` for highlighted ones), notes, a folded details text and a
    scoped ``<style>`` element (a constant of ours, inserted unescaped)."""
    from markupsafe import Markup

    css = {"font": _FONT, "muted": _MUTED, "cell": _CELL}
    return render("card.html", s=css, title=title, name=name, facts=list(facts), groups=list(groups), table=table,
                  code=list(code), notes=[n for n in notes if n], details=details, details_label=details_label,
                  style=Markup(style)).strip()


def picture(pic: np.ndarray, caption: str, max_side: int = _MAX_SIDE) -> dict[str, Any]:
    """A shown picture: uint8 ``(H, W, 3)`` → ``{"src": data URI, "caption", "width"}``; small
    pictures enlarged (nearest) to at least 96 pixels, large ones shrunk to at most ``max_side``."""
    from PIL import Image

    img = Image.fromarray(np.ascontiguousarray(pic))
    if max(img.size) > max_side:
        f = max_side / max(img.size)
        img = img.resize((max(1, round(img.size[0] * f)), max(1, round(img.size[1] * f))), Image.BILINEAR)
    w, h = img.size
    scale = -(-_MIN_SIDE // min(w, h)) if min(w, h) < _MIN_SIDE else 1
    return {"src": data_uri(img, min_side=_MIN_SIDE), "caption": caption, "width": min(w * scale, max_side)}


def more(total: int, shown: int, what: str) -> str:
    """``"… 12 more images not shown"`` when ``shown < total``, else ``""``."""
    return f"… {total - shown} more {what} not shown" if shown < total else ""


def short_list(values: Sequence[Any], n: int = 8) -> str:
    """``[3, 1, 4, …]`` with at most ``n`` entries and ``… (+k)`` for the rest."""
    vals = list(values)
    head = ", ".join(str(v) for v in vals[:n])
    return f"[{head}{f', … (+{len(vals) - n})' if len(vals) > n else ''}]"


def class_label(target: int, class_names: Any = None) -> str:
    """``"3"`` or, with ``class_names`` (a sequence, or a callable such as ``clf.class_name``),
    ``"cat (3)"``."""
    if class_names is None:
        return str(target)
    try:
        name = class_names(target) if callable(class_names) else class_names[target]
    except (IndexError, KeyError, TypeError):
        return str(target)
    return str(target) if str(name) == str(target) else f"{name} ({target})"


def params_text(params: dict[str, Any], limit: int = _PARAMS_LIMIT) -> str:
    """The parameters as indented JSON (values that are not JSON shown as text), cut at ``limit``."""
    text = json.dumps(params, indent=1, sort_keys=True, default=lambda v: _short_value(v))
    return text if len(text) <= limit else text[:limit] + f"\n… ({len(text) - limit} more characters)"


def _short_value(v: Any) -> str:
    shape = getattr(v, "shape", None)
    if shape is not None:
        return f"<{type(v).__name__} {tuple(shape)}>"
    return str(v)[:200]


def figure(n_rows: int, n_cols: int, cell: float = 1.9, title: str | None = None, images: bool = True) -> tuple[Any, Any]:
    """A constrained-layout :class:`~cnnlens.display.canvas.NotebookFigure` (no pyplot) with an
    ``(n_rows, n_cols)`` array of axes; image axes have no ticks or frame."""
    from .canvas import NotebookFigure

    fig = NotebookFigure(figsize=(max(3.0, n_cols * cell), n_rows * cell * (1.15 if images else 1.0) + (0.35 if title else 0)),
                 layout="constrained")
    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    if images:
        for ax in axes.flat:
            ax.set_axis_off()
    if title:
        fig.suptitle(title, fontsize=10)
    return fig, axes


def show_image(ax: Any, pic: np.ndarray, title: str = "") -> None:
    """Draw a uint8 picture on ``ax`` (nearest interpolation: digits stay crisp) with a small title."""
    ax.imshow(pic, interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=8)


def drop_unused(fig: Any, axes: Any, used: int) -> None:
    """Remove the axes after the first ``used`` (row-major) so that ``fig.axes`` holds only drawn ones."""
    for ax in list(axes.flat)[used:]:
        fig.delaxes(ax)
