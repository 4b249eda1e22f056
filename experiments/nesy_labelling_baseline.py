"""Semantic labelling on texture_scenes against a random-label baseline (issue 26 item 5; SPEC §6.8).

The earlier measurement (EXPERIMENTS.md, "texture_scenes: do rule predicates get class-defining
concept labels?") reported shares with no chance level. Here, per trained model:

1. **own class** — each positive filter literal of a class-``c`` rule (the classifying rules,
   not the exception rules): does its label name a concept that defines ``c``
   (``CLASS_CONCEPTS``)? Baseline: the labels permuted among the rule's predicates (same label
   distribution), 10,000 seeded permutations (:func:`cnnlens.nesy.labelling.label_match_test`).
   Also with every filter literal of the classifying rules, negated ones included (the earlier
   table's "target-rule literals" column).
2. **class-defining at all** — each rule predicate once: does its label name any class-defining
   concept (brick, grass, gravel, red_disc)? Baseline: labels drawn without replacement from the
   labels of *all* filters of the layer (a permutation among the predicates would leave this
   share unchanged), i.e. are the filters the rules pick labelled differently from the layer's
   filters in general?

Setup (as the earlier measurement): a 3-conv CNN (64 filters, GAP) trained from scratch with CE
on 1,500 ``texture_scenes`` at 48² (scene seed 0) for 12 epochs (Adam 2e-3), then either
post-hoc NeSy (CE) or 12 more epochs of TS3 (lr 1e-3) and NeSy with the training θ; labels from
the training images' exact masks (m = 10, margin 0.05); test on 400 scenes (scene seed 1). The
model seed (initial weights, batch order, P) varies over ``--seeds``.

    python experiments/nesy_labelling_baseline.py --seeds 0 1 2
    python experiments/nesy_labelling_baseline.py --report

Results: ``experiments/results/nesy_labelling/results.json`` (one entry per seed × strategy,
written as each finishes; a re-run skips finished entries).
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))

from cnnlens import Classifier  # noqa: E402
from cnnlens._io import atomic_write_text  # noqa: E402
from cnnlens.data.texture_scenes import CLASS_CONCEPTS, texture_scenes  # noqa: E402
from cnnlens.nesy import NeSyModel, train  # noqa: E402
from cnnlens.nesy.labelling import label_filters, label_match_test  # noqa: E402

RESULTS = ROOT / "experiments" / "results" / "nesy_labelling" / "results.json"
STATS = ("own_class_positive", "own_class_all", "defining_vs_layer")


sys.path.insert(0, str(ROOT / "experiments"))
from nesy_tail_study import code_version, log  # noqa: E402  (one logger and git rev for both studies)


def texture_net() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 4))


def labelling_stats(nesy: NeSyModel, clf: Classifier, scenes, n_perm: int, seed: int) -> dict:
    """The three statistics of the module docstring for one fitted NeSy model."""
    F_ = nesy.n_filters
    every = label_filters(clf, scenes.images, scenes.masks, scenes.concept_names, list(range(F_)), nesy.layer)
    concepts = {f"f{fl.filter}": fl.concepts for fl in every}
    defining = set().union(*map(set, CLASS_CONCEPTS.values()))
    names = scenes.class_names
    pos, allx = [], []
    for r in nesy.rules.target_rules:
        own = set(CLASS_CONCEPTS[names[int(r.cls)]])
        for lit in r.body:
            if lit.name in concepts:
                allx.append((lit.name, own))
                if not lit.negated:
                    pos.append((lit.name, own))
    preds = [p for p in nesy.rules.predicates if p in concepts]
    inputs = {"own_class_positive": {"occurrences": pos, "pool": None},
              "own_class_all": {"occurrences": allx, "pool": None},
              "defining_vs_layer": {"occurrences": [(p, defining) for p in preds], "pool": "layer"}}
    out = {"layer_concepts": concepts,
           "layer_share_defining": float(np.mean([bool(set(fl.concepts) & defining) for fl in every])),
           "layer_share_background_first": float(np.mean([fl.concepts[0] == "background" for fl in every])),
           "predicate_labels": {p: concepts[p] for p in preds}}
    for s, inp in inputs.items():
        inp = {"occurrences": [[p, sorted(e)] for p, e in inp["occurrences"]], "pool": inp["pool"]}
        out[s] = stat(inp, concepts, n_perm, seed) | {"inputs": inp}
    return out


def stat(inp: dict, concepts: dict, n_perm: int, seed: int, return_shares: bool = False) -> dict:
    """One statistic from its stored inputs (occurrences; pool None = the predicates' own labels,
    "layer" = every filter of the layer) — what the results file keeps, so it recomputes."""
    pool = list(concepts.values()) if inp["pool"] == "layer" else None
    return label_match_test([(p, set(e)) for p, e in inp["occurrences"]], concepts, pool=pool,
                            n_perm=n_perm, seed=seed, return_shares=return_shares)


def pooled(runs: list[dict], s: str) -> dict:
    """Pooled over models: total matches / total occurrences against the sum of each model's own
    permutation draws (independent per model: each is seeded with its model seed)."""
    n_tot, obs, null = 0, 0.0, None
    for r in runs:
        t = r[s]
        if not t["n"]:
            continue
        again = stat(t["inputs"], r["layer_concepts"], t["n_perm"], t["seed"], return_shares=True)
        n_tot += t["n"]
        obs += t["n"] * again["observed"]
        null = t["n"] * again["shares"] if null is None else null + t["n"] * again["shares"]
    if not n_tot:
        return {"n": 0}
    obs, null = obs / n_tot, null / n_tot
    return {"n": n_tot, "observed": obs, "baseline_mean": float(null.mean()),
            "baseline_ci95": [float(np.percentile(null, 2.5)), float(np.percentile(null, 97.5))],
            "p_value": float((1 + np.sum(null >= obs - 1e-12)) / (1 + len(null)))}


def run(seed: int, strategies, args) -> dict:
    tr = texture_scenes(args.n, size=48, seed=0)
    te = texture_scenes(400, size=48, seed=1)
    torch.manual_seed(seed)
    clf = Classifier(texture_net().eval(), class_names=tr.class_names, input_shape=(3, 48, 48))
    t0 = time.time()
    train(clf, tr, None, strategy="CE", epochs=args.epochs, lr=2e-3, weight_decay=0.0, seed=seed, progress=False)
    t_ce = time.time() - t0
    out = {}
    for st in strategies:
        model = clf if st == "CE" else Classifier(copy.deepcopy(clf.model).eval(), class_names=tr.class_names,
                                                  input_shape=(3, 48, 48))
        t1 = time.time()
        if st == "CE":
            nesy = NeSyModel.fit(model, tr.images, tr.labels, binarization="threshold")
        else:
            res = train(model, tr, None, strategy=st, epochs=args.epochs, lr=1e-3, seed=seed, progress=False)
            nesy = NeSyModel.fit(model, tr.images, tr.labels, binarization="sigmoid", theta=res.theta)
        m = nesy.evaluate(te.images, te.labels)
        m.update(labelling_stats(nesy, model, tr, args.n_perm, seed))
        m.update(seed=seed, strategy=st, n_train=len(tr), n_test=len(te), epochs=args.epochs,
                 train_seconds=round(t_ce + (time.time() - t1 if st != "CE" else 0), 1),
                 program=nesy.rules.to_asp(), code=code_version())
        out[st] = m
        log("seed", seed, st, {k: m[k] for k in ("accuracy", "cnn_accuracy", "size", "n_filters")},
            {s: (round(m[s]["observed"], 3), round(m[s]["baseline_mean"], 3), round(m[s]["p_value"], 4))
             for s in STATS})
    return out


def report(results: dict) -> str:
    rows = ["| model | seed | CNN acc % | NeSy acc % | size | predicates | statistic | N | observed | "
            "baseline mean [95 % interval] | p (one-sided, ≥) |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in sorted(results["runs"], key=lambda r: (r["strategy"], r["seed"])):
        for s in STATS:
            t = r[s]
            rows.append(f"| {r['strategy']} | {r['seed']} | {100 * r['cnn_accuracy']:.1f} | {100 * r['accuracy']:.1f} | "
                        f"{r['size']} | {r['n_filters']} | {s} | {t['n']} | {t['observed']:.2f} | "
                        f"{t['baseline_mean']:.2f} [{t['baseline_ci95'][0]:.2f}, {t['baseline_ci95'][1]:.2f}] | "
                        f"{t['p_value']:.3g} |")
    # pooled over seeds: every occurrence of every model, against the sum of the models' draws
    pool = ["", "| model | statistic | seeds | N | observed | baseline mean [95 % interval] | p (one-sided, ≥) |",
            "|---|---|---|---|---|---|---|"]
    for st in sorted({r["strategy"] for r in results["runs"]}):
        rs = [r for r in results["runs"] if r["strategy"] == st]
        for s in STATS:
            t = pooled(rs, s)
            pool.append(f"| {st} | {s} | {len(rs)} | {t['n']} | {t['observed']:.3f} | {t['baseline_mean']:.3f} "
                        f"[{t['baseline_ci95'][0]:.3f}, {t['baseline_ci95'][1]:.3f}] | {t['p_value']:.3g} |")
    return "\n".join(rows + pool)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--strategies", nargs="+", default=["CE", "TS3"])
    p.add_argument("--n", type=int, default=1500)
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--n-perm", type=int, default=10_000)
    p.add_argument("--results", type=Path, default=RESULTS)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--report", action="store_true")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    results = json.loads(args.results.read_text()) if args.results.exists() else {"runs": []}
    if args.report:
        print(report(results))
        return 0
    done = {(r["seed"], r["strategy"]) for r in results["runs"]}
    results["config"] = {k: str(v) for k, v in vars(args).items() if k not in ("results", "report")}
    for seed in args.seeds:
        todo = [s for s in args.strategies if (seed, s) not in done]
        if not todo:
            continue
        for m in run(seed, todo, args).values():
            results["runs"].append(m)
            args.results.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(args.results, json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
