"""``cnnlens demo``: every part of cnnlens on the bundled real models and data, into one report.

Sections (each states its model, data, parameters and seed; raw results are saved beside the page):

1. attribution heatmaps of every registered method on real photos (MobileNetV2, ImageNet);
2. the same on faces and non-faces (MTCNN O-Net, ``lfw_faces``);
3. the OVERVIEW-style methods × metrics table with mean insertion/deletion curves (O-Net on
   ``lfw_faces``, the RISE protocol);
4. sanity checks: cascading model-parameter randomisation of the MNIST CNN (and data
   randomisation), similarity curves per method;
5. Dynamic Ablation Pos-R / Neg-R regions, rule text and MAR next to Grad-CAM and saliency;
6. Representative Interpretations of a digit (``mnist_cnn``): the input's heatmap, its top
   covered reference images with the reused heatmap, next to the Euclidean neighbours;
7. neuro-symbolic rules: the NESY paper's pipeline — the labelled rules of ``texture_cnn_ts3``
   (a ``texture_scenes`` CNN fine-tuned with the sparsity loss, shipped with its training θ),
   with accuracy, fidelity, size and no-fire next to the post-hoc rules of the CE model it came
   from — and post-hoc rules of ``mnist_cnn``, with justifications. Nothing is trained.

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
    skip = {"ri", "ace"}  # RI (its own section) and ACE need a reference set
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


def _sanity(b: ReportBuilder, cfg: DemoConfig) -> None:
    """Model parameter randomisation (Adebayo et al. 2018): cascading, top block first, on the
    MNIST CNN; curves per method and the table at full randomisation."""
    from .. import zoo
    from ..sanity import data_randomisation, model_randomisation

    clf = zoo.load_classifier("mnist_cnn", device=cfg.device)
    ds = zoo.load_dataset("mnist", split="test")
    n = 4 if cfg.quick else 8
    x = ds.images[:n]
    methods = ["saliency", "guided_backprop", "gradcam", "gradcam++", "lrp", "deeplift"]
    res = model_randomisation(clf, x, methods, mode="cascading", seed=cfg.seed, batch_size=cfg.batch_size)
    folder = b.folder / "sanity"
    res.to_json(folder / "cascading.json")
    sec = b.section("sanity", "Sanity checks: does the map depend on the model?", model="mnist_cnn",
                    data=f"mnist test digits 0–{n - 1}",
                    params={"methods": methods, "mode": "cascading", "granularity": "block",
                            "init": res.params.get("init"), "measures": list(res.measures)},
                    seed=cfg.seed)
    sec.text("Model parameter randomisation (Adebayo et al. 2018): the blocks of the CNN are "
             "re-initialised one more at a time from the top; each method's map on the randomised "
             "model is compared with its map on the trained one. A map that stays similar does not "
             "depend on what the model learned (Guided Backprop is the paper's example).")
    sec.image("sanity/cascading.png", res.plot(), caption="similarity to the original maps (mean ± std over images)")
    cols = ["method"] + list(res.measures)
    rows = [[m] + [round(float(res.per_image(m, k).mean()), 3) for k in res.measures] for m in res.methods]
    sec.table(cols, rows, caption="mean similarity with every block re-initialised (lower = depends more on the model)")
    if not cfg.quick and "mnist_cnn_s_random_labels" in zoo.list_models():
        rnd = zoo.load_classifier("mnist_cnn_s_random_labels", device=cfg.device)
        small = zoo.load_classifier("mnist_cnn_s", device=cfg.device)
        dres = data_randomisation(small, rnd, x, methods, seed=cfg.seed, batch_size=cfg.batch_size)
        dres.to_json(folder / "data.json")
        rows = [[m] + [round(float(dres.per_image(m, k).mean()), 3) for k in dres.measures] for m in dres.methods]
        sec.table(cols, rows, caption="data randomisation: the same architecture trained on permuted labels "
                                      "(mnist_cnn_s vs mnist_cnn_s_random_labels)")


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


def _nesy(b: ReportBuilder, cfg: DemoConfig) -> None:
    from .. import zoo
    from ..nesy import NeSyModel

    # (a) the pipeline of the NESY paper on texture_scenes: a CNN fine-tuned with the sparsity loss
    # (TS3; shipped weights and training θ, zoo "texture_cnn_ts3"), its rules over filters binarized
    # with that θ, labelled with concepts from the masks — next to the post-hoc baseline (the CE
    # model it was fine-tuned from, θ fitted after training). Nothing is trained here.
    tr, te = zoo.load_dataset("texture_scenes", "train"), zoo.load_dataset("texture_scenes", "test")
    base = zoo.load_classifier("texture_cnn", device=cfg.device)
    sparse = zoo.load_classifier("texture_cnn_ts3", device=cfg.device)
    post = NeSyModel.fit(base, tr.images, tr.labels, binarization="threshold")
    nesy = NeSyModel.fit(sparse, tr.images, tr.labels, binarization="sigmoid", theta=zoo.nesy_theta("texture_cnn_ts3"))
    ev_post, ev = post.evaluate(te.images, te.labels), nesy.evaluate(te.images, te.labels)
    labelled = nesy.label(tr.images, tr.masks, tr.concept_names)
    rec = (zoo.training_record("texture_cnn_ts3") or {}).get("recipe", {})
    sec = b.section("nesy", "Neuro-symbolic rules",
                    model="texture_cnn_ts3 (sparsity-trained, TS3) vs texture_cnn (post-hoc); mnist_cnn (post-hoc)",
                    data=f"texture_scenes: train split ({len(tr.labels)} scenes) to fit and label, test split "
                         f"({len(te.labels)}) to test; mnist: the train split's first digits to fit, the test split's to test",
                    params={"ratio": 0.8, "tail": 5e-3, "layer": nesy.layer,
                            "fold_params": nesy.fit_info.get("fold_params"),
                            "texture_cnn_ts3": {k: rec.get(k) for k in ("strategy", "epochs", "lr", "k")},
                            "labelling": {"m": 10, "margin": 0.05}},
                    seed=cfg.seed)
    sec.text("The NeSy pipeline of the NESY paper (docs/algorithms.md §6): the CNN is fine-tuned with the sparsity "
             "loss, which pushes a few class-specific filters of the last convolutional layer to sigmoid(Norm − θ) ≈ 1 "
             "and the others to ≈ 0 (TS3: K random filters per class, θ fixed at the start); each filter becomes a "
             "predicate f<j>, true when Norm − θ > 0 with that training θ (§6.1); FOLD-SE-M learns an ordered rule set "
             "over them, which replaces the CNN's head; the predicates are then named by the concepts their filters "
             "fire on (§6.8, exact masks). The baseline binarizes the cross-entropy model it was fine-tuned from, "
             "after training (θ = 0.6·μ + 0.7·σ over the training scenes). Both models are shipped "
             "(experiments/train_zoo.py texture_cnn texture_cnn_ts3); the demo only extracts, labels and evaluates "
             "rules. Size counts body literals including exception calls (§6.7); a scene on which no rule fires "
             "counts as wrong.")
    keep = ("cnn_accuracy", "accuracy", "fidelity", "size", "n_rules", "n_filters", "no_fire")
    head = ["model", "CNN accuracy", "NeSy accuracy", "fidelity", "size", "rules", "filters", "no-fire images"]

    def row(name: str, e: dict) -> list:
        return [name] + [round(e[k], 4) if isinstance(e[k], float) else e[k] for k in keep]

    sec.table(head, [row("texture_cnn_ts3 (TS3, training θ)", ev), row("texture_cnn (post-hoc θ)", ev_post)],
              caption=f"rules of the sparsity-trained CNN next to the post-hoc baseline, {len(te.labels)} test scenes")
    sec.pre(labelled.to_asp(), caption="rules of the sparsity-trained CNN, predicates labelled by concepts (§6.8)")
    sec.pre(nesy.rules.to_asp(), caption="the same rules with raw predicates (the post-hoc baseline's program is "
                                         "in nesy/texture_posthoc_rules.lp)")
    j = nesy.justify(te.images[:1], name="scene0")
    sec.pre(j.text, caption=f"justification for test scene 0 (class {te.class_names[int(te.labels[0])]})")
    # (b) post-hoc rules of the bundled MNIST CNN (NeSyFOLD without sparsity training)
    n_fit, n_test = (1500, 500) if cfg.quick else (4000, 1000)
    mtr, mte = zoo.load_dataset("mnist", "train"), zoo.load_dataset("mnist", "test")
    clf = zoo.load_classifier("mnist_cnn", device=cfg.device)
    mnesy = NeSyModel.fit(clf, mtr.images[:n_fit], mtr.labels[:n_fit], binarization="threshold")
    mev = mnesy.evaluate(mte.images[:n_test], mte.labels[:n_test])
    sec.table(head, [row("mnist_cnn (post-hoc θ)", mev)],
              caption=f"post-hoc rules of the bundled MNIST CNN: {n_fit} training digits to fit, {n_test} test digits "
                      "(program: nesy/mnist_rules.lp)")
    jm = mnesy.justify(mte.images[:1], name="digit0")
    sec.pre(jm.text, caption=f"justification for test digit 0 (label {int(mte.labels[0])})")
    atomic_write_text(b.folder / "nesy" / "texture_ts3_rules.lp", nesy.rules.to_asp())
    atomic_write_text(b.folder / "nesy" / "texture_rules_labelled.lp", labelled.to_asp())
    atomic_write_text(b.folder / "nesy" / "texture_posthoc_rules.lp", post.rules.to_asp())
    atomic_write_text(b.folder / "nesy" / "mnist_rules.lp", mnesy.rules.to_asp())
    atomic_write_text(b.folder / "nesy" / "metrics.json", json.dumps({
        "texture_ts3": ev, "texture_posthoc": ev_post, "mnist_posthoc": mev, "labels": nesy.labels},
        default=str, indent=1))


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
        ("sanity checks", lambda: _sanity(b, cfg)),
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
