"""EfficientNet-Lite in the zoo (issue #24 items 1, 2, 5): the measurements behind docs/zoo.md.

    python experiments/zoo_lite.py preprocessing   # padding / normalisation / BN ε / resize / resolution
    python experiments/zoo_lite.py resolution      # scores against input resolution, fixed field of view
    python experiments/zoo_lite.py photos          # the four ImageNet models on every candidate photo
    python experiments/zoo_lite.py timing          # ms per forward, 1 thread, batch 1 and 16

Each writes ``experiments/results/zoo_lite_<part>.{json,md}``. CPU, one thread, deterministic
(no randomness: eval-mode forwards on fixed photos).

*preprocessing* builds each Lite model (our plain-torch :class:`EfficientNetLite` with the
shipped weights) under every combination of padding (TensorFlow "SAME" vs symmetric) and input
normalisation (mean = std = 0.5; TensorFlow's (x·255 − 127)/128; ImageNet mean/std), then varies
the BatchNorm ε (TF 1e-3 vs PyTorch 1e-5), the resize filter (bicubic vs bilinear) and the input
resolution around the chosen recipe. Scores, on the :data:`CANDIDATES` photos (every natural photo
that ships offline, before any labelling):

- ``conf``: mean top-1 softmax probability over all candidates;
- ``agree_mb``: top-1 agreement with the bundled MobileNetV2 (its own documented preprocessing)
  on the candidates where MobileNetV2 is confident (p ≥ 0.5);
- ``top1``: top-1 hits on :data:`REFERENCE` — photos labelled by looking at them (a set of
  acceptable ImageNet classes each), written down before any Lite model was scored;
- ``nll``: mean −log p(best acceptable class) on the same photos (a finer score than top-1).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from cnnlens import zoo  # noqa: E402
from cnnlens.data import datasets as ds  # noqa: E402
from cnnlens.data.assets import ASSETS, asset_file  # noqa: E402
from cnnlens.data.imageset import resize_center_crop  # noqa: E402
from cnnlens.models.efficientnet_lite import LITE_VARIANTS, EfficientNetLite  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
LITES = ("lite0", "lite1", "lite2")

#: Every natural photo that ships offline and was considered (docs/zoo.md lists what is left
#: out before this: renders, drawings, logos, text, calibration boards, synthetic images,
#: microscopy/medical/astronomical images, and the second image of stereo pairs / near-duplicate
#: frames).
CANDIDATES: dict[str, tuple[str, str]] = dict(ds.IMAGENET_PHOTO_CANDIDATES)

#: Photos labelled by eye (acceptable ImageNet classes), fixed before scoring any Lite model.
REFERENCE: dict[str, tuple[str, ...]] = {
    "camera": ("tripod",),
    "chelsea": ("tabby", "tiger cat", "Egyptian cat"),
    "coffee": ("espresso", "cup", "coffee mug"),
    "motorcycle": ("moped", "motor scooter"),
    "rocket": ("missile", "projectile"),
    "china": ("palace", "monastery"),
    "baboon": ("baboon",),
    "orange": ("orange",),
    "fruits": ("orange", "lemon"),
    "butterfly": ("admiral", "ringlet", "monarch", "cabbage butterfly", "sulphur butterfly", "lycaenid"),
    "chicky_512": ("Pekinese", "Shih-Tzu", "Lhasa", "Brabancon griffon", "Japanese spaniel",
                   "Tibetan terrier"),
    "squirrel_cls": ("fox squirrel",),
    "messi5": ("soccer ball",),
    "left": ("book jacket",),
    "aloeL": ("pot",),
}

NORMS: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "half": ((0.5,) * 3, (0.5,) * 3),
    "tf127": ((127 / 255,) * 3, (128 / 255,) * 3),
    "imagenet": (zoo.IMAGENET_MEAN, zoo.IMAGENET_STD),
}


def raw_photo(name: str) -> torch.Tensor:
    """(3, H, W) float in [0, 1], full size."""
    return ds._to_chw_float(ds._read_photo_file(*CANDIDATES[name], f"photo {name!r}"))


def crop(x: torch.Tensor, size: int, resize_to: int, mode: str) -> torch.Tensor:
    return resize_center_crop(x, size, resize_to, mode)


def lite(variant: str, padding: str = "same", eps: float = 1e-3) -> EfficientNetLite:
    spec = zoo._model_spec(f"efficientnet_{variant}_imagenet")
    model = EfficientNetLite(variant, padding=padding)
    model.load_state_dict(torch.load(asset_file(spec.asset, spec.relpath, spec.name), weights_only=True))
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.eps = eps
    return model.eval()


@torch.no_grad()
def probs(model: torch.nn.Module, batch: torch.Tensor, mean, std) -> torch.Tensor:
    m = torch.tensor(mean).view(1, 3, 1, 1)
    s = torch.tensor(std).view(1, 3, 1, 1)
    return torch.cat([model((batch[i:i + 8] - m) / s).softmax(1) for i in range(0, len(batch), 8)])


def mobilenet_probs(names: list[str]) -> torch.Tensor:
    model = zoo.load_model("mobilenet_v2_imagenet")
    batch = torch.stack([crop(raw_photo(n), 224, 256, "bilinear") for n in names])
    return probs(model, batch, zoo.IMAGENET_MEAN, zoo.IMAGENET_STD)


def score(p: torch.Tensor, names: list[str], mb: torch.Tensor) -> dict:
    cls = zoo.imagenet_class_names()
    top_p, top = p.max(1)
    mb_p, mb_top = mb.max(1)
    confident = mb_p >= 0.5
    ref = [i for i, n in enumerate(names) if n in REFERENCE]
    hits, nll = 0, 0.0
    for i in ref:
        ok = [cls.index(c) for c in REFERENCE[names[i]]]
        hits += int(top[i].item() in ok)
        nll += -math.log(max(float(p[i, ok].max()), 1e-12))
    return {"conf": round(float(top_p.mean()), 4),
            "agree_mb": f"{int((top[confident] == mb_top[confident]).sum())}/{int(confident.sum())}",
            "top1": f"{hits}/{len(ref)}", "nll": round(nll / len(ref), 3)}


def preprocessing() -> dict:
    names = list(CANDIDATES)
    raws = {n: raw_photo(n) for n in names}
    mb = mobilenet_probs(names)
    out: dict = {"photos": len(names), "reference": len(REFERENCE),
                 "mb_confident": int((mb.max(1).values >= 0.5).sum()), "rows": []}

    def run(variant, padding, norm, eps, mode, res, crop_frac) -> dict:
        resize_to = round(res / crop_frac)
        batch = torch.stack([crop(raws[n], res, resize_to, mode) for n in names])
        p = probs(lite(variant, padding, eps), batch, *NORMS[norm])
        row = {"model": variant, "padding": padding, "norm": norm, "bn_eps": eps, "resize": mode,
               "resolution": res, "resize_to": resize_to, **score(p, names, mb)}
        print(json.dumps(row), flush=True)
        out["rows"].append(row)
        return row

    for v in LITES:
        res = LITE_VARIANTS[v][2]
        frac = res / (res + 32)
        for padding in ("same", "symmetric"):
            for norm in NORMS:
                run(v, padding, norm, 1e-3, "bicubic", res, frac)
        run(v, "same", "half", 1e-5, "bicubic", res, frac)
        run(v, "same", "half", 1e-3, "bilinear", res, frac)
        for r in sorted({224, 240, 260, 280} - {res}):
            run(v, "same", "half", 1e-3, "bicubic", r, r / (r + 32))
    return out


def resolution() -> dict:
    """NLL / agreement / confidence against input resolution at a fixed field of view (centre
    crop of 87.5 % of the short side, bicubic), padding "same", mean = std = 0.5, BN ε 1e-3; and
    MobileNetV2 (its own recipe, bilinear) for comparison."""
    names = list(CANDIDATES)
    raws = {n: raw_photo(n) for n in names}
    mb = mobilenet_probs(names)
    rows = []
    mbnet = zoo.load_model("mobilenet_v2_imagenet")
    for v in ("mobilenet_v2",) + LITES:
        for padding in (("same", "symmetric") if v == "lite2" else ("same",)):
            for res in (192, 224, 240, 260, 288, 320):
                batch = torch.stack([crop(raws[n], res, round(res / 0.875), "bicubic") for n in names])
                if v == "mobilenet_v2":
                    p = probs(mbnet, batch, zoo.IMAGENET_MEAN, zoo.IMAGENET_STD)
                else:
                    p = probs(lite(v, padding), batch, *NORMS["half"])
                row = {"model": v, "padding": padding if v != "mobilenet_v2" else "symmetric",
                       "resolution": res, **score(p, names, mb)}
                print(json.dumps(row), flush=True)
                rows.append(row)
    return {"rows": rows}


def photos() -> dict:
    """Top-1 (class, p) of the four ImageNet models on every candidate, each with its zoo
    preprocessing (:func:`cnnlens.zoo.preprocess_photo`)."""
    cls = zoo.imagenet_class_names()
    names = list(CANDIDATES)
    models = ["mobilenet_v2_imagenet"] + [f"efficientnet_{v}_imagenet" for v in LITES]
    table: dict[str, dict] = {n: {} for n in names}
    for m in models:
        clf = zoo.load_classifier(m)
        batch = torch.stack([zoo.preprocess_photo(m, raw_photo(n)) for n in names])
        with torch.no_grad():
            p = torch.cat([clf.probs(batch[i:i + 8]) for i in range(0, len(batch), 8)])
        top_p, top = p.max(1)
        for i, n in enumerate(names):
            table[n][m] = [cls[int(top[i])], round(float(top_p[i]), 3)]
    for n in names:
        labels = {v[0] for v in table[n].values()}
        table[n]["consensus"] = labels.pop() if len(labels) == 1 else None
        print(n, json.dumps(table[n]), flush=True)
    return {"models": models, "photos": table}


def timing() -> dict:
    torch.set_num_threads(1)
    rows = []
    nets = {"mobilenet_v2_imagenet": (zoo.load_model("mobilenet_v2_imagenet"), 224)}
    for v in LITES:
        nets[f"efficientnet_{v}_imagenet"] = (zoo.load_model(f"efficientnet_{v}_imagenet"), LITE_VARIANTS[v][2])
    for name, (net, native) in nets.items():
        for res in sorted({224, native}):
            for batch in (1, 16):
                x = torch.rand(batch, 3, res, res)
                with torch.no_grad():
                    net(x)
                    reps = 10 if batch == 1 else 3
                    t0, c0 = time.perf_counter(), time.process_time()
                    for _ in range(reps):
                        net(x)
                    dt = (time.perf_counter() - t0) / reps
                    dc = (time.process_time() - c0) / reps
                # CPU time is the cost on a quiet core; wall time also counts the waiting on a shared one
                row = {"model": name, "resolution": res, "batch": batch,
                       "cpu_ms_per_forward": round(1000 * dc, 1), "cpu_ms_per_image": round(1000 * dc / batch, 1),
                       "wall_ms_per_forward": round(1000 * dt, 1), "load_average": os.getloadavg()[0]}
                print(json.dumps(row), flush=True)
                rows.append(row)
    return {"threads": torch.get_num_threads(), "torch": torch.__version__, "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("part", choices=("preprocessing", "resolution", "photos", "timing"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    missing = [a for a in ("opencv-doc",) if a not in ASSETS]
    assert not missing
    t0 = time.time()
    result = {"preprocessing": preprocessing, "resolution": resolution, "photos": photos,
              "timing": timing}[args.part]()
    result["wall_s"] = round(time.time() - t0, 1)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"zoo_lite_{args.part}.json").write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {RESULTS / f'zoo_lite_{args.part}.json'} ({result['wall_s']} s)")


if __name__ == "__main__":
    main()
