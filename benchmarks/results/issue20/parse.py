import ast, glob, re, os, statistics as st, sys
D = "/work/main/benchmarks/results/issue20"
def runs(tag):
    fs = sorted(glob.glob(f"{D}/{tag}_[0-9]_[AB].txt"))
    return [(os.path.basename(f).split("_")[-1][0], open(f).read()) for f in fs]
R = {}  # (bench, case, ratio) -> {"B": [..], "A": [..]}
def add(b, c, r, side, v):
    R.setdefault((b, c, r), {"B": [], "A": []})[side].append(v)
for side, t in runs("ri"):
    m = re.search(r"ratio loop/vectorised greedy: ([\d.]+)", t)
    if m: add("bench_ri (10 q x 3)", "mnist_cnn greedy", "loop / vectorised", side, float(m.group(1)))
for side, t in runs("ri_default"):
    m = re.search(r"ratio loop/vectorised greedy: ([\d.]+)", t)
    if m: add("bench_ri (20 q x 5)", "mnist_cnn greedy", "loop / vectorised", side, float(m.group(1)))
for side, t in runs("fold"):
    m = re.search(r"([\d.]+)× slower than ours", t)
    if m: add("bench_fold --runs 3", "binary 10000x512", "foldrm / ours fit", side, float(m.group(1)))
for side, t in runs("foldnum"):
    for line in t.splitlines():
        if line.startswith("| cnnlens"):
            cells = [c.strip() for c in line.split("|")]
            add("bench_fold numeric (ours only)", cells[1], "fit s median", side, float(cells[3]))
for side, t in runs("foldnumrm"):
    for line in t.splitlines():
        if line.startswith("| cnnlens"):
            cells = [c.strip() for c in line.split("|")]
            if cells[5].endswith("×"): add("bench_fold --table numeric --runs 3", cells[1], "foldrm / ours fit", side, float(cells[5].rstrip("×").strip("*")))
for side, t in runs("metrics"):
    for line in t.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 10 and cells[1] == "rise":
            add("bench_metrics --quick", cells[0], "efficiency (CPU)", side, float(cells[9]))
        if len(cells) == 8 and cells[6].endswith("x"):
            add("bench_metrics --quick", cells[0], "speed-up vs saliency-maps-metrics (CPU)", side, float(cells[6].split("/")[1].strip().rstrip("x")))
for tagname, bname in (("attribution", "bench_attribution (mnist+mbv2, 250 LIME / 500 RISE)"), ("attrmbv2", "bench_attribution (mnist+mbv2, 250 LIME / 500 RISE)"), ("attrmnist", "bench_attribution (mnist, defaults)")):
  for side, t in runs(tagname):
      rows = [ast.literal_eval(l) for l in t.splitlines() if l.startswith("{'model'")]
      for model in {r["model"] for r in rows}:
          rr = {(r["method"], r["impl"]): r for r in rows if r["model"] == model}
          ctrl = rr.get(("forward loop (control)", "plain Classifier.logits"))
          for meth, peer in (("scorecam", "pytorch-grad-cam"), ("lime", "lime 0.2.0.1")):
              o, p = rr.get((meth, "cnnlens")), rr.get((meth, peer))
              if o and p: add(bname, f"{model} {meth}", f"{peer} CPU / ours CPU", side, p["cpu_s"] / o["cpu_s"])
          for meth in ("scorecam", "lime", "rise"):
              o = rr.get((meth, "cnnlens"))
              if o:
                  add(bname, f"{model} {meth}", "efficiency (CPU)", side, o["efficiency_cpu"])
                  if ctrl: add(bname, f"{model} {meth}", "vs forward loop (CPU)", side, o["passes"] * ctrl["cpu_s"] / ctrl["passes"] / o["cpu_s"])
          if ctrl: add(bname, f"{model} control", "efficiency (CPU)", side, ctrl["efficiency_cpu"])
for ptag, pname in (("propagation", "bench_propagation --size 64"), ("prop112", "bench_propagation (112², default)")):
  for side, t in runs(ptag):
      for line in t.splitlines():
          cells = [c.strip() for c in line.strip().strip("|").split("|")]
          if len(cells) == 7 and re.match(r"^[\d.]+$", cells[5] or "x"):
              add(pname, f"{cells[0]} {cells[1]}", "ours / peer time", side, float(cells[5]))
for side, t in runs("ablation"):
    for line in t.splitlines():
        if line.startswith("(a)"):
            d = ast.literal_eval(line[4:].replace("null", "None").replace("true", "True").replace("false", "False"))
            add("bench_ablation (2 photos x 10 it)", "(a) mobilenet_v2 Pos-R", "efficiency (wall)", side, d["efficiency"])
        if line.startswith("(b)"):
            d = ast.literal_eval(line[4:].replace("null", "None").replace("true", "True").replace("false", "False"))
            add("bench_ablation (8 digits x 100 it)", "(b) mnist_cnn", "sequential / batched speed-up (wall)", side, d["speedup"]); print("ABL-b", side, d["identical_masks"], d["batched"]["evaluations"], file=sys.stderr)
print("| benchmark | case | ratio | before (runs) | after (runs) | change | within ±15 % |")
print("|---|---|---|---|---|---|---|")
for (b, c, r), v in R.items():
    B, A = v["B"], v["A"]
    if not B or not A: continue
    mb, ma = st.mean(B), st.mean(A)
    ch = ma / mb - 1
    fmt = lambda xs: ", ".join(f"{x:.2f}" for x in xs)
    print(f"| {b} | {c} | {r} | {mb:.2f} ({fmt(B)}) | {ma:.2f} ({fmt(A)}) | {ch*100:+.1f} % | {'yes' if abs(ch) <= 0.15 else '**no**'} |")
