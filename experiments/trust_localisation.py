"""Localisation table on ``texture_scenes`` (issue 27, EXPERIMENTS.md): pointing game, relevance
mass accuracy and relevance rank accuracy of every attribution method that needs no reference set,
scored per image against the exact concept masks (docs/algorithms.md §3).

The zoo has no classifier for ``texture_scenes``, so this script trains one (a small 4-conv CNN
(16-32-64-64) with batch norm and global average pooling, CE, Adam, one-cycle, 6 epochs, seeded) on the ``train`` split (2,000
scenes, 64×64) and keeps its weights in ``OUT/texture_cnn.pt``. The scored images are the
``test`` split scenes of the classes with a positive concept — ``brick_and_grass`` (mask: brick ∪
grass), ``gravel_no_brick`` (gravel), ``red_disc`` (red disc) — that the model classifies
correctly, so the explained class (the prediction) is the true class and its mask is the union of
the concepts its rule requires. ``plain`` is defined by absent concepts: it has no mask and is left
out. A ``random`` row (uniform random maps, per-image seed streams) gives the chance level.

Resumable: each unit (the model, then one method) is written atomically to ``OUT`` with its
config; a re-run skips finished units with the same config. Run (≤ 15 minutes at 1 thread):

    OMP_NUM_THREADS=1 python experiments/trust_localisation.py --out experiments/results/trust
"""
from __future__ import annotations

import argparse
import json
import math
import subprocess
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

import cnnlens
from cnnlens._io import atomic_write_bytes, atomic_write_text
from cnnlens.data.texture_scenes import CLASS_CONCEPTS, CLASS_OBJECTS, load_texture_scenes
from cnnlens.metrics import evaluate
from cnnlens.metrics.compare import random_maps
from cnnlens.sanity import NEEDS_REFERENCE

METRICS = ["pointing_game", "relevance_mass_accuracy", "relevance_rank_accuracy"]
# classes with a positive concept, and the concepts their rule requires (CLASS_CONCEPTS also lists negated ones)
POSITIVE = {"brick_and_grass": ("brick", "grass"), "gravel_no_brick": ("gravel",), "red_disc": ("red_disc",)}
# reduced budgets of the expensive methods (recorded in each result)
BUDGETS = {
    "lime": {"num_samples": 500},
    "rise": {"n_masks": 1000},
    "extremal_perturbation": {"iterations": 100},
    "da_pos": {"iterations": 50},
    "da_neg": {"iterations": 50},
}


def net() -> nn.Module:
    def block(i, o):
        return [nn.Conv2d(i, o, 3, padding=1), nn.BatchNorm2d(o), nn.ReLU()]
    return nn.Sequential(*block(3, 16), nn.MaxPool2d(2), *block(16, 32), nn.MaxPool2d(2), *block(32, 64),
                         nn.MaxPool2d(2), *block(64, 64), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 4))


def git_rev() -> str:
    return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()


def train_model(out: Path, epochs: int, seed: int, log) -> nn.Module:
    path, meta = out / "texture_cnn.pt", out / "texture_cnn.json"
    config = {"epochs": epochs, "seed": seed, "arch": "conv16-32-64-64 BN ReLU, GAP, fc4", "optimiser": "Adam 2e-3",
              "batch": 64, "augment": "horizontal + vertical flips", "data": "texture_scenes train (2000, 64x64)"}
    model = net()
    if path.exists() and meta.exists() and json.loads(meta.read_text())["config"] == config:
        model.load_state_dict(torch.load(path, weights_only=True))
        log(f"model: reusing {path}")
        return model.eval()
    tr = load_texture_scenes("train")
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=epochs * math.ceil(len(tr.labels) / 64))
    t0 = time.perf_counter()
    for ep in range(epochs):
        model.train()
        perm = torch.randperm(len(tr.labels), generator=g)
        total = 0.0
        for i in range(0, len(perm), 64):
            idx = perm[i:i + 64]
            xb, yb = tr.images[idx], tr.labels[idx]
            if torch.rand(1, generator=g) < 0.5:
                xb = xb.flip(3)
            if torch.rand(1, generator=g) < 0.5:
                xb = xb.flip(2)
            loss = nn.functional.cross_entropy(model((xb - 0.5) / 0.25), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
        log(f"epoch {ep + 1}/{epochs}: loss {total / len(perm):.3f}")
    model.eval()
    buf = __import__("io").BytesIO()
    torch.save(model.state_dict(), buf)
    atomic_write_bytes(path, buf.getvalue())
    atomic_write_text(meta, json.dumps({"config": config, "train_seconds": time.perf_counter() - t0}, indent=1))
    return model


def mean_ci(v: np.ndarray) -> tuple[float, float]:
    """Mean and the half-width of its normal-approximation 95 % interval (1.96 · s / √n)."""
    return float(v.mean()), float(1.96 * v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else float("nan")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="experiments/results/trust")
    p.add_argument("--per-class", type=int, default=40, help="correctly classified test scenes per class")
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--methods", nargs="+", default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()

    def log(msg):
        print(f"[{time.perf_counter() - t_start:6.1f}s] {msg}", flush=True)

    model = train_model(out, args.epochs, args.seed, log)
    clf = cnnlens.Classifier(model, mean=0.5, std=0.25, feature_layer="14",  # ReLU output of the 4th conv (8x8)
                             class_names=list(POSITIVE) + ["plain"], input_shape=(3, 64, 64))
    te = load_texture_scenes("test")
    pred = clf.predict(te.images, batch_size=100)
    acc = float((pred == te.labels).float().mean())
    log(f"test accuracy {acc:.3f} on {len(te.labels)} scenes")
    picked: list[int] = []
    for c in range(len(POSITIVE)):
        ok = ((te.labels == c) & (pred == c)).nonzero().flatten().tolist()
        picked += ok[: args.per_class]
    idx = torch.tensor(picked)
    x, y = te.images[idx], te.labels[idx]
    masks = te.subset(idx).class_masks()  # the concepts each class's rule requires (CLASS_OBJECTS)
    assert all(set(POSITIVE[k]) <= set(CLASS_CONCEPTS[k]) and POSITIVE[k] == CLASS_OBJECTS[k] for k in POSITIVE)
    methods = args.methods or [m for m in cnnlens.methods() if m not in NEEDS_REFERENCE]  # ri, ace: a reference set
    config_base = {"images": "texture_scenes test, classes 0-2, correctly classified, first per class",
                   "per_class": args.per_class, "test_index": picked, "seed": args.seed, "metrics": METRICS,
                   "target": "the prediction (= the label)", "mask": {k: list(v) for k, v in POSITIVE.items()}}
    rows = {}
    for label in [*methods, "random"]:
        path = out / "localisation" / f"{label.replace('+', 'p')}.json"
        config = {**config_base, "method": label, "params": BUDGETS.get(label, {})}
        if path.exists():
            stored = json.loads(path.read_text())
            if stored.get("config") == config:
                rows[label] = stored
                log(f"{label}: reusing {path}")
                continue
        t0 = time.perf_counter()
        if label == "random":
            maps = random_maps(len(idx), (64, 64), args.seed)
        else:
            maps = cnnlens.explain(clf, x, label, target=y, seed=args.seed, batch_size=64, **BUDGETS.get(label, {}))
        secs = time.perf_counter() - t0
        res = evaluate(clf, x, maps, metrics=METRICS, masks=masks, seed=args.seed, target=y)
        row = {"config": config, "explain_seconds": secs,
               "per_image": {m: r.per_image.tolist() for m, r in res.items()},
               "n_constant": {m: r.n_constant for m, r in res.items()},
               "classes": y.tolist(), "git": git_rev()}
        atomic_write_text(path, json.dumps(row, indent=1))
        rows[label] = row
        log(f"{label}: {secs:.1f} s; " + ", ".join(f"{m} {np.mean(v):.3f}" for m, v in row["per_image"].items()))

    n = len(idx)
    lines = [f"N = {n} scenes ({args.per_class} per class × {len(POSITIVE)} classes), test accuracy {acc:.3f}; "
             f"mean ± 95 % CI half-width (1.96·s/√n); seed {args.seed}; git {git_rev()}", "",
             "| method | pointing game ↑ | RMA ↑ | RRA ↑ | n_constant (PG/RMA/RRA) | explain s |", "|---|---:|---:|---:|---|---:|"]
    csv = ["method,test_index,class," + ",".join(METRICS)]
    for label, row in rows.items():
        cells = []
        for m in METRICS:
            mu, ci = mean_ci(np.asarray(row["per_image"][m]))
            cells.append(f"{mu:.3f} ± {ci:.3f}")
        nc = "/".join(str(row["n_constant"][m]) for m in METRICS)
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {nc} | {row['explain_seconds']:.1f} |")
        for j in range(n):
            csv.append(f"{label},{picked[j]},{row['classes'][j]}," + ",".join(f"{row['per_image'][m][j]:.6g}" for m in METRICS))
    # mask area: the chance level of RRA and (for uniform maps) of RMA and the pointing game
    area = masks.reshape(n, -1).float().mean(1)
    lines += ["", f"mask area share (chance level): {area.mean():.3f} ± {1.96 * area.std() / math.sqrt(n):.3f}"]
    atomic_write_text(out / "localisation_table.md", "\n".join(lines) + "\n")
    atomic_write_text(out / "localisation_per_image.csv", "\n".join(csv) + "\n")
    print("\n".join(lines))
    log(f"done; wall {time.perf_counter() - t_start:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
