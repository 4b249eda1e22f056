"""Cost model of a data-set-scale run (issue 23 item 6): N images × every method (+ the six metrics
on every method's maps and the random baseline) on 1–64 GPUs. docs/scale.md explains the inputs.

Per method m and image: ``fe`` = forward equivalents = forwards + fwd_bwd × backward_factor (a
forward+backward pass in units of a forward); GPU seconds = N · fe / throughput (forward-images
per second on one GPU); CPU core-seconds = N · (cpu_ms + decode_ms) / 1000 (segmentation etc. and
one image decode per pass over the data); bytes written = N · bytes. On G GPUs (each with
``cpu_cores_per_gpu`` cores; ``gpus_per_node`` per node writing at ``node_write_MB_s``; all nodes
into one file system of ``fs_write_MB_s``) a pass takes

    t_m(G) = max(GPU / G, CPU / (G · cores), bytes / min(nodes(G) · node_write, fs_write))
             + ray_fixed_s + ceil(N / shard_size) · per_shard_s / G

(the three overlap: DataLoader workers decode while the GPU computes; Ray's fixed cost once per
pass). The run is the sum of the passes; the limit of a pass is the largest of the three terms.

    python benchmarks/cost_model.py [--inputs benchmarks/cost_model_inputs.json]
        [--gpu-bench OUT/gpu_bench.json]   # throughput from benchmarks/gpu.py's calibration row
        [--throughput 5000] [--json out.json]
"""
from __future__ import annotations

import argparse
import copy
import json
import math
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_INPUTS = HERE / "cost_model_inputs.json"


def throughput_from_gpu_bench(path: str | Path, model: str) -> float:
    """Forward-images per second of ``model`` from benchmarks/gpu.py's calibration row."""
    data = json.loads(Path(path).read_text())
    for r in data["rows"]:
        if r["model"] == model and r["task"] == "forward (calibration)" and r.get("ms_per_forward"):
            return 1000.0 / float(r["ms_per_forward"])
    raise SystemExit(f"{path}: no calibration row of {model}")


def passes(inp: dict) -> list[dict]:
    """One pass per method, then one metrics pass per evaluated row (every method + the random
    baseline), each ``{"name", "fe", "cpu_ms", "bytes"}`` per image."""
    bf = float(inp["backward_factor"]["value"])
    out = []
    for name, m in inp["methods"].items():
        out.append({"name": name, "fe": m.get("forwards", 0) + m.get("fwd_bwd", 0) * bf,
                    "cpu_ms": m.get("cpu_ms", 0.0), "bytes": m.get("bytes", 0)})
    met = inp["metrics"]
    rows = list(inp["methods"]) + ["random"] if met.get("random_baseline", True) else list(inp["methods"])
    for r in rows:
        out.append({"name": f"metrics({r})", "fe": met["forwards"], "cpu_ms": met.get("cpu_ms", 0.0),
                    "bytes": met.get("bytes", 0)})
    return out


def evaluate(inp: dict, gpus: int) -> dict:
    """Seconds of the whole run on ``gpus`` GPUs, per pass with its limit."""
    n = int(inp["images"])
    thr = float(inp["gpu_throughput"]["value"])
    cores = int(inp["cpu_cores_per_gpu"]["value"])
    dec = float(inp["decode_ms"]["value"])
    io = inp["io"]
    nodes = math.ceil(gpus / int(io["gpus_per_node"]["value"]))
    bw = min(nodes * float(io["node_write_MB_s"]["value"]), float(io["fs_write_MB_s"]["value"])) * 1e6
    ray = inp["ray"]
    shards = math.ceil(n / int(ray["shard_size"]["value"]))
    fixed = float(ray["fixed_s"]["value"]) + shards * float(ray["per_shard_ms"]["value"]) / 1e3 / gpus
    rows, total = [], 0.0
    for p in passes(inp):
        terms = {"forwards": n * p["fe"] / thr / gpus, "decode+CPU": n * (p["cpu_ms"] + dec) / 1e3 / (gpus * cores),
                 "result I/O": n * p["bytes"] / bw}
        limit = max(terms, key=terms.get)
        t = terms[limit] + fixed
        total += t
        rows.append({"pass": p["name"], "fe_per_image": p["fe"], "seconds": t, "limit": limit, **terms})
    return {"gpus": gpus, "seconds": total, "passes": rows,
            "forward_equivalents": n * sum(p["fe"] for p in passes(inp)),
            "bytes": n * sum(p["bytes"] for p in passes(inp))}


def _h(s: float) -> str:
    return f"{s / 3600:.1f} h" if s < 3 * 86400 else f"{s / 86400:.1f} d"


def table(inp: dict) -> str:
    """Markdown: per pass at 1 GPU and the largest G, then the run on every G with its limits."""
    gs = list(inp["gpus"])
    res = [evaluate(inp, g) for g in gs]
    thr = inp["gpu_throughput"]
    lines = [f"{inp['images']:,} images of {inp['model']}; GPU throughput {thr['value']:g} forward-images/s "
             f"({'measured' if thr.get('measured') else 'ASSUMED'}: {thr.get('source', '')}); "
             f"CPU reference: {inp['cpu_forward_ms']['value']} ms per forward on one core", "",
             f"| pass | forward equivalents / image | GPU-hours (1 GPU) | CPU core-hours | TB written "
             f"| limit at 1 GPU | limit at {gs[-1]} GPUs |", "|---|---:|---:|---:|---:|---|---|"]
    first, last = res[0], res[-1]
    n = int(inp["images"])
    k = sum(1 for p in passes(inp) if p["name"].startswith("metrics("))  # the metric passes are alike: one line
    for i, (p1, pg, p) in enumerate(zip(first["passes"], last["passes"], passes(inp))):
        name, times = p1["pass"], 1
        if name.startswith("metrics("):
            if i > len(passes(inp)) - k:
                continue
            name, times = f"metrics, six (× {k} rows: every method{' + random' if k > len(inp['methods']) else ''})", k
        lines.append(f"| {name} | {p['fe']:g} | {times * p1['forwards'] / 3600:,.1f} | "
                     f"{times * n * (p['cpu_ms'] + float(inp['decode_ms']['value'])) / 3.6e6:,.1f} | "
                     f"{times * n * p['bytes'] / 1e12:.3f} | {p1['limit']} | {pg['limit']} |")
    core_s = first["forward_equivalents"] * float(inp["cpu_forward_ms"]["value"]) / 1e3
    lines += ["", f"Total: {first['forward_equivalents']:.3g} forward equivalents, {first['bytes'] / 1e12:.2f} TB "
              f"written; on CPU at the measured per-forward cost: {core_s / 3.15e7:,.1f} core-years.", "",
              "| GPUs | run time | passes limited by forwards / decode+CPU / result I/O |", "|---:|---:|---|"]
    for r in res:
        c = {k: sum(1 for p in r["passes"] if p["limit"] == k) for k in ("forwards", "decode+CPU", "result I/O")}
        lines.append(f"| {r['gpus']} | {_h(r['seconds'])} | {c['forwards']} / {c['decode+CPU']} / {c['result I/O']} |")
    return "\n".join(lines)


def load(path: str | Path = DEFAULT_INPUTS, gpu_bench: str | None = None, throughput: float | None = None) -> dict:
    inp = copy.deepcopy(json.loads(Path(path).read_text()))
    if gpu_bench:
        inp["gpu_throughput"] = {"value": throughput_from_gpu_bench(gpu_bench, inp["model"]), "measured": True,
                                 "source": f"calibration row of {gpu_bench}"}
    if throughput:
        inp["gpu_throughput"] = {"value": throughput, "measured": False, "source": "--throughput"}
    return inp


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--inputs", default=str(DEFAULT_INPUTS))
    ap.add_argument("--gpu-bench", default=None, help="gpu_bench.json of benchmarks/gpu.py (measured throughput)")
    ap.add_argument("--throughput", type=float, default=None, help="override: forward-images per second per GPU")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    inp = load(args.inputs, args.gpu_bench, args.throughput)
    print(table(inp))
    if args.json:
        Path(args.json).write_text(json.dumps([evaluate(inp, g) for g in inp["gpus"]], indent=1))


if __name__ == "__main__":
    main()
