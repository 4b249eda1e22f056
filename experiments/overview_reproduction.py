"""OVERVIEW reproduction (SPEC §3, last paragraph): LRP (ε-α2β1-flat), LIME, Grad-CAM (last
``Conv2d``) and DeepLIFT (``zero_normalized`` baseline) × IAUC, DAUC, IC, DC, AD, IIC on the first
200 test images of a binary task, in both presets (``rise`` and ``gomez``), plus the random-map
baseline row:

(a) ``onet_face`` on the 200 ``lfw_faces`` images (100 faces, then 100 non-faces);
(b) ``fashion_pair_seq`` (the project's OVERVIEW-style ``nn.Sequential`` at 128×128) on the first
    200 images of the ``fashion_pair`` test split.

Each method explains once (same predicted targets, seed 0); both presets score the same maps.
Explanations and finished tables are cached in ``--out`` so an interrupted run resumes. An extra
column reports AD with logit scores and no clipping (``score="logit", clip=False``), the setting
in which OVERVIEW's negative AD values are possible.

``--methods LIME`` (comma-separated labels: LRP, LIME, GradCAM, DeepLIFT) recomputes those
methods' explanations and table rows only: the other rows of a table cached in ``--out`` for the
same images are kept as they are (``compare(done=...)``), cheap explanations are reloaded or redone.

Run: ``python experiments/overview_reproduction.py [--n 200] [--cases a,b] [--methods LIME] [--out runs/overview]``
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from torch import nn

import cnnlens
from cnnlens import Explanation, zoo
from cnnlens._io import atomic_write_text
from cnnlens.metrics import average_drop_increase
from cnnlens.metrics.compare import ComparisonTable

OVERVIEW = {  # OVERVIEW's Results table (cats vs dogs, 200 test images)
    "LRP": (0.387, 0.546, 0.118, -0.241, -0.093, 0.014),
    "LIME": (0.416, 0.361, 0.108, -0.069, 0.107, 0.035),
    "GradCAM": (0.489, 0.392, 0.070, -0.179, 0.050, 0.003),
    "DeepLIFT": (0.323, 0.439, 0.125, 0.333, 0.0193, 0.001),
}
METRICS = ["iauc", "dauc", "ic", "dc", "ad", "iic"]


def last_conv(model: nn.Module) -> str:
    names = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    if not names:
        raise SystemExit("model has no Conv2d")
    return names[-1]


def explanations(clf, x, targets, out: Path, seed: int, batch_size: int,
                 redo: frozenset[str] = frozenset()) -> dict[str, Explanation]:
    layer = last_conv(clf.model)
    specs = {
        "LRP": ("lrp", {"composite": "epsilon_alpha2_beta1_flat"}),
        "LIME": ("lime", {"progress": False}),
        "GradCAM": ("gradcam", {"layer": layer}),
        "DeepLIFT": ("deeplift", {"baseline": "zero_normalized"}),
    }
    found: dict[str, Explanation] = {}
    for label, (method, params) in specs.items():
        path = out / f"explanation_{label}.pt"
        if path.exists() and label not in redo:
            d = torch.load(path, weights_only=False)
            if d["targets"].shape == targets.shape and torch.equal(d["targets"].cpu(), targets.cpu()):
                found[label] = Explanation(d["maps"], d["targets"], d["method"], d["params"], d["layer_maps"],
                                           info={"seconds": d.get("seconds")})
                continue
            print(f"  {label}: cached explanation is for other images, recomputing", flush=True)
        t0 = time.perf_counter()
        e = cnnlens.explain(clf, x, method, target=targets, seed=seed, batch_size=batch_size, **params)
        e.info["seconds"] = time.perf_counter() - t0
        print(f"  {label}: {e.info['seconds']:.1f} s", flush=True)
        tmp = path.with_suffix(".tmp")
        torch.save({"maps": e.maps.cpu(), "targets": e.targets.cpu(), "method": e.method,
                    "params": {k: v for k, v in e.params.items() if not isinstance(v, torch.Tensor)},
                    "layer_maps": None if e.layer_maps is None else e.layer_maps.cpu(),
                    "seconds": e.info["seconds"]}, tmp)
        tmp.replace(path)
        found[label] = e
    return found


def run_case(name: str, model: str, dataset: str, split: str | None, n: int, out: Path, seed: int,
             batch_size: int, redo: frozenset[str] = frozenset()) -> dict:
    clf = zoo.load_classifier(model)
    data = zoo.load_dataset(dataset, **({"split": split} if split else {}))
    if n < data.images.shape[0] and dataset == "lfw_faces":
        # lfw_faces is 100 faces then 100 non-faces: a shorter run takes n/2 of each
        idx = torch.cat([torch.arange(n // 2), 100 + torch.arange(n - n // 2)])
    else:
        idx = torch.arange(min(n, data.images.shape[0]))
    x, labels = data.images[idx], data.labels[idx]
    targets = clf.predict(x)
    acc = float((targets.cpu() == labels).double().mean())
    case_dir = out / name
    case_dir.mkdir(parents=True, exist_ok=True)
    print(f"[{name}] {model} on {dataset} ({x.shape[0]} images, accuracy {acc:.3f})", flush=True)
    exps = explanations(clf, x, targets, case_dir, seed, batch_size, redo)
    summary = {"model": model, "dataset": dataset, "split": split, "n": int(x.shape[0]), "accuracy": acc,
               "gradcam_layer": last_conv(clf.model), "tables": {}, "ad_logit_unclipped": {},
               "explain_seconds": {k: e.info.get("seconds") for k, e in exps.items()},
               "layer_map_shape": list(exps["GradCAM"].layer_maps.shape[1:])}
    for protocol in ("rise", "gomez"):
        path = case_dir / f"table_{protocol}.json"
        table, done, kept_seconds = None, None, {}
        if path.exists():
            table = ComparisonTable.from_dict(json.loads(path.read_text()))
            if table.params.get("targets") != targets.tolist():  # cached for other images (another --n)
                print(f"  {protocol}: cached table is for other images, recomputing", flush=True)
                table = None
            elif redo & set(table.results):  # --methods: recompute those rows, keep the others
                done = {label: row for label, row in table.results.items() if label not in redo}
                kept_seconds = {label: table.seconds[label] for label in done if label in table.seconds}
                print(f"  {protocol}: recomputing {', '.join(sorted(redo & set(table.results)))}; "
                      f"keeping {', '.join(done)}", flush=True)
                table = None
        if table is None:
            t0 = time.perf_counter()
            table = cnnlens.compare(clf, x, methods=list(exps.items()), metrics=METRICS, protocol=protocol,
                                    target=targets, seed=seed, batch_size=batch_size, progress=False, done=done)
            table.seconds.update(kept_seconds)  # a kept row keeps its explaining time
            table.params["seconds"] = time.perf_counter() - t0
            table.to_json(path)
            table.plot_curves(case_dir / f"curves_{protocol}.png")
            print(f"  {protocol}: {table.params['seconds']:.1f} s", flush=True)
        summary["tables"][protocol] = table
        upsample = "bilinear" if protocol == "rise" else "bicubic"
        adl = {}
        for label, e in exps.items():
            maps = e.maps if protocol == "rise" or e.layer_maps is None else e.layer_maps
            ad, _ = average_drop_increase(clf, x, maps, targets=targets, score="logit", clip=False,
                                          upsample=upsample, batch_size=batch_size)
            adl[label] = float(ad.mean())
        summary["ad_logit_unclipped"][protocol] = adl
    return summary


def markdown(summary: dict) -> str:
    lines = []
    for protocol, table in summary["tables"].items():
        lines.append(f"**{summary['model']} / {summary['dataset']}** ({summary['n']} images, model accuracy "
                     f"{summary['accuracy']:.3f}), protocol `{protocol}`:\n")
        head = "| method | IAUC ↑ | DAUC ↓ | IC ↑ | DC ↑ | AD ↓ | IIC ↑ | AD (logit, unclipped) |"
        lines += [head, "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for row, res in table.results.items():
            cells = [f"{res[m].mean:.3f} ± {res[m].std:.3f}" for m in METRICS]
            adl = summary["ad_logit_unclipped"][protocol].get(row)
            lines.append(f"| {row} | " + " | ".join(cells) + f" | {'' if adl is None else f'{adl:.3f}'} |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--cases", default="a,b")
    ap.add_argument("--out", default="runs/overview")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--methods", default="",
                    help="comma-separated labels (LRP, LIME, GradCAM, DeepLIFT) to recompute, ignoring their "
                         "cached explanations and table rows; the other cached rows are kept")
    args = ap.parse_args()
    redo = frozenset(m for m in args.methods.split(",") if m)
    unknown = redo - {"LRP", "LIME", "GradCAM", "DeepLIFT"}
    if unknown:
        raise SystemExit(f"--methods: unknown label(s) {', '.join(sorted(unknown))}; use LRP, LIME, GradCAM, DeepLIFT")
    cnnlens.tune_cpu_malloc()  # a long CPU job: no page fault per large activation (BENCHMARKS.md)
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    cases = {"a": ("a_onet_lfw", "onet_face", "lfw_faces", None),
             "b": ("b_fashion_pair_seq", "fashion_pair_seq", "fashion_pair", "test")}
    parts = ["OVERVIEW's table (its data: cats vs dogs):\n",
             "| method | IAUC | DAUC | IC | DC | AD | IIC |", "|---|---:|---:|---:|---:|---:|---:|"]
    parts += [f"| {k} | " + " | ".join(f"{v:g}" for v in vals) + " |" for k, vals in OVERVIEW.items()]
    parts.append("")
    for key in args.cases.split(","):
        name, model, dataset, split = cases[key]
        s = run_case(name, model, dataset, split, args.n, out, args.seed, args.batch_size, redo)
        parts.append(markdown(s))
        meta = {k: v for k, v in s.items() if k != "tables"}
        atomic_write_text(out / name / "summary.json", json.dumps(meta, indent=1))
    text = "\n".join(parts)
    atomic_write_text(out / "overview_tables.md", text)
    print(text)


if __name__ == "__main__":
    main()
