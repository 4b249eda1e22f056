"""A self-contained HTML report that only renders saved results (docs/algorithms.md §8; issue 15).

A *results folder* holds ``manifest.json`` plus the files it names (PNG pictures, CSV/JSON
tables). The manifest lists sections; each section states its model, data, parameters and seed
and holds a list of blocks:

- ``{"type": "text", "text": "..."}`` — a paragraph;
- ``{"type": "image", "path": "file.png", "caption": "..."}`` — embedded as a data URI;
- ``{"type": "table", "columns": [...], "rows": [[...], ...], "caption": "..."}``;
- ``{"type": "pre", "text": "...", "caption": "..."}`` — preformatted (rules, justifications);
- ``{"type": "gallery", "items": [{"path": ..., "caption": ...}, ...], "caption": "..."}``;
- ``{"type": "grid", "columns": [...], "rows": [{"caption": ..., "items": ["file.png", ...]}, ...],
  "caption": "..."}`` — pictures in aligned columns with each column's name above it (a header
  row) and each row's name at its left (heatmap grids: images × methods).

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

import datetime as _dt
import json
import os
from pathlib import Path
from typing import Any

from .._imaging import data_uri, png_bytes
from .._io import atomic_write_bytes, atomic_write_text
from ..errors import CnnlensError

__all__ = ["ReportBuilder", "Section", "render", "write_report", "load_manifest", "MANIFEST"]

MANIFEST = "manifest.json"
_BLOCK_TYPES = ("text", "image", "table", "pre", "gallery", "grid")


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

    def grid(self, columns: list[str], rows: list[tuple[str, list[str]]], caption: str = "") -> None:
        """Add pictures already saved (relative paths) as a grid: ``rows`` are ``(row name, one path
        per column)``; the page names each column above it and each row at its left."""
        for name, paths in rows:
            if len(paths) != len(columns):
                raise CnnlensError(f"grid row {name!r} has {len(paths)} pictures for {len(columns)} columns")
        self.data["blocks"].append({"type": "grid", "caption": caption, "columns": [str(c) for c in columns],
                                    "rows": [{"caption": str(n), "items": [str(p) for p in paths]} for n, paths in rows]})


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
    """Read and check ``manifest.json`` of a results folder; return it normalised, so that the
    template renders every manifest this accepts (clear errors, never a traceback).

    One rule for every field: *content* (a ``text``/``pre`` block's ``text``, an ``image``'s or a
    gallery item's ``path``, a ``table``'s ``columns``, a gallery's ``items``, a section's
    ``title`` and ``blocks``; a grid's ``columns``, ``rows`` and each row's ``items``, one path per
    column) must be present and of its type, else a one-line
    :class:`CnnlensError` names the field; *descriptions* (the page ``title``, ``version``,
    ``created``; a section's ``id``, ``model``, ``data``, ``seed``, ``params``; every ``caption``;
    a table's ``rows``; a grid row's ``caption``) may be missing or ``null`` and get a default; a number where a string
    is expected is shown as text; any other type is refused, naming the field.
    """
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise CnnlensError(f"{folder} is not a results folder: {MANIFEST} not found "
                           "(run `cnnlens demo --out DIR` or a command with --report first)")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CnnlensError(f"{path} is not valid JSON: {exc}") from None
    except RecursionError:
        raise CnnlensError(f"{path} is not valid JSON: nested too deeply") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("sections"), list):
        raise CnnlensError(f"{path} has no list of sections")
    sections = []
    for i, sec in enumerate(manifest["sections"]):
        if not isinstance(sec, dict) or not isinstance(sec.get("blocks"), list) or sec.get("title") is None:
            raise CnnlensError(f"{path}: section {i} needs a title and a list of blocks")
        where = f"section {i}"
        sid = _describe(path, where, sec, "id", str(i))
        where = f"section {sid!r}"
        seed = sec.get("seed")
        if seed is not None and not isinstance(seed, (str, int, float)):
            raise CnnlensError(f"{path}: {where}: 'seed' must be a number, got {type(seed).__name__}")
        blocks = [_block(path, f"{where}, block {j}", b) for j, b in enumerate(sec["blocks"])]
        sections.append({"id": sid, "title": _describe(path, where, sec, "title", ""),
                         "model": _describe(path, where, sec, "model", "not recorded"),
                         "data": _describe(path, where, sec, "data", "not recorded"),
                         "seed": "not recorded" if seed is None else seed,
                         "params": sec.get("params") if sec.get("params") is not None else {},
                         "blocks": blocks})
    return {**manifest, "title": _describe(path, "the manifest", manifest, "title", "cnnlens report"),
            "version": _describe(path, "the manifest", manifest, "version", ""),
            "created": _describe(path, "the manifest", manifest, "created", ""),
            "sections": sections}


def _describe(path: Path, where: str, obj: dict[str, Any], key: str, default: str) -> str:
    """A descriptive string field: missing/null → ``default``; a number → its text; else refused."""
    value = obj.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise CnnlensError(f"{path}: {where}: {key!r} must be a string, got {type(value).__name__}")
    return str(value)


def _content(path: Path, where: str, obj: dict[str, Any], key: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str):
        raise CnnlensError(f"{path}: {where} needs a string {key!r}"
                           + ("" if value is None else f", got {type(value).__name__}"))
    return value


def _cell_text(value: Any) -> Any:
    return value if isinstance(value, (str, int, float)) or value is None else json.dumps(value)


def _block(path: Path, where: str, block: Any) -> dict[str, Any]:
    if not isinstance(block, dict):
        raise CnnlensError(f"{path}: {where} is not a block object, got {type(block).__name__}")
    kind = block.get("type")
    if not isinstance(kind, str) or kind not in _BLOCK_TYPES:
        raise CnnlensError(f"{path}: {where} has a block of unknown type {kind!r} "
                           f"(one of {', '.join(_BLOCK_TYPES)})")
    where = f"{where} ({kind!r})"
    out: dict[str, Any] = {"type": kind, "caption": _describe(path, where, block, "caption", "")}
    if kind in ("text", "pre"):
        out["text"] = _content(path, where, block, "text")
    elif kind == "image":
        out["path"] = _content(path, where, block, "path")
    elif kind == "table":
        columns, rows = block.get("columns"), block.get("rows")
        if not isinstance(columns, list):
            raise CnnlensError(f"{path}: {where} needs a list 'columns'")
        rows = [] if rows is None else rows
        if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
            raise CnnlensError(f"{path}: {where}: 'rows' must be a list of lists")
        out["columns"] = [_cell_text(c) for c in columns]
        out["rows"] = [[_cell_text(v) for v in r] for r in rows]
    elif kind == "grid":
        columns, rows = block.get("columns"), block.get("rows")
        if not isinstance(columns, list) or not isinstance(rows, list):
            raise CnnlensError(f"{path}: {where} needs a list 'columns' and a list 'rows'")
        bad = next((k for k, c in enumerate(columns)
                    if c is not None and (isinstance(c, bool) or not isinstance(c, (str, int, float)))), None)
        if bad is not None:
            raise CnnlensError(f"{path}: {where}: column {bad} must be a string, got {type(columns[bad]).__name__}")
        out["columns"] = ["" if c is None else str(c) for c in columns]
        out["rows"] = []
        for k, row in enumerate(rows):
            row_where = f"{where}: grid row {k}"
            items = row.get("items") if isinstance(row, dict) else None
            if not isinstance(items, list) or not all(isinstance(p, str) for p in items):
                raise CnnlensError(f"{path}: {row_where} needs a list 'items' of picture paths")
            if len(items) != len(columns):
                raise CnnlensError(f"{path}: {row_where} has {len(items)} pictures for {len(columns)} columns")
            out["rows"].append({"caption": _describe(path, row_where, row, "caption", ""), "items": items})
    else:  # gallery
        items = block.get("items")
        if not isinstance(items, list):
            raise CnnlensError(f"{path}: {where} needs a list 'items'")
        out["items"] = []
        for k, item in enumerate(items):
            if not isinstance(item, dict):
                raise CnnlensError(f"{path}: {where}: gallery item {k} needs a string 'path', "
                                   f"got {type(item).__name__}")
            it_where = f"{where}: gallery item {k}"
            out["items"].append({"path": _content(path, it_where, item, "path"),
                                 "caption": _describe(path, it_where, item, "caption", "")})
    return out


def _data_uri(folder: Path, rel: str) -> str:
    try:
        path = (folder / rel).resolve()
        inside = folder.resolve() in path.parents
        found = inside and path.is_file()
    except (OSError, ValueError):
        raise CnnlensError(f"picture {rel!r} named in the manifest is not a valid path") from None
    if not inside:
        raise CnnlensError(f"picture {rel!r} lies outside the results folder")
    if not found:
        raise CnnlensError(f"picture {rel!r} named in the manifest is missing from {folder}")
    return data_uri(path.read_bytes())


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
            elif b["type"] == "grid":
                b["rows"] = [dict(r, srcs=[_data_uri(folder, p) for p in r["items"]]) for r in b["rows"]]
            blocks.append(b)
        sections.append({**sec, "anchor": f"s{i}-{''.join(c for c in sec['id'] if c.isalnum())}",
                         "blocks": blocks,
                         "params_json": json.dumps(sec["params"], indent=1, sort_keys=True, default=str)})
    env = jinja2.Environment(loader=jinja2.PackageLoader("cnnlens.report", "templates"),
                             autoescape=True, undefined=jinja2.StrictUndefined)
    return env.get_template("report.html").render(manifest=manifest, sections=sections)


def write_report(folder: str | os.PathLike[str], out: str | os.PathLike[str] | None = None) -> Path:
    """Render the results folder and write the page (default ``folder/report.html``) atomically."""
    html = render(folder)
    path = Path(out) if out is not None else Path(folder) / "report.html"
    atomic_write_text(path, html)
    return path
