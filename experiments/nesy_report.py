"""Markdown tables (NESY Tables 1 and 2 layout) from experiments/nesy_reproduction.py results.

    python experiments/nesy_report.py experiments/results/nesy/results.json
"""
from __future__ import annotations

import json
import sys
from collections import defaultdict

import numpy as np

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from nesy_reproduction import PAPER_T1, PAPER_T2, STRATEGIES  # noqa: E402


def _ms(vals: list[float], pct: bool = True) -> str:
    a = np.asarray(vals, float) * (100 if pct else 1)
    if len(a) == 1:
        return f"{a[0]:.1f}" if pct else f"{a[0]:.0f}"
    return f"{a.mean():.1f} ± {a.std(ddof=1):.1f}" if pct else f"{a.mean():.1f} ± {a.std(ddof=1):.1f}"


def main(path: str) -> None:
    res = json.load(open(path))
    runs = res["runs"]
    by = defaultdict(list)
    for r in runs:
        by[(r["subset"], r["strategy"])].append(r)
    subsets = list(dict.fromkeys(r["subset"] for r in runs))
    print("| strategy | " + " | ".join(f"{s}: NeSy acc % / size (paper)" for s in subsets) + " |")
    print("|---|" + "---|" * len(subsets))
    for st in STRATEGIES:
        cells = []
        for s in subsets:
            rs = by.get((s, st))
            if not rs:
                cells.append("–")
                continue
            paper = PAPER_T1.get(st, {}).get(s)
            ptxt = f" ({paper[0]} / {paper[1]})" if paper else ""
            cells.append(f"{_ms([r['accuracy'] for r in rs])} / {_ms([r['size'] for r in rs], False)}{ptxt}")
        print(f"| {st} | " + " | ".join(cells) + " |")
    print()
    print("| strategy | " + " | ".join(f"{s}: CNN acc % / fidelity % (paper)" for s in subsets) + " |")
    print("|---|" + "---|" * len(subsets))
    for st in STRATEGIES:
        cells = []
        for s in subsets:
            rs = by.get((s, st))
            if not rs:
                cells.append("–")
                continue
            paper = PAPER_T2.get(st, {}).get(s)
            ptxt = f" ({paper[0]} / {paper[1]})" if paper else ""
            cells.append(f"{_ms([r['cnn_accuracy'] for r in rs])} / {_ms([r['fidelity'] for r in rs])}{ptxt}")
        print(f"| {st} | " + " | ".join(cells) + " |")
    print()
    print("| subset | strategy | no-fire / n | acc. with FOLD default % | fid. with FOLD default % | #rules | #filters | near-binary share | train s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for s in subsets:
        for st in STRATEGIES:
            for r in by.get((s, st), []):
                print(f"| {s} | {st} | {r['no_fire']} / {r['n']} | {100 * r.get('accuracy_fold_default', float('nan')):.1f} | "
                      f"{100 * r.get('fidelity_fold_default', float('nan')):.1f} | {r['n_rules']} | {r['n_filters']} | "
                      f"{r['near_binary']:.3f} | {r['train_seconds']} |")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "experiments/results/nesy/results.json")
