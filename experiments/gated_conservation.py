"""Conservation of LRP and completeness of DeepLIFT through squeeze-excitation gates and LayerNorm
(docs/algorithms.md §2 "Gates and normalisation"; the "every model" issue, item 1).

Four torchvision classifiers with random weights (seed 0, 5 classes) whose BatchNorm statistics are
calibrated on three skimage photos at 64×64; the three photos are explained for the predicted class.
For each network and setting, the table gives max over images of |Σ R − f| / |f| (LRP: f = the
explained logit; DeepLIFT: f = f(x) − f(x′)). Settings: the default composite, ε everywhere, ε with
every bias zero (BatchNorm mean 0 and var ← E[x²], so the scale is kept), and the same in float64
with ε = stabiliser = 1e-12 (the rules' own conservation without round-off).

    python experiments/gated_conservation.py          # ~1 min on 2 cores; writes experiments/results/gated/
"""
from __future__ import annotations

import copy
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
import torchvision
from skimage import data
from torch import nn

import cnnlens
from cnnlens import Classifier, explain

NETS = ("efficientnet_b0", "mobilenet_v3_small", "regnet_y_400mf", "convnext_tiny")
MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def photos(size: int = 64) -> torch.Tensor:
    imgs = [torch.tensor(getattr(data, n)()).permute(2, 0, 1).float()[None] / 255 for n in ("astronaut", "coffee", "chelsea")]
    return torch.cat([F.interpolate(i[:, :3], size=(size, size), mode="bilinear", antialias=True) for i in imgs])


def calibrated(name: str, x: torch.Tensor) -> nn.Module:
    torch.manual_seed(0)
    net = getattr(torchvision.models, name)(num_classes=5).train()
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.momentum = None
        net((x - torch.tensor(MEAN)[:, None, None]) / torch.tensor(STD)[:, None, None])
    return net.eval()


def without_biases(net: nn.Module) -> nn.Module:
    net = copy.deepcopy(net)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_var.add_(m.running_mean**2)
                m.running_mean.zero_()
            if isinstance(getattr(m, "bias", None), torch.Tensor):
                m.bias.zero_()
    return net


def deviation(e: cnnlens.Explanation, want: str, got: str) -> float:
    c = e.info["conservation"]
    f, s = torch.tensor(c[want], dtype=torch.float64), torch.tensor(c[got], dtype=torch.float64)
    return float(((s - f).abs() / f.abs()).max())


def main() -> None:
    torch.set_num_threads(2)
    x = photos()
    rows, t0 = [], time.time()
    for name in NETS:
        net = calibrated(name, x)
        clf = Classifier(net, mean=MEAN, std=STD)
        row = {"network": name}
        row["deeplift_f32"] = deviation(explain(clf, x, "deeplift"), "delta_f", "attribution_sum")
        net64 = copy.deepcopy(net).double()
        row["deeplift_f64"] = deviation(explain(Classifier(net64, mean=MEAN, std=STD), x.double(), "deeplift"),
                                        "delta_f", "attribution_sum")
        row["lrp_default"] = deviation(explain(clf, x, "lrp"), "explained", "relevance_sum")
        row["lrp_epsilon"] = deviation(explain(clf, x, "lrp", composite="epsilon"), "explained", "relevance_sum")
        nb = without_biases(net)
        row["lrp_epsilon_no_bias"] = deviation(explain(Classifier(nb, mean=MEAN, std=STD), x, "lrp", composite="epsilon"),
                                               "explained", "relevance_sum")
        row["lrp_epsilon_no_bias_f64"] = deviation(
            explain(Classifier(nb.double(), mean=MEAN, std=STD), x.double(), "lrp", composite="epsilon", epsilon=1e-12,
                    stabilizer=1e-12), "explained", "relevance_sum")
        rows.append(row)
        print(row, flush=True)
    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    meta = {"torch": torch.__version__, "torchvision": torchvision.__version__, "python": platform.python_version(),
            "git": rev, "wall_s": round(time.time() - t0, 1), "images": 3, "size": 64, "seed": 0, "date": time.strftime("%Y-%m-%d")}
    out = Path(__file__).parent / "results" / "gated"
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / "conservation.json.tmp"
    tmp.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    tmp.replace(out / "conservation.json")
    cols = [k for k in rows[0] if k != "network"]
    lines = ["| network | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    lines += ["| " + r["network"] + " | " + " | ".join(f"{r[c]:.1e}" for c in cols) + " |" for r in rows]
    (out / "conservation.md").write_text("\n".join(lines) + f"\n\n{json.dumps(meta)}\n")
    print("\n".join(lines), file=sys.stderr)


if __name__ == "__main__":
    main()
