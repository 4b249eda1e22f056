"""A self-contained HTML report that only renders saved results (docs/algorithms.md §8; issue 15).

A *results folder* holds ``manifest.json`` plus the files it names (PNG pictures, CSV/JSON
tables). The manifest lists sections; each section states its model, data, parameters and seed
and holds a list of blocks:

- ``{"type": "text", "text": "..."}`` — a paragraph;
- ``{"type": "image", "path": "file.png", "caption": "..."}`` — embedded as a data URI;
- ``{"type": "table", "columns": [...], "rows": [[...], ...], "caption": "..."}``;
- ``{"type": "pre", "text": "...", "caption": "..."}`` — preformatted (rules, justifications);
- ``{"type": "gallery", "items": [{"path": ..., "caption": ...}, ...], "caption": "..."}``.

:func:`render` turns a results folder into one HTML string (images embedded, no scripts, no
network); :func:`write_report` writes ``report.html`` atomically. Every string from the results
(class names, file names, rule text) is HTML-escaped by the template engine (jinja2 autoescape).
:class:`ReportBuilder` is how producers (``cnnlens demo``, ``explain/evaluate/ablate/represent
--report``) write a results folder.

Example::

    >>> import tempfile, pathlib
    >>> from cnnlens.report import ReportBuilder, render
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> b = ReportBuilder(d, title="Example")
    >>> s = b.section("notes", "Notes", model="none", data="none", params={}, seed=0)
    >>> s.text("<b>escaped</b>")
    >>> _ = b.save()
    >>> "&lt;b&gt;escaped&lt;/b&gt;" in render(d)
    True
"""
from __future__ import annotations

import base64
import datetime as _dt
import json
import os
from pathlib import Path
from typing import Any

from .._imaging import png_bytes
from .._io import atomic_write_bytes, atomic_write_text
from ..errors import CnnlensError

__all__ = ["ReportBuilder", "Section", "render", "write_report", "load_manifest", "MANIFEST"]

MANIFEST = "manifest.json"
_BLOCK_TYPES = ("text", "image", "table", "pre", "gallery")


class Section:
    """One section of a results folder; add blocks with the methods below."""

    def __init__(self, builder: ReportBuilder, data: dict[str, Any]) -> None:
        self._builder = builder
        self.data = data

    def text(self, text: str) -> None:
        self.data["blocks"].append({"type": "text", "text": str(text)})

    def pre(self, text: str, caption: str = "") -> None:
        self.data["blocks"].append({"type": "pre", "text": str(text), "caption": caption})

    def table(self, columns: list[str], rows: list[list[Any]], caption: str = "") -> None:
        self.data["blocks"].append({"type": "table", "columns": [str(c) for c in columns],
                                    "rows": [[_cell(v) for v in r] for r in rows], "caption": caption})

    def image(self, name: str, picture: Any, caption: str = "") -> str:
        """Save ``picture`` (PNG bytes, a ``PIL.Image``, a uint8 ``(H, W, 3)`` array or a
        matplotlib figure) as ``name`` in the results folder and add it; returns the path."""
        path = self._builder.save_picture(name, picture)
        self.data["blocks"].append({"type": "image", "path": path, "caption": caption})
        return path

    def image_file(self, path: str, caption: str = "") -> None:
        """Add a picture already in the results folder (relative path)."""
        self.data["blocks"].append({"type": "image", "path": str(path), "caption": caption})

    def gallery(self, items: list[tuple[str, str]], caption: str = "") -> None:
        """Add pictures already saved (relative paths) with captions, shown side by side."""
        self.data["blocks"].append({"type": "gallery", "caption": caption,
                                    "items": [{"path": str(p), "caption": str(c)} for p, c in items]})


def _cell(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, (int, str)) or value is None:
        return value
    return str(value)


class ReportBuilder:
    """Writes a results folder: pictures as they are made, the manifest on :meth:`save`."""

    def __init__(self, folder: str | os.PathLike[str], title: str = "cnnlens report") -> None:
        self.folder = Path(folder)
        if self.folder.exists() and not self.folder.is_dir():
            raise CnnlensError(f"{self.folder} exists and is not a folder")
        self.folder.mkdir(parents=True, exist_ok=True)
        from .. import __version__

        self.manifest: dict[str, Any] = {
            "title": title,
            "created": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "version": __version__,
            "sections": [],
        }

    def section(self, id: str, title: str, *, model: str, data: str, params: dict[str, Any], seed: int | None) -> Section:
        entry = {"id": id, "title": title, "model": model, "data": data,
                 "params": json.loads(json.dumps(params, default=str)), "seed": seed, "blocks": []}
        self.manifest["sections"].append(entry)
        return Section(self, entry)

    def save_picture(self, name: str, picture: Any) -> str:
        data = png_bytes(picture)
        rel = Path("figures") / name
        atomic_write_bytes(self.folder / rel, data)
        return rel.as_posix()

    def save(self) -> Path:
        """Write ``manifest.json`` (atomically) and return its path."""
        path = self.folder / MANIFEST
        atomic_write_text(path, json.dumps(self.manifest, indent=1, sort_keys=False))
        return path


def load_manifest(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and validate ``manifest.json`` of a results folder (clear errors, never a traceback)."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise CnnlensError(f"{folder} is not a results folder: {MANIFEST} not found "
                           "(run `cnnlens demo --out DIR` or a command with --report first)")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CnnlensError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("sections"), list):
        raise CnnlensError(f"{path} has no list of sections")
    for i, sec in enumerate(manifest["sections"]):
        if not isinstance(sec, dict) or not isinstance(sec.get("blocks"), list) or "title" not in sec:
            raise CnnlensError(f"{path}: section {i} needs a title and a list of blocks")
        for block in sec["blocks"]:
            if not isinstance(block, dict) or block.get("type") not in _BLOCK_TYPES:
                raise CnnlensError(f"{path}: section {sec.get('id', i)!r} has a block of unknown type "
                                   f"{block.get('type') if isinstance(block, dict) else block!r}")
    return manifest


def _data_uri(folder: Path, rel: str) -> str:
    path = (folder / rel).resolve()
    if folder.resolve() not in path.parents:
        raise CnnlensError(f"picture {rel!r} lies outside the results folder")
    if not path.is_file():
        raise CnnlensError(f"picture {rel!r} named in the manifest is missing from {folder}")
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def render(folder: str | os.PathLike[str]) -> str:
    """The report page for a results folder, as one self-contained HTML string."""
    import jinja2

    folder = Path(folder)
    manifest = load_manifest(folder)
    sections = []
    for i, sec in enumerate(manifest["sections"]):
        blocks = []
        for block in sec["blocks"]:
            b = dict(block)
            if b["type"] == "image":
                b["src"] = _data_uri(folder, b["path"])
            elif b["type"] == "gallery":
                b["items"] = [dict(it, src=_data_uri(folder, it["path"])) for it in b["items"]]
            blocks.append(b)
        sections.append({**sec, "anchor": f"s{i}-{''.join(c for c in str(sec.get('id', i)) if c.isalnum())}",
                         "blocks": blocks,
                         "params_json": json.dumps(sec.get("params", {}), indent=1, sort_keys=True)})
    env = jinja2.Environment(loader=jinja2.PackageLoader("cnnlens.report", "templates"),
                             autoescape=True, undefined=jinja2.StrictUndefined)
    return env.get_template("report.html").render(manifest=manifest, sections=sections)


def write_report(folder: str | os.PathLike[str], out: str | os.PathLike[str] | None = None) -> Path:
    """Render the results folder and write the page (default ``folder/report.html``) atomically."""
    html = render(folder)
    path = Path(out) if out is not None else Path(folder) / "report.html"
    atomic_write_text(path, html)
    return path
