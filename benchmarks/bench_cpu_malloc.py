"""Benchmark of ``cnnlens.tune_cpu_malloc()`` (glibc: no fresh ``mmap`` per large activation).

Each measurement runs in a fresh interpreter (the setting is process-wide and cannot be undone),
default allocator and tuned allocator alternating, and reports the best of ``--repeats`` runs:

1. batched no-grad forwards (``Classifier.logits(x, batch_size=B)``) of the bundled models at
   several batch sizes: CPU ms per image (user + system, from ``getrusage``), the system share,
   and wall ms per image;
2. end to end: RISE (500 masks) and LIME (300 samples) on one 224² photo with MobileNetV2, and
   the insertion + deletion games (``rise`` protocol, 224 steps) on it, at batch size 64.

Results are identical with and without the tuning (the allocator does not change arithmetic);
the script checks the RISE maps agree.

Run: ``python benchmarks/bench_cpu_malloc.py [--threads 1] [--repeats 2]``; prints markdown.
"""
from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys

import torch

CHILD = r"""
import json, resource, sys, time
import torch
import cnnlens
from cnnlens import zoo

mode, threads, job = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])
if mode == "tuned":
    assert cnnlens.tune_cpu_malloc()
torch.set_num_threads(threads)


def usage():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime, r.ru_stime, time.perf_counter()


def timed(fn):
    a = usage(); out = fn(); b = usage()
    return out, (b[0] - a[0], b[1] - a[1], b[2] - a[2])


clf = zoo.load_classifier(job["model"])
x0 = zoo.load_dataset(job["dataset"]).images
if job["kind"] == "forward":
    n, bs = job["n"], job["batch_size"]
    x = x0[torch.arange(n) % len(x0)]
    clf.logits(x[:bs], batch_size=bs)  # warm-up
    _, t = timed(lambda: clf.logits(x, batch_size=bs))
    print(json.dumps({"cpu": t[0] / n * 1e3, "sys": t[1] / n * 1e3, "wall": t[2] / n * 1e3}))
else:
    x = x0[:1]
    params = dict(job.get("params", {}))
    if job["kind"] == "games":
        e = cnnlens.explain(clf, x, "gradcam")
        res, t = timed(lambda: cnnlens.evaluate(clf, x, e, metrics=["iauc", "dauc"], protocol="rise",
                                                batch_size=job["batch_size"]))
        check = [res["iauc"].mean, res["dauc"].mean]
    else:
        e, t = timed(lambda: cnnlens.explain(clf, x, job["method"], seed=0, batch_size=job["batch_size"], **params))
        check = e.maps.flatten()[::997].tolist()
    print(json.dumps({"cpu": t[0], "sys": t[1], "wall": t[2], "check": check}))
"""

FORWARD = [
    ("mobilenet_v2_imagenet", "photos", 128, [4, 16, 64]),
    ("onet_face", "lfw_faces", 4096, [64, 256, 1024]),
    ("mnist_cnn", "mnist", 8192, [64, 256, 1024]),
]
END_TO_END = [
    ("RISE, 500 masks", {"kind": "explain", "method": "rise", "params": {"n_masks": 500}}),
    ("LIME, 300 samples", {"kind": "explain", "method": "lime", "params": {"num_samples": 300, "progress_bar": False}}),
    ("insertion + deletion (rise, 224 steps)", {"kind": "games"}),
]


def run(mode: str, threads: int, job: dict) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, mode, str(threads), json.dumps(job)],
                         capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def best_pair(threads: int, repeats: int, job: dict) -> tuple[dict, dict]:
    runs: dict[str, list[dict]] = {"default": [], "tuned": []}
    for _ in range(repeats):
        for mode in ("default", "tuned"):
            runs[mode].append(run(mode, threads, job))
    return tuple(min(runs[m], key=lambda r: r["cpu"]) for m in ("default", "tuned"))  # type: ignore[return-value]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    print(f"machine: {platform.machine()}, {torch.get_num_threads()} CPUs visible, torch {torch.__version__}, "
          f"{args.threads} thread(s), best of {args.repeats} fresh processes per cell\n")
    print("| model | batch size | default: CPU ms/img (system) | tuned: CPU ms/img (system) | speed-up (CPU / wall) |")
    print("|---|---:|---:|---:|---:|")
    for model, dataset, n, sizes in FORWARD:
        for bs in sizes:
            d, t = best_pair(args.threads, args.repeats, {"kind": "forward", "model": model, "dataset": dataset,
                                                         "n": n, "batch_size": bs})
            print(f"| {model} | {bs} | {d['cpu']:.2f} ({d['sys']:.2f}) | {t['cpu']:.2f} ({t['sys']:.2f}) | "
                  f"{d['cpu'] / t['cpu']:.2f}× / {d['wall'] / t['wall']:.2f}× |", flush=True)
    print("\n| MobileNetV2, one 224² photo, batch size 64 | default: CPU s (system) | tuned: CPU s (system) | "
          "speed-up (CPU / wall) | same result |")
    print("|---|---:|---:|---:|---|")
    for label, job in END_TO_END:
        job = {**job, "model": "mobilenet_v2_imagenet", "dataset": "photos", "batch_size": 64}
        d, t = best_pair(args.threads, args.repeats, job)
        same = max(abs(a - b) for a, b in zip(d["check"], t["check"])) <= 1e-5
        print(f"| {label} | {d['cpu']:.1f} ({d['sys']:.1f}) | {t['cpu']:.1f} ({t['sys']:.1f}) | "
              f"{d['cpu'] / t['cpu']:.2f}× / {d['wall'] / t['wall']:.2f}× | {'yes' if same else 'NO'} |", flush=True)


if __name__ == "__main__":
    main()
