"""The HTML report (issue 15): rendering from saved results only, escaping, clear errors, and a
real headless Chromium that loads the page (no console errors, every image decodes)."""
from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from cnnlens import CnnlensError
from cnnlens.report import ReportBuilder, load_manifest, render, write_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")

_CHECK_SCRIPT = """<script>
window.__errors = [];
window.addEventListener('error', function (e) {
  window.__errors.push(String(e.message || (e.target && (e.target.alt || e.target.tagName)) || e.type));
}, true);
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var bad = imgs.filter(function (i) { return !(i.complete && i.naturalWidth > 0); })
                .map(function (i) { return i.alt; });
  var secs = Array.prototype.map.call(document.querySelectorAll('section'),
                                      function (s) { return s.getAttribute('data-section'); });
  // grids: each column name sits above its column (centres aligned, header above the pictures)
  var grids = Array.prototype.map.call(document.querySelectorAll('table.grid'), function (t) {
    var heads = Array.prototype.slice.call(t.querySelectorAll('thead th')).slice(1);
    var first = Array.prototype.slice.call(t.querySelectorAll('tbody tr:first-child img'));
    var placed = heads.length === first.length && heads.every(function (h, j) {
      var a = h.getBoundingClientRect(), b = first[j].getBoundingClientRect();
      return Math.abs((a.left + a.right) / 2 - (b.left + b.right) / 2) < 2 && a.bottom <= b.top + 1;
    });
    return {columns: heads.map(function (h) { return h.textContent; }), placed: placed};
  });
  var out = document.createElement('pre');
  out.id = '__check';
  out.textContent = JSON.stringify({images: imgs.length, bad: bad, sections: secs, grids: grids,
                                    errors: window.__errors, scripts: document.scripts.length});
  document.body.appendChild(out);
});
</script>"""


def browser_check(page: Path, screenshot: Path | None = None) -> dict:
    """Load ``page`` in headless Chromium; return what the page reported after its load event
    plus the browser's console lines. Fails (not skips) under CI=true without Chromium."""
    if CHROMIUM is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is missing on CI (scripts/setup.sh --test installs it)")
        pytest.skip("chromium not installed")
    probe = page.with_name(page.stem + ".probe.html")
    text = page.read_text(encoding="utf-8")
    probe.write_text(text.replace("<head>", "<head>" + _CHECK_SCRIPT, 1), encoding="utf-8")
    flags = [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             "--no-first-run", "--virtual-time-budget=15000", "--enable-logging=stderr", "--v=0"]
    proc = subprocess.run(flags + ["--dump-dom", probe.as_uri()], capture_output=True, text=True, timeout=180)
    match = re.search(r'<pre id="__check">(.*?)</pre>', proc.stdout, re.S)
    assert match, f"the page did not finish loading in Chromium:\n{proc.stderr[-2000:]}"
    result = json.loads(html.unescape(match.group(1)))
    result["console"] = [ln for ln in proc.stderr.splitlines() if "CONSOLE" in ln]
    if screenshot is not None:
        subprocess.run(flags + [f"--screenshot={screenshot}", "--window-size=1280,2400", page.as_uri()],
                       capture_output=True, text=True, timeout=180)
    probe.unlink()
    return result


def _example(folder: Path, class_name: str = "cat") -> ReportBuilder:
    b = ReportBuilder(folder, title="Example report")
    s = b.section("heatmaps", "Heatmaps", model="toy", data=f"folder with class {class_name}",
                  params={"method": "gradcam"}, seed=0)
    pic = (np.random.default_rng(0).random((16, 24, 3)) * 255).astype(np.uint8)
    s.image("grid.png", pic, caption=f"class {class_name}")
    s.table(["method", "IAUC ↑"], [["gradcam", 0.51234], [class_name, None]], caption="metrics")
    t = b.section("rules", "Rules", model="toy", data="none", params={}, seed=1)
    t.pre(f"target(X,'{class_name}') :- f1(X), not ab1(X).", caption="program")
    p2 = b.save_picture("a.png", pic)
    s.grid(["image", class_name], [("row one", [p2, p2]), (class_name, [p2, p2])], caption="images × methods")
    t.gallery([(p2, class_name), (p2, "second")], caption="gallery")
    t.text(f"justification for {class_name}")
    b.save()
    return b


def test_render_embeds_everything_and_escapes(tmp_path: Path) -> None:
    evil = "<script>alert(1)</script>"
    _example(tmp_path, evil)
    page = render(tmp_path)
    assert evil not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script" not in page  # the page itself runs no script
    assert page.count("data:image/png;base64,") == 7
    # the grid names its columns in a header row above them, not in a caption under the grid
    assert '<th scope="col">image</th><th scope="col">&lt;script&gt;alert(1)&lt;/script&gt;</th>' in page
    assert '<th scope="row">row one</th>' in page
    assert "http://" not in page and "https://" not in page  # nothing from the network
    assert 'href="#s0-heatmaps"' in page and 'href="#s1-rules"' in page  # table of contents


def test_report_rebuild_is_identical(tmp_path: Path) -> None:
    _example(tmp_path)
    first = write_report(tmp_path).read_text(encoding="utf-8")
    second = render(tmp_path)
    assert first == second


def test_bad_results_folders(tmp_path: Path) -> None:
    with pytest.raises(CnnlensError, match="not a results folder"):
        render(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(CnnlensError, match="not valid JSON"):
        load_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({"sections": [{"title": "x", "blocks": [{"type": "video"}]}]}))
    with pytest.raises(CnnlensError, match="unknown type"):
        load_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps(
        {"title": "t", "created": "", "version": "", "sections": [
            {"id": "a", "title": "x", "model": "", "data": "", "seed": 0, "params": {},
             "blocks": [{"type": "image", "path": "../../etc/passwd", "caption": ""}]}]}))
    with pytest.raises(CnnlensError, match="outside the results folder"):
        render(tmp_path)


def test_grid_rows_need_one_picture_per_column(tmp_path: Path) -> None:
    s = ReportBuilder(tmp_path).section("g", "G", model="m", data="d", params={}, seed=0)
    with pytest.raises(CnnlensError, match="grid row 'x' has 1 pictures for 2 columns"):
        s.grid(["a", "b"], [("x", ["figures/p.png"])])


def test_page_in_headless_chromium(tmp_path: Path) -> None:
    evil = "<script>alert(1)</script>"
    _example(tmp_path, evil)
    page = write_report(tmp_path)
    shot = tmp_path / "screenshot.png"
    res = browser_check(page, shot)
    assert res["images"] == 7 and res["bad"] == []
    assert res["grids"] == [{"columns": ["image", evil], "placed": True}]
    assert res["sections"] == ["heatmaps", "rules"]
    assert res["errors"] == [] and not [c for c in res["console"] if "rror" in c]
    assert res["scripts"] == 1  # only the probe's script: the class name stayed text
    assert shot.is_file() and shot.stat().st_size > 1000


# ------------------------------------------------------------------ the manifest check and the template agree
def _sec(*blocks, **fields) -> dict:
    return {"id": "s", "title": "T", "blocks": list(blocks), **fields}


def _m(*sections, **fields) -> dict:
    return {"title": "t", "sections": list(sections), **fields}


_IMG = {"type": "image", "path": "figures/p.png", "caption": "c"}
# name -> (manifest, None when it renders, else a regex the one-line CnnlensError must match)
MANIFEST_CASES = {
    # descriptive fields: missing → rendered with a default
    "minimal": (_m(_sec()), None),
    "no-title": ({"sections": [_sec()]}, None),
    "no-version-no-created": (_m(_sec(), version=None, created=None), None),
    "section-no-id-model-data-seed-params": ({"sections": [{"title": "T", "blocks": []}]}, None),
    "section-title-a-number": (_m({"title": 7, "blocks": []}), None),
    "text-no-caption": (_m(_sec({"type": "pre", "text": "x"})), None),
    "image-no-caption": (_m(_sec({"type": "image", "path": "figures/p.png"})), None),
    "table-no-caption-no-rows": (_m(_sec({"type": "table", "columns": ["a"]})), None),
    "gallery-no-captions": (_m(_sec({"type": "gallery", "items": [{"path": "figures/p.png"}]})), None),
    "params-not-an-object": (_m(_sec(params=[1, 2])), None),
    "seed-null": (_m(_sec(seed=None, model=None, data=None)), None),
    "cells-of-any-json": (_m(_sec({"type": "table", "columns": ["a", 1], "rows": [[{"k": 1}, [2], None, 1.5]]})), None),
    # content fields: missing or of the wrong type → refused, naming the field
    "not-an-object": ([1, 2], "has no list of sections"),
    "sections-missing": ({"title": "t"}, "has no list of sections"),
    "section-not-an-object": (_m("s"), "section 0 needs a title and a list of blocks"),
    "section-no-title": (_m({"blocks": []}), "section 0 needs a title"),
    "block-not-an-object": (_m(_sec("text")), "block 0 is not a block object"),
    "text-missing": (_m(_sec({"type": "text"})), r"block 0 \('text'\) needs a string 'text'"),
    "text-not-a-string": (_m(_sec({"type": "pre", "text": ["a"]})), r"needs a string 'text'"),
    "caption-not-a-string": (_m(_sec({"type": "pre", "text": "x", "caption": {"a": 1}})), r"'caption' must be a string"),
    "image-path-missing": (_m(_sec({"type": "image"})), r"needs a string 'path'"),
    "image-path-a-number": (_m(_sec({"type": "image", "path": 3})), r"needs a string 'path'"),
    "image-path-a-list": (_m(_sec({"type": "image", "path": ["a"]})), r"needs a string 'path'"),
    "image-path-nul": (_m(_sec({"type": "image", "path": "a\u0000b"})), r"picture .* is not a valid path"),
    "image-path-the-folder": (_m(_sec({"type": "image", "path": "."})), r"lies outside|is missing"),
    "image-path-missing-file": (_m(_sec({"type": "image", "path": "figures/none.png"})), r"is missing"),
    "table-columns-missing": (_m(_sec({"type": "table", "rows": [[1]]})), r"needs a list 'columns'"),
    "table-columns-a-string": (_m(_sec({"type": "table", "columns": "ab"})), r"needs a list 'columns'"),
    "table-rows-a-string": (_m(_sec({"type": "table", "columns": ["a"], "rows": "ab"})), r"'rows' must be a list of lists"),
    "table-row-a-number": (_m(_sec({"type": "table", "columns": ["a"], "rows": [1]})), r"'rows' must be a list of lists"),
    "gallery-items-missing": (_m(_sec({"type": "gallery"})), r"needs a list 'items'"),
    "gallery-item-a-string": (_m(_sec({"type": "gallery", "items": ["figures/p.png"]})), r"gallery item 0 needs a string 'path'"),
    "gallery-item-path-a-number": (_m(_sec({"type": "gallery", "items": [{"path": 1}]})), r"gallery item 0 needs a string 'path'"),
    "gallery-item-caption-a-list": (_m(_sec({"type": "gallery", "items": [{"path": "figures/p.png", "caption": []}]})),
                                    r"'caption' must be a string"),
    "grid-no-captions": (_m(_sec({"type": "grid", "columns": ["a", None, 2], "rows": [{"items": ["figures/p.png"] * 3}]})), None),
    "grid-columns-missing": (_m(_sec({"type": "grid", "rows": []})), r"needs a list 'columns' and a list 'rows'"),
    "grid-rows-a-dict": (_m(_sec({"type": "grid", "columns": ["a"], "rows": {}})), r"needs a list 'columns' and a list 'rows'"),
    "grid-column-an-object": (_m(_sec({"type": "grid", "columns": [{"a": 1}], "rows": []})), r"column 0 must be a string"),
    "grid-row-a-string": (_m(_sec({"type": "grid", "columns": ["a"], "rows": ["figures/p.png"]})),
                          r"grid row 0 needs a list 'items' of picture paths"),
    "grid-row-item-a-number": (_m(_sec({"type": "grid", "columns": ["a"], "rows": [{"items": [1]}]})),
                               r"grid row 0 needs a list 'items'"),
    "grid-row-too-short": (_m(_sec({"type": "grid", "columns": ["a", "b"], "rows": [{"items": ["figures/p.png"]}]})),
                           r"grid row 0 has 1 pictures for 2 columns"),
    "grid-picture-missing": (_m(_sec({"type": "grid", "columns": ["a"], "rows": [{"items": ["figures/none.png"]}]})),
                             r"is missing"),
    "blocks-not-a-list": (_m({"title": "T", "blocks": {}}), "section 0 needs a title and a list of blocks"),
    "title-an-object": ({"title": {"a": 1}, "sections": []}, r"'title' must be a string"),
}


@pytest.mark.parametrize("case", sorted(MANIFEST_CASES))
def test_manifest_check_and_template_agree(case, tmp_path: Path, capsys) -> None:
    from cnnlens.cli import main

    manifest, message = MANIFEST_CASES[case]
    (tmp_path / "figures").mkdir()
    ReportBuilder(tmp_path).save_picture("p.png", np.zeros((4, 4, 3), np.uint8))
    (tmp_path / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    if message is None:
        page = render(tmp_path)
        assert page.startswith("<!DOCTYPE html>") and "Undefined" not in page
        assert main(["report", str(tmp_path)]) == 0
    else:
        with pytest.raises(CnnlensError, match=message):
            render(tmp_path)
        assert main(["report", str(tmp_path)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("cnnlens report: error:"), err


def test_manifest_deeply_nested_json_is_refused(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text('{"title": "t", "sections": []' + ', "x": ' + "[" * 100000 + "]" * 100000 + "}")
    with pytest.raises(CnnlensError, match="not valid JSON"):
        load_manifest(tmp_path)
