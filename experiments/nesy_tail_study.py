"""FOLD-SE-M's ``tail``: counted on the examples left or on the whole training set? (issue 26 item 4)

Two conventions of :class:`cnnlens.nesy.FoldSEM` on the *same* binarized NeSy tables:

- ``left``  — ``tail_base="left", exception_tail="left"`` (FoldSEM's default before this study):
  a classifying rule must cover ``tail·|examples left|`` positives, an exception rule set
  ``tail·|examples left when its classifying rule was learned|``;
- ``train`` — ``tail_base="train", exception_tail="train"`` (SPEC §6.5 and FOLD-SE, the NESY
  paper's tool): both count ``tail·|train|``.

Every other FoldSEM option is at its default (ratio 0.8, tail 5e-3, catch_all=True,
reopen_classes=True, positive_class=None as NeSyModel uses it). The two mixed combinations
(``left/train`` and ``train/left``) are run as well, to say which of the two counts matters.

Tables (0/1 filter tables of real CNNs, train rows + test rows, cached as ``.npz`` under
``--cache``, so the study re-runs in seconds):

- Fashion-MNIST subsets P2, P3.1, P5, P10 × {CE (post-hoc θ), TS3 (training θ)} × seeds, the
  NESY reproduction's 5-epoch design (experiments/nesy_reproduction.py: zoo ``fashion_vgg``
  backbone with a fresh seeded head, 2,000 train / 400 val / 1,000 test images per seed, Adam
  1e-4, K = 5, 12 on P10; its minimal setup is copied here so this study does not change
  when that script does);
- ``mnist_cnn`` post hoc (zoo ``mnist`` train 4,000 / test 1,000);
- ``mnist_cnn_ts3`` (the zoo's TS3 fine-tune of mnist_cnn, its training θ), when installed.

NeSy metrics as NeSyModel reports them (SPEC §6.7): size (body literals incl. ``not abN``),
number of rules, test accuracy and fidelity to the CNN with no-fire counted wrong, no-fire share.
Results: ``experiments/results/nesy_tail/results.json`` (one entry per table × convention,
written atomically as each finishes; a re-run skips what is there), the paired comparison:
``--report``.

    python experiments/nesy_tail_study.py --tables            # train/cache the tables (resumable)
    python experiments/nesy_tail_study.py --study             # fit both conventions on every table
    python experiments/nesy_tail_study.py --report            # the markdown tables (EXPERIMENTS.md)
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))

from cnnlens import Classifier, zoo  # noqa: E402
from cnnlens._io import atomic_write_bytes, atomic_write_text  # noqa: E402
from cnnlens.models.fashion import FASHION_CLASS_NAMES, FASHION_MEAN, FASHION_STD  # noqa: E402
from cnnlens.nesy import FoldSEM, filter_norms, thresholds, train  # noqa: E402
from cnnlens.nesy.binarize import binarize, default_layer  # noqa: E402

SUBSETS = {"P2": [2, 4], "P3.1": [2, 4, 6], "P5": [2, 4, 6, 0, 3], "P10": list(range(10))}
STRATEGIES = ("CE", "TS3")
CONVENTIONS = {  # name: (tail_base, exception_tail)
    "left": ("left", "left"),
    "train": ("train", "train"),
    "left/train": ("left", "train"),
    "train/left": ("train", "left"),
}
METRICS = ("size", "n_rules", "accuracy", "fidelity", "no_fire")
RESULTS = ROOT / "experiments" / "results" / "nesy_tail" / "results.json"


def log(*a) -> None:
    print(time.strftime("%H:%M:%S"), *a, flush=True)


def code_version() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


# ------------------------------------------------------------------------------ tables
def _subset_data(name: str, seed: int, n_train: int = 2000, n_val: int = 400, n_test: int = 1000):
    """The NESY reproduction's per-seed sample (its own function, same generator seeds)."""
    sys.path.insert(0, str(ROOT / "experiments"))
    from nesy_reproduction import subset_data

    return subset_data(name, n_train, n_val, n_test, seed=seed)


def _table(clf: Classifier, x_tr, y_tr, x_te, y_te, binarization: str, theta=None) -> dict:
    layer = default_layer(clf)
    n_tr = filter_norms(clf, x_tr, layer)
    n_te = filter_norms(clf, x_te, layer)
    th = thresholds(n_tr) if theta is None else torch.as_tensor(theta, dtype=torch.float32)
    return {"bits_train": binarize(n_tr, th, binarization).numpy().astype(np.uint8),
            "y_train": np.asarray(y_tr, dtype=np.int64),
            "bits_test": binarize(n_te, th, binarization).numpy().astype(np.uint8),
            "y_test": np.asarray(y_te, dtype=np.int64),
            "cnn_test": clf.predict(x_te).numpy().astype(np.int64),
            "theta": th.numpy(), "binarization": np.array(binarization), "layer": np.array(layer)}


def _save(path: Path, table: dict, info: dict) -> None:
    import io

    buf = io.BytesIO()
    np.savez_compressed(buf, **table, info=np.array(json.dumps(info)))
    atomic_write_bytes(path, buf.getvalue())


def fashion_table(sub: str, strategy: str, seed: int, cache: Path, epochs: int, lr: float) -> Path:
    path = cache / f"fashion_{sub}_{strategy}_s{seed}.npz"
    if path.exists():
        return path
    tr, va, te = _subset_data(sub, seed)
    base = zoo.load_classifier("fashion_vgg").model
    C = len(SUBSETS[sub])
    net = copy.deepcopy(base)
    torch.manual_seed(10_000 + seed)
    net.classifier[-1] = nn.Linear(net.classifier[-1].in_features, C)
    names = [FASHION_CLASS_NAMES[c] for c in SUBSETS[sub]]
    clf = Classifier(net.eval(), mean=FASHION_MEAN, std=FASHION_STD, class_names=names, input_shape=(1, 28, 28))
    k = 5 if C <= 5 else 12
    t0 = time.time()
    res = train(clf, tr, va, strategy=strategy, epochs=epochs, seed=seed, lr=lr, k=k, progress=False,
                checkpoint_dir=cache / "ckpt" / f"{sub}_{strategy}_{seed}", resume=True)
    t_train = time.time() - t0
    table = _table(clf, tr.images, tr.labels, te.images, te.labels, res.binarization,
                   res.theta if res.binarization == "sigmoid" else None)
    info = {"source": "fashion", "subset": sub, "strategy": strategy, "seed": seed, "epochs": epochs,
            "lr": lr, "k": k, "train_seconds": round(t_train, 1), "code": code_version(),
            "cnn_accuracy": float((table["cnn_test"] == table["y_test"]).mean())}
    _save(path, table, info)
    log("table", path.name, info)
    return path


def mnist_tables(cache: Path) -> list[Path]:
    tr, te = zoo.load_dataset("mnist", "train"), zoo.load_dataset("mnist", "test")
    out = []
    path = cache / "mnist_cnn_posthoc.npz"
    if not path.exists():
        clf = zoo.load_classifier("mnist_cnn")
        _save(path, _table(clf, tr.images, tr.labels, te.images, te.labels, "threshold"),
              {"source": "mnist_cnn", "strategy": "CE (post hoc)", "seed": 0, "code": code_version()})
        log("table", path.name)
    out.append(path)
    if "mnist_cnn_ts3" in zoo.list_models():
        path = cache / "mnist_cnn_ts3.npz"
        if not path.exists():
            try:
                clf = zoo.load_classifier("mnist_cnn_ts3")
            except Exception as exc:  # noqa: BLE001 - weights not trained yet
                log("mnist_cnn_ts3 not usable:", exc)
                return out
            theta = zoo.nesy_theta("mnist_cnn_ts3")
            _save(path, _table(clf, tr.images, tr.labels, te.images, te.labels, "sigmoid", theta),
                  {"source": "mnist_cnn_ts3", "strategy": "TS3", "seed": 0, "code": code_version()})
            log("table", path.name)
        out.append(path)
    return out


# ------------------------------------------------------------------------------ study
def nesy_metrics(fold: FoldSEM, bits_test: np.ndarray, y_test: np.ndarray, cnn_test: np.ndarray) -> dict:
    """SPEC §6.7 on the test rows: the first rule that fires, no default class (no-fire = wrong)."""
    idx = fold.rules_.predict_rule({p: bits_test[:, j] for j, p in enumerate(fold.feature_predicates_)})
    cls = np.array([int(r.cls) for r in fold.rules_.target_rules] + [-1], dtype=np.int64)
    pred = cls[idx]
    return {"size": int(fold.rules_.size), "n_rules": int(fold.rules_.n_rules),
            "accuracy": float((pred == y_test).mean()), "fidelity": float((pred == cnn_test).mean()),
            "no_fire": float((pred == -1).mean())}


def fit_convention(table: dict, convention: str, tail: float = 5e-3, ratio: float = 0.8) -> dict:
    base, exc = CONVENTIONS[convention]
    t0 = time.perf_counter()
    fold = FoldSEM(ratio=ratio, tail=tail, positive_class=None, tail_base=base, exception_tail=exc)
    fold.fit(table["bits_train"], table["y_train"])
    m = nesy_metrics(fold, table["bits_test"], table["y_test"], table["cnn_test"])
    m["fit_seconds"] = round(time.perf_counter() - t0, 3)
    m["train_accuracy"] = float((fold.predict(table["bits_train"]) == table["y_train"]).mean())
    return m


def study(cache: Path, results_path: Path, conventions=tuple(CONVENTIONS)) -> dict:
    results = json.loads(results_path.read_text()) if results_path.exists() else {"runs": []}
    done = {(r["table"], r["convention"]) for r in results["runs"]}
    results["code"] = code_version()
    for path in sorted(cache.glob("*.npz")):
        with np.load(path) as z:
            table = {k: z[k] for k in z.files}
        info = json.loads(str(table.pop("info")))
        for conv in conventions:
            if (path.stem, conv) in done:
                continue
            m = fit_convention(table, conv)
            m.update(table=path.stem, convention=conv, tail_base=CONVENTIONS[conv][0],
                     exception_tail=CONVENTIONS[conv][1], n_train=int(len(table["y_train"])),
                     n_test=int(len(table["y_test"])), n_features=int(table["bits_train"].shape[1]),
                     n_classes=int(len(np.unique(table["y_train"]))), code=code_version(), table_info=info)
            results["runs"].append(m)
            done.add((path.stem, conv))
            results_path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(results_path, json.dumps(results, indent=1))
            log(path.stem, conv, {k: m[k] for k in METRICS + ("fit_seconds",)})
    return results


def general_study(results_path: Path, seeds=(0, 1, 2), conventions=("left", "train")) -> dict:
    """The same two conventions on the general FOLD tables of experiments/fold_manyclass.py
    (binarized digits, wine, gen-10, gen-26, gmix-12, iris, breast cancer with rules for both
    classes; stratified 80/20 splits, seeds ``seeds``): does the FoldSEM default outside NeSy
    speak against the NeSy result? Accuracy here is FoldSEM.predict's (default class used)."""
    sys.path.insert(0, str(ROOT / "experiments"))
    from fold_manyclass import pruning_tables
    from sklearn.model_selection import train_test_split

    results = json.loads(results_path.read_text()) if results_path.exists() else {"runs": []}
    runs = results.setdefault("general", [])
    done = {(r["table"], r["convention"]) for r in runs}
    for name, (X, y) in pruning_tables().items():
        for seed in seeds:
            Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.2, stratify=y, random_state=seed)
            key = f"{name} s{seed}"
            for conv in conventions:
                if (key, conv) in done:
                    continue
                base, exc = CONVENTIONS[conv]
                t0 = time.perf_counter()
                fold = FoldSEM(positive_class=None, tail_base=base, exception_tail=exc).fit(Xtr, ytr)
                runs.append({"table": key, "convention": conv, "size": int(fold.rules_.size),
                             "n_rules": int(fold.rules_.n_rules),
                             "accuracy": float((fold.predict(Xte) == yte).mean()),
                             "fidelity": float("nan"), "no_fire": float((fold.predict_rule(Xte) < 0).mean()),
                             "fit_seconds": round(time.perf_counter() - t0, 3), "code": code_version()})
                done.add((key, conv))
    atomic_write_text(results_path, json.dumps(results, indent=1))
    return results


# ------------------------------------------------------------------------------ paired comparison
def sign_test(diffs) -> float:
    """Two-sided exact sign test p-value (zero differences dropped; 1.0 when none are left)."""
    d = [x for x in diffs if x != 0]
    n, k = len(d), sum(x > 0 for x in d)
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(0, min(k, n - k) + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def paired(diffs) -> dict:
    """Mean of paired differences with a 95 % t interval, the sign test, and the counts."""
    from scipy import stats

    d = np.asarray(diffs, dtype=float)
    n = len(d)
    mean = float(d.mean()) if n else float("nan")
    if n > 1:
        half = float(stats.t.ppf(0.975, n - 1) * d.std(ddof=1) / math.sqrt(n))
    else:
        half = float("nan")
    return {"n": n, "mean": mean, "ci95": [mean - half, mean + half], "sign_p": sign_test(d),
            "n_pos": int((d > 0).sum()), "n_neg": int((d < 0).sum()), "n_zero": int((d == 0).sum())}


def comparison(results: dict, a: str = "train", b: str = "left", where=None, key: str = "runs") -> dict:
    """Per metric: paired differences a − b over the tables both conventions ran on."""
    by = {}
    for r in results.get(key, []):
        by.setdefault(r["table"], {})[r["convention"]] = r
    tables = sorted(t for t, v in by.items() if a in v and b in v and (where is None or where(t)))
    return {m: paired([by[t][a][m] - by[t][b][m] for t in tables]) for m in METRICS} | {"tables": tables}


def _group(table: str) -> str:
    if table.startswith("fashion_"):
        _, sub, st, _ = table.split("_")
        return f"{sub} {st}"
    return table


def report(results: dict) -> str:
    by: dict[str, dict[str, list[dict]]] = {}
    for r in results["runs"]:
        by.setdefault(_group(r["table"]), {}).setdefault(r["convention"], []).append(r)
    order = [f"{s} {st}" for s in SUBSETS for st in STRATEGIES] + ["mnist_cnn_posthoc", "mnist_cnn_ts3"]
    lines = ["| table | seeds | convention | size | rules | test acc % | fidelity % | no-fire % |",
             "|---|---|---|---|---|---|---|---|"]
    for g in [g for g in order if g in by]:
        for conv in CONVENTIONS:
            rs = by[g].get(conv, [])
            if not rs:
                continue

            def ms(key, scale=1.0, rs=rs):
                v = np.array([r[key] for r in rs], dtype=float) * scale
                return f"{v.mean():.1f}" + (f" ± {v.std(ddof=1):.1f}" if len(v) > 1 else "")

            seeds = ",".join(str(r["table_info"].get("seed", 0)) for r in rs)
            name = "**" + conv + "**" if conv in ("left", "train") else conv
            lines.append(f"| {g} | {seeds} | {name} | {ms('size')} | {ms('n_rules')} | {ms('accuracy', 100)} | "
                         f"{ms('fidelity', 100)} | {ms('no_fire', 100)} |")
    out = ["\n".join(lines), ""]
    for label, where in (("all tables", None), ("CE / post hoc", lambda t: "_CE_" in t or "posthoc" in t),
                         ("TS3", lambda t: "_TS3_" in t or t.endswith("ts3"))):
        for a in ("train", "left/train", "train/left"):
            c = comparison(results, a, "left", where)
            if not c["tables"]:
                continue
            cells = []
            for m in METRICS:
                p = c[m]
                sc = 100 if m in ("accuracy", "fidelity", "no_fire") else 1
                cells.append(f"{sc * p['mean']:+.2f} [{sc * p['ci95'][0]:+.2f}, {sc * p['ci95'][1]:+.2f}] "
                             f"({p['n_pos']}+/{p['n_neg']}−, p={p['sign_p']:.2g})")
            out.append(f"| {label} (N={len(c['tables'])}) | {a} − left | " + " | ".join(cells) + " |")
    head = ("| tables | difference | size | rules | test acc (points) | fidelity (points) | no-fire (points) |\n"
            "|---|---|---|---|---|---|---|")
    text = out[0] + "\n\nPaired differences (mean [95 % t interval] (tables with +/− difference, "\
        "two-sided sign test p)):\n\n" + head + "\n" + "\n".join(out[2:])
    if results.get("general"):
        gl = ["", "General FOLD tables (experiments/fold_manyclass.py, 3 stratified 80/20 splits; "
              "FoldSEM.predict with its default class):", "",
              "| table | left: acc % · size | train: acc % · size |", "|---|---|---|"]
        by: dict[str, dict[str, list[dict]]] = {}
        for r in results["general"]:
            by.setdefault(r["table"].rsplit(" s", 1)[0], {}).setdefault(r["convention"], []).append(r)
        for name, v in by.items():
            cells = []
            for conv in ("left", "train"):
                rs = v.get(conv, [])
                acc = np.array([r["accuracy"] for r in rs]) * 100
                cells.append(f"{acc.mean():.1f} ± {acc.std(ddof=1):.1f} · {np.mean([r['size'] for r in rs]):.1f}")
            gl.append(f"| {name} | " + " | ".join(cells) + " |")
        c = comparison(results, "train", "left", key="general")
        gl += ["", "| tables | difference | size | rules | test acc (points) |", "|---|---|---|---|---|",
               f"| general (N={len(c['tables'])} table×split) | train − left | "
               + " | ".join(f"{(100 if m == 'accuracy' else 1) * c[m]['mean']:+.2f} "
                            f"[{(100 if m == 'accuracy' else 1) * c[m]['ci95'][0]:+.2f}, "
                            f"{(100 if m == 'accuracy' else 1) * c[m]['ci95'][1]:+.2f}] "
                            f"({c[m]['n_pos']}+/{c[m]['n_neg']}−, p={c[m]['sign_p']:.2g})"
                            for m in ("size", "n_rules", "accuracy")) + " |"]
        text += "\n" + "\n".join(gl)
    return text


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tables", action="store_true", help="train the models and cache their 0/1 tables")
    p.add_argument("--study", action="store_true", help="fit every convention on every cached table")
    p.add_argument("--general", action="store_true",
                   help="also both conventions on experiments/fold_manyclass.py's tables (3 splits)")
    p.add_argument("--report", action="store_true", help="print the markdown tables")
    p.add_argument("--subsets", nargs="+", default=list(SUBSETS), choices=list(SUBSETS))
    p.add_argument("--strategies", nargs="+", default=list(STRATEGIES), choices=list(STRATEGIES))
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--cache", type=Path, default=ROOT / "out" / "nesy_tail")
    p.add_argument("--results", type=Path, default=RESULTS)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    args.cache.mkdir(parents=True, exist_ok=True)
    if args.tables:
        mnist_tables(args.cache)
        for seed in args.seeds:  # seed-major: a run cut short still covers every subset
            for sub in args.subsets:
                for st in args.strategies:
                    fashion_table(sub, st, seed, args.cache, args.epochs, args.lr)
    if args.study:
        study(args.cache, args.results)
    if args.general:
        general_study(args.results)
    if args.report:
        print(report(json.loads(args.results.read_text())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
