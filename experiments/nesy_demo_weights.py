"""Ship the demo's NeSy pair (issue 26 item 6): ``fashion_vgg`` fine-tuned on P2 (Pullover vs Coat)
with a sparsity strategy to convergence, and the post-hoc baseline of the same design and seed, as
float16 state dicts (small; the demo measures everything live from them) plus one JSON record with
the training θ, the runs' settings, their measured test metrics and this command.

    python experiments/nesy_demo_weights.py --results experiments/results/nesy_conv/results.json \
        --ckpt out/nesy_conv/ckpt --subset P2 --seed 0 --sparse TS3 --base NE
"""
from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path

import torch

from cnnlens._io import atomic_write_bytes, atomic_write_text

ROOT = Path(__file__).resolve().parent.parent
WEIGHTS = ROOT / "src" / "cnnlens" / "weights"
sys.path.insert(0, str(Path(__file__).resolve().parent))
from nesy_reproduction import SUBSETS  # noqa: E402

KEEP = ("accuracy", "fidelity", "cnn_accuracy", "size", "n_rules", "n_filters", "no_fire", "n",
        "near_binary", "near_binary_ceiling", "epochs_run", "phase_epochs", "settings", "code_version")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results", default="experiments/results/nesy_conv/results.json")
    p.add_argument("--ckpt", default="out/nesy_conv/ckpt")
    p.add_argument("--subset", default="P2")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sparse", default="TS3")
    p.add_argument("--base", default="NE")
    a = p.parse_args(argv)
    runs = {(r["subset"], r["strategy"], r["seed"]): r for r in json.loads(Path(a.results).read_text())["runs"]}
    record = {"subset": a.subset, "classes": SUBSETS[a.subset], "seed": a.seed,
              "data": {"n_train": None, "n_test": None, "perm_seed": 1000 + a.seed},
              "backbone": "fashion_vgg with a fresh C-class last layer", "models": {},
              "command": "python experiments/nesy_demo_weights.py " + " ".join(argv if argv is not None else sys.argv[1:])}
    for st in (a.sparse, a.base):
        r = runs[(a.subset, st, a.seed)]
        state = torch.load(Path(a.ckpt) / f"{a.subset}_{st}_{a.seed}" / "last.pt", map_location="cpu", weights_only=True)
        fname = f"nesy_{a.subset.lower().replace('.', '')}_{st.lower()}.pt"
        half = {k: v.half() if v.is_floating_point() else v for k, v in state["model"].items()}
        buf = io.BytesIO()
        torch.save(half, buf)
        atomic_write_bytes(WEIGHTS / fname, buf.getvalue())
        record["data"]["n_train"], record["data"]["n_test"] = r["n_train"], r["n_test"]
        record["models"][st] = {
            "file": f"weights/{fname}", "binarization": "sigmoid" if st.startswith("TS") else "threshold",
            "theta": [float(t) for t in state["theta"]] if st.startswith("TS") else None,
            "run": {k: r[k] for k in KEEP if k in r}}
        print(f"wrote {fname} ({(WEIGHTS / fname).stat().st_size / 2**20:.2f} MiB)")
    atomic_write_text(WEIGHTS / f"nesy_{a.subset.lower().replace('.', '')}.json", json.dumps(record, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
