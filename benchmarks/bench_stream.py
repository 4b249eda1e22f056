"""Streaming + shards (issue 23): peak RSS of a sharded ``cnnlens evaluate`` over a folder of
500 vs 2,000 MNIST PNGs, against the size of what the run writes.

Writes the images (the bundled MNIST digits as 28×28 PNGs in ``root/<label>/``) to a temporary
folder outside the repository, then runs, each in a fresh process under ``/usr/bin/time -v``::

    cnnlens evaluate --model mnist_cnn --images DIR --limit N --methods saliency \\
        --metrics ad,iic,dauc --step 16 --shard-size 100 --quiet --out OUT

and prints N, peak RSS (MiB), seconds and the size of OUT (shards + merged outputs).

    OMP_NUM_THREADS=1 python benchmarks/bench_stream.py [--n 500,2000] [--root /tmp/cnnlens_stream]
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path


def write_folder(root: Path, n: int) -> None:
    import numpy as np
    from PIL import Image

    from cnnlens import zoo

    if root.exists() and sum(1 for _ in root.rglob("*.png")) >= n:
        return
    shutil.rmtree(root, ignore_errors=True)
    ds = zoo.load_dataset("mnist", split="all")
    for i in range(n):
        d = root / str(int(ds.labels[i]))
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray((ds.images[i, 0].numpy() * 255).round().astype(np.uint8)).save(d / f"{i:05d}.png")


def du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", default="500,2000")
    ap.add_argument("--root", default="/tmp/cnnlens_stream")
    ap.add_argument("--shard-size", type=int, default=100)
    args = ap.parse_args()
    sizes = [int(v) for v in args.n.split(",")]
    root = Path(args.root)
    write_folder(root / "images", max(sizes))
    print("| images | peak RSS MiB | seconds | outputs MiB (shards + merged) | merged only MiB |")
    print("|---:|---:|---:|---:|---:|")
    for n in sizes:
        out = root / f"out_{n}"
        shutil.rmtree(out, ignore_errors=True)
        cmd = ["/usr/bin/time", "-v", sys.executable, "-m", "cnnlens", "evaluate", "--model", "mnist_cnn",
               "--images", str(root / "images"), "--limit", str(n), "--methods", "saliency",
               "--metrics", "ad,iic,dauc", "--step", "16", "--shard-size", str(args.shard_size), "--quiet",
               "--out", str(out)]
        t0 = time.perf_counter()
        res = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
        secs = time.perf_counter() - t0
        if res.returncode != 0:
            raise SystemExit(res.stderr[-2000:])
        rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", res.stderr).group(1))
        total = du(out)
        merged = total - du(out / "shards")
        print(f"| {n} | {rss_kb / 1024:.1f} | {secs:.1f} | {total / 2**20:.2f} | {merged / 2**20:.2f} |", flush=True)


if __name__ == "__main__":
    main()
