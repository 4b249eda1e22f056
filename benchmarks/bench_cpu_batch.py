"""Forward cost per image against batch size on the CPU, and what it does to RISE.

Found while running DA Fig. 5 at 224² (issue 24): RISE with the default ``batch_size=64`` took
~260 s per photo on MobileNetV2 with one thread, and ~80 s with ``batch_size=4``. This measures
why: the per-image cost of one forward pass, no grad (``Classifier.logits(x, batch_size)``, the path
every batched method takes, and the bare model), for batch sizes 1…64, for the bundled
ImageNet models at 224², the RI/NeSy task models at 64² and 128² and the MNIST CNN at 28², one process, ``--threads`` torch threads. Then
RISE on one photo at ``batch_size`` 64 and 4 (same masks: the maps must agree).

    python benchmarks/bench_cpu_batch.py [--threads 1] [--reps 3] [--out benchmarks/results/cpu_batch.json]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path


def per_image_ms(model, x, reps: int) -> float:
    import torch

    with torch.inference_mode():
        model(x)  # warm-up (oneDNN primitive creation)
        best = float("inf")
        for _ in range(reps):
            t0 = time.perf_counter()
            model(x)
            best = min(best, time.perf_counter() - t0)
    return best / x.shape[0] * 1000


def main(argv: list[str] | None = None) -> None:
    import torch

    import cnnlens
    from cnnlens import zoo

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32, 64])
    ap.add_argument("--rise-masks", type=int, default=1000, help="masks for the RISE timing (the default is 4000)")
    ap.add_argument("--out", default="benchmarks/results/cpu_batch.json")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    cases = [("mobilenet_v2_imagenet", 224), ("efficientnet_lite0_imagenet", 224), ("fashion_pair_seq", 128),
             ("texture_cnn", 64), ("fashion_task4", 64), ("mnist_cnn", 28)]
    rows = []
    for name, size in cases:
        try:
            clf = zoo.load_classifier(name)
        except Exception as e:  # noqa: BLE001 - a weight package not installed: say so, go on
            print(f"{name}: skipped ({e})")
            continue
        c = int(clf.input_shape[0]) if clf.input_shape else 3
        for bs in args.batches:
            x = torch.rand(bs, c, size, size)
            # the path every batched method takes (no grad, channels-last input), and the bare model
            ms = per_image_ms(lambda b, bs=bs: clf.logits(b, batch_size=bs), x, args.reps)
            raw = per_image_ms(clf.model, x, args.reps)
            rows.append({"model": name, "size": size, "batch": bs, "ms_per_image": ms, "ms_per_image_bare_model": raw})
            print(f"{name} {size}² batch {bs:3d}: {ms:7.2f} ms / image (bare model, plain layout: {raw:.2f})", flush=True)
    rise = []
    try:
        clf = zoo.load_classifier("mobilenet_v2_imagenet")
        x = zoo.load_dataset("imagenet_photos", model="mobilenet_v2_imagenet").images[:1]
        maps = {}
        for bs in (64, 4):
            t0 = time.perf_counter()
            maps[bs] = cnnlens.explain(clf, x, "rise", n_masks=args.rise_masks, seed=0, batch_size=bs, progress=False).maps
            rise.append({"batch_size": bs, "n_masks": args.rise_masks, "seconds": time.perf_counter() - t0})
            print(f"RISE {args.rise_masks} masks, MobileNetV2 224², batch_size {bs}: {rise[-1]['seconds']:.1f} s", flush=True)
        diff = float((maps[64] - maps[4]).abs().max())
        print(f"RISE maps, batch 64 vs 4: max |Δ| = {diff:.2e}")
        rise.append({"max_abs_diff_64_vs_4": diff})
    except Exception as e:  # noqa: BLE001 - photos or weights missing
        print(f"RISE timing skipped ({e})")
    out = {"threads": args.threads, "reps": args.reps, "forward": rows, "rise": rise, "torch": torch.__version__,
           "machine": f"{platform.machine()}, {os.cpu_count()} cores", "load_avg": os.getloadavg(),
           "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
