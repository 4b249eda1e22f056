"""``cnnlens demo``: every part of cnnlens on the bundled real models and data, into one report.

Sections (each states its model, data, parameters and seed; raw results are saved beside the page):

1. attribution heatmaps of every registered method on real photos (MobileNetV2, ImageNet);
2. the same on faces and non-faces (MTCNN O-Net, ``lfw_faces``);
3. the OVERVIEW-style methods × metrics table with mean insertion/deletion curves (O-Net on
   ``lfw_faces``, the RISE protocol);
4. Dynamic Ablation Pos-R / Neg-R regions, rule text and MAR next to Grad-CAM and saliency;
5. Representative Interpretations of a digit (``mnist_cnn``): the input's heatmap, its top
   covered reference images with the reused heatmap, next to the Euclidean neighbours;
6. neuro-symbolic rules: post-hoc rules of ``mnist_cnn`` with justifications, the labelled
   rules of a small CNN trained here on ``texture_scenes`` (real textures with concept masks), and
   a sparsity-trained (TS3) ``fashion_vgg`` on Pullover vs Coat (shipped weights) next to its
   post-hoc baseline (NE).

``quick=True`` shrinks image counts and iteration budgets (recorded in each section's
parameters) so the whole run takes about two minutes on two CPU cores. Finished sections are
written to the manifest as they complete, so an interrupted demo keeps them.
"""
from __future__ import annotations

import io
import json
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._imaging import method_slug
from .._io import atomic_write_bytes, atomic_write_text
from .._progress import bar as progress_bar
from .._progress import quiet_progress
from ..display.pictures import heat as _heat
from ..display.pictures import hstack as _tile
from ..display.pictures import rgb as _rgb
from . import ReportBuilder, Section, write_report

__all__ = ["run_demo", "DemoConfig"]


@dataclass
class DemoConfig:
    """Sizes of the demo (``quick`` halves budgets; see :func:`run_demo`)."""

    quick: bool = False
    seed: int = 0
    batch_size: int = 32
    device: torch.device | None = None

    @property
    def n_photos(self) -> int:
        return 1 if self.quick else 2

    @property
    def photo_params(self) -> dict[str, dict[str, Any]]:
        if self.quick:
            return {"lime": {"num_samples": 300}, "rise": {"n_masks": 500},
                    "extremal_perturbation": {"iterations": 60}, "da_pos": {"iterations": 100},
                    "da_neg": {"iterations": 100}, "scorecam": {"layer": "features.17"}}
        return {"extremal_perturbation": {"iterations": 300}, "rise": {"n_masks": 2000}}

    @property
    def face_params(self) -> dict[str, dict[str, Any]]:
        if self.quick:
            return {"lime": {"num_samples": 300}, "rise": {"n_masks": 1000},
                    "extremal_perturbation": {"iterations": 100}, "da_pos": {"iterations": 150},
                    "da_neg": {"iterations": 150}}
        return {}

    @property
    def n_metric_images(self) -> int:
        return 12 if self.quick else 40


# ------------------------------------------------------------------------------------ sections
def _heatmaps(b: ReportBuilder, cfg: DemoConfig, *, key: str, title: str, model: str, dataset: str,
              index: list[int], params: dict[str, dict[str, Any]], display: int | None) -> None:
    from .. import zoo
    from ..attribution import explain, methods

    clf = zoo.load_classifier(model, device=cfg.device)
    ds = zoo.load_dataset(dataset)
    x = ds.images[index]
    names = [ds.names[i] for i in index]
    skip = {"ri"}  # RI needs a reference set: its own section
    chosen = [m for m in methods() if m not in skip]
    folder = b.folder / key
    rows = []
    arrays: dict[str, np.ndarray] = {"names": np.array(names)}
    columns = [_rgb(x, display)]
    timing = []
    for method in chosen:
        own = params.get(method, {})
        t0 = time.perf_counter()
        e = explain(clf, x, method, seed=cfg.seed, batch_size=cfg.batch_size, **own)
        timing.append([method, round(time.perf_counter() - t0, 2), json.dumps(own) if own else "paper defaults"])
        arrays[method] = e.maps.detach().cpu().numpy()
        columns.append(_heat(e.maps, x, display))
    preds = clf.predict(x)
    rows = [[n, clf.class_name(int(p))] for n, p in zip(names, preds.tolist())]
    bio = io.BytesIO()
    np.savez_compressed(bio, **arrays)
    atomic_write_bytes(folder / "maps.npz", bio.getvalue())
    sec = b.section(key, title, model=model, data=f"{dataset}: {', '.join(names)}",
                    params={"methods": chosen, "method_params": params, "target": "predicted class"},
                    seed=cfg.seed)
    sec.text("Each row is one image; columns: the image, then every attribution method in "
             "registry order, named above it. Maps are min-max normalised per image for display.")
    _grid(b, sec, key, ["image", *chosen], names, columns, caption="images × methods")
    sec.table(["image", "predicted class"], rows)
    sec.table(["method", "seconds", "parameters"], timing, caption="time per method for these images")


def _grid(b: ReportBuilder, sec: Section, key: str, titles: list[str], names: list[str], columns: list[Any], caption: str) -> None:
    """Save each cell (``columns[j][i]``: column j's uint8 picture of image i) and add them as a
    grid block: the column titles above, the image names at the left."""
    rows = []
    for i, name in enumerate(names):
        paths = [b.save_picture(f"{key}_{i}_{method_slug(t)}.png", col[i]) for t, col in zip(titles, columns)]
        rows.append((name, paths))
    sec.grid(titles, rows, caption=caption)


def _metrics(b: ReportBuilder, cfg: DemoConfig) -> None:
    from .. import zoo
    from ..metrics.run import run_evaluate

    clf = zoo.load_classifier("onet_face", device=cfg.device)
    ds = zoo.load_dataset("lfw_faces")
    n = cfg.n_metric_images
    g = torch.Generator().manual_seed(cfg.seed)
    index = torch.randperm(len(ds.labels), generator=g)[:n]
    methods = ["saliency", "guided_backprop", "gradcam", "gradcam++", "scorecam", "lrp", "deeplift", "lime", "rise"]
    mparams = {"lime": {"num_samples": 300 if cfg.quick else 1000}, "rise": {"n_masks": 1000 if cfg.quick else 2000}}
    out = b.folder / "metrics"
    table = run_evaluate(clf, ds.images[index], ds.labels[index], out, methods=methods,
                         metrics=["iauc", "dauc", "ic", "dc", "ad", "iic"], protocol="rise", seed=cfg.seed,
                         batch_size=max(cfg.batch_size, 64), method_params=mparams, evaluate_params={},
                         source={"model": "onet_face", "dataset": "lfw_faces", "n": n}, progress=False)
    sec = b.section("metrics", "Methods × metrics (OVERVIEW layout)", model="onet_face",
                    data=f"lfw_faces: {n} random images (faces and non-faces)",
                    params={"protocol": "rise", "metrics": ["iauc", "dauc", "ic", "dc", "ad", "iic"],
                            "method_params": mparams}, seed=cfg.seed)
    sec.text("Rows are methods, columns the six metrics of OVERVIEW with their direction (↑ higher is "
             "better, ↓ lower is better); 'random' is a uniform random map. Mean ± std over images.")
    import csv

    rows = list(csv.reader(io.StringIO(table.to_csv())))
    arrows = {"iauc": "IAUC ↑", "dauc": "DAUC ↓", "ic": "IC ↑", "dc": "DC ↑", "ad": "AD ↓", "iic": "IIC ↑"}
    header = []
    for c in rows[0]:
        name, _, stat = c.rpartition("_")
        header.append(f"{arrows[name]} {stat}" if name in arrows else c)

    def fmt(v: str) -> str:
        try:
            return f"{float(v):.3f}" if "." in v else v
        except ValueError:
            return v

    sec.table(header, [[fmt(v) for v in r] for r in rows[1:]],
              caption="mean (and std) per metric; also saved as metrics/table.csv, table.json, per_image.csv")
    sec.pre(table.to_markdown(), caption="the same table as markdown (mean ± std)")
    if (out / "curves.png").is_file():
        rel = (out / "curves.png").relative_to(b.folder).as_posix()
        sec.image_file(rel, caption="mean insertion and deletion curves per method")


def _ablation(b: ReportBuilder, cfg: DemoConfig) -> None:
    from .. import zoo
    from ..ablation import dynamic_ablation
    from ..attribution import explain

    clf = zoo.load_classifier("mobilenet_v2_imagenet", device=cfg.device)
    ds = zoo.load_dataset("photos")
    index = list(range(cfg.n_photos))
    x = ds.images[index]
    names = [ds.names[i] for i in index]
    iters = 100 if cfg.quick else 500
    sp = 200 if cfg.quick else 500
    pos = dynamic_ablation(clf, x, rule="pos", iterations=iters, superpixels=sp, seed=cfg.seed, batch_size=cfg.batch_size)
    neg = dynamic_ablation(clf, x, rule="neg", iterations=iters, superpixels=sp, seed=cfg.seed, batch_size=cfg.batch_size)
    grad = explain(clf, x, "gradcam", seed=cfg.seed)
    sal = explain(clf, x, "saliency", seed=cfg.seed)
    arrays = {"pos_mask": pos.mask.cpu().numpy(), "neg_mask": neg.mask.cpu().numpy(),
              "pos_cam": pos.cam.cpu().numpy(), "neg_cam": neg.cam.cpu().numpy(),
              "pos_mar": pos.mar.cpu().numpy(), "neg_mar": neg.mar.cpu().numpy()}
    bio = io.BytesIO()
    np.savez_compressed(bio, **arrays)
    atomic_write_bytes(b.folder / "ablation" / "ablation.npz", bio.getvalue())
    sec = b.section("ablation", "Dynamic Ablation: minimal regions as if-then rules", model="mobilenet_v2_imagenet",
                    data=f"photos: {', '.join(names)}",
                    params={"iterations": iters, "k": 4, "alpha_step": 0.2, "fc": 0.95, "superpixels": sp},
                    seed=cfg.seed)
    sec.text("Pos-R keeps the smallest region that still gives the prediction (the rest is black); Neg-R "
             "blacks out the smallest region that changes it. Each row is one image; Grad-CAM and saliency "
             "are shown beside them.")
    img = _rgb(x)
    rows = []
    keep = [(img[i] * pos.mask[i].cpu().numpy()[..., None]).astype(np.uint8) for i in range(len(names))]
    drop = [(img[i] * (~neg.mask[i].cpu().numpy())[..., None]).astype(np.uint8) for i in range(len(names))]
    _grid(b, sec, "ablation", ["image", "Pos-R region kept", "Pos-R cam", "Neg-R region removed", "Neg-R cam", "Grad-CAM",
                            "saliency"], names,
          [img, keep, _heat(pos.cam, x), drop, _heat(neg.cam, x), _heat(grad.maps, x), _heat(sal.maps, x)],
          caption="images × Dynamic Ablation regions and cams")
    for i, name in enumerate(names):
        rows.append([name, pos.rule_text[i], round(float(pos.mar[i]), 4), int(pos.accepted[i]),
                     neg.rule_text[i], round(float(neg.mar[i]), 4), int(neg.accepted[i])])
    sec.table(["image", "Pos-R rule", "Pos-R MAR", "accepted", "Neg-R rule", "Neg-R MAR", "accepted"], rows)
    summary = pos.mar_summary()
    sec.text(f"Pos-R MAR over these images: {summary['mean']:.3f} ± {summary['std']:.3f} (n = {summary['n']}); "
             f"Neg-R MAR is reported apart: {neg.mar_summary()['mean']:.3f}.")


def _mnist(cfg: DemoConfig) -> tuple[Any, Any, torch.Tensor]:
    """The MNIST CNN, the digits and the demo's seeded order of them."""
    from .. import zoo

    perm_gen = torch.Generator().manual_seed(cfg.seed)
    ds = zoo.load_dataset("mnist")
    return zoo.load_classifier("mnist_cnn", device=cfg.device), ds, torch.randperm(len(ds.labels), generator=perm_gen)


def _representative(b: ReportBuilder, cfg: DemoConfig) -> None:
    from ..representative import RepresentativeInterpreter

    clf, ds, perm = _mnist(cfg)
    n_ref = 1000 if cfg.quick else 4000
    ref = ds.images[perm[:n_ref]]
    x = ds.images[perm[-1:]]
    ri = RepresentativeInterpreter(clf, ref, n_boundaries=50, seed=cfg.seed, batch_size=max(cfg.batch_size, 128))
    it = ri.interpret(x, k=6)
    top = it.covered[0][:6]
    near = it.neighbours[0][:6]
    reused = it.heatmap(ref[top], index=0) if len(top) else torch.zeros(0, 28, 28)
    near_maps = it.heatmap(ref[near], index=0)
    disp = 84
    sec = b.section("representative", "Representative Interpretations", model="mnist_cnn",
                    data=f"mnist: input = one digit, reference = {n_ref} other digits",
                    params={"n_boundaries": 50, "layer": clf.feature_layer_name, "k": 6}, seed=cfg.seed)
    c = it.counts[0]
    sec.text(f"The input is predicted as {clf.class_name(int(it.targets[0]))!r}. Its decision region P(x) uses "
             f"|P| = {c['P']} of the 50 sampled boundaries and covers |C| = {c['C']} reference images "
             f"({c['C_minus_D']} of the same predicted class, {c['C_and_D']} of others; δ = {c['delta']}).")
    sec.image("ri_input.png", _tile([_rgb(x, disp)[0], _heat(it.maps[:1], x, disp)[0]]),
              caption="the input and its RI heatmap")
    if len(top):
        sec.image("ri_covered.png", _tile(list(_heat(reused, ref[top], disp))),
                  caption="top covered reference images (Eq. 6 ranking) with the SAME heatmap weights reused")
    sec.image("ri_neighbours.png", _tile(list(_heat(near_maps, ref[near], disp))),
              caption="Euclidean nearest neighbours in ψ-space (RI Fig. 2 comparison), same weights")
    labels = ds.labels[perm[:n_ref]]
    pred = int(it.targets[0])
    rows = [["RI covered (Eq. 6)", [int(labels[i]) for i in top.tolist()]],
            ["Euclidean neighbours", [int(labels[i]) for i in near.tolist()]]]
    sec.table(["ranking", f"true labels of the top 6 (input predicted {pred})"], rows)
    atomic_write_text(b.folder / "representative" / "interpretation.json", json.dumps({
        "counts": it.counts[0], "boundaries": it.boundaries[0].tolist(), "covered": it.covered[0].tolist(),
        "neighbours": near.tolist(), "reference_indices": perm[:n_ref].tolist(), "input_index": int(perm[-1])},
        indent=1))


def _texture_cnn(n_classes: int) -> torch.nn.Module:
    from torch import nn

    return nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(32, n_classes))


def _nesy(b: ReportBuilder, cfg: DemoConfig) -> None:
    from ..classifier import Classifier
    from ..data.texture_scenes import texture_scenes
    from ..nesy import NeSyModel, train

    # (a) post-hoc rules of the bundled MNIST CNN
    clf, ds, perm = _mnist(cfg)
    n_fit = 1500 if cfg.quick else 4000
    tr, te = perm[:n_fit], perm[n_fit:n_fit + 500]
    nesy = NeSyModel.fit(clf, ds.images[tr], ds.labels[tr], binarization="threshold")
    ev = nesy.evaluate(ds.images[te], ds.labels[te])
    sec = b.section("nesy", "Neuro-symbolic rules", model="mnist_cnn (post-hoc) and a small CNN trained on texture_scenes",
                    data=f"mnist: {n_fit} digits to fit, 500 to test; texture_scenes (real textures with concept masks)",
                    params={"binarization": "threshold", "ratio": 0.8, "tail": 5e-3, "layer": nesy.layer}, seed=cfg.seed)
    sec.text("Each filter of the last convolutional layer becomes a predicate f<j> that is true when the "
             "filter's map norm exceeds its threshold (docs/algorithms.md §6.1); FOLD-SE-M learns an ordered rule set "
             "over them. Rule-set size counts body literals including exception calls (§6.7).")
    keep = ("accuracy", "fidelity", "size", "n_rules", "n_filters", "no_fire")
    sec.table(["metric", "value"], [[k, ev[k]] for k in keep if k in ev], caption="MNIST CNN rules on the 500 test digits")
    sec.pre(nesy.rules.to_asp(), caption="MNIST CNN rules (raw predicates)")
    for i in te[:2].tolist():
        j = nesy.justify(ds.images[i:i + 1], name=f"digit{i}")
        sec.pre(j.text, caption=f"justification for test digit {i} (label {int(ds.labels[i])})")
    # (b) labelled rules: a small CNN trained on texture scenes, its filters named by concepts
    n_tr = 600 if cfg.quick else 1500
    scenes = texture_scenes(n_tr, size=32, seed=cfg.seed)
    test_scenes = texture_scenes(300, size=32, seed=cfg.seed + 1)
    torch.manual_seed(cfg.seed)
    net = _texture_cnn(len(scenes.class_names)).eval()
    tclf = Classifier(net, class_names=scenes.class_names, input_shape=(3, 32, 32))
    train(tclf, (scenes.images, scenes.labels), None, strategy="CE", epochs=4 if cfg.quick else 8, lr=2e-3,
          weight_decay=0.0, batch_size=32, seed=cfg.seed, progress=False)
    tnesy = NeSyModel.fit(tclf, scenes.images, scenes.labels, binarization="threshold")
    labelled = tnesy.label(scenes.images, scenes.masks, scenes.concept_names)
    tev = tnesy.evaluate(test_scenes.images, test_scenes.labels)
    cnn_acc = float((tclf.predict(test_scenes.images) == test_scenes.labels).float().mean())
    sec.table(["metric", "value"], [["CNN accuracy", round(cnn_acc, 4)]] + [[k, tev[k]] for k in keep if k in tev],
              caption="texture-scene CNN and its rules on 300 test scenes")
    sec.pre(tnesy.rules.to_asp(), caption="texture-scene rules (raw)")
    sec.pre(labelled.to_asp(), caption="the same rules with predicates labelled by concepts (§6.8)")
    j = tnesy.justify(test_scenes.images[:1], name="scene0")
    sec.pre(j.text, caption=f"justification for test scene 0 (class {test_scenes.class_names[int(test_scenes.labels[0])]})")
    sparse = _nesy_sparse_pair(sec, cfg, keep)
    atomic_write_text(b.folder / "nesy" / "mnist_rules.lp", nesy.rules.to_asp())
    atomic_write_text(b.folder / "nesy" / "texture_rules_labelled.lp", labelled.to_asp())
    atomic_write_text(b.folder / "nesy" / "metrics.json", json.dumps({"mnist": ev, "texture": tev,
                                                                      "texture_cnn_accuracy": cnn_acc,
                                                                      "fashion_p2": sparse}, default=str, indent=1))


def _nesy_sparse_pair(sec: Section, cfg: DemoConfig, keep: tuple[str, ...]) -> dict:
    """(c) The pipeline the NESY paper proposes: ``fashion_vgg`` fine-tuned on Pullover vs Coat
    with the sparsity loss (TS3) to convergence, its rules from the training θ, next to the
    post-hoc baseline (NE: CE phase + Elite BackProp, then post-hoc thresholds) of the same design
    and seed. The weights ship with cnnlens (float16; experiments/nesy_demo_weights.py); the demo
    does not train. Data: the run's 2,000 training images (rules) and its 1,000 test images."""
    import importlib.resources

    from torch import nn

    from .. import zoo
    from ..classifier import Classifier
    from ..data.datasets import select_classes
    from ..models.fashion import FASHION_MEAN, FASHION_STD, FashionVGG
    from ..nesy import NeSyModel

    root = importlib.resources.files("cnnlens")
    rec = json.loads(root.joinpath("weights/nesy_p2.json").read_text())
    tr_all = select_classes(zoo.load_dataset("fashion_mnist", split="train"), rec["classes"])
    te_all = select_classes(zoo.load_dataset("fashion_mnist", split="test"), rec["classes"])
    g = torch.Generator().manual_seed(rec["data"]["perm_seed"])  # the run's own split
    tr = tr_all.subset(torch.randperm(len(tr_all), generator=g)[: rec["data"]["n_train"]])
    te = te_all.subset(torch.randperm(len(te_all), generator=g)[: rec["data"]["n_test"]])
    rows, out, programs = [], {}, {}
    for name, m in rec["models"].items():
        net = FashionVGG()
        net.classifier[-1] = nn.Linear(net.classifier[-1].in_features, len(rec["classes"]))
        with root.joinpath(m["file"]).open("rb") as fh:
            state = torch.load(io.BytesIO(fh.read()), map_location="cpu", weights_only=True)
        net.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
        if cfg.device is not None:
            net = net.to(cfg.device)
        clf = Classifier(net.eval(), mean=FASHION_MEAN, std=FASHION_STD, class_names=list(tr.class_names),
                         input_shape=(1, 28, 28))
        theta = torch.tensor(m["theta"]) if m["theta"] is not None else None
        nesy = NeSyModel.fit(clf, tr.images, tr.labels, binarization=m["binarization"], theta=theta)
        ev = nesy.evaluate(te.images, te.labels)
        out[name] = ev
        programs[name] = nesy.rules.to_asp()
        label = f"{name} ({'sparsity loss, training θ' if m['binarization'] == 'sigmoid' else 'post-hoc θ'})"
        rows.append([label, round(ev["cnn_accuracy"], 4)] + [ev[k] for k in keep if k in ev])
    sec.text("The paper's pipeline on Fashion-MNIST Pullover vs Coat: fashion_vgg fine-tuned with the sparsity "
             "loss (TS3, random class filters) until its validation loss plateaued, rules from the filters "
             "binarized with the training θ; next to it the post-hoc baseline (NE: cross-entropy, then Elite "
             "BackProp, thresholds fitted after training) from the same design and seed (EXPERIMENTS.md, NESY).")
    sec.table(["model", "CNN accuracy"] + [k for k in keep], rows,
              caption=f"Pullover vs Coat: rules fit on {len(tr)} training images, measured on {len(te)} test images")
    for name, prog in programs.items():
        sec.pre(prog, caption=f"{name} rules (raw predicates)")
    return out


def run_demo(out: str | Path = "cnnlens-demo", quick: bool = False, seed: int = 0, batch_size: int = 32,
             device: torch.device | None = None, progress: bool = True) -> Path:
    """Run every part on the bundled real models and data; write ``out/report.html`` and the raw
    results. Returns the report's path."""
    cfg = DemoConfig(quick=quick, seed=seed, batch_size=batch_size, device=device)
    b = ReportBuilder(out, title="cnnlens demo" + (" (quick)" if quick else ""))
    steps: list[tuple[str, Callable[[], None]]] = [
        ("heatmaps: photos", lambda: _heatmaps(
            b, cfg, key="photos", title="Attribution heatmaps: MobileNetV2 on real photos",
            model="mobilenet_v2_imagenet", dataset="photos", index=list(range(cfg.n_photos)),
            params=cfg.photo_params, display=None)),
        ("heatmaps: faces", lambda: _heatmaps(
            b, cfg, key="faces", title="Attribution heatmaps: O-Net on faces and non-faces",
            model="onet_face", dataset="lfw_faces", index=[0, 1, 100, 101][: 2 if quick else 4],
            params=cfg.face_params, display=75)),
        ("metrics", lambda: _metrics(b, cfg)),
        ("dynamic ablation", lambda: _ablation(b, cfg)),
        ("representative interpretations", lambda: _representative(b, cfg)),
        ("neuro-symbolic rules", lambda: _nesy(b, cfg)),
    ]
    bar = progress_bar(steps, desc="demo", progress=progress, leave=True)
    for name, step in bar:
        bar.set_postfix_str(name)
        with nullcontext() if progress else quiet_progress():  # no method bars either
            step()
        b.save()  # finished sections survive an interruption
    b.save()
    return write_report(b.folder)
