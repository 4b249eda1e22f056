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
    seeds = sorted({r["seed"] for r in runs})
    print(f"Seeds {seeds}; cells: mean ± std over seeds (ddof 1); (paper); mean = the mean over our "
          "subsets of the per-subset means, next to the paper's MS (mean over its 7 datasets).\n")

    def mean_cell(st: str, key: str, pct: bool, table: dict, j: int) -> str:
        per = [np.mean([r[key] for r in by[(s, st)]]) for s in subsets if by.get((s, st))]
        if not per:
            return "–"
        v = np.mean(per) * (100 if pct else 1)
        paper = table.get(st, {}).get("MS")
        return f"{v:.1f}" + (f" ({paper[j]})" if paper else "")

    print("| strategy | " + " | ".join(f"{s}: NeSy acc % / size (paper)" for s in subsets)
          + " | mean acc % (MS) | mean size (MS) |")
    print("|---|" + "---|" * (len(subsets) + 2))
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
        cells += [mean_cell(st, "accuracy", True, PAPER_T1, 0), mean_cell(st, "size", False, PAPER_T1, 1)]
        print(f"| {st} | " + " | ".join(cells) + " |")
    print()
    print("| strategy | " + " | ".join(f"{s}: CNN acc % / fidelity % (paper)" for s in subsets)
          + " | mean CNN acc % (MS) | mean fidelity % (MS) |")
    print("|---|" + "---|" * (len(subsets) + 2))
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
        cells += [mean_cell(st, "cnn_accuracy", True, PAPER_T2, 0), mean_cell(st, "fidelity", True, PAPER_T2, 1)]
        print(f"| {st} | " + " | ".join(cells) + " |")
    print()
    print("Diagnostics, mean over seeds: share of test images on which no rule fires; NeSy accuracy and "
          "fidelity if those got FOLD-SE-M's default class (not the NeSy metric); #rules; #filters in the "
          "rules; share of sigmoid(Norm − θ) within 0.1 of 0 or 1 on the test images; training seconds.\n")
    print("| subset | strategy | no-fire % | acc. with FOLD default % | fid. with FOLD default % | #rules | #filters "
          "| near-binary share | train s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for s in subsets:
        for st in STRATEGIES:
            rs = by.get((s, st), [])
            if not rs:
                continue
            m = lambda k: float(np.mean([r.get(k, float("nan")) for r in rs]))  # noqa: E731
            nf = float(np.mean([r["no_fire"] / r["n"] for r in rs]))
            print(f"| {s} | {st} | {100 * nf:.1f} | {100 * m('accuracy_fold_default'):.1f} | "
                  f"{100 * m('fidelity_fold_default'):.1f} | {m('n_rules'):.1f} | {m('n_filters'):.1f} | "
                  f"{m('near_binary'):.3f} | {m('train_seconds'):.0f} |")

if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "experiments/results/nesy/results.json")
