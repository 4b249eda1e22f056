"""FOLD-SE-M accuracy on real tables that ship with scikit-learn (EXPERIMENTS.md, "FOLD-SE-M").

Tables: breast cancer (569 × 30 numeric, 2 classes), wine (178 × 13 numeric, 3), iris
(150 × 4 numeric, 3), digits binarized (1797 × 64 pixels, pixel > 7 → 1, 10 classes).
For each of ``--seeds`` stratified 80/20 splits, on the same split: cnnlens ``FoldSEM``
(ratio 0.8, tail 5e-3 as in NESY; tail 0 = no pruning; the options ``class_order="best",
prune=1.0`` (issue 13's digits goal); ``mode="fold-rm"``; on the two-class table
also ``positive_class=None`` = rules for both classes instead of the binary convention), scikit-learn
``DecisionTreeClassifier(random_state=seed)``, and — when
installed (``pip install --no-deps foldrm foldrpp``) — the ``foldrm`` (FOLD-RM, multi-class)
and ``foldrpp`` (FOLD-R++, binary: breast cancer only, positive class = "malignant") reference
packages run as black boxes with the same ratio. Reports mean ± std test accuracy, rules (all
rules incl. exceptions; tree: leaves), size (body literals incl. ``not abN``; tree: sum of leaf
depths = literals of the equivalent rule-set), and fit seconds; prints a markdown table.

    python experiments/fold_tables.py [--seeds 3] [--skip-reference]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np


def load_tables() -> dict[str, tuple[np.ndarray, np.ndarray, list[str]]]:
    from sklearn import datasets

    out = {}
    bc = datasets.load_breast_cancer()
    out["breast cancer"] = (bc.data, bc.target_names[bc.target], [f"a{j}" for j in range(bc.data.shape[1])])
    w = datasets.load_wine()
    out["wine"] = (w.data, w.target_names[w.target], [f"a{j}" for j in range(w.data.shape[1])])
    ir = datasets.load_iris()
    out["iris"] = (ir.data, ir.target_names[ir.target], [f"a{j}" for j in range(ir.data.shape[1])])
    dg = datasets.load_digits()
    out["digits (binarized)"] = ((dg.data > 7).astype(np.uint8), dg.target.astype(str),
                                 [f"p{j}" for j in range(dg.data.shape[1])])
    return out


def run_ours(Xtr, ytr, Xte, yte, names, tail: float = 5e-3, **params) -> dict:
    from cnnlens.nesy import FoldSEM

    t = time.perf_counter()
    m = FoldSEM(ratio=0.8, tail=tail, **params).fit(Xtr, ytr, feature_names=names)
    fit = time.perf_counter() - t
    return {"acc": float((m.predict(Xte) == yte).mean()), "rules": m.rules_.n_rules,
            "size": m.rules_.size, "fit": fit}


def run_tree(Xtr, ytr, Xte, yte, seed) -> dict:
    from sklearn.tree import DecisionTreeClassifier

    t = time.perf_counter()
    dt = DecisionTreeClassifier(random_state=seed).fit(Xtr, ytr)
    fit = time.perf_counter() - t
    tree = dt.tree_
    depth = np.zeros(tree.node_count, dtype=int)
    for i in range(tree.node_count):  # children have larger ids than parents
        for c in (tree.children_left[i], tree.children_right[i]):
            if c >= 0:
                depth[c] = depth[i] + 1
    leaves = tree.children_left < 0
    return {"acc": float(dt.score(Xte, yte)), "rules": int(leaves.sum()), "size": int(depth[leaves].sum()),
            "fit": fit}


def run_foldrm(Xtr, ytr, Xte, yte, binary: bool) -> dict:
    import foldrm

    def rows(X, y):
        conv = (lambda v: int(v)) if binary else float
        return [[conv(v) for v in r] + [str(lab)] for r, lab in zip(X, y)]

    tr, te = rows(Xtr, ytr), rows(Xte, yte)
    t = time.perf_counter()
    rules = foldrm.foldrm(tr, ratio=0.8)
    fit = time.perf_counter() - t
    pred = foldrm.predict(rules, te)
    flat = foldrm.flatten_rules(rules)
    size = sum(len(r[1]) + len(r[2]) for r in flat)
    return {"acc": float(np.mean([p == lab for p, lab in zip(pred, yte)])), "rules": len(flat),
            "size": size, "fit": fit}


def run_foldrpp(Xtr, ytr, Xte, yte, names, pos) -> dict:
    import foldrpp

    def rows(X, y):
        return [{**{n: float(v) for n, v in zip(names, r)}, "label": int(lab == pos)} for r, lab in zip(X, y)]

    tr, te = rows(Xtr, ytr), rows(Xte, yte)
    model = foldrpp.Foldrpp(str_attrs=[], num_attrs=list(names), label="label", pos_val="1")
    t = time.perf_counter()
    model.fit(tr, ratio=0.8)
    fit = time.perf_counter() - t
    pred = model.predict(te)
    acc = float(np.mean([bool(p) == bool(x["label"]) for p, x in zip(pred, te)]))
    asp = model.asp()
    size = 0
    for line in asp:  # FOLD-R++ prints numeric literals as 'a3(X,N1),N1>0.5': count atoms in the body
        body = line.split(":-", 1)[1] if ":-" in line else ""
        size += sum(1 for part in _split_body(body) if not part.strip().startswith("N"))
    return {"acc": acc, "rules": len(asp), "size": size, "fit": fit}


def _split_body(body: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    for ch in body.strip().rstrip("."):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        parts.append(cur)
    return parts


def fmt(vals: list[float], pct: bool = False) -> str:
    m = statistics.mean(vals)
    s = statistics.pstdev(vals) if len(vals) > 1 else 0.0
    return f"{100 * m:.1f} ± {100 * s:.1f}" if pct else f"{m:.1f}"


def main(argv: list[str] | None = None) -> int:
    from sklearn.model_selection import train_test_split

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--skip-reference", action="store_true", help="do not run foldrm / foldrpp")
    args = ap.parse_args(argv)
    have_rm = have_rpp = False
    if not args.skip_reference:
        try:
            import foldrm  # noqa: F401
            have_rm = True
        except ImportError:
            print("# foldrm not installed; skipping it", file=sys.stderr)
        try:
            import foldrpp  # noqa: F401
            have_rpp = True
        except ImportError:
            print("# foldrpp not installed; skipping it", file=sys.stderr)

    print(f"# {args.seeds} stratified 80/20 splits (seeds 0..{args.seeds - 1}); test accuracy mean ± std (%)")
    print()
    print("| table | learner | test acc % | rules | size | fit s |")
    print("|---|---|---|---|---|---|")
    for tname, (X, y, names) in load_tables().items():
        res: dict[str, list[dict]] = {}
        binary = X.dtype == np.uint8
        for seed in range(args.seeds):
            Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.2, random_state=seed, stratify=y)
            res.setdefault("cnnlens FoldSEM", []).append(run_ours(Xtr, ytr, Xte, yte, names))
            res.setdefault("cnnlens FoldSEM, tail 0", []).append(run_ours(Xtr, ytr, Xte, yte, names, 0.0))
            res.setdefault("cnnlens FoldSEM class_order=best, prune=1", []).append(
                run_ours(Xtr, ytr, Xte, yte, names, class_order="best", prune=1.0))
            res.setdefault("cnnlens FoldSEM mode=fold-rm", []).append(
                run_ours(Xtr, ytr, Xte, yte, names, mode="fold-rm"))
            if len(set(ytr)) == 2:
                res.setdefault("cnnlens FoldSEM, rules for both classes", []).append(
                    run_ours(Xtr, ytr, Xte, yte, names, positive_class=None))
            res.setdefault("DecisionTree", []).append(run_tree(Xtr, ytr, Xte, yte, seed))
            if have_rm:
                res.setdefault("foldrm 0.0.2", []).append(run_foldrm(Xtr, ytr, Xte, yte, binary))
            if have_rpp and tname == "breast cancer":
                res.setdefault("foldrpp 0.0.2", []).append(run_foldrpp(Xtr, ytr, Xte, yte, names, "malignant"))
        for learner, rs in res.items():
            print(f"| {tname} | {learner} | {fmt([r['acc'] for r in rs], True)} | "
                  f"{fmt([r['rules'] for r in rs])} | {fmt([r['size'] for r in rs])} | "
                  f"{statistics.mean(r['fit'] for r in rs):.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
