"""RI paper Table 1 reproduction: reuse of interpretations on unseen images (SPEC §5).

Superseded for Table 1 by ``experiments/ri_table1.py`` (issue 25: one model per task at 64²/128²,
per-unit results, random-map and own-CAM rows, the ACE hook); kept for the earlier ``fashion_vgg`` runs.

Runs :meth:`RepresentativeInterpreter.evaluate_reuse` (RI vs Grad-CAM, Grad-CAM++, Score-CAM reusing
their nearest centre image's channel weights; AD/AI in the ``keep`` mode, 20 % kept) on:

- ``fashion_pair_*`` / ``fashion4``: ``fashion_vgg`` on Fashion-MNIST class subsets, reference pool
  from the train split, unseen pool from the test split (paper sizes: 2,500 references per class,
  |S| = 1,000, |V| = 10 × classes, 5 seeds);
- ``mnist``: ``mnist_cnn`` on the 5,000 real digits (seeded split into a reference and an unseen pool);
- ``onet``: ``onet_face`` on the 200 ``lfw_faces`` crops (seeded split).

Usage::

    OMP_NUM_THREADS=1 python experiments/ri_reuse.py mnist onet fashion_pair_tshirt_shirt ... \\
        [--seeds 5] [--per-class 2500] [--n-unseen 1000] [--out experiments/results/ri]

Each run writes ``<out>/<config>.json`` and ``<out>/<config>.md`` (the table, sizes, coverage,
precision@k of RI's Eq. 6 ranking vs Euclidean neighbours, headline check).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

import cnnlens
from cnnlens import RepresentativeInterpreter, zoo
from cnnlens._io import atomic_write_text

FASHION_SUBSETS = {
    "fashion_pair_tshirt_shirt": [0, 6],
    "fashion_pair_pullover_coat": [2, 4],
    "fashion_pair_sneaker_boot": [7, 9],
    "fashion4": [0, 2, 4, 6],
}


def _split(n: int, n_ref: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return perm[:n_ref], perm[n_ref:]


def _pool_per_class(labels: torch.Tensor, per_class: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    parts = []
    for c in torch.unique(labels):
        idx = (labels == c).nonzero().squeeze(1)
        parts.append(idx[torch.randperm(idx.numel(), generator=g)[:per_class]])
    return torch.sort(torch.cat(parts)).values


def run(config: str, args: argparse.Namespace) -> dict:
    if config in FASHION_SUBSETS:
        model, classes = "fashion_vgg", FASHION_SUBSETS[config]
        clf = zoo.load_classifier(model)
        train = zoo.load_dataset("fashion_mnist", split="train", classes=classes)
        test = zoo.load_dataset("fashion_mnist", split="test", classes=classes)
        pool = _pool_per_class(train.labels, args.pool_per_class)
        ref_images, ref_labels = train.images[pool], train.labels[pool]
        unseen = test.images
        per_class, n_unseen, dataset = args.per_class, args.n_unseen, f"fashion_mnist {[train.class_names[i] for i in range(len(classes))]}"
    elif config == "mnist":
        model = "mnist_cnn"
        clf = zoo.load_classifier(model)
        ds = zoo.load_dataset("mnist")
        r, u = _split(len(ds.labels), 4000)
        ref_images, ref_labels, unseen = ds.images[r], ds.labels[r], ds.images[u]
        per_class, n_unseen, dataset = 300, 500, "mnist (5,000 real digits: 4,000 reference pool / 1,000 unseen pool)"
    elif config == "onet":
        model = "onet_face"
        clf = zoo.load_classifier(model)
        ds = zoo.load_dataset("lfw_faces")
        r, u = _split(len(ds.labels), 140)
        ref_images, ref_labels, unseen = ds.images[r], ds.labels[r], ds.images[u]
        per_class, n_unseen, dataset = 50, None, "lfw_faces (200 crops: 140 reference pool / 60 unseen)"
    else:
        raise SystemExit(f"unknown config {config!r}; choose from mnist, onet, {', '.join(FASHION_SUBSETS)}")
    t0 = time.time()
    ri = RepresentativeInterpreter(clf, ref_images, n_boundaries=50, seed=0, batch_size=args.batch_size, progress=True)
    table = ri.evaluate_reuse(unseen, seeds=list(range(args.first_seed, args.first_seed + args.seeds)),
                              reference_labels=ref_labels, per_class=per_class,
                              n_unseen=n_unseen, model_name=model, dataset_name=dataset)
    took = time.time() - t0
    out = Path(args.out)
    md = table.to_markdown() + f"\nwall time {took:.0f} s on the shared 2-core machine; reference pool {len(ref_labels)} images\n"
    atomic_write_text(out / f"{config}.md", md)
    atomic_write_text(out / f"{config}.json", json.dumps({**table.to_dict(), "wall_s": took,
                                                            "pool": int(len(ref_labels))}, indent=2, default=str))
    print(md, flush=True)
    return table.to_dict()


def merge(name: str, files: list[str], out: str) -> None:
    """Combine runs of the same configuration over disjoint seeds into ``<out>/<name>.md|json``."""
    from cnnlens.representative import ReuseTable

    parts = [json.loads(Path(f).read_text()) for f in files]
    per_seed = {m: [r for p in parts for r in p["per_seed"][m]] for m in parts[0]["per_seed"]}
    precision = {k: [v for p in parts for v in p["precision"].get(k, [])] for k in parts[0]["precision"]}
    meta = {**parts[0]["meta"], "seeds": [s for p in parts for s in p["meta"]["seeds"]]}
    table = ReuseTable(per_seed=per_seed, coverage=[c for p in parts for c in p["coverage"]], precision=precision,
                       meta=meta)
    took = sum(p.get("wall_s", 0.0) for p in parts)
    md = table.to_markdown() + (f"\nwall time {took:.0f} s in {len(parts)} runs on the shared 2-core machine; "
                                f"reference pool {parts[0].get('pool')} images\n")
    atomic_write_text(Path(out) / f"{name}.md", md)
    atomic_write_text(Path(out) / f"{name}.json", json.dumps({**table.to_dict(), "wall_s": took,
                                                             "pool": parts[0].get("pool"), "merged_from": files},
                                                            indent=2, default=str))
    print(md)


def main() -> None:
    ap = argparse.ArgumentParser(description="RI Table 1 reproduction (SPEC §5)")
    ap.add_argument("configs", nargs="+")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--first-seed", type=int, default=0, help="run seeds first-seed … first-seed + seeds − 1")
    ap.add_argument("--per-class", type=int, default=2500, help="fashion: references per class per seed")
    ap.add_argument("--pool-per-class", type=int, default=3000, help="fashion: train images per class in the pool")
    ap.add_argument("--n-unseen", type=int, default=1000, help="fashion: |S| per seed")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--out", default="experiments/results/ri")
    ap.add_argument("--merge", nargs="+", metavar="JSON",
                    help="instead of running: merge these result files into <out>/<first config>.md|json")
    args = ap.parse_args()
    cnnlens.tune_cpu_malloc()  # a long CPU job: no page fault per large activation (BENCHMARKS.md)
    if args.merge:
        merge(args.configs[0], args.merge, args.out)
        return
    torch.set_num_threads(1)
    for c in args.configs:
        run(c, args)


if __name__ == "__main__":
    main()
