"""The Ray engine (issue 23 item 3): 1 vs 2 Ray workers on this machine.

``explain_sharded`` of the first N bundled MNIST test digits with RISE (``n_masks`` masks,
batch size 50) in shards of 5 images, on a local Ray with 2 CPUs (loopback only): once with
1 worker actor, once with 2 (each a fresh output folder; wall time of the whole call: actor
start and model load included, merge included), ``--repeat`` times in alternating order. Also the
in-process engine (1 torch thread, as each actor has) for reference. Prints one row per run and
the median ratio t(1 worker) / t(2 workers); the maps of every run are checked to be identical.
First a control of what the machine gives two processes now: 400 forwards of 50 digits (1 thread)
in one process alone, then in two processes at once (on an idle 2-core machine both take the
time of one; on a loaded one up to twice that).

    python benchmarks/bench_ray.py [--n 40] [--n-masks 2000] [--repeat 2]
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

BURN = """
import time, torch
torch.set_num_threads(1)
from cnnlens import zoo
clf = zoo.load_classifier("mnist_cnn"); x = torch.rand(50, 1, 28, 28)
t = time.perf_counter()
with torch.no_grad():
    for _ in range(400):
        clf.model(x)
print(time.perf_counter() - t)
"""


def control() -> tuple[float, list[float]]:
    """Seconds of the forward loop alone, and of each of two copies run at once."""
    def start() -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-c", BURN], stdout=subprocess.PIPE, text=True)

    alone = float(start().communicate()[0])
    pair = [start(), start()]
    return alone, [float(q.communicate()[0]) for q in pair]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=40)
    ap.add_argument("--n-masks", type=int, default=2000)
    ap.add_argument("--shard-size", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()

    alone, pair = control()
    print(f"control: one process {alone:.2f} s; two at once {pair[0]:.2f} s and {pair[1]:.2f} s "
          f"(parallel capacity {2 * alone / max(pair):.2f} of 2)", flush=True)

    import ray
    import torch

    from cnnlens import shards, zoo

    torch.set_num_threads(1)
    clf = zoo.load_classifier("mnist_cnn")
    x = zoo.load_dataset("mnist", split="test").images[: args.n].clone()
    names = [f"{i:04d}.png" for i in range(args.n)]
    kw = dict(shard_size=args.shard_size, method_params={"rise": {"n_masks": args.n_masks}}, batch_size=50, progress=False)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1")
    times: dict[str, list[float]] = {"local": [], "ray-1": [], "ray-2": []}
    maps = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeat):
            order = ["ray-1", "ray-2", "local"] if r % 2 == 0 else ["ray-2", "ray-1", "local"]
            for run in order:
                out = Path(tmp) / f"{run}-{r}"
                t0 = time.perf_counter()
                if run == "local":
                    shards.explain_sharded(clf, x, names, ["rise"], out, **kw)
                else:
                    shards.explain_sharded(clf, x, names, ["rise"], out, engine="ray", workers=int(run[-1]), **kw)
                dt = time.perf_counter() - t0
                times[run].append(dt)
                with np.load(out / "maps.npz") as z:
                    maps.append(z["rise"].tobytes())
                print(f"repeat {r} {run:6s} {dt:7.2f} s", flush=True)
    ray.shutdown()
    assert all(m == maps[0] for m in maps), "maps differ between runs"
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"median s: local {med['local']:.2f}, ray 1 worker {med['ray-1']:.2f}, ray 2 workers {med['ray-2']:.2f}; "
          f"ratio t1/t2 = {med['ray-1'] / med['ray-2']:.2f}; maps identical in all {len(maps)} runs")


if __name__ == "__main__":
    main()
