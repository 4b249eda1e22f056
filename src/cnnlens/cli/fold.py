"""``cnnlens fold``: learn, apply and explain FOLD-SE-M rule-sets on CSV tables (docs/algorithms.md §6.5–6.6, §8).

    cnnlens fold train   --csv FILE --label COL [--categorical A B ...] [--ratio 0.8] [--tail 5e-3]
                         [--heuristic ig|gini] [--default-class C] [--class-order frequent|best]
                         [--prune A] --out model.json
    cnnlens fold predict --model model.json --csv FILE [--out predictions.csv]
    cnnlens fold explain --model model.json --csv FILE --row N [--json]

CSV rules: UTF-8 (a byte-order mark is dropped); the first line is the header (names must be
distinct; an empty one becomes ``Unnamed: J``, J its 0-based position, as in pandas, with a
warning); every row must have as many fields as the header. Feature cells are parsed by
:class:`~cnnlens.nesy.FoldSEM` (module docstring): an empty or ``nan`` cell is *missing*; a column
whose filled cells are mostly numbers is numeric, and its other cells (``?``, ``-``, ``inf`` …)
become values compared with ``==`` / ``!=`` while numeric comparisons are false on them (the
FOLD-R++ convention); 0/1 columns become ``f(X)`` / ``not f(X)`` predicates; a column named in
``--categorical`` and every mostly non-numeric column is categorical. ``train`` prints one
``% column ...`` comment line for every column treated so (never silently) and stores these notes
in the model file. A label cell must not be empty. Labels are read as integers only when every
label is a plain integer written canonically (``01`` and ``1`` stay two distinct string labels). ``train``
prints the program in the clingo dialect, or in the s(CASP) dialect (with a
comment saying so) when a threshold is fractional. ``--row`` counts data rows from 0 (the header is not a row). All files are written
atomically (temp file in the same folder, then rename). The CSV reading is :mod:`cnnlens.nesy.csvtable`.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
from typing import Any

import numpy as np

from .._io import atomic_write_text
from ..errors import CnnlensError
from ..nesy.csvtable import columns, label_column, model_table, read_csv
from ..nesy.fold import FoldSEM, read_model_json
from . import options as opt

__all__ = ["register"]


def _load_model(path: str) -> tuple[FoldSEM, dict]:
    obj = read_model_json(path)
    model = FoldSEM.from_dict(obj, source=path)
    extra = obj.get("cli", {})
    if not isinstance(extra, dict) or not all(isinstance(v, str) for v in extra.values()):
        raise CnnlensError(f"{path}: the field 'cli' must be an object of strings")
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
    frame = columns(header, rows)
    y = label_column(frame[args.label], args.csv, args.label)
    feats = [h for h in header if h != args.label]
    if not feats:
        raise CnnlensError(f"{args.csv} has no feature columns besides the label {args.label!r}")
    X = np.empty((len(rows), len(feats)), dtype=object)
    for j, h in enumerate(feats):
        X[:, j] = frame[h]
    default = args.default_class
    if default is not None and y.dtype.kind in "iu":
        try:
            default = int(default)
        except ValueError:
            pass
    pos: Any = args.positive_class
    if pos not in (None, "auto", "none") and y.dtype.kind in "iu":
        try:
            pos = int(pos)
        except ValueError:
            pass
    model = FoldSEM(ratio=args.ratio, tail=args.tail, heuristic=args.heuristic, default_class=default,
                    mode=args.mode, positive_class=None if pos == "none" else pos,
                    class_order=args.class_order, prune=args.prune, catch_all=args.catch_all)
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
    for line in model.fit_report_:
        print(f"% {line}")
    print(f"% model written to {args.out}")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    model, extra = _load_model(args.model)
    header, rows = read_csv(args.csv)
    X = model_table(model, header, rows, args.csv)
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
        truth = [r[header.index(label)] for r in rows]
        acc = float(np.mean([str(a) == str(b) for a, b in zip(pred, truth)]))
        print(f"accuracy {acc:.4f} on {len(rows)} rows (label column {label!r}); "
              f"default class used for {int((rule < 0).sum())} rows", file=sys.stderr)
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    model, _ = _load_model(args.model)
    header, rows = read_csv(args.csv)
    if not 0 <= args.row < len(rows):
        raise CnnlensError(f"--row {args.row} is out of range: {args.csv} has data rows 0..{len(rows) - 1}")
    X = model_table(model, header, rows[args.row:args.row + 1], args.csv)
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
        description="FOLD-SE-M rule learning on CSV tables (§6.5): train a rule-set, "
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
    t.add_argument("--mode", choices=("fold-se-m", "fold-rm"), default="fold-se-m",
                   help="fold-se-m (default) or fold-rm (FOLD-RM as published: no tail)")
    t.add_argument("--positive-class", default="auto", metavar="C",
                   help="binary convention: learn rules for class C only, the other is the default "
                        "(default 'auto': the less frequent of two classes; 'none': rules for every class)")
    t.add_argument("--default-class", default=None, help="class when no rule fires (default: majority "
                                                          "of the uncovered training rows)")
    t.add_argument("--class-order", choices=("frequent", "best"), default="frequent",
                   help="multi-class driver: next rule for the most frequent class left (default) or "
                        "the class whose rule has the largest net coverage")
    t.add_argument("--prune", type=float, default=None, metavar="A",
                   help="post-prune: drop rules/exceptions while each costs <= A training rows per "
                        "literal saved (default: off; 1.0 halves binarized digits' program)")
    t.add_argument("--no-catch-all", dest="catch_all", action="store_false",
                   help="multi-class driver: drop a rule whose body ends up empty and leave the rows "
                        "no class takes to the default class (default: keep it, so a rule covers "
                        "every training row, as FOLD-RM)")
    opt.add_out(t, "model JSON file to write", metavar="FILE", kind="file")
    t.set_defaults(func=cmd_train)

    pr = sub.add_parser("predict", help="apply a rule-set to a CSV table",
                        description="Predict every row; writes CSV with row, prediction and the program "
                                    "line of the rule that fired ('default' when none did).")
    pr.add_argument("--model", required=True, help="model JSON written by 'fold train'")
    pr.add_argument("--csv", required=True, help="table with the model's feature columns")
    opt.add_out(pr, "CSV file to write (default: standard output)", required=False, metavar="FILE", kind="file")
    pr.set_defaults(func=cmd_predict)

    ex = sub.add_parser("explain", help="justify the prediction for one row",
                        description="Justify one row's prediction in the s(CASP) style (NESY Fig. 3).")
    ex.add_argument("--model", required=True, help="model JSON written by 'fold train'")
    ex.add_argument("--csv", required=True, help="table with the model's feature columns")
    ex.add_argument("--row", type=int, required=True, help="data row to explain (0 = first after header)")
    ex.add_argument("--name", default="img", help="constant naming the example in the text (default img)")
    ex.add_argument("--json", action="store_true", help="print the justification as JSON")
    ex.set_defaults(func=cmd_explain)
