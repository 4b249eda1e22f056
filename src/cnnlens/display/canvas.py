"""The figure class of ``.plot()``: a matplotlib :class:`~matplotlib.figure.Figure` that also shows
itself in Jupyter when no pyplot backend registered figures there (``_repr_png_``); imported only
when a plot is made, so ``import cnnlens`` and the HTML views do not load matplotlib."""
from __future__ import annotations

from matplotlib.figure import Figure

from .._imaging import png_bytes

__all__ = ["NotebookFigure"]


class NotebookFigure(Figure):
    """A plain :class:`~matplotlib.figure.Figure` (made without pyplot: nothing is shown, no global
    state) plus ``_repr_png_``, so that a figure returned as a cell's value is drawn once in a
    notebook whether or not ``%matplotlib inline`` is active."""

    def _repr_png_(self) -> bytes:
        return png_bytes(self)
