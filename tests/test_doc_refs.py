"""Every section ("§N" / "§N.M") cited in the source code exists in docs/algorithms.md.

The code cites the sections of docs/algorithms.md in its docstrings and comments (today written
"SPEC §4", "(SPEC §6.5–§6.8)", "§0"). A citation resolves when docs/algorithms.md has a heading
that starts with that section sign and number, e.g. ``## §4 Dynamic Ablation`` or
``### §6.5 FOLD-SE-M``. A range ``§6.2–§6.4`` (or ``§6.5–6.6``) cites every section in it.

A "§" that names a section of *another* document is not ours and is skipped: it is written with
that document's name right before it — ``paper §3.1``, ``RI §6.2–6.4``, ``NESY §4``,
``Grad-CAM++ §5``, ``Eq. in §3.4``. Any other "§" must resolve, so a new external citation needs
one of these qualifiers (or a new one added to ``EXTERNAL_QUALIFIERS``).
"""
from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "algorithms.md"
SRC = ROOT / "src" / "cnnlens"

NUMBER = r"\d+(?:\.\d+)*"
#: a citation: "§6.5", "§0–§1", "§6.5–6.6", "§6.2-§6.4"
CITATION = re.compile(rf"§({NUMBER})(?:\s*[–-]\s*§?({NUMBER}))?")
#: a markdown heading whose text starts with a section number
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
SECTION_HEADING = re.compile(rf"^§({NUMBER})(?=\s|$)")
#: words that, right before a "§", say that the section belongs to another document
EXTERNAL_QUALIFIERS = ("paper", "NESY", "RI", "DA", "OVERVIEW", "Grad-CAM++", "Eq. in")
EXTERNAL = re.compile(r"(?:^|[\s(\[;,])(?:" + "|".join(re.escape(q) for q in EXTERNAL_QUALIFIERS) + r")\s*$")


def _key(number: str) -> tuple[int, ...]:
    return tuple(int(p) for p in number.split("."))


def _expand(first: str, last: str | None) -> list[str]:
    """The sections a citation names: one, or every one of a range with a common prefix."""
    if last is None:
        return [first]
    a, b = _key(first), _key(last)
    if len(a) == len(b) and a[:-1] == b[:-1] and a[-1] <= b[-1]:
        return [".".join(map(str, a[:-1] + (i,))) for i in range(a[-1], b[-1] + 1)]
    return [first, last]


def doc_headings(text: str) -> list[tuple[int, str, str | None]]:
    """(line number, heading text, section number or None) of every heading outside code fences."""
    out, fenced = [], False
    for lineno, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        m = None if fenced else HEADING.match(line)
        if m:
            title = m.group(2)
            sec = SECTION_HEADING.match(title)
            out.append((lineno, title, sec.group(1) if sec else None))
    return out


def cited_sections(root: Path) -> list[tuple[str, int, str, str]]:
    """(file, line, section, citing text) for every section the Python files under ``root`` cite."""
    out = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else path.as_posix()
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for m in CITATION.finditer(line):
                if EXTERNAL.search(line[: m.start()]):
                    continue
                for sec in _expand(m.group(1), m.group(2)):
                    out.append((rel, lineno, sec, m.group(0)))
    return out


def unresolved(citations, sections) -> list[str]:
    return [f"{f}:{line}: {text!r} cites §{sec}, which docs/algorithms.md has no heading for"
            for f, line, sec, text in citations if sec not in sections]


def test_every_cited_section_has_a_heading():
    sections = {sec for _, _, sec in doc_headings(DOC.read_text(encoding="utf-8")) if sec}
    citations = cited_sections(SRC)
    assert citations, "found no § citations under src/cnnlens: the pattern is broken"
    missing = unresolved(citations, sections)
    assert not missing, f"{len(missing)} unresolved section citation(s):\n" + "\n".join(missing)


def test_headings_are_unique():
    headings = doc_headings(DOC.read_text(encoding="utf-8"))
    titles = Counter(title for _, title, _ in headings)
    numbers = Counter(sec for _, _, sec in headings if sec)
    dup = [f"line {n}: heading {t!r} appears {titles[t]} times" for n, t, _ in headings if titles[t] > 1]
    dup += [f"line {n}: section §{s} has {numbers[s]} headings" for n, _, s in headings if s and numbers[s] > 1]
    assert not dup, "duplicate headings in docs/algorithms.md:\n" + "\n".join(dup)


def test_section_numbers_of_the_specification_are_all_present():
    """§0–§11 and §6.1–§6.9: the numbering the code was written against, none renumbered away."""
    sections = {sec for _, _, sec in doc_headings(DOC.read_text(encoding="utf-8")) if sec}
    expected = {str(i) for i in range(12)} | {f"6.{i}" for i in range(1, 10)}
    assert expected <= sections, f"missing sections: {sorted(expected - sections, key=_key)}"


def test_external_citations_are_not_checked_and_bogus_ones_fail(tmp_path):
    """The checker itself: a bogus citation is reported with file:line; qualified ones are skipped."""
    pkg = tmp_path / "src" / "cnnlens"
    pkg.mkdir(parents=True)
    (pkg / "m.py").write_text('"""A (SPEC §4, §6.5–6.6); paper §3.2; RI §6.2–6.4; NESY §4 Q4."""\n'
                              "# see SPEC §42.7 and §6.1-§6.3\n", encoding="utf-8")
    found = cited_sections(pkg)
    assert [s for _, _, s, _ in found] == ["4", "6.5", "6.6", "42.7", "6.1", "6.2", "6.3"]
    missing = unresolved(found, {"4", "6.1", "6.2", "6.3", "6.5", "6.6"})
    assert len(missing) == 1 and ":2:" in missing[0] and "§42.7" in missing[0]
