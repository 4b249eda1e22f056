"""Notebook display (issue 27 item 5): ``_repr_html_``/``to_html`` and ``plot`` of Explanation,
ComparisonTable, AblationResult, Interpretation and RuleSet — one embedded PNG per shown picture,
markup in every user-controlled name escaped, the picture cap honoured, a short ``repr``, and a
matplotlib Figure with the expected axes (no pyplot)."""
from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
import torch
from matplotlib.figure import Figure
from torch import nn

import cnnlens
from cnnlens import CnnlensError, Explanation
from cnnlens.display.rules import highlight
from cnnlens.metrics import MetricResult
from cnnlens.metrics.compare import ComparisonTable
from cnnlens.nesy import Literal, Rule, RuleSet

EVIL = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
URI = "data:image/png;base64,"


def _safe(page: str) -> None:
    """No markup from a name got through: the only tags are ours, and no script or handler."""
    assert EVIL not in page and "<script" not in page and "onerror" not in page
    assert page.startswith('<div class="cnnlens-view"') and page.rstrip().endswith("</div>")


def _imgs(page: str) -> int:
    n = page.count("<img ")
    assert n == page.count(f'src="{URI}')  # every picture embedded, none linked
    return n


# --------------------------------------------------------------------------------------- Explanation
def test_explanation_html_caps_escapes_and_embeds() -> None:
    torch.manual_seed(0)
    e = Explanation(maps=torch.rand(10, 8, 8), targets=torch.arange(10), method=EVIL, params={"seed": 0, "note": EVIL})
    page = e._repr_html_()
    assert page == e.to_html()
    _safe(page)
    assert _imgs(page) == 8 and "… 2 more maps not shown" in page and ESCAPED in page
    names = [f"<b>{i}</b>" for i in range(10)]
    page = e.to_html(images=torch.rand(10, 1, 8, 8), max_images=3, class_names=names)
    _safe(page)
    assert _imgs(page) == 3 and "&lt;b&gt;2&lt;/b&gt; (2)" in page and "<b>2</b>" not in page
    assert "… 7 more maps" in page
    r = repr(e)
    assert r.startswith("Explanation(method=") and len(r) < 200 and "tensor(" not in r
    with pytest.raises(CnnlensError, match="max_images"):
        e.to_html(max_images=0)
    with pytest.raises(CnnlensError, match="images must have shape"):
        e.to_html(images=torch.rand(4, 1, 8, 8))


def test_explanation_plot_is_a_figure() -> None:
    e = Explanation(maps=torch.rand(5, 8, 8), targets=[1, 2, 3, 4, 5], method="m")
    fig = e.plot()
    assert isinstance(fig, Figure) and len(fig.axes) == 5
    assert len(e.plot(torch.rand(5, 3, 8, 8), max_images=2).axes) == 4  # image above overlay
    assert fig._repr_png_().startswith(b"\x89PNG")  # shows itself in Jupyter without pyplot


# --------------------------------------------------------------------------------------- ComparisonTable
def _result(name: str, values: list[float], direction: str) -> MetricResult:
    t = torch.tensor(values, dtype=torch.float64)
    return MetricResult(name, t, float(t.mean()), float(t.std(unbiased=False)), direction=direction)


def test_comparison_table_html_and_plot() -> None:
    rows = {EVIL: ([0.9, 0.7], [0.2, 0.4]), "gradcam": ([0.5, 0.6], [0.1, 0.2]), "random": ([0.99, 0.99], [0.0, 0.0])}
    table = ComparisonTable({r: {"iauc": _result("iauc", a, "↑"), "dauc": _result("dauc", b, "↓")} for r, (a, b) in rows.items()},
                            ["iauc", "dauc"], {"n_images": 2, "protocol": "rise", "score": "prob"},
                            {EVIL: 1.0, "gradcam": 0.5, "random": 0.0})
    page = table._repr_html_()
    _safe(page)
    assert ESCAPED in page and _imgs(page) == 0
    assert ">IAUC ↑</th>" in page and ">DAUC ↓</th>" in page
    # best method per column in bold (the random baseline is a reference, not a contender)
    bold = re.findall(r'font-weight:700">([^<]*)</td>', page)
    assert bold == ["0.800 ± 0.100", "0.150 ± 0.050"]
    assert "… " not in page and len(table.to_html(max_rows=1)) < len(page)
    assert "… 2 more rows not shown" in table.to_html(max_rows=1)
    fig = table.plot()
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    assert [ax.get_title() for ax in fig.axes] == ["IAUC ↑ (higher is better)", "DAUC ↓ (lower is better)"]
    assert repr(table).startswith("ComparisonTable(3 rows × 2 metrics") and len(repr(table)) < 200


# --------------------------------------------------------------------------------------- models for AblationResult / Interpretation
@pytest.fixture(scope="module")
def tiny() -> cnnlens.Classifier:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 8), nn.ReLU(), nn.Linear(8, 3)).eval()
    reference = torch.rand(200, 1, 8, 8)
    with torch.no_grad():  # an untrained net: centre its logits so that it predicts several classes
        net[-1].bias -= net(reference).mean(0)
    return cnnlens.Classifier(net, feature_layer="1", class_names=[EVIL, "<i>b</i>", "c"])


def test_ablation_result_html_and_plot(tiny) -> None:
    x = torch.rand(3, 1, 8, 8)
    res = cnnlens.dynamic_ablation(tiny, x, iterations=8, superpixels=0, seed=0)
    page = res._repr_html_()
    _safe(page)
    assert _imgs(page) == 3 and "Pos-R" in page
    assert all(html_text(rt) in page for rt in res.rule_text)  # the rules, escaped
    page = res.to_html(images=x, max_images=2)
    _safe(page)
    assert _imgs(page) == 2 and "… 1 more images not shown" in page
    assert len(res.plot().axes) == 6 and len(res.plot(x, max_images=1).axes) == 3
    r = repr(res)
    assert r.startswith("AblationResult(rule='pos', 3 images 8×8") and "tensor(" not in r
    with pytest.raises(CnnlensError, match="images must have shape"):
        res.plot(x[:2])


def html_text(s: str) -> str:
    import html

    return html.escape(s, quote=True).replace("&#x27;", "&#39;")


def test_interpretation_html_and_plot(tiny) -> None:
    ri = cnnlens.RepresentativeInterpreter(tiny, torch.rand(200, 1, 8, 8), n_boundaries=20, seed=0)
    x = torch.rand(2, 1, 8, 8)
    it = ri.interpret(x, k=3)
    page = it._repr_html_()
    _safe(page)
    per_input = [1 + min(3, len(it.covered[i])) + min(3, it.neighbours.shape[1]) for i in range(2)]
    assert _imgs(page) >= sum(per_input)  # the default k=6 shows up to 6 of each
    page = it.to_html(k=3)
    assert _imgs(page) == sum(per_input)
    one = it.to_html(max_inputs=1, k=3)
    assert _imgs(one) == per_input[0] and "… 1 more inputs not shown" in one
    fig = it.plot(index=1, k=3)
    assert isinstance(fig, Figure) and len(fig.axes) == 2 + min(3, len(it.covered[1])) + 3
    r = repr(it)
    assert r.startswith("Interpretation(2 inputs, predicted [") and len(r) < 200
    # without the inputs (interpret_features) the heatmaps alone
    bare = ri.interpret_features(ri.features_[:1], ri.predictions_[:1], k=2)
    assert _imgs(bare.to_html(k=2)) == min(2, len(bare.covered[0])) + 2


# --------------------------------------------------------------------------------------- RuleSet
def test_rule_set_html_highlights_and_escapes() -> None:
    rs = RuleSet.from_asp(f"target(X,'{EVIL}') :- f1(X), not ab1(X).\n"
                          "target(X,cat) :- age(X,N1), N1 > 3.5.\nab1(X) :- not f2(X), color(X,'red').\n% default: dog\n")
    page = rs._repr_html_()
    _safe(page)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<style>" in page
    for kind, token in (("neck", ":-"), ("negation", "not"), ("predicate", "target"), ("variable", "X"),
                        ("number", "3.5"), ("comment", "% default: dog")):
        assert f'<span class="asp-{kind}">{token}</span>' in page, kind
    assert repr(rs) == "RuleSet(3 rules (2 classifying), size 5, classes [<script>alert(1)</script>, cat], 4 predicates, default='dog')"
    many = RuleSet.from_asp("".join(f"target(X,c{i}) :- f{i}(X).\n" for i in range(70)))
    assert many.to_html().count('class="asp-neck"') == 60 and "… 10 more rules not shown" in many.to_html()
    assert many.to_html(max_rules=5).count('class="asp-neck"') == 5


def test_highlight_tokens() -> None:
    line = "target(X,'a \\'b') :- f1(X), not ab1(X), age(X,N1), N1 =< -2."
    spans = re.findall(r'<span class="asp-(\w+)">([^<]*)</span>', str(highlight(line)))
    assert spans == [("predicate", "target"), ("variable", "X"), ("string", "&#x27;a \\&#x27;b&#x27;"), ("neck", ":-"),
                     ("predicate", "f1"), ("variable", "X"), ("negation", "not"), ("predicate", "ab1"), ("variable", "X"),
                     ("predicate", "age"), ("variable", "X"), ("variable", "N1"), ("variable", "N1"), ("number", "-2")]
    assert "=&lt;" in str(highlight(line))


def test_rule_set_plot() -> None:
    rs = RuleSet.from_asp("target(X,a) :- f0(X).\ntarget(X,b) :- f1(X), not f0(X).\n% default: c\n")
    fig = rs.plot()
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    data = torch.tensor([[1, 0], [0, 1], [0, 0], [1, 1]]).numpy()
    fig = rs.plot(data)
    assert len(fig.axes) == 1
    bars = [p.get_width() for p in fig.axes[0].patches]
    assert bars == [2, 1, 1]  # rule a: rows 0 and 3; rule b: row 1; no rule: row 2
    bars = [p.get_width() for p in rs.plot(data, max_rules=1).axes[0].patches]
    assert bars == [2, 1, 1]  # rule a; the other rule (b) together; no rule


VECTORS = ['<img src=x onerror=alert(1)>', '" onmouseover="alert(1)', "' onfocus='alert(1)", "</pre><script>alert(1)</script>",
           "</code></div><iframe src=javascript:alert(1)>", "<style>*{display:none}</style>", "{{ 7 * 7 }}{% if 1 %}x{% endif %}",
           "&lt;already&gt;", "<!--", "]]><svg onload=alert(1)>"]


class _Markup(HTMLParser):
    """Tags, attribute names and text of a page as a browser's parser reads them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: set[str] = set()
        self.attrs: set[str] = set()
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.tags.add(tag)
        self.attrs |= {k for k, _ in attrs}

    def handle_data(self, data: str) -> None:
        self.text.append(data)


_OUR_TAGS = {"div", "code", "b", "figure", "img", "figcaption", "details", "summary", "pre", "table", "caption", "thead",
             "tbody", "tr", "th", "td", "span", "style"}


@pytest.mark.parametrize("vector", VECTORS)
def test_every_name_is_escaped(vector: str) -> None:
    """Method names, class names, row labels, parameters and rule classes holding markup stay text:
    the parsed page has only our tags and attributes, and the name reads back as written."""
    e = Explanation(maps=torch.rand(2, 4, 4), targets=[0, 1], method=vector, params={vector: vector})
    table = ComparisonTable({vector: {"iauc": _result("iauc", [0.5, 0.6], "↑")}}, ["iauc"], {"n_images": 2, "protocol": vector})
    rs = RuleSet([Rule("target", (Literal("f1"),), vector)])
    for page, shown in ((e.to_html(class_names=[vector, vector]), True), (table.to_html(), True), (rs.to_html(), False)):
        parsed = _Markup()
        parsed.feed(page)
        parsed.close()
        assert parsed.tags <= _OUR_TAGS and parsed.attrs <= {"class", "style", "src", "alt", "title"}, (parsed.tags, parsed.attrs)
        assert page.count("<style>") == (0 if shown else 1) and "<script" not in page.lower()
        if shown:
            assert vector in "".join(parsed.text)
