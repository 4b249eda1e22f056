"""FOLD-SE-M bad input (issue 6 items 8–10): every hostile or corrupt file, table and program ends
in a CnnlensError naming the problem (exit code 2 with one line on the command line) — or works
correctly; none is silently wrong, none hangs."""
from __future__ import annotations

import json
import time

import numpy as np
import pytest

from cnnlens.cli import main
from cnnlens.errors import CnnlensError
from cnnlens.nesy import FoldSEM, RuleSet
from cnnlens.nesy.csvtable import read_csv

pd = pytest.importorskip("pandas")

FRUIT = pd.DataFrame({"color": ["red", "red", "green", "green", "blue", "blue"],
                      "size": [1, 2, 8, 9, 5, 5], "fruit": ["apple", "apple", "pear", "pear", "plum", "plum"]})


@pytest.fixture
def model_dict():
    m = FoldSEM(tail=0).fit(FRUIT[["color", "size"]], FRUIT["fruit"])
    return m.to_dict()


def _write(tmp_path, obj, name="m.json") -> str:
    p = tmp_path / name
    p.write_text(obj if isinstance(obj, str) else json.dumps(obj))
    return str(p)


def _cli_err(capsys, argv) -> str:
    rc = main(argv)
    cap = capsys.readouterr()
    assert rc == 2, cap
    assert len(cap.err.strip().splitlines()) == 1, cap.err
    return cap.err


# ------------------------------------------------------------------------------------------
# corrupt / hostile model files (FoldSEM.load, cnnlens fold predict)
# ------------------------------------------------------------------------------------------

def _mutate(d: dict, **changes) -> dict:
    d = json.loads(json.dumps(d))
    for k, v in changes.items():
        if v is KeyError:
            d.pop(k)
        else:
            d[k] = v
    return d


BAD_MODELS = [
    ("not-utf8", b"\xff\xfe\x00garbage", "not a UTF-8 text file"),
    ("not-json", "{oops", "not valid JSON"),
    ("json-list", "[1, 2, 3]", "the JSON is a list"),
    ("deep-nesting", "[" * 100000 + "]" * 100000, "nested too deeply"),
    ("no-program", dict(program=KeyError), "lacks the field 'program'"),
    ("params-not-object", dict(params="fast"), "'params' must be an object"),
    ("params-unknown-key", dict(params={"depth": 3}), "unknown key(s) 'depth'"),
    ("params-bad-ratio", dict(params={"ratio": "x"}), "ratio must be a finite number"),
    ("one-class", dict(classes=["apple"]), "at least two labels"),
    ("classes-not-labels", dict(classes=[["a"], {"b": 1}]), "'classes' must be a list"),
    ("unknown-predicted-class", dict(classes=["apple", "kiwi", "plum"]), "predicts 'pear', which is not one of"),
    ("default-not-a-class", dict(default_class="kiwi"), "default_class 'kiwi' is not one of the classes"),
    ("program-garbage", dict(program="target(X,apple) :- :- ."), "the program does not parse"),
    ("program-unknown-feature", dict(program="target(X,apple) :- weight(X,N1), N1 > 3.\n"),
     "uses the feature 'weight'"),
    ("kind-mismatch", dict(feature_kinds=["binary", "numeric"]), "column 'color' is binary"),
    ("lengths-differ", dict(feature_names=["color"]), "of the same length"),
    ("bad-kind", dict(feature_kinds=["categorical", "float"]), "unknown feature kind 'float'"),
    ("bad-predicate", dict(feature_predicates=["Color", "size"]), "distinct ASP names"),
    ("uncovered-negative", dict(n_uncovered_train=-4), "non-negative integer"),
    ("wrong-version", dict(version=99), "unsupported FoldSEM model version 99"),
]


@pytest.mark.parametrize("case,change,msg", BAD_MODELS, ids=[c[0] for c in BAD_MODELS])
def test_corrupt_model_files_raise_cnnlens_error_naming_file(tmp_path, model_dict, case, change, msg, capsys):
    if isinstance(change, dict):
        change = dict(change)
        if "params" in change and isinstance(change["params"], dict):
            change["params"] = {**model_dict["params"], **change["params"]}
        obj = _mutate(model_dict, **change)
        path = _write(tmp_path, obj)
    elif isinstance(change, bytes):
        path = str(tmp_path / "m.json")
        (tmp_path / "m.json").write_bytes(change)
    else:
        path = _write(tmp_path, change)
    with pytest.raises(CnnlensError) as ei:
        FoldSEM.load(path)
    assert msg in str(ei.value) and path in str(ei.value), str(ei.value)
    csv = tmp_path / "t.csv"
    FRUIT.to_csv(csv, index=False)
    err = _cli_err(capsys, ["fold", "predict", "--model", path, "--csv", str(csv)])
    assert msg in err


def test_model_path_is_a_folder_or_missing(tmp_path):
    with pytest.raises(CnnlensError, match="cannot read the model file"):
        FoldSEM.load(tmp_path)
    with pytest.raises(CnnlensError, match="cannot read the model file"):
        FoldSEM.load(tmp_path / "nope.json")


def test_bad_cli_field_in_model(tmp_path, model_dict, capsys):
    path = _write(tmp_path, _mutate(model_dict, cli=["x"]))
    csv = tmp_path / "t.csv"
    FRUIT.to_csv(csv, index=False)
    assert "the field 'cli' must be an object" in _cli_err(capsys, ["fold", "predict", "--model", path,
                                                                   "--csv", str(csv)])


# ------------------------------------------------------------------------------------------
# newline / quote in labels and values: a model that saves also loads (issue 6 item 8)
# ------------------------------------------------------------------------------------------

def test_newline_and_quotes_in_label_and_value_round_trip(tmp_path):
    X = pd.DataFrame({"c": ["a\nb", "a\nb", "it's \"x\"", "it's \"x\"", "tab\there", "tab\there"]})
    y = ["yes\nno", "yes\nno", "o'k", "o'k", "back\\slash", "back\\slash"]
    m = FoldSEM(tail=0).fit(X, y)
    assert (m.predict(X) == np.array(y)).all()
    m.save(tmp_path / "m.json")
    m2 = FoldSEM.load(tmp_path / "m.json")
    assert m2.rules_ == m.rules_ and (m2.predict(X) == np.array(y)).all()
    for dialect in ("clingo", "scasp"):
        assert RuleSet.from_asp(m.rules_.to_asp(dialect)) == m.rules_


# ------------------------------------------------------------------------------------------
# RuleSet.from_json / from_asp
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text,msg", [
    (b"\xff\xfe{}", "not UTF-8"),
    ("{not json", "malformed"),
    ("[1]", "must be an object"),
    ("{}", "lacks the field 'program'"),
    ('{"program": 5}', "must be a string"),
    ('{"program": "", "default": {"a": 1}}', "'default' must be a class name"),
    ("[" * 50000 + "]" * 50000, "nested too deeply"),
    ('{"program": "target(X,a) :- ab1(X,2)."}', "unary"),
    (12, "must be a str"),
])
def test_ruleset_from_json_bad_input(text, msg):
    with pytest.raises(CnnlensError, match=msg):
        RuleSet.from_json(text)


def test_deep_exception_chain_loads_and_runs_without_recursion_error():
    n = 5001  # far beyond Python's recursion limit; odd → the chain leaves ab1 false
    lines = ["target(X,a) :- f0(X), not ab1(X)."]
    lines += [f"ab{i}(X) :- f{i % 7}(X), not ab{i + 1}(X)." for i in range(1, n)]
    rs = RuleSet.from_asp("\n".join(lines) + "\n% default: b\n")
    assert rs.n_rules == n
    pred = rs.predict({f"f{j}": np.array([1, 0]) for j in range(7)})
    # all features true: ab(n-1) holds, so ab(i) holds iff n-1-i is even; ab1 is false for odd n
    assert list(pred) == ["a", "b"]
    with pytest.raises(CnnlensError, match="too deep to justify"):
        rs.justify({f"f{j}": 1 for j in range(7)})


def test_cyclic_program_is_refused():
    with pytest.raises(CnnlensError, match="not stratified"):
        RuleSet.from_asp("target(X,a) :- not ab1(X).\nab1(X) :- not ab2(X).\nab2(X) :- ab1(X).\n")


# ------------------------------------------------------------------------------------------
# CSV reader (issue 6 items 8, 10)
# ------------------------------------------------------------------------------------------

def test_csv_bom_is_dropped(tmp_path, capsys):
    p = tmp_path / "bom.csv"
    p.write_bytes("\ufeffx,y\n1,a\n2,a\n8,b\n9,b\n".encode("utf-8"))
    header, rows = read_csv(str(p))
    assert header == ["x", "y"]
    assert main(["fold", "train", "--csv", str(p), "--label", "y", "--out", str(tmp_path / "m.json")]) == 0


def test_csv_labels_01_1_001_stay_distinct(tmp_path, capsys):
    p = tmp_path / "lab.csv"
    p.write_text("x,y\n1,01\n2,01\n5,1\n6,1\n9,001\n10,001\n")
    m = tmp_path / "m.json"
    assert main(["fold", "train", "--csv", str(p), "--label", "y", "--tail", "0", "--out", str(m)]) == 0
    assert sorted(FoldSEM.load(m).classes_.tolist()) == ["001", "01", "1"]
    capsys.readouterr()
    assert main(["fold", "predict", "--model", str(m), "--csv", str(p)]) == 0
    cap = capsys.readouterr()
    assert [ln.split(",")[1] for ln in cap.out.splitlines()[1:]] == ["01", "01", "1", "1", "001", "001"]
    assert "accuracy 1.0000" in cap.err


def test_csv_inf_and_dash_cells_are_reported_not_silent(tmp_path, capsys):
    p = tmp_path / "inf.csv"
    p.write_text("x,z,y\n1,5,a\n2,6,a\ninf,7,b\n-,8,a\n8,,b\n9,1,b\n")
    assert main(["fold", "train", "--csv", str(p), "--label", "y", "--tail", "0",
                 "--out", str(tmp_path / "m.json")]) == 0
    out = capsys.readouterr().out
    assert "% column 'x': numeric; 2 non-numeric cell(s) ('-' ×1, 'inf' ×1)" in out
    assert "% column 'z': numeric; 1 empty/NaN cell(s) are missing" in out
    assert FoldSEM.load(tmp_path / "m.json").feature_kinds_ == ["numeric", "numeric"]
    # an inf cell is a value, never a huge number: 'x > t' is false on it at predict time too
    q = tmp_path / "inf2.csv"
    q.write_text("x,y\n1,a\n2,a\n3,a\n10,b\n11,b\n12,b\ninf,a\n")
    assert main(["fold", "train", "--csv", str(q), "--label", "y", "--tail", "0", "--positive-class", "b",
                 "--out", str(tmp_path / "m2.json")]) == 0
    assert "x(X,N1), N1 > 3" in capsys.readouterr().out
    assert main(["fold", "predict", "--model", str(tmp_path / "m2.json"), "--csv", str(q)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "6,a,default"


def test_csv_duplicate_header_check_is_linear(tmp_path):
    for k in (20000, 100000):
        p = tmp_path / f"wide{k}.csv"
        names = [f"c{j}" for j in range(k)] + ["c7"]
        p.write_text(",".join(names) + "\n" + ",".join("1" for _ in names) + "\n")
        t = time.perf_counter()
        with pytest.raises(CnnlensError, match="duplicate column name.*'c7'"):
            read_csv(str(p))
        assert time.perf_counter() - t < 5.0


@pytest.mark.parametrize("head,names", [
    ("x,,y", ["x", "Unnamed: 1", "y"]),
    (",x, ,y", ["Unnamed: 0", "x", "Unnamed: 2", "y"]),  # a pandas index; spaces only
    # the pandas name is taken by a named column: suffixed, never a duplicate
    (",Unnamed: 0,Unnamed: 0.1,y", ["Unnamed: 0.2", "Unnamed: 0", "Unnamed: 0.1", "y"]),
])
def test_csv_empty_header_names_are_named_deterministically(tmp_path, head, names):
    p = tmp_path / "u.csv"
    p.write_text(head + "\n" + ",".join(str(j) for j in range(len(names))) + "\n")
    with pytest.warns(UserWarning, match="named as pandas does") as rec:
        header, rows = read_csv(str(p))
    assert header == names and len(set(header)) == len(header) and len(rec) == 1
    assert ("to_csv(index=False)" in str(rec[0].message)) == head.startswith(",")


@pytest.mark.parametrize("content,msg", [
    (b"x,y\n1,\xff\n", "not a UTF-8 text file"),
    (b"x,y\x00\n1,2\n", "NUL bytes"),
    (b"", "the file is empty"),
    (b"x,y\n", "no data rows"),
    (b'x,y\n"1,2\n', "line 2 has 1 fields"),  # an unclosed quote swallows the rest
])
def test_csv_reader_bad_files(tmp_path, content, msg):
    p = tmp_path / "bad.csv"
    p.write_bytes(content)
    with pytest.raises(CnnlensError, match=msg):
        read_csv(str(p))


def test_default_comment_is_linear_time():
    for n in (30_000, 300_000):
        text = "target(X,a) :- f(X).\n% default:" + " " * n + "x y\n"
        t = time.perf_counter()
        with pytest.raises(CnnlensError, match="bad default class"):
            RuleSet.from_asp(text)
        assert time.perf_counter() - t < 2.0
    assert RuleSet.from_asp("% default:" + " " * 300_000 + "b\n").default == "b"


# ------------------------------------------------------------------------------------------
# tables given to fit
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("X,y,msg", [
    ([[1, 2], [3]], [0, 1], "not a table|must be 2-D"),
    (np.zeros((3, 2)), [0, None, 1], "label of row 1 is missing"),
    (np.zeros((3, 2)), np.array([1, "a", 2.5], dtype=object), "cannot be sorted|print as the same"),
    (pd.DataFrame([[1, 2], [3, 4]], columns=["a", "a"]), [0, 1], "duplicate column name"),
    (np.zeros((0, 2)), [], "no rows"),
    (np.zeros((2, 2)), [[0], [1]], "y must be 1-D"),
])
def test_bad_tables(X, y, msg):
    with pytest.raises(CnnlensError, match=msg):
        FoldSEM().fit(X, y)
