"""The rule program (SPEC §6.6–6.7): printing, parsing, interpreter, justification, NESY Fig. 3."""
from __future__ import annotations

import json

import numpy as np
import pytest

from cnnlens.errors import CnnlensError
from cnnlens.nesy import Literal, Rule, RuleParseError, RuleSet

# NESY Fig. 3 (middle), as printed in the paper (line numbers dropped)
FIG3_LABELLED = """\
target(X,'bedroom') :- bed1(X) .
target(X,'bathroom') :- not wall3_cabinet2(X) ,
   not ab1(X) .
target(X,'kitchen') :- wall1_cabinet1(X) .
target(X,'kitchen') :- wall2(X) .
ab1(X) :- not sink2(X) , not sink1_toilet1(X) .
"""
# NESY Fig. 3 (top): NeSyFOLD's raw style names filters by number (the paper's `145(x)` typo,
# a lower-case constant, is written `145(X)` here)
FIG3_RAW = """\
target(X,'bedroom') :- 295(X) .
target(X,'bathroom') :- not 398(X) , not ab1(X) .
target(X,'kitchen') :- 38(X) .
target(X,'kitchen') :- 209(X) .
ab1(X) :- not 145(X) , not 134(X) .
"""
LABELS = {"f295": "bed1", "f398": "wall3_cabinet2", "f38": "wall1_cabinet1", "f209": "wall2",
          "f145": "sink2", "f134": "sink1_toilet1"}


def test_fig3_size_and_counts():
    rs = RuleSet.from_asp(FIG3_LABELLED)
    assert rs.size == 7  # SPEC §6.7: matches NESY Table 1 TS3/P3.1
    assert rs.n_rules == 5 and len(rs.target_rules) == 4
    assert rs.predicates == ("bed1", "wall3_cabinet2", "wall1_cabinet1", "wall2", "sink2", "sink1_toilet1")
    assert rs.derived == ("ab1",)
    assert rs.classes == ("bedroom", "bathroom", "kitchen")
    raw = RuleSet.from_asp(FIG3_RAW)
    assert raw.size == 7 and raw.predicates == ("f295", "f398", "f38", "f209", "f145", "f134")
    assert raw.rename(LABELS) == rs


def test_fig3_justification_for_the_example_facts():
    """Facts {145(img). 134(img).} (= sink2, sink1_toilet1): bedroom's rule fails, bathroom's fires.
    The paper's text lists, under 'ab1', the two sink literals; we state why each makes ab1's only
    rule fail (the figure's wording there, and 'wall3_cabinet2(img)' in its MODEL, contradict
    its own program)."""
    rs = RuleSet.from_asp(FIG3_LABELLED)
    j = rs.justify({"sink2", "sink1_toilet1"})
    assert j.prediction == "bathroom" and j.rule == 2 and not j.default_used
    assert j.text == (
        "'target' holds (for img, and bathroom), because (rule 2)\n"
        "  there is no evidence that 'wall3_cabinet2' holds (for img), and\n"
        "  there is no evidence that 'ab1' holds (for img), because\n"
        "    rule 5 fails, because\n"
        "      'sink2' holds (for img), and\n"
        "      'sink1_toilet1' holds (for img).\n"
        "MODEL:\n"
        "{ target(img,bathroom), not wall3_cabinet2(img), not ab1(img), sink2(img), sink1_toilet1(img) }\n"
    )
    d = json.loads(j.to_json())
    assert d["prediction"] == "bathroom" and d["rule"] == 2
    assert [c["literal"] for c in d["tree"]["children"]] == ["not wall3_cabinet2", "not ab1"]
    failed = d["tree"]["children"][1]["because"]["failed_rules"]
    assert failed[0]["rule"] == 5 and [c["holds"] for c in failed[0]["children"]] == [False, False]
    # the raw program with the raw facts gives the same structure, filter names instead
    raw = RuleSet.from_asp(FIG3_RAW).justify({"f145", "f134"})
    assert raw.prediction == "bathroom" and "there is no evidence that 'f398' holds" in raw.text


def test_fig3_other_facts():
    rs = RuleSet.from_asp(FIG3_LABELLED)
    # bed1 holds → bedroom (first rule wins even if bathroom also fires)
    j = rs.justify({"bed1", "sink2"})
    assert j.prediction == "bedroom" and j.rule == 1
    assert rs.fired({"bed1", "sink2"}).tolist() == [[True, True, False, False]]
    # nothing holds → ab1 holds → no rule fires, no default
    j = rs.justify(set())
    assert j.prediction is None and j.rule is None and not j.default_used
    assert "'ab1' holds (for img), because (rule 5)" in j.text
    assert "there is no default class" in j.text
    # with a default
    rs2 = RuleSet(rs.rules, default="kitchen")
    j = rs2.justify(set())
    assert j.prediction == "kitchen" and j.default_used
    assert "so the default class kitchen is predicted." in j.text


def test_print_nesy_style_and_dialects():
    rs = RuleSet.from_asp(FIG3_LABELLED)
    assert rs.to_asp() == (
        "target(X,bedroom) :- bed1(X).\n"
        "target(X,bathroom) :- example(X), not wall3_cabinet2(X), not ab1(X).\n"
        "target(X,kitchen) :- wall1_cabinet1(X).\n"
        "target(X,kitchen) :- wall2(X).\n"
        "ab1(X) :- example(X), not sink2(X), not sink1_toilet1(X).\n"
    )
    assert rs.to_asp("scasp").splitlines()[1] == "target(X,bathroom) :- not wall3_cabinet2(X), not ab1(X)."
    with pytest.raises(CnnlensError, match="dialect"):
        rs.to_asp("prolog")


def test_issue_example_literal_form():
    rs = RuleSet((Rule("target", (Literal("f12"), Literal("f7", negated=True), Literal("ab1", negated=True)), "c"),
                  Rule("ab1", (Literal("f3"),))))
    assert rs.to_asp().splitlines()[0] == "target(X,c) :- f12(X), not f7(X), not ab1(X)."
    assert rs.size == 4 and rs.n_rules == 2 and rs.predicates == ("f12", "f7", "f3")


MIXED = RuleSet((
    Rule("target", (Literal("age", ">", 30), Literal("color", "==", "red"), Literal("ab1", negated=True)), "Bath room"),
    Rule("target", (Literal("color", "==", "Dark Blue", negated=True), Literal("age", "<=", 12.5)), 3),
    Rule("target", (Literal("f1"),), "x'y\"z"),
    Rule("ab1", (Literal("f2", negated=True), Literal("age", "<=", -4.0), Literal("ab2", negated=True))),
    Rule("ab2", (Literal("f3"),)),
), default="Bath room")


def test_roundtrip_exact_both_dialects():
    text = MIXED.to_asp("scasp")
    assert text.splitlines()[0] == "target(X,'Bath room') :- age(X,N1), N1 > 30, color(X,red), not ab1(X)."
    assert text.splitlines()[1] == "target(X,3) :- not color(X,'Dark Blue'), age(X,N1), N1 =< 12.5."
    assert RuleSet.from_asp(text) == MIXED
    assert RuleSet.from_asp(RuleSet.from_asp(text).to_asp("scasp")) == MIXED
    # integer thresholds: the clingo dialect round-trips too
    rs = RuleSet.from_asp(FIG3_LABELLED)
    assert RuleSet.from_asp(rs.to_asp()) == rs
    assert RuleSet.from_json(MIXED.to_json()) == MIXED


def test_clingo_dialect_refuses_fractional_thresholds():
    with pytest.raises(CnnlensError, match="clingo has integer arithmetic only"):
        MIXED.to_asp("clingo")


def test_interpreter_ordered_first_match_and_default():
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({
        "age": [40, 10, 40, 10, 50],
        "color": ["red", "red", "blue", "Dark Blue", "red"],
        "f1": [0, 0, 1, 0, 0], "f2": [1, 1, 1, 0, 0], "f3": [0, 0, 0, 0, 0],
    })
    fired = MIXED.fired(df)
    assert fired.tolist() == [
        [True, False, False],   # age>30, red, ab1 false (f2 holds)
        [False, True, False],   # not Dark Blue, age =< 12.5
        [False, False, True],   # only f1
        [False, False, False],  # Dark Blue
        [True, False, False],   # ab1 needs age =< −4 → false
    ]
    assert list(MIXED.predict(df)) == ["Bath room", 3, "x'y\"z", "Bath room", "Bath room"]
    assert list(MIXED.predict_rule(df)) == [0, 1, 2, -1, 0]
    assert list(MIXED.predict(df, default=None)) == ["Bath room", 3, "x'y\"z", None, "Bath room"]


def test_interpreter_array_input_and_missing_column():
    rs = RuleSet.from_asp("target(X,a) :- f1(X), not f0(X).\ntarget(X,b) :- f0(X).\n")
    X = np.array([[0, 1], [1, 1], [0, 0]])
    assert list(rs.predict(X)) == ["a", "b", None]
    with pytest.raises(CnnlensError, match="feature 'f1' but the data has no such column"):
        rs.predict(X[:, :1])
    with pytest.raises(CnnlensError, match="holds the value 2"):
        rs.predict(np.array([[2, 1]]))


def test_stratification_checks():
    with pytest.raises(CnnlensError, match="not stratified"):
        RuleSet.from_asp("target(X,a) :- not ab1(X).\nab1(X) :- f1(X), not ab2(X).\nab2(X) :- ab1(X).\n")
    with pytest.raises(RuleParseError, match="'target' cannot be used in a rule body"):
        RuleSet.from_asp("ab1(X) :- target(X,a).")


def test_default_comment_roundtrip():
    rs = RuleSet.from_asp("target(X,1) :- f1(X).\n% default: 0\n")
    assert rs.default == 0 and rs.to_asp().endswith("% default: 0\n")
    assert RuleSet.from_asp(rs.to_asp()) == rs
    with pytest.raises(RuleParseError, match="line 2, column 1: bad default class"):
        RuleSet.from_asp("target(X,1) :- f1(X).\n% default: a b\n")


@pytest.mark.parametrize("text, line, col, what", [
    ("target(X,a) :- f1(X)", 1, 21, "expected ',' or '.' but found end of text"),
    ("target(X,a) :- f1(X).\nab1(X) :- f2(X) f3(X).", 2, 17, "expected ',' or '.' but found 'f3'"),
    ("target(X,a) :- f1(Y).", 1, 19, "expected the head variable X but found 'Y'"),
    ("target(X,a) :- f1(X), N > 3.", 1, 23, "expected a predicate name but found 'N'"),
    ("target(X,a) :- age(X,N), N >= 3.", 1, 28, "unsupported comparison '>='"),
    ("target(X,a) :- not age(X,N), N > 3.", 1, 16, "numeric literal cannot be negated"),
    ("target(X) :- f1(X).", 1, 9, "expected ',' but found ')'"),
    ("target(X,a) :- f1(X) ; f2(X).", 1, 22, "unexpected character ';'"),
    ("\n\n  ab1(X) :- 'oops'(X).", 3, 13, "expected a predicate name"),
    ("target(X,a) :- f1(x).", 1, 19, "expected the variable X but found 'x'"),
])
def test_parse_errors_report_line_and_column(text, line, col, what):
    with pytest.raises(RuleParseError) as ei:
        RuleSet.from_asp(text)
    err = ei.value
    assert (err.line, err.column) == (line, col), str(err)
    assert what in str(err)
    assert str(err).startswith(f"line {line}, column {col}: ")
    assert isinstance(err, CnnlensError)


def test_parser_survives_fuzzing():
    hyp = pytest.importorskip("hypothesis")
    st = pytest.importorskip("hypothesis.strategies")

    alphabet = st.sampled_from(list("targetabnotfX1029(),.:-'\"% \n<=>N_=") + ["target(X,", "not ", ":-", "ab1(X)"])

    @hyp.settings(max_examples=400, deadline=None, derandomize=True)
    @hyp.given(st.lists(alphabet, max_size=40).map("".join))
    def fuzz(text):
        try:
            rs = RuleSet.from_asp(text)
        except RuleParseError:
            return
        # whatever parses prints and re-parses to the same program
        assert RuleSet.from_asp(rs.to_asp("scasp")) == rs

    fuzz()

    @hyp.settings(max_examples=200, deadline=None, derandomize=True)
    @hyp.given(st.text(max_size=60))
    def fuzz_text(text):
        try:
            RuleSet.from_asp(text)
        except RuleParseError:
            pass

    fuzz_text()


def test_literal_validation():
    with pytest.raises(CnnlensError, match="cannot be negated"):
        Literal("age", ">", 3, negated=True)
    with pytest.raises(CnnlensError, match="finite"):
        Literal("age", ">", float("nan"))
    with pytest.raises(CnnlensError, match="op"):
        Literal("age", "<", 3)
    with pytest.raises(CnnlensError, match="needs a class"):
        Rule("target", ())
    assert str(Literal("age", "<=", 3)) == "age <= 3" and str(Literal("c", "==", "r", True)) == "c != r"


def test_rename_validates_names():
    rs = RuleSet.from_asp(FIG3_RAW)
    with pytest.raises(CnnlensError, match="not a valid ASP name"):
        rs.rename({"f295": "Bed"})
