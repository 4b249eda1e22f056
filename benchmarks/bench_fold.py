"""FOLD-SE-M fit time: cnnlens.nesy.FoldSEM vs the ``foldrm`` PyPI package (FOLD-RM reference, MIT).

Both learners see the same generated table in one run: ``n`` × ``d`` 0/1 features (15% ones),
labels = argmax(2·X[:, :10] + uniform noise) over 10 classes, ratio 0.8, plus a held-out test
table from the same generator. Prints a markdown table (fit seconds, speed-up, train/test
accuracy, rules, size) — see BENCHMARKS.md.

    python benchmarks/bench_fold.py [--n 10000] [--d 512] [--runs 3] [--skip-foldrm]
    python benchmarks/bench_fold.py --table numeric [--n 20000] [--d 16]   # issue 13 item 5

``--table numeric``: ``n`` × ``d`` continuous features (normal × 100, rounded to 3 decimals, so
~n distinct thresholds per column), 3 classes = argmax of a random linear map + Gaussian noise.
Ours runs twice: ``mode="fold-rm"`` with foldrm's ratio 0.5 (same algorithm — the script checks
that both learn the same rule tree) and the FOLD-SE-M defaults.

``foldrm`` is run as a black box through its public ``foldrm(data, ratio)`` / ``predict``
functions (install it with ``pip install --no-deps foldrm``); its rows are lists of feature
values with the label last. Its unmatched predictions (``None``) count as wrong.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

import numpy as np


def make_table(n: int, d: int, n_classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = (rng.random((n, d)) < 0.15).astype(np.uint8)
    y = np.argmax(2 * X[:, :n_classes] + rng.random((n, n_classes)), axis=1)
    return X, y


def make_numeric_table(n: int, d: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = np.round(rng.normal(size=(n, d)) * 100, 3)
    w = np.random.default_rng(12345).normal(size=(d, 3))
    y = np.argmax(X @ w / 100 + rng.normal(scale=1.0, size=(n, 3)), axis=1)
    return X, y


def run_ours(X, y, Xt, yt, ratio: float, **params) -> dict:
    from cnnlens.nesy import FoldSEM

    t0 = time.perf_counter()
    m = FoldSEM(ratio=ratio, **params).fit(X, y)
    fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    acc_test = float((m.predict(Xt) == yt).mean())
    pred_s = time.perf_counter() - t0
    return {
        "fit_s": fit_s,
        "predict_s": pred_s,
        "train_acc": float((m.predict(X) == y).mean()),
        "test_acc": acc_test,
        "n_rules": m.rules_.n_rules,
        "n_target_rules": len(m.rules_.target_rules),
        "size": m.rules_.size,
        "model": m,
    }


def run_foldrm(X, y, Xt, yt, ratio: float) -> dict:
    import foldrm

    cast = int if X.dtype.kind in "biu" else float
    data = [list(map(cast, row)) + [str(int(lab))] for row, lab in zip(X, y)]
    test = [list(map(cast, row)) + [str(int(lab))] for row, lab in zip(Xt, yt)]
    t0 = time.perf_counter()
    rules = foldrm.foldrm(data, ratio=ratio)
    fit_s = time.perf_counter() - t0

    def acc(rows, labels) -> float:
        pred = foldrm.predict(rules, rows)
        return float(np.mean([p == str(int(t)) for p, t in zip(pred, labels)]))

    t0 = time.perf_counter()
    acc_test = acc(test, yt)
    pred_s = time.perf_counter() - t0
    flat = foldrm.flatten_rules(rules)
    size = sum(_foldrm_rule_size(r) for r in flat)
    return {
        "fit_s": fit_s,
        "predict_s": pred_s,
        "train_acc": acc(data, y),
        "test_acc": acc_test,
        "n_rules": len(flat),
        "n_target_rules": len(rules),
        "size": size,
        "rules": rules,
    }


def same_rules(model, rules) -> bool:
    """Does the FoldSEM model hold exactly foldrm's rule tree (classes, literals, exceptions)?"""
    rs = model.rules_
    by_head: dict = {}
    for r in rs.rules:
        if not r.is_target:
            by_head.setdefault(r.head, []).append(r)

    def ours(r):
        items = tuple((int(lt.name[1:]), lt.op, float(lt.value)) for lt in r.body if not lt.name.startswith("ab"))
        exc = tuple(ours(e) for lt in r.body if lt.name.startswith("ab") for e in by_head.get(lt.name, ()))
        return items, exc

    def theirs(r):
        return tuple((i, op, float(v)) for i, op, v in r[1]), tuple(theirs(e) for e in r[2])

    a = [(str(r.cls),) + ours(r) for r in rs.target_rules]
    b = [(str(r[0][2]),) + theirs(r) for r in rules]
    return a == b


def _foldrm_rule_size(rule) -> int:
    """Body literals of one flattened foldrm rule (head, default items, exception refs, …)."""
    # flattened rules are tuples (head, body_items, exception_refs, flag); count items + refs
    body = rule[1] if len(rule) > 1 else []
    excs = rule[2] if len(rule) > 2 else []
    return len(body) + len(excs)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--d", type=int, default=512)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--ratio", type=float, default=0.8)
    ap.add_argument("--runs", type=int, default=3, help="runs of ours (foldrm runs once: it is slow)")
    ap.add_argument("--foldrm-runs", type=int, default=1)
    ap.add_argument("--skip-foldrm", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--table", choices=("binary", "numeric"), default="binary")
    args = ap.parse_args(argv)
    if args.table == "numeric":
        return numeric_main(args)

    X, y = make_table(args.n, args.d, args.classes, args.seed)
    Xt, yt = make_table(args.n // 5, args.d, args.classes, args.seed + 1)
    print(f"# FOLD-SE-M benchmark: {args.n} x {args.d} 0/1 table, {args.classes} classes, "
          f"ratio {args.ratio}, test {len(yt)} rows", flush=True)
    print(f"# machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"numpy {np.__version__}, load average before: {os.getloadavg()[0]:.2f}", flush=True)

    ours = [run_ours(X, y, Xt, yt, args.ratio) for _ in range(args.runs)]
    rows = [("cnnlens FoldSEM", ours)]
    if not args.skip_foldrm:
        try:
            import foldrm  # noqa: F401
        except ImportError:
            print("# foldrm not installed (pip install --no-deps foldrm); skipping it", file=sys.stderr)
        else:
            rows.append(("foldrm 0.0.2", [run_foldrm(X, y, Xt, yt, args.ratio) for _ in range(args.foldrm_runs)]))

    base = statistics.median(r["fit_s"] for r in ours)
    print(f"# load average after: {os.getloadavg()[0]:.2f}")
    print()
    print("| learner | runs | fit s (median) | fit s (min–max) | speed-up | train acc | test acc "
          "| rules (target) | size |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, res in rows:
        fits = [r["fit_s"] for r in res]
        med = statistics.median(fits)
        r0 = res[0]
        print(f"| {name} | {len(res)} | {med:.2f} | {min(fits):.2f}–{max(fits):.2f} | "
              f"{med / base:.1f}× slower than ours | {r0['train_acc']:.4f} | {r0['test_acc']:.4f} | "
              f"{r0['n_rules']} ({r0['n_target_rules']}) | {r0['size']} |"
              if name != "cnnlens FoldSEM" else
              f"| {name} | {len(res)} | {med:.2f} | {min(fits):.2f}–{max(fits):.2f} | 1.0× | "
              f"{r0['train_acc']:.4f} | {r0['test_acc']:.4f} | {r0['n_rules']} ({r0['n_target_rules']}) | "
              f"{r0['size']} |")
    return 0


def numeric_main(args) -> int:
    n = args.n if args.n != 10_000 else 20_000
    d = args.d if args.d != 512 else 16
    X, y = make_numeric_table(n, d, args.seed)
    Xt, yt = make_numeric_table(n // 5, d, args.seed + 1)
    print(f"# FOLD fit time on a {n} x {d} continuous table (3 classes), test {len(yt)} rows", flush=True)
    print(f"# machine: {platform.machine()}, {os.cpu_count()} CPUs (shared), Python {platform.python_version()}, "
          f"numpy {np.__version__}, load average before: {os.getloadavg()[0]:.2f}", flush=True)
    rows = [("cnnlens FoldSEM mode=fold-rm, ratio 0.5",
             [run_ours(X, y, Xt, yt, 0.5, mode="fold-rm") for _ in range(args.runs)]),
            ("cnnlens FoldSEM defaults (ratio 0.8, tail 5e-3)",
             [run_ours(X, y, Xt, yt, 0.8) for _ in range(args.runs)])]
    ref = None
    if not args.skip_foldrm:
        ref = [run_foldrm(X, y, Xt, yt, 0.5) for _ in range(args.foldrm_runs)]
        rows.append(("foldrm 0.0.2, ratio 0.5", ref))
    print(f"# load average after: {os.getloadavg()[0]:.2f}")
    if ref is not None:
        print(f"# mode=fold-rm learns the same rule tree as foldrm: {same_rules(rows[0][1][0]['model'], ref[0]['rules'])}")
    base = statistics.median(r["fit_s"] for r in ref) if ref else None
    print()
    print("| learner | runs | fit s (median) | fit s (min–max) | foldrm time / this | train acc | test acc "
          "| rules (target) | size |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, res in rows:
        fits = [r["fit_s"] for r in res]
        med = statistics.median(fits)
        r0 = res[0]
        sp = f"{base / med:.1f}×" if base else "–"
        print(f"| {name} | {len(res)} | {med:.2f} | {min(fits):.2f}–{max(fits):.2f} | {sp} | "
              f"{r0['train_acc']:.4f} | {r0['test_acc']:.4f} | {r0['n_rules']} ({r0['n_target_rules']}) | "
              f"{r0['size']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
