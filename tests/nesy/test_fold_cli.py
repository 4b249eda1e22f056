"""``cnnlens fold train / predict / explain`` (SPEC §8), in-process."""
from __future__ import annotations

import json

import pytest

from cnnlens.cli import main

FRUIT_CSV = """color,size,weight,fruit
red,s,10,apple
red,s,12,apple
red,s,11,apple
green,s,30,pear
green,l,31,pear
blue,l,50,plum
blue,s,52,plum
red,l,40,plum
"""


@pytest.fixture
def fruit(tmp_path):
    p = tmp_path / "fruit.csv"
    p.write_text(FRUIT_CSV)
    return p


def test_train_predict_explain(tmp_path, fruit, capsys):
    model = tmp_path / "model.json"
    rc = main(["fold", "train", "--csv", str(fruit), "--label", "fruit", "--categorical", "size",
               "--out", str(model)])
    out = capsys.readouterr().out
    assert rc == 0
    # weight is numeric; the program is printed first
    assert out.splitlines()[0].startswith("target(X,")
    assert "train accuracy 1.0000 on 8 rows" in out
    obj = json.loads(model.read_text())
    assert obj["format"] == "cnnlens.FoldSEM" and obj["cli"]["label"] == "fruit"
    assert obj["feature_kinds"] == ["categorical", "categorical", "numeric"]

    rc = main(["fold", "predict", "--model", str(model), "--csv", str(fruit)])
    cap = capsys.readouterr()
    assert rc == 0
    lines = cap.out.splitlines()
    assert lines[0] == "row,prediction,rule"
    assert [ln.split(",")[1] for ln in lines[1:]] == ["apple"] * 3 + ["pear"] * 2 + ["plum"] * 3
    assert "accuracy 1.0000 on 8 rows" in cap.err

    preds = tmp_path / "p.csv"
    assert main(["fold", "predict", "--model", str(model), "--csv", str(fruit), "--out", str(preds)]) == 0
    assert preds.read_text().splitlines() == lines

    rc = main(["fold", "explain", "--model", str(model), "--csv", str(fruit), "--row", "0"])
    text = capsys.readouterr().out
    assert rc == 0 and text.startswith("'target' holds (for img, and apple), because (rule 1)")
    assert "MODEL:" in text
    rc = main(["fold", "explain", "--model", str(model), "--csv", str(fruit), "--row", "7", "--json"])
    d = json.loads(capsys.readouterr().out)
    assert rc == 0 and d["prediction"] == "plum"


def test_train_options_ratio_tail_default(tmp_path, capsys):
    p = tmp_path / "t.csv"
    p.write_text("age,y\n" + "".join(f"{a},{c}\n" for a, c in zip(range(1, 11), "aaabaabbbb")))
    m = tmp_path / "m.json"
    assert main(["fold", "train", "--csv", str(p), "--label", "y", "--ratio", "0", "--tail", "0",
                 "--positive-class", "none", "--no-catch-all", "--out", str(m)]) == 0
    out = capsys.readouterr().out
    # same program as the hand-computed ratio-0 case in test_fold.py
    assert out.startswith("target(X,a) :- age(X,N1), N1 <= 6, age(X,N2), N2 <= 3.\n"
                          "target(X,b) :- age(X,N1), N1 > 6.\n"
                          "target(X,a) :- age(X,N1), N1 > 4.\n")
    assert "default class b used for 1 rows" in out
    # default: the catch-all rule takes the row no class took
    assert main(["fold", "train", "--csv", str(p), "--label", "y", "--ratio", "0", "--tail", "0",
                 "--positive-class", "none", "--out", str(m)]) == 0
    out = capsys.readouterr().out
    assert "target(X,a) :- age(X,N1), N1 > 4.\ntarget(X,b) :- example(X).\n" in out
    assert "default class a used for 0 rows" in out


def test_train_fractional_thresholds_print_scasp(tmp_path, capsys):
    p = tmp_path / "f.csv"
    p.write_text("x,y\n0.5,a\n1.25,a\n2.5,b\n3.75,b\n")
    m = tmp_path / "m.json"
    assert main(["fold", "train", "--csv", str(p), "--label", "y", "--tail", "0", "--positive-class", "a",
                 "--out", str(m)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("% s(CASP) dialect")
    assert out[1] == "target(X,a) :- x(X,N1), N1 =< 1.25."
    assert main(["fold", "predict", "--model", str(m), "--csv", str(p)]) == 0
    assert [ln.split(",")[1] for ln in capsys.readouterr().out.splitlines()[1:]] == ["a", "a", "b", "b"]


def _err(capsys, argv) -> str:
    rc = main(argv)
    cap = capsys.readouterr()
    assert rc == 2, cap
    assert len(cap.err.strip().splitlines()) == 1, cap.err
    return cap.err


def test_bad_input_errors(tmp_path, fruit, capsys):
    m = str(tmp_path / "m.json")
    # one class
    one = tmp_path / "one.csv"
    one.write_text("a,y\n1,x\n0,x\n")
    assert "single class ('x');" in _err(capsys, ["fold", "train", "--csv", str(one), "--label", "y", "--out", m])  # not np.str_('x')
    # empty label cell
    nan = tmp_path / "nan.csv"
    nan.write_text("a,y\n1,x\n0,\n")
    assert "data row 1: the label column 'y' is empty" in _err(
        capsys, ["fold", "train", "--csv", str(nan), "--label", "y", "--out", m])
    # unknown column names
    err = _err(capsys, ["fold", "train", "--csv", str(fruit), "--label", "kind", "--out", m])
    assert "--label 'kind' is not a column" in err and "color, size, weight, fruit" in err
    err = _err(capsys, ["fold", "train", "--csv", str(fruit), "--label", "fruit", "--categorical", "shape",
                        "--out", m])
    assert "--categorical shape: no such column" in err
    # ragged rows
    rag = tmp_path / "rag.csv"
    rag.write_text("a,b,y\n1,2,x\n1,2\n")
    assert "line 3 has 2 fields but the header has 3" in _err(
        capsys, ["fold", "train", "--csv", str(rag), "--label", "y", "--out", m])
    # missing file
    assert "cannot read the CSV file (No such file" in _err(capsys, ["fold", "train", "--csv", str(tmp_path / "nope.csv"), "--label", "y",
                                           "--out", m])
    assert not (tmp_path / "m.json").exists()


def test_bad_model_and_rows(tmp_path, fruit, capsys):
    model = tmp_path / "model.json"
    assert main(["fold", "train", "--csv", str(fruit), "--label", "fruit", "--out", str(model)]) == 0
    capsys.readouterr()
    assert "--row 8 is out of range" in _err(
        capsys, ["fold", "explain", "--model", str(model), "--csv", str(fruit), "--row", "8"])
    short = tmp_path / "short.csv"
    short.write_text("color,fruit\nred,apple\n")
    assert "lacks the column(s) size, weight" in _err(
        capsys, ["fold", "predict", "--model", str(model), "--csv", str(short)])
    # a malformed program inside the model file: error with line and column
    obj = json.loads(model.read_text())
    obj["program"] = "target(X,apple) :- color(X,red)\n"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(obj))
    err = _err(capsys, ["fold", "predict", "--model", str(bad), "--csv", str(fruit)])
    assert "line 2, column 1: expected ',' or '.' but found end of text" in err
    notjson = tmp_path / "x.json"
    notjson.write_text("hello")
    assert "not valid JSON" in _err(capsys, ["fold", "predict", "--model", str(notjson), "--csv", str(fruit)])


def test_csv_header_with_an_empty_name_is_named_like_pandas(tmp_path, capsys):
    # issue 22 item 10: refusing an unnamed column was a regression; it is named "Unnamed: J"
    # (J its 0-based position, as pandas.read_csv) with a warning, and usable as --label or a feature
    p = tmp_path / "e.csv"
    p.write_text("a,,b,label\n1,2,3,x\n4,5,6,y\n1,2,3,x\n4,5,6,y\n")
    m = tmp_path / "m.json"
    with pytest.warns(UserWarning, match=r"column 2 -> 'Unnamed: 1'"):
        assert main(["fold", "train", "--csv", str(p), "--label", "label", "--out", str(m)]) == 0
    assert json.loads(m.read_text())["feature_names"] == ["a", "Unnamed: 1", "b"]
    with pytest.warns(UserWarning, match="Unnamed: 1"):
        assert main(["fold", "predict", "--model", str(m), "--csv", str(p)]) == 0
    with pytest.warns(UserWarning, match="Unnamed: 1"):
        assert main(["fold", "train", "--csv", str(p), "--label", "Unnamed: 1", "--out", str(m)]) == 0
    capsys.readouterr()
    # duplicates stay refused in one line
    p.write_text("a,b,a,label\n1,2,3,x\n")
    err = _err(capsys, ["fold", "train", "--csv", str(p), "--label", "label", "--out", str(m)])
    assert "duplicate column name(s) in the header: 'a'" in err and err.count("\n") == 1


def test_cli_warnings_are_one_line(tmp_path):
    import subprocess
    import sys

    p = tmp_path / "e.csv"
    p.write_text("a,,b,label\n1,2,3,x\n4,5,6,y\n1,2,3,x\n4,5,6,y\n")
    run = subprocess.run([sys.executable, "-m", "cnnlens", "fold", "train", "--csv", str(p), "--label", "label",
                          "--out", str(tmp_path / "m.json")], capture_output=True, text=True)
    assert run.returncode == 0
    assert run.stderr.startswith("cnnlens: warning: ") and run.stderr.count("\n") == 1, run.stderr
