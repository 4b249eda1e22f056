"""``cnnlens fold``: learn, apply and explain FOLD-SE-M rule-sets on CSV tables (SPEC §6.5–6.6, §8).

    cnnlens fold train   --csv FILE --label COL [--categorical A B ...] [--ratio 0.8] [--tail 5e-3]
                         [--heuristic ig|gini] [--default-class C] --out model.json
    cnnlens fold predict --model model.json --csv FILE [--out predictions.csv]
    cnnlens fold explain --model model.json --csv FILE --row N [--json]

CSV rules: the first line is the header; every row must have as many fields as the header; an
empty cell or a missing-value marker (``nan``, ``NA``, ``N/A``, ``null``, ``None``, ``?``) is an error
(fill or drop it first). A column whose cells all parse as numbers is
numeric (0/1 columns become ``f(X)`` / ``not f(X)`` predicates) unless it is named in
``--categorical``; every other column is categorical. Labels that are all integers are read as
integers. ``train`` prints the program in the clingo dialect, or in the s(CASP) dialect (with a
comment saying so) when a threshold is fractional. ``--row`` counts data rows from 0 (the header is not a row). All files are written
atomically (temp file in the same folder, then rename).
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import sys
from typing import Any

import numpy as np

from ..errors import CnnlensError
from .._io import atomic_write_text
from .fold import FoldSEM


# ------------------------------------------------------------------------------------------
# CSV
# ------------------------------------------------------------------------------------------

_MISSING = {"nan", "na", "n/a", "null", "none", "?"}


def read_csv(path: str) -> tuple[list[str], list[list[str]]]:
    """Header and rows of a CSV file; ragged rows and empty cells raise with the line number."""
    try:
        with open(path, encoding="utf-8", newline="") as fh:
            text = fh.read()
    except UnicodeDecodeError as exc:
        raise CnnlensError(f"{path}: not a UTF-8 text file ({exc.reason})") from None
    reader = csv.reader(io.StringIO(text))
    try:
        rows = list(reader)
    except csv.Error as exc:
        raise CnnlensError(f"{path}: line {reader.line_num}: malformed CSV ({exc})") from None
    # csv.reader counts physical lines; keep the line of each record for messages
    if not rows or not rows[0]:
        raise CnnlensError(f"{path}: the file is empty; expected a header line and data rows")
    header = [h.strip() for h in rows[0]]
    dup = {h for h in header if header.count(h) > 1}
    if dup:
        raise CnnlensError(f"{path}: duplicate column name(s) in the header: {', '.join(sorted(dup))}")
    data: list[list[str]] = []
    for i, row in enumerate(rows[1:], start=2):
        if not row:  # blank line
            continue
        if len(row) != len(header):
            raise CnnlensError(
                f"{path}: line {i} has {len(row)} fields but the header has {len(header)}; "
                "every row needs one value per column"
            )
        for j, cell in enumerate(row):
            if cell.strip() == "":
                raise CnnlensError(f"{path}: line {i}, column {header[j]!r} is empty; fill or drop it first")
            if cell.strip().lower() in _MISSING:
                raise CnnlensError(f"{path}: line {i}, column {header[j]!r} is missing ({cell.strip()!r}); "
                                   "fill or drop it first")
        data.append([c.strip() for c in row])
    if not data:
        raise CnnlensError(f"{path}: no data rows after the header")
    return header, data


def _as_number(cell: str) -> float | None:
    try:
        v = float(cell)
    except ValueError:
        return None
    return v if math.isfinite(v) else None


def _column(values: list[str], numeric: bool, name: str, path: str) -> np.ndarray:
    if not numeric:
        return np.array(values, dtype=object)
    out = np.empty(len(values))
    for i, v in enumerate(values):
        x = _as_number(v)
        if x is None:
            raise CnnlensError(f"{path}: data row {i}, column {name!r}: {v!r} is not a number "
                               "(the model was trained with this column numeric)")
        out[i] = x
    return out


def _auto_column(values: list[str], categorical: bool) -> np.ndarray:
    if not categorical:
        nums = [_as_number(v) for v in values]
        if all(x is not None for x in nums):
            return np.array(nums, dtype=float)
    return np.array(values, dtype=object)


def _labels(values: list[str]) -> np.ndarray:
    try:
        return np.array([int(v) for v in values])
    except ValueError:
        return np.array(values, dtype=object).astype(str)


def _frame(header: list[str], rows: list[list[str]]) -> dict[str, list[str]]:
    return {h: [r[j] for r in rows] for j, h in enumerate(header)}


def _model_table(model: FoldSEM, header: list[str], rows: list[list[str]], path: str):
    import_cols = _frame(header, rows)
    names = [str(n) for n in model.feature_names_in_]
    missing = [n for n in names if n not in import_cols]
    if missing:
        raise CnnlensError(f"{path}: lacks the column(s) {', '.join(missing[:10])} the model was trained on")
    cols = [_column(import_cols[n], kind != "categorical", n, path)
            for n, kind in zip(names, model.feature_kinds_)]
    X = np.empty((len(rows), len(names)), dtype=object)
    for j, c in enumerate(cols):
        X[:, j] = c
    return X


# ------------------------------------------------------------------------------------------
# commands
# ------------------------------------------------------------------------------------------

def _load_model(path: str) -> tuple[FoldSEM, dict]:
    model = FoldSEM.load(path)
    with open(path, encoding="utf-8") as fh:
        extra = json.load(fh).get("cli", {})
    return model, extra


def cmd_train(args: argparse.Namespace) -> int:
    header, rows = read_csv(args.csv)
    if args.label not in header:
        raise CnnlensError(f"--label {args.label!r} is not a column of {args.csv}; columns: {', '.join(header)}")
    cat = set(args.categorical or [])
    unknown = [c for c in cat if c not in header]
    if unknown:
        raise CnnlensError(f"--categorical {', '.join(unknown)}: no such column in {args.csv}; "
                           f"columns: {', '.join(header)}")
    frame = _frame(header, rows)
    y = _labels(frame[args.label])
    feats = [h for h in header if h != args.label]
    if not feats:
        raise CnnlensError(f"{args.csv} has no feature columns besides the label {args.label!r}")
    cols = [_auto_column(frame[h], h in cat) for h in feats]
    X = np.empty((len(rows), len(feats)), dtype=object)
    for j, c in enumerate(cols):
        X[:, j] = c
    default = args.default_class
    if default is not None and y.dtype.kind in "iu":
        try:
            default = int(default)
        except ValueError:
            pass
    model = FoldSEM(ratio=args.ratio, tail=args.tail, heuristic=args.heuristic, default_class=default)
    model.fit(X, y, feature_names=feats, categorical=[h for h in feats if h in cat])
    obj = model.to_dict()
    obj["cli"] = {"label": args.label, "train_csv": os.path.basename(args.csv)}
    atomic_write_text(args.out, json.dumps(obj, indent=1))
    pred_rule = model.predict_rule(X)
    acc = float((model.predict(X) == y).mean())
    rs = model.rules_
    try:
        print(rs.to_asp("clingo"), end="")
    except CnnlensError:  # fractional thresholds: clingo has integers only
        print("% s(CASP) dialect (fractional thresholds; clingo has integer arithmetic only)")
        print(rs.to_asp("scasp"), end="")
    print(f"% {len(rs.target_rules)} classifying + {rs.n_rules - len(rs.target_rules)} exception rules, "
          f"size {rs.size}, {len(rs.predicates)} predicates; train accuracy {acc:.4f} on {len(y)} rows; "
          f"default class {model.default_class_!s} used for {int((pred_rule < 0).sum())} rows")
    print(f"% model written to {args.out}")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    model, extra = _load_model(args.model)
    header, rows = read_csv(args.csv)
    X = _model_table(model, header, rows, args.csv)
    pred = model.predict(X)
    rule = model.predict_rule(X)
    tr = model.rules_.target_rules
    line_of = {id(r): i + 1 for i, r in enumerate(model.rules_.rules)}
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["row", "prediction", "rule"])
    for i, (p, r) in enumerate(zip(pred, rule)):
        w.writerow([i, p, "default" if r < 0 else line_of[id(tr[r])]])
    if args.out:
        atomic_write_text(args.out, buf.getvalue())
    else:
        sys.stdout.write(buf.getvalue())
    label = extra.get("label")
    if label and label in header:
        truth = _labels([r[header.index(label)] for r in rows])
        acc = float(np.mean([str(a) == str(b) for a, b in zip(pred, truth)]))
        print(f"accuracy {acc:.4f} on {len(rows)} rows (label column {label!r}); "
              f"default class used for {int((rule < 0).sum())} rows", file=sys.stderr)
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    model, _ = _load_model(args.model)
    header, rows = read_csv(args.csv)
    if not 0 <= args.row < len(rows):
        raise CnnlensError(f"--row {args.row} is out of range: {args.csv} has data rows 0..{len(rows) - 1}")
    X = _model_table(model, header, rows[args.row:args.row + 1], args.csv)
    j = model.justify(X, name=args.name)
    if args.json:
        print(j.to_json(indent=1))
    else:
        print(j.text, end="")
    return 0


def register(subparsers: Any) -> None:
    """Add ``fold`` with ``train`` / ``predict`` / ``explain`` to the ``cnnlens`` parser."""
    p = subparsers.add_parser(
        "fold", help="learn / apply / explain FOLD-SE-M rule-sets on CSV tables",
        description="FOLD-SE-M rule learning on CSV tables (SPEC §6.5): train a rule-set, "
                    "predict with it, explain one row in the s(CASP) style.",
    )
    sub = p.add_subparsers(dest="fold_command", metavar="ACTION")
    sub.required = True

    t = sub.add_parser("train", help="learn a rule-set from a CSV table",
                       description="Learn an ordered FOLD-SE-M rule-set; prints the program and writes "
                                   "the model as JSON.")
    t.add_argument("--csv", required=True, help="training table (header line, one row per example)")
    t.add_argument("--label", required=True, help="name of the label column")
    t.add_argument("--categorical", nargs="*", default=[], metavar="COL",
                   help="columns to treat as categorical even if they hold numbers")
    t.add_argument("--ratio", type=float, default=0.8,
                   help="exception ratio: add literals until fp <= ratio*tp (default 0.8)")
    t.add_argument("--tail", type=float, default=5e-3,
                   help="drop rules covering fewer than tail*rows positives (default 5e-3)")
    t.add_argument("--heuristic", choices=("ig", "gini"), default="ig", help="literal score (default ig)")
    t.add_argument("--default-class", default=None, help="class when no rule fires (default: majority "
                                                          "of the uncovered training rows)")
    t.add_argument("--out", required=True, help="model JSON file to write")
    t.set_defaults(func=cmd_train)

    pr = sub.add_parser("predict", help="apply a rule-set to a CSV table",
                        description="Predict every row; writes CSV with row, prediction and the program "
                                    "line of the rule that fired ('default' when none did).")
    pr.add_argument("--model", required=True, help="model JSON written by 'fold train'")
    pr.add_argument("--csv", required=True, help="table with the model's feature columns")
    pr.add_argument("--out", default=None, help="CSV file to write (default: standard output)")
    pr.set_defaults(func=cmd_predict)

    ex = sub.add_parser("explain", help="justify the prediction for one row",
                        description="Justify one row's prediction in the s(CASP) style (NESY Fig. 3).")
    ex.add_argument("--model", required=True, help="model JSON written by 'fold train'")
    ex.add_argument("--csv", required=True, help="table with the model's feature columns")
    ex.add_argument("--row", type=int, required=True, help="data row to explain (0 = first after header)")
    ex.add_argument("--name", default="img", help="constant naming the example in the text (default img)")
    ex.add_argument("--json", action="store_true", help="print the justification as JSON")
    ex.set_defaults(func=cmd_explain)
