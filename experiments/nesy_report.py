"""Markdown tables (NESY Tables 1 and 2 layout) and convergence plots from
experiments/nesy_reproduction.py results files — the single source of the NESY tables in
EXPERIMENTS.md (tests/nesy/test_nesy_tables.py recomputes them).

    python experiments/nesy_report.py experiments/results/nesy/results.json
    python experiments/nesy_report.py NEW.json --old OLD.json --subsets P2 P3.1   # old vs new
    python experiments/nesy_report.py CONV.json --convergence --plots experiments/results/nesy_conv
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from nesy_reproduction import PAPER_T1, PAPER_T2, STRATEGIES  # noqa: E402


def _ms(vals: list[float], pct: bool = True) -> str:
    a = np.asarray(vals, float) * (100 if pct else 1)
    if len(a) == 1:
        return f"{a[0]:.1f}" if pct else f"{a[0]:.0f}"
    return f"{a.mean():.1f} ± {a.std(ddof=1):.1f}"


def _group(runs: list[dict]) -> dict:
    by = defaultdict(list)
    for r in runs:
        by[(r["subset"], r["strategy"])].append(r)
    return by


def tables(res: dict, subsets: list[str] | None = None) -> str:
    """Tables 1 and 2 and the diagnostics table (markdown) of a results file."""
    runs = res["runs"]
    by = _group(runs)
    subsets = subsets or list(dict.fromkeys(r["subset"] for r in runs))
    seeds = sorted({r["seed"] for r in runs})
    out = [f"Seeds {seeds}; cells: mean ± std over seeds (ddof 1); (paper); mean = the mean over our "
           "subsets of the per-subset means, next to the paper's MS (mean over its 7 datasets).", ""]

    def mean_cell(st: str, key: str, pct: bool, table: dict, j: int) -> str:
        per = [np.mean([r[key] for r in by[(s, st)]]) for s in subsets if by.get((s, st))]
        if not per:
            return "–"
        v = np.mean(per) * (100 if pct else 1)
        paper = table.get(st, {}).get("MS")
        return f"{v:.1f}" + (f" ({paper[j]})" if paper else "")

    for table, keys, what in ((PAPER_T1, ("accuracy", "size"), "NeSy acc % / size"),
                              (PAPER_T2, ("cnn_accuracy", "fidelity"), "CNN acc % / fidelity %")):
        head = "mean acc % (MS) | mean size (MS)" if table is PAPER_T1 else "mean CNN acc % (MS) | mean fidelity % (MS)"
        out.append("| strategy | " + " | ".join(f"{s}: {what} (paper)" for s in subsets) + f" | {head} |")
        out.append("|---|" + "---|" * (len(subsets) + 2))
        for st in STRATEGIES:
            if not any(by.get((s, st)) for s in subsets):
                continue
            cells = []
            for s in subsets:
                rs = by.get((s, st))
                if not rs:
                    cells.append("–")
                    continue
                paper = table.get(st, {}).get(s)
                ptxt = f" ({paper[0]} / {paper[1]})" if paper else ""
                second_pct = keys[1] != "size"
                cells.append(f"{_ms([r[keys[0]] for r in rs])} / {_ms([r[keys[1]] for r in rs], second_pct)}{ptxt}")
            cells += [mean_cell(st, keys[0], True, table, 0), mean_cell(st, keys[1], keys[1] != "size", table, 1)]
            out.append(f"| {st} | " + " | ".join(cells) + " |")
        out.append("")
    out.append("Diagnostics, mean over seeds: share of test images on which no rule fires; NeSy accuracy if "
               "those got FOLD-SE-M's default class (not the NeSy metric); #rules; #filters in the rules; "
               "share of σ(Norm − θ) within 0.1 of 0 or 1 on the test images and its ceiling (the share of "
               "(image, filter) pairs whose target is 1 or whose θ_j ≥ ln 9); epochs run (min–max); "
               "training seconds.")
    out.append("")
    out.append("| subset | strategy | no-fire % | acc. with FOLD default % | #rules | #filters "
               "| near-binary share | ceiling | epochs | train s |")
    out.append("|---|---|---|---|---|---|---|---|---|---|")
    for s in subsets:
        for st in STRATEGIES:
            rs = by.get((s, st), [])
            if not rs:
                continue
            m = lambda k: float(np.mean([r.get(k, float("nan")) for r in rs]))  # noqa: E731
            nf = float(np.mean([r["no_fire"] / r["n"] for r in rs]))
            ep = [r.get("epochs_run", r.get("epochs")) for r in rs]
            eps = f"{min(ep)}" if min(ep) == max(ep) else f"{min(ep)}–{max(ep)}"
            ceil = m("near_binary_ceiling")
            out.append(f"| {s} | {st} | {100 * nf:.1f} | {100 * m('accuracy_fold_default'):.1f} | "
                       f"{m('n_rules'):.1f} | {m('n_filters'):.1f} | {m('near_binary'):.3f} | "
                       f"{'–' if np.isnan(ceil) else f'{ceil:.3f}'} | {eps} | {m('train_seconds'):.0f} |")
    return "\n".join(out) + "\n"


def compare(old: dict, new: dict, subsets: list[str]) -> str:
    """Old vs new runs of the same design, side by side (mean ± std over the seeds both have)."""
    bo, bn = _group(old["runs"]), _group(new["runs"])
    out = ["| subset | strategy | seeds | NeSy acc % old → new | size old → new | no-fire % old → new "
           "| fidelity % old → new | CNN acc % old → new | near-binary old → new (new ceiling) |",
           "|---|---|---|---|---|---|---|---|---|"]
    for s in subsets:
        for st in STRATEGIES:
            rn = {r["seed"]: r for r in bn.get((s, st), [])}
            ro = {r["seed"]: r for r in bo.get((s, st), [])}
            seeds = sorted(set(rn) & set(ro))
            if not seeds:
                continue
            o, n = [ro[x] for x in seeds], [rn[x] for x in seeds]

            def pair(key: str, pct: bool = True, rs=(o, n)) -> str:
                return f"{_ms([r[key] for r in rs[0]], pct)} → {_ms([r[key] for r in rs[1]], pct)}"

            nf = f"{_ms([r['no_fire'] / r['n'] for r in o])} → {_ms([r['no_fire'] / r['n'] for r in n])}"
            nb = (f"{np.mean([r['near_binary'] for r in o]):.3f} → {np.mean([r['near_binary'] for r in n]):.3f} "
                  f"({np.mean([r.get('near_binary_ceiling', np.nan) for r in n]):.3f})")
            out.append(f"| {s} | {st} | {len(seeds)} | {pair('accuracy')} | {pair('size', False)} | {nf} | "
                       f"{pair('fidelity')} | {pair('cnn_accuracy')} | {nb} |")
    return "\n".join(out) + "\n"


def convergence(res: dict, subsets: list[str] | None = None) -> str:
    """Per (subset, strategy): epochs to the plateau per seed (TS1/NE: CE phase + second phase),
    the final lr, best validation loss, and at the end near-binary share (val) against its ceiling
    and the rules' no-fire rate on the validation images."""
    by = _group(res["runs"])
    subsets = subsets or list(dict.fromkeys(r["subset"] for r in res["runs"]))
    out = ["| subset | strategy | epochs per seed (CE phase + rest) | stopped at plateau | final lr | "
           "val loss (last) | near-binary (val, last) | ceiling | no-fire % (val, last) | NeSy acc % (val, last) | "
           "dead filters % (end) | P entries dead at the end % |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for s in subsets:
        for st in STRATEGIES:
            rs = sorted(by.get((s, st), []), key=lambda r: r["seed"])
            if not rs:
                continue
            eps = []
            for r in rs:
                pe = r.get("phase_epochs") or []
                eps.append(f"{pe[0]}+{r['epochs_run'] - pe[0]}" if pe else f"{r['epochs_run']}")
            last = [r["history"][-1] for r in rs]
            nf = [h["no_fire_val"] for h in last if h.get("no_fire_val") is not None]
            acc = [h["nesy_acc_val"] for h in last if h.get("nesy_acc_val") is not None]
            lrs = ", ".join(f"{r['lr_final']:.1e}" for r in rs)
            stopped = f"{sum(bool(r['stopped_early']) for r in rs)}/{len(rs)}"
            vl = np.mean([h["val_loss"] for h in last])
            nb = np.mean([h["near_binary_val"] for h in last])
            cl = np.mean([h["ceiling_val"] for h in last])
            nf_s = f"{100 * np.mean(nf):.1f}" if nf else "–"
            acc_s = f"{100 * np.mean(acc):.1f}" if acc else "–"
            dead = 100 * np.mean([r.get("dead_filters", np.nan) for r in rs])
            pd = [r["p_dead_share"] for r in rs if r.get("p_dead_share") is not None]
            pd_s = f"{100 * np.mean(pd):.1f}" if pd else "–"
            out.append(f"| {s} | {st} | {', '.join(eps)} | {stopped} | {lrs} | {vl:.3f} | {nb:.3f} | {cl:.3f} | "
                       f"{nf_s} | {acc_s} | {dead:.1f} | {pd_s} |")
    return "\n".join(out) + "\n"


def _cell(rs: list[dict], key: str, scale: float = 100.0) -> str:
    a = np.asarray([r[key] for r in rs], float) * scale
    if len(a) == 1:
        return f"{a[0]:.1f}"
    return f"{a.mean():.1f} ± {a.std(ddof=1):.1f}"


def claims(res: dict, subsets: list[str] | None = None) -> str:
    """The paper's claims (SPEC §6.9) checked per subset on a results file: a verdict from the
    per-subset means (holds on every subset / on some / on none), with N runs and the seed spread
    (± std over seeds, ddof 1; one seed: no spread)."""
    by = _group(res["runs"])
    subsets = subsets or list(dict.fromkeys(r["subset"] for r in res["runs"]))
    mean = lambda rs, k: float(np.mean([r[k] for r in rs]))  # noqa: E731
    lines = []

    def verdict(oks: list[bool]) -> str:
        if not oks:
            return "not measured"
        return "holds" if all(oks) else ("does not hold" if not any(oks) else f"holds on {sum(oks)} of {len(oks)} subsets")

    def compare_claim(title: str, sts: tuple[str, ...], key: str, better, scale: float = 100.0) -> None:
        for st in sts:
            oks, parts = [], []
            for s in subsets:
                a, b = by.get((s, st)), by.get((s, "NE"))
                if not a or not b:
                    continue
                oks.append(better(mean(a, key), mean(b, key)))
                parts.append(f"{s} {_cell(a, key, scale)} vs {_cell(b, key, scale)} (N = {len(a)}/{len(b)})")
            if parts:
                lines.append(f"- {title.format(st=st)}: **{verdict(oks)}** — " + "; ".join(parts))

    compare_claim("{st} NeSy accuracy ≥ NE (%)", ("TS2", "TS3", "TS4"), "accuracy", lambda x, y: x >= y)
    compare_claim("{st} rule set smaller than NE's (size)", ("TS2", "TS3", "TS4"), "size", lambda x, y: x < y, 1.0)
    compare_claim("{st} fidelity > NE (%)", ("TS2", "TS3"), "fidelity", lambda x, y: x > y)
    oks, parts = [], []
    for s in subsets:
        a, b = by.get((s, "TS3")), by.get((s, "NE"))
        if not a or not b:
            continue
        ga = [r["cnn_accuracy"] - r["accuracy"] for r in a]
        gb = [r["cnn_accuracy"] - r["accuracy"] for r in b]
        oks.append(float(np.mean(ga)) < float(np.mean(gb)))
        parts.append(f"{s} {100 * np.mean(ga):.1f} vs {100 * np.mean(gb):.1f} points (N = {len(a)}/{len(b)})")
    if parts:
        lines.append(f"- TS3's CNN − NeSy gap < NE's (paper 3 vs 12 points): **{verdict(oks)}** — " + "; ".join(parts))
    parts = []
    for s in subsets:
        a = by.get((s, "TS4"))
        if a:
            parts.append(f"{s} {_cell(a, 'cnn_accuracy')} % (1/C = {100 / _n_classes(s):.0f} %, N = {len(a)})")
    if parts:
        lines.append("- TS4's CNN accuracy ≈ chance (an untrained head): " + "; ".join(parts))
    parts = []
    for s in subsets:
        a, b = by.get((s, "TS5")), by.get((s, "TS3"))
        if a and b:
            parts.append(f"{s} TS5 {_cell(a, 'accuracy')} vs TS3 {_cell(b, 'accuracy')} % (N = {len(a)}/{len(b)})")
    if parts:
        lines.append("- TS5 collapses as classes grow (NeSy accuracy, TS5 vs TS3): " + "; ".join(parts))
    parts = []
    for s in subsets:
        cells = []
        for st in STRATEGIES:
            a = by.get((s, st))
            if a and "near_binary_ceiling" in a[0]:
                cells.append(f"{st} {mean(a, 'near_binary'):.2f}/{mean(a, 'near_binary_ceiling'):.2f}")
        if cells:
            parts.append(f"{s}: " + ", ".join(cells))
    if parts:
        lines.append("- Sparsity training makes the filters near-binary, approaching 1 (NESY Fig. 2 / §3.1): "
                     "near-binary share / its ceiling on the test images — " + "; ".join(parts))
    lines += paired_lines(res, subsets)
    return "\n".join(lines) + "\n"


def _t_ci(d: np.ndarray) -> tuple[float, float]:
    """Two-sided 95 % t interval of the mean of paired differences (df = n − 1)."""
    from scipy import stats

    if d.size < 2:
        return float("nan"), float("nan")
    h = float(stats.t.ppf(0.975, d.size - 1) * d.std(ddof=1) / np.sqrt(d.size))
    return float(d.mean()) - h, float(d.mean()) + h


def paired_lines(res: dict, subsets: list[str], a: str = "TS3", b: str = "NE") -> list[str]:
    """The paper's headline (TS3: +9.5 points NeSy accuracy over NE with a 53 % smaller program),
    paired by seed (same data draw and backbone per seed): a − b in NeSy accuracy (points) and
    log2 of the size ratio, per subset and pooled over subsets, with 95 % t intervals."""
    by = _group(res["runs"])
    rows, pooled_acc, pooled_size = [], [], []
    for s in subsets:
        ra = {r["seed"]: r for r in by.get((s, a), [])}
        rb = {r["seed"]: r for r in by.get((s, b), [])}
        seeds = sorted(set(ra) & set(rb))
        if not seeds:
            continue
        acc = np.array([100 * (ra[k]["accuracy"] - rb[k]["accuracy"]) for k in seeds])
        size = np.array([np.log2(max(ra[k]["size"], 1) / max(rb[k]["size"], 1)) for k in seeds])
        pooled_acc += acc.tolist()
        pooled_size += size.tolist()
        lo, hi = _t_ci(acc)
        ci = f"[{lo:+.1f}, {hi:+.1f}]" if acc.size > 1 else "(one seed, no interval)"
        rows.append(f"{s}: {acc.mean():+.1f} points {ci}, size × {2 ** size.mean():.2f} "
                    f"(seeds {', '.join(str(k) for k in seeds)})")
    if not rows:
        return []
    pa, ps = np.array(pooled_acc), np.array(pooled_size)
    lo, hi = _t_ci(pa)
    slo, shi = _t_ci(ps)
    return [f"- Paired by seed, {a} − {b} (paper: +9.5 points, size × 0.47): " + "; ".join(rows)
            + f"; pooled over the {len(rows)} subsets (N = {pa.size} pairs): {pa.mean():+.1f} points "
            f"[{lo:+.1f}, {hi:+.1f}], size × {2 ** ps.mean():.2f} [{2 ** slo:.2f}, {2 ** shi:.2f}] (geometric mean "
            "of the per-seed ratios, 95 % t intervals)"]


def _n_classes(subset: str) -> int:
    from nesy_reproduction import SUBSETS

    return len(SUBSETS[subset])


def plot_convergence(res: dict, out_dir: str | Path, subsets: list[str] | None = None) -> list[Path]:
    """One PNG per subset: train and validation loss, near-binary share (val; dashed: its ceiling),
    the rules' no-fire rate and NeSy accuracy (val, at the extraction cadence) per epoch, one line
    per strategy × seed (solid: the first seed, dotted: the others)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by = _group(res["runs"])
    subsets = subsets or list(dict.fromkeys(r["subset"] for r in res["runs"]))
    colors = dict(zip(STRATEGIES, plt.get_cmap("tab10").colors))
    paths = []
    for s in subsets:
        fig, axes = plt.subplots(1, 5, figsize=(21, 3.8))
        for st in STRATEGIES:
            for r in sorted(by.get((s, st), []), key=lambda r: r["seed"]):
                h = r["history"]
                ep = [x["epoch"] for x in h]
                style = "-" if r["seed"] == min(q["seed"] for q in by[(s, st)]) else ":"
                lab = f"{st} s{r['seed']}"
                c = colors[st]
                axes[0].plot(ep, [x["train_loss"] for x in h], style, color=c, label=lab)
                axes[1].plot(ep, [x["val_loss"] for x in h], style, color=c)
                axes[2].plot(ep, [x["near_binary_val"] for x in h], style, color=c)
                axes[2].plot(ep, [x["ceiling_val"] for x in h], "--", color=c, alpha=0.4, lw=0.8)
                pts = [(x["epoch"], x["no_fire_val"]) for x in h if x.get("no_fire_val") is not None]
                if pts:
                    axes[3].plot(*zip(*pts), style, marker="o", ms=3, color=c)
                pts = [(x["epoch"], x["nesy_acc_val"]) for x in h if x.get("nesy_acc_val") is not None]
                if pts:
                    axes[4].plot(*zip(*pts), style, marker="o", ms=3, color=c)
                for x in h:
                    if x.get("phase_end") and x["phase"] == "ce":
                        axes[1].axvline(x["epoch"], color=c, alpha=0.2, lw=0.8)
        for ax, t in zip(axes, ("train loss", "val loss", "near-binary share, val (dashed: ceiling)",
                                "no-fire rate, val (rules)", "NeSy accuracy, val (rules)")):
            ax.set_title(t, fontsize=9)
            ax.set_xlabel("epoch")
        axes[0].set_yscale("log")
        axes[1].set_yscale("log")
        axes[0].legend(fontsize=6, ncol=2)
        fig.suptitle(f"{s}: per-epoch training record")
        fig.tight_layout()
        p = Path(out_dir) / f"convergence_{s}.png"
        p.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(p, dpi=80)
        plt.close(fig)
        paths.append(p)
    return paths


RESULTS = Path(__file__).resolve().parent / "results"
BLOCKS = {  # <!-- nesy26:NAME --> … <!-- /nesy26:NAME --> in EXPERIMENTS.md, regenerated by --update-md
    "conv": lambda: convergence(_read("nesy_conv/results.json")),
    "conv_tables": lambda: tables(_read("nesy_conv/results.json")),
    "conv_claims": lambda: claims(_read("nesy_conv/results.json")),
    "fix5": lambda: compare(_read("nesy/results.json"), _read("nesy/results_fixed_5ep.json"), ["P2", "P3.1"]),
    "fix5_train": lambda: compare(_read("nesy/results.json"), _read("nesy/results_fixed_5ep_nocatchall.json"),
                                  ["P2", "P3.1"]),
}


def _read(name: str) -> dict:
    return json.loads((RESULTS / name).read_text())


def update_md(path: str | Path) -> list[str]:
    """Rewrite every ``<!-- nesy26:NAME -->`` block of ``path`` from the committed results files."""
    import re

    text = Path(path).read_text()
    done = []
    for name, make in BLOCKS.items():
        pat = re.compile(rf"(<!-- nesy26:{name} -->\n)(.*?)(<!-- /nesy26:{name} -->)", re.S)
        if pat.search(text):
            text = pat.sub(lambda m: m.group(1) + "\n" + make() + "\n" + m.group(3), text)
            done.append(name)
    Path(path).write_text(text)
    return done


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("results", nargs="?", default="experiments/results/nesy/results.json")
    p.add_argument("--old", help="an older results file of the same design: old vs new side by side")
    p.add_argument("--subsets", nargs="+", default=None)
    p.add_argument("--convergence", action="store_true", help="the per-run convergence table")
    p.add_argument("--claims", action="store_true", help="the paper's claims, checked per subset")
    p.add_argument("--plots", help="write convergence PNGs into this folder")
    p.add_argument("--update-md", metavar="MD", help="regenerate the nesy26 blocks of this markdown file")
    a = p.parse_args(argv)
    if a.update_md:
        print("updated blocks:", update_md(a.update_md))
        return
    res = json.loads(Path(a.results).read_text())
    if a.old:
        print(compare(json.loads(Path(a.old).read_text()), res, a.subsets or ["P2", "P3.1"]))
        return
    if a.claims:
        print(claims(res, a.subsets))
    elif a.convergence:
        print(convergence(res, a.subsets))
    else:
        print(tables(res, a.subsets))
    if a.plots:
        for path in plot_convergence(res, a.plots, a.subsets):
            print("wrote", path, file=sys.stderr)


if __name__ == "__main__":
    main()
