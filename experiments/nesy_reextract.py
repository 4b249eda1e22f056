"""Re-learn the rules of finished NESY runs from their final checkpoints with other FoldSEM
parameters (no training), e.g. without the catch-all rule, to separate the rule learner's part of a
change from the training's:

    python experiments/nesy_reextract.py --results experiments/results/nesy/results_fixed_5ep.json \
        --ckpt out/nesy_fixed5/ckpt --fold '{"catch_all": false}' \
        --out experiments/results/nesy/results_fixed_5ep_nocatchall.json

The output has the same layout as the input (so experiments/nesy_report.py reads it); each run's
NeSy metrics are replaced and ``"fold_params"`` records what was changed.
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from nesy_reproduction import SUBSETS, backbone, near_binary, subset_data  # noqa: E402

from cnnlens import Classifier  # noqa: E402
from cnnlens._io import atomic_write_text  # noqa: E402
from cnnlens.models.fashion import FASHION_CLASS_NAMES, FASHION_MEAN, FASHION_STD  # noqa: E402
from cnnlens.nesy import NeSyModel, filter_norms  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results", required=True)
    p.add_argument("--ckpt", required=True)
    p.add_argument("--fold", required=True, help="FoldSEM parameters as JSON")
    p.add_argument("--out", required=True)
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    fold = json.loads(a.fold)
    res = json.loads(Path(a.results).read_text())
    base, _ = backbone(argparse.Namespace(out="out/nesy"))
    out = {k: v for k, v in res.items() if k != "runs"}
    out["runs"], out["reextract"] = [], {"from": a.results, "fold_params": fold}
    done = {}
    if Path(a.out).exists():  # a re-run redoes only the runs that are new in --results
        prev = json.loads(Path(a.out).read_text())
        if prev.get("reextract", {}).get("fold_params") == fold:
            done = {(r["subset"], r["strategy"], r["seed"]): r for r in prev["runs"]}
    cache: dict = {}
    for r in res["runs"]:
        sub, st, seed = r["subset"], r["strategy"], r["seed"]
        if (sub, st, seed) in done:
            out["runs"].append(done[(sub, st, seed)])
            continue
        key = (sub, seed)
        if key not in cache:
            cache.clear()
            cache[key] = subset_data(sub, r["n_train"], r["settings"]["n_val"], r["n_test"], seed)
        tr, _, te = cache[key]
        state = torch.load(Path(a.ckpt) / f"{sub}_{st}_{seed}" / "last.pt", map_location="cpu", weights_only=True)
        net = copy.deepcopy(base)
        net.classifier[-1] = nn.Linear(net.classifier[-1].in_features, len(SUBSETS[sub]))
        net.load_state_dict(state["model"])
        clf = Classifier(net.eval(), mean=FASHION_MEAN, std=FASHION_STD, input_shape=(1, 28, 28),
                         class_names=[FASHION_CLASS_NAMES[c] for c in SUBSETS[sub]])
        sparse = st.startswith("TS")
        nesy = NeSyModel.fit(clf, tr.images, tr.labels, binarization="sigmoid" if sparse else "threshold",
                             theta=state["theta"] if sparse else None, fold_params=fold)
        m = nesy.evaluate(te.images, te.labels)
        m["near_binary"] = near_binary(filter_norms(clf, te.images), nesy.theta)
        new = dict(r)
        new.update(m, program=nesy.rules.to_asp(), fold_params=fold)
        out["runs"].append(new)
        print(sub, st, seed, {k: m[k] for k in ("accuracy", "size", "no_fire")}, "was",
              {k: r[k] for k in ("accuracy", "size", "no_fire")}, flush=True)
    atomic_write_text(a.out, json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
