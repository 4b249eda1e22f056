"""Many-class study for FOLD-SE-M's defaults (issue 13, item 2; EXPERIMENTS.md).

Why does ``tail=5e-3`` cost accuracy on tables with many classes, and which driver keeps programs
small *and* accurate? For each table and each of ``--seeds`` stratified 80/20 splits, the same
split is learned by driver variants of :class:`cnnlens.nesy.FoldSEM` (its parameters ``tail_base``,
``reopen_classes``, ``exception_tail`` and ``remove_covered_negatives``):

* ``train/close``: the original driver: a class rule must cover ``tail·n_train`` positives, and a
  class whose rule is smaller is closed for good;
* ``train/retry``: same threshold, but a closed class is reopened after every accepted rule;
* ``left/close``: the threshold counts the examples still left (``tail·|left|``);
* ``left/retry``: both;
* ``left/retry`` with covered negatives kept (FOLD-RM's driver), with the exception tail also
  counted on the examples left (the new default), or with no tail on exception rule sets;
* ``tail=0`` and ``mode="fold-rm"`` (ratio 0.5 as the ``foldrm`` package) for reference.

With ``--pruning`` it runs the post-pruning / class-order study instead (issue 13, the digits goal
"≥ 0.86 at size ≤ 120"): the public options ``prune`` (greedy post-pruning, alpha = training rows
lost per literal saved) and ``class_order="best"`` (next rule for the class whose rule has the
largest net coverage), swept over alpha, plus sklearn's iris and breast cancer (all classes get
rules there, ``positive_class=None``).

With ``--defaults-search`` it runs the search for *default* settings that would reach the digits
goal (EXPERIMENTS.md, "Search for default settings"): combinations of ``ratio``, ``tail``,
``prune`` and ``class_order`` at every other parameter's default (breast cancer with the binary
convention, as the defaults do), next to the current defaults and ``mode="fold-rm"``.
``--tables digits,gen-10`` restricts any study to the tables whose names start with those words.

Besides accuracy and size it reports where the test rows go: the share that falls to the default
class ("dflt%"), and the training positives left uncovered. Tables: binarized sklearn digits
(10 classes), sklearn wine/iris, and generated many-class tables (``gen-K``: K classes, 0/1
features, class-specific prototypes with 15% bit noise; and ``gmix-K``: K Gaussian classes in 8
continuous dimensions).

    python experiments/fold_manyclass.py [--seeds 3] [--pruning | --defaults-search] [--tables digits]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np


def tables(seed: int = 0) -> dict:
    from sklearn import datasets

    out = {}
    dg = datasets.load_digits()
    out["digits (binarized)"] = ((dg.data > 7).astype(np.uint8), dg.target)
    w = datasets.load_wine()
    out["wine"] = (w.data, w.target)
    rng = np.random.default_rng(1234)
    for K in (10, 26):
        proto = (rng.random((K, 48)) < 0.35).astype(np.uint8)
        y = rng.integers(0, K, size=200 * K)
        X = proto[y] ^ (rng.random((len(y), 48)) < 0.15).astype(np.uint8)
        out[f"gen-{K} (0/1)"] = (X, y)
    K = 12
    centers = rng.normal(0, 2.0, size=(K, 8))
    y = rng.integers(0, K, size=150 * K)
    X = np.round(centers[y] + rng.normal(0, 1.0, size=(len(y), 8)), 2)
    out[f"gmix-{K} (numeric)"] = (X, y)
    return out


VARIANTS = [
    ("train/close (old default)", dict(tail_base="train", reopen_classes=False, exception_tail="train")),
    ("train/retry", dict(tail_base="train", reopen_classes=True, exception_tail="train")),
    ("left/close", dict(tail_base="left", reopen_classes=False, exception_tail="train")),
    ("left/retry", dict(tail_base="left", reopen_classes=True, exception_tail="train")),
    ("left/retry, keep covered negatives", dict(remove_covered_negatives=False, exception_tail="train")),
    ("left/retry, exceptions tail·left (new default)", dict(exception_tail="left")),
    ("left/retry, no exception tail", dict(exception_tail="none")),
    ("tail=0", {"tail": 0.0}),
    ("mode=fold-rm r=0.5 (FOLD-RM)", {"mode": "fold-rm", "ratio": 0.5}),
    ("mode=fold-rm r=0.8", {"mode": "fold-rm", "ratio": 0.8}),
]


PRUNING_VARIANTS = [
    ("defaults", {}),
    *[(f"prune={a:g}", {"prune": a}) for a in (0.5, 1.0, 1.5, 2.0)],
    ("class_order=best", {"class_order": "best"}),
    *[(f"class_order=best, prune={a:g}", {"class_order": "best", "prune": a})
      for a in (0.5, 1.0, 1.5)],
    *[(f"class_order=best, tail=0, prune={a:g}", {"class_order": "best", "tail": 0.0, "prune": a})
      for a in (1.0, 1.5)],
    *[(f"tail={t:g}", {"tail": t}) for t in (0.01, 0.02)],
]


SEARCH_VARIANTS = [
    ("defaults", {}),
    ("tail=0", {"tail": 0.0}),
    *[(f"tail=0, prune={a:g}", {"tail": 0.0, "prune": a}) for a in (0.5, 1.0, 1.5)],
    *[(f"ratio=0.5, tail=0, prune={a:g}", {"ratio": 0.5, "tail": 0.0, "prune": a})
      for a in (1.0, 1.25, 1.5)],
    ("ratio=0.6, tail=0, prune=1", {"ratio": 0.6, "tail": 0.0, "prune": 1.0}),
    ("ratio=0.6, tail=1e-3, prune=1", {"ratio": 0.6, "tail": 1e-3, "prune": 1.0}),
    ("ratio=0.6, prune=1", {"ratio": 0.6, "prune": 1.0}),
    ("class_order=best, tail=0, prune=0.75", {"class_order": "best", "tail": 0.0, "prune": 0.75}),
    ("class_order=best, tail=0, prune=1", {"class_order": "best", "tail": 0.0, "prune": 1.0}),
    ("mode=fold-rm r=0.5 (FOLD-RM)", {"mode": "fold-rm", "ratio": 0.5}),
]


def pruning_tables() -> dict:
    from sklearn import datasets

    out = tables()
    ir = datasets.load_iris()
    out["iris"] = (ir.data, ir.target)
    bc = datasets.load_breast_cancer()
    out["breast cancer (both classes)"] = (bc.data, bc.target)
    return out


def run(X, y, Xt, yt, params: dict) -> dict:
    from cnnlens.nesy import FoldSEM

    t = time.perf_counter()
    m = FoldSEM(**params).fit(X, y)
    fit = time.perf_counter() - t
    r = m.predict_rule(Xt)
    return {"acc": float((m.predict(Xt) == yt).mean()), "size": m.rules_.size,
            "rules": m.rules_.n_rules, "dflt": float((r < 0).mean()),
            "uncov": m.n_uncovered_train_ / len(y), "fit": fit}


def main(argv=None) -> int:
    from sklearn.model_selection import train_test_split

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--pruning", action="store_true",
                    help="post-pruning / class-order study (options prune, class_order) instead")
    ap.add_argument("--defaults-search", action="store_true",
                    help="search for default settings reaching the digits goal (EXPERIMENTS.md)")
    ap.add_argument("--tables", default="",
                    help="comma-separated name prefixes of the tables to run (default: all)")
    args = ap.parse_args(argv)
    if args.pruning and args.defaults_search:
        ap.error("--pruning and --defaults-search are two different studies; pick one")
    search = args.defaults_search
    variants = SEARCH_VARIANTS if search else PRUNING_VARIANTS if args.pruning else VARIANTS
    prefixes = [t.strip() for t in args.tables.split(",") if t.strip()]
    all_tables = pruning_tables() if (args.pruning or search) else tables()
    if search:  # the defaults: the binary convention on the two-class table
        all_tables["breast cancer"] = all_tables.pop("breast cancer (both classes)")
    rows = []
    for name, (X, y) in all_tables.items():
        if prefixes and not any(name.startswith(p) for p in prefixes):
            continue
        res = {v[0]: [] for v in variants}
        for seed in range(args.seeds):
            Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.2, stratify=y, random_state=seed)
            for vname, params in variants:
                if args.pruning:
                    params = {"positive_class": None, **params}
                res[vname].append(run(Xtr, ytr, Xte, yte, params))
        for vname, rs in res.items():
            def m(k):
                return statistics.mean(r[k] for r in rs)
            rows.append((name, vname, m("acc"), statistics.pstdev(r["acc"] for r in rs), m("size"),
                         m("rules"), m("dflt"), m("uncov"), m("fit")))
            print(f"{name:22s} {vname:22s} acc {m('acc'):.4f} size {m('size'):6.1f} rules {m('rules'):6.1f} "
                  f"dflt {100*m('dflt'):5.1f}% uncov-train {100*m('uncov'):5.1f}% fit {m('fit'):.2f}s",
                  file=sys.stderr, flush=True)
    print(f"\n{args.seeds} stratified 80/20 splits per table (seeds 0..{args.seeds - 1}); mean test accuracy ± std.\n")
    print("| table | driver | test acc | size | rules | test rows to default | train rows uncovered | fit s |")
    print("|---|---|---|---|---|---|---|---|")
    for name, v, acc, sd, size, nr, dflt, unc, fit in rows:
        print(f"| {name} | {v} | {acc:.4f} ± {sd:.4f} | {size:.1f} | {nr:.1f} | {100*dflt:.1f}% | {100*unc:.1f}% | {fit:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
