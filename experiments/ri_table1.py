"""RI paper Table 1 done the paper's way (issue 25; RI §6.2–6.4, Eq. 7–8; SPEC §5).

One model per task (RI §6.2 trains one VGG-19 per data set): the project-trained
``fashion_task_*`` nets (1×64×64, conv trunk, FC64–ReLU–FC head reading all of ψ) and the 128²
``fashion_pair_seq``. Per task and seed s (a *unit* is one (task, seed, method)):

- R: 2,500 train images per class. Fashion-MNIST has 6,000 per class, so five disjoint draws are
  impossible; the draws are *cyclic windows* over one fixed seeded permutation of each class
  (draw s = positions [1200·s, 1200·s + 2500) mod 6000). Every image is in two or three draws, the
  least possible overlap: adjacent draws share 52 %, the others 4 % (mean 28 %; independent
  random draws would share 42 % on average). The exact overlaps are in ``<task>/draws.json``.
- S: |S| = 1,000 unseen test images, cyclic windows of the task's test split (shift M/5).
- Q: |Q| = 50 Eq. 2 boundaries sampled from R (``RepresentativeInterpreter``, seed s).
- V: k-means++ (one init, seed s) with |V| = 10·C centres on flattened ψ(R); the reference image
  nearest each centre is interpreted (RI, Grad-CAM, Grad-CAM++, Score-CAM); each unseen image e
  is interpreted by RI's covering polytope (several → nearest by Eq. 6; none → e's nearest centre)
  or, for the CAMs, by the channel weights of e's nearest centre image.
- ``random``: a uniform random map on the ψ grid (same size as a CAM before upsampling), seeded
  per image (stream ``ri.table1_random``): the floor every method must beat.
- ``ace``: ACE (Ghorbani et al. 2019) run as RI §6.4 does, once per k-means cluster on ≤ 50 of
  that cluster's reference images of its majority class (random sets from ≤ 50 reference images
  outside the cluster), reused on the unseen images assigned to the cluster — the library's
  ``cnnlens.representative.ace_reuse``, the path ``evaluate_reuse`` takes; keep-p by whole
  segments until > p of the pixels are kept (RI §6.2).

AD/AI (Eq. 7–8, ×100) per unseen image with c = Class(e), Y_c the softmax probability: the shared
``cnnlens.metrics.average_drop_increase`` with ``mode="keep"`` (the top p of pixels kept, the rest
**black = pixel 0**, as RI §6.2 says) for p ∈ {10, 20, 40} %, and ``mode="soft"`` (e ⊙ map). Also
per image at keep-20 %: whether the masked image's class differs from c (the black-image effect).

Every unit is written atomically to ``<out>/<task>/s<seed>_<method>.json.gz`` (gzipped JSON) (per-image values, so
the table recomputes: tests/test_ri_table1.py); a re-run skips units whose file has the same
config key. ``--max-minutes`` stops launching units after that many minutes.

    PYTHONPATH=src python experiments/ri_table1.py run [--tasks ...] [--seeds 0 1 2 3 4]
        [--methods ri gradcam gradcam++ scorecam random ace] [--max-minutes 60]
    PYTHONPATH=src python experiments/ri_table1.py table      # writes <out>/table.md|json
    PYTHONPATH=src python experiments/ri_table1.py boundaries # writes <out>/boundaries.md|json
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import math
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))

OUT = ROOT / "experiments" / "results" / "ri_table1"
TASKS: dict[str, dict] = {
    "tshirt_shirt": {"model": "fashion_task_tshirt_shirt", "classes": (0, 6)},
    "pullover_coat": {"model": "fashion_task_pullover_coat", "classes": (2, 4)},
    "sneaker_boot": {"model": "fashion_task_sneaker_boot", "classes": (7, 9)},
    "fashion4": {"model": "fashion_task4", "classes": (0, 2, 4, 6)},
    "pair_seq128": {"model": "fashion_pair_seq", "classes": (2, 4)},
}
METHODS = ("ri", "gradcam", "gradcam++", "scorecam", "random", "ace", "gradcam_own", "gradcam++_own", "scorecam_own")
#: reference rows, not reuse: each unseen image explained by its own CAM (the ceiling reuse is measured against)
OWN = ("gradcam_own", "gradcam++_own", "scorecam_own")
BASELINES = ("gradcam", "gradcam++", "scorecam", "ace")
LABELS = {"ri": "RI", "gradcam": "Grad-CAM", "gradcam++": "Grad-CAM++", "scorecam": "Score-CAM",
          "random": "random map", "ace": "ACE", "gradcam_own": "Grad-CAM, own (no reuse)",
          "gradcam++_own": "Grad-CAM++, own (no reuse)", "scorecam_own": "Score-CAM, own (no reuse)"}
KEEPS = (0.1, 0.2, 0.4)
SETTINGS = ("keep10", "keep20", "keep40", "soft")
SIZES = {"per_class": 2500, "n_unseen": 1000, "n_boundaries": 50, "v_per_class": 10, "ace_cap": 50}
N_SEEDS_DESIGN = 5  # the draw windows are laid out for five runs
AD_SCALE = 10000  # AD stored as round(AD · 10⁴) integers
DRAW_STREAM, RANDOM_STREAM = 47, 48  # seeding streams "ri.table1_draws" / "ri.table1_random" (≥ 40: issue 25)


# ------------------------------------------------------------------------------------------- data
_REV: str | None = None


def git_rev() -> str:
    """The checkout's short commit, read once per process (the code that produced the units)."""
    global _REV
    if _REV is None:
        _REV = _git_rev()
    return _REV


def _git_rev() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def windows(n: int, size: int, n_draws: int = N_SEEDS_DESIGN) -> list[np.ndarray]:
    """Cyclic windows of ``size`` positions over ``range(n)`` shifted by ``n // n_draws``: draw s
    covers [s·shift, s·shift + size) mod n (each position in ⌊·⌋ or ⌈·⌉ draws: least overlap)."""
    shift = n // n_draws
    return [(s * shift + np.arange(size)) % n for s in range(n_draws)]


def draw_indices(labels: np.ndarray, per_class: int, seed_index: int, stream_seed: int) -> np.ndarray:
    """Indices of draw ``seed_index`` (0…4): per class, the window of a fixed permutation."""
    rng = np.random.default_rng(np.random.SeedSequence([stream_seed, DRAW_STREAM]))
    out = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        perm = idx[rng.permutation(idx.size)]
        k = min(per_class, idx.size)
        out.append(perm[windows(idx.size, k)[seed_index % N_SEEDS_DESIGN]])
    return np.sort(np.concatenate(out))


def unseen_indices(n: int, size: int, seed_index: int, stream_seed: int) -> np.ndarray:
    rng = np.random.default_rng(np.random.SeedSequence([stream_seed, DRAW_STREAM, 1]))
    perm = rng.permutation(n)
    return np.sort(perm[windows(n, min(size, n))[seed_index % N_SEEDS_DESIGN]])


def overlaps(draws: list[np.ndarray]) -> dict:
    k = len(draws)
    m = [[len(np.intersect1d(draws[i], draws[j])) / len(draws[i]) for j in range(k)] for i in range(k)]
    off = [m[i][j] for i in range(k) for j in range(k) if i != j]
    return {"matrix": [[round(v, 4) for v in row] for row in m], "mean": round(float(np.mean(off)), 4),
            "max": round(float(np.max(off)), 4), "min": round(float(np.min(off)), 4)}


class TaskData:
    """A task's model and its train/test images at the model's resolution (upsampled lazily)."""

    def __init__(self, task: str) -> None:
        from cnnlens import zoo

        self.task, spec = task, TASKS[task]
        self.model_name, self.classes = spec["model"], spec["classes"]
        self.clf = zoo.load_classifier(self.model_name)
        self.size = self.clf.input_shape[-1]
        self.train = zoo.load_dataset("fashion_mnist", split="train", classes=list(self.classes))
        self.test = zoo.load_dataset("fashion_mnist", split="test", classes=list(self.classes))
        self.n_classes = len(self.classes)

    def images(self, split: str, idx: np.ndarray) -> torch.Tensor:
        from cnnlens.data.datasets import upsample_images

        ds = self.train if split == "train" else self.test
        x = ds.images[torch.as_tensor(idx)]
        return x if x.shape[-1] == self.size else upsample_images(x, self.size)

    def draws(self) -> dict:
        lab_tr, lab_te = self.train.labels.numpy(), self.test.labels.numpy()
        r = [draw_indices(lab_tr, SIZES["per_class"], s, 0) for s in range(N_SEEDS_DESIGN)]
        u = [unseen_indices(len(lab_te), SIZES["n_unseen"], s, 0) for s in range(N_SEEDS_DESIGN)]
        return {"R": r, "S": u}


def weights_digest(clf) -> str:
    h = hashlib.sha256()
    for k, v in sorted(clf.model.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def config_key(task: str, method: str, digest: str) -> str:
    cfg = {"task": task, "method": method, "sizes": SIZES, "keeps": KEEPS, "draws": "cyclic-windows-v1",
           "weights": digest, "fill": "black"}
    return hashlib.sha256(json.dumps(cfg, sort_keys=True).encode()).hexdigest()[:16]


# ------------------------------------------------------------------------------------------- one seed
class SeedState:
    """What every method of one (task, seed) shares: R, ψ(R), Q, V, S, ψ(S), Class(e)."""

    def __init__(self, td: TaskData, seed: int, draws: dict, batch_size: int = 250) -> None:
        from cnnlens import RepresentativeInterpreter
        from cnnlens.representative.evaluation import _kmeans, _sqdist

        t0 = time.perf_counter()
        self.td, self.seed = td, seed
        self.r_idx, self.s_idx = draws["R"][seed % N_SEEDS_DESIGN], draws["S"][seed % N_SEEDS_DESIGN]
        x_r = td.images("train", self.r_idx)
        self.ri = RepresentativeInterpreter(td.clf, x_r, n_boundaries=SIZES["n_boundaries"], seed=seed,
                                            batch_size=batch_size)
        self.x_s = td.images("test", self.s_idx)
        psi_s, logits_s = self.ri._features_logits(self.x_s)
        self.psi_s = psi_s
        self.f_s = psi_s.reshape(psi_s.shape[0], -1).to(self.ri.compute_dtype)
        self.c_s = logits_s.argmax(1)
        v = SIZES["v_per_class"] * td.n_classes
        self.centres = _kmeans(self.ri.features_, v, seed)
        self.centre_ref = _sqdist(self.centres, self.ri.features_).argmin(1)
        self.nearest = _sqdist(self.f_s, self.centres).argmin(1)
        self.centre_cls = self.ri.predictions_[self.centre_ref]
        self.cluster = _sqdist(self.ri.features_, self.centres).argmin(1)  # (|R|,) k-means assignment
        self.batch_size = batch_size
        self.setup_s = time.perf_counter() - t0


def ri_unit(st: SeedState) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """RI's reused maps on S (§5, RI §6.4) + boundary statistics (issue 25 item 4)."""
    sub = st.ri
    v = st.centre_ref.numel()
    it = sub.interpret_features(sub.features_[st.centre_ref], st.centre_cls, k=0)
    proj_s = st.f_s @ sub.W_.T
    sides_s = (proj_s + sub.b_) >= 0
    covers = torch.zeros(st.f_s.shape[0], v, dtype=torch.bool)
    dist = torch.zeros(st.f_s.shape[0], v, dtype=proj_s.dtype)
    for j, p in enumerate(it.boundaries):
        covers[:, j] = (sides_s[:, p] == it.sides[j, p][None]).all(1)
        dist[:, j] = (proj_s[:, p] - it.projections[j, p][None]).abs().sum(1)
    any_cov = covers.any(1)
    chosen = torch.where(any_cov, torch.where(covers, dist, torch.full_like(dist, math.inf)).argmin(1), st.nearest)
    size = tuple(st.x_s.shape[-2:])
    maps = sub._heatmaps(st.psi_s, [it.channel_weights[int(j)] for j in chosen.tolist()], size)
    # boundary statistics: does boundary h (top-2 classes of its x′) separate Class(x) from another class?
    top2 = sub.boundaries_.top2.cpu()  # (Q, 2)
    sep = (top2[None, :, 0] == st.centre_cls[:, None]) | (top2[None, :, 1] == st.centre_cls[:, None])  # (V, Q)
    r_sep = ((top2[None, :, 0] == sub.predictions_[:, None]) | (top2[None, :, 1] == sub.predictions_[:, None]))
    centres = []
    for j, p in enumerate(it.boundaries):
        centres.append({**it.counts[j], "cls": int(st.centre_cls[j]), "share_Q_sep": round(float(sep[j].double().mean()), 4),
                        "share_P_sep": (round(float(sep[j, p].double().mean()), 4) if p.numel() else None),
                        "n_cover_S": int(covers[:, j].sum()), "boundaries": p.tolist()})
    extra = {"covered": "".join("1" if b else "0" for b in any_cov.tolist()),
             "n_covering": covers.sum(1).tolist(),
             "centres": centres, "n_distinct_boundaries": int(sub.n_distinct_boundaries),
             "share_Q_sep_over_R": round(float(r_sep.double().mean()), 4),
             "top2_pairs": [[int(a), int(b)] for a, b in top2.tolist()]}
    return maps, chosen, extra


def cam_unit(st: SeedState, method: str) -> tuple[torch.Tensor, torch.Tensor, dict]:
    from cnnlens.attribution.cam import cam_weights
    from cnnlens.representative.evaluation import _cam_maps

    w = cam_weights(st.td.clf, st.ri.reference_images[st.centre_ref], st.centre_cls, method, None, st.batch_size)
    return _cam_maps(st.psi_s, w[st.nearest], tuple(st.x_s.shape[-2:])), st.nearest, {}


def own_unit(st: SeedState, method: str) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """Reference row: every unseen image explained by its own CAM weights for its own class c (no reuse)."""
    from cnnlens.attribution.cam import cam_weights
    from cnnlens.representative.evaluation import _cam_maps

    w = cam_weights(st.td.clf, st.x_s, st.c_s, method, None, st.batch_size)
    return _cam_maps(st.psi_s, w, tuple(st.x_s.shape[-2:])), st.nearest, {"own": True}


def random_unit(st: SeedState) -> tuple[torch.Tensor, torch.Tensor, dict]:
    from cnnlens import seeding
    from cnnlens.explanation import minmax_normalize, upsample

    h, w = st.psi_s.shape[-2:]
    raw = torch.stack([torch.rand(h, w, generator=seeding.image_generator(st.seed, int(i), RANDOM_STREAM))
                       for i in st.s_idx])
    return minmax_normalize(upsample(raw, tuple(st.x_s.shape[-2:]))), st.nearest, {"grid": [int(h), int(w)]}


def ace_unit(st: SeedState):
    """ACE in the reuse evaluation through the library's :func:`cnnlens.representative.ace_reuse`
    (the same path as ``evaluate_reuse(..., methods=("ace",))``): one ACE run per k-means cluster of
    R on ≤ ace_cap of the cluster's images of its majority class (a seeded sample), random sets from
    ≤ ace_cap reference images outside the cluster; each unseen image is segmented, its outlying
    segments dropped and the rest assigned to the concepts of its nearest cluster (RI §6.1).
    Returns (maps, assigned, extra, reuse) — ``reuse`` gives the whole-segment keep masks."""
    from cnnlens.representative import ace_reuse

    sub = st.ri
    res = ace_reuse(st.td.clf, sub.reference_images, st.cluster, st.x_s, st.nearest, max_images=SIZES["ace_cap"],
                    max_random_images=SIZES["ace_cap"], seed=st.seed, layer=sub.layer, batch_size=st.batch_size)
    info = [{"class": int(res.cluster_class[j]), "n_concepts": (None if r is None else len(r)),
             "n_important": (None if r is None else int(r.important_.sum()))}
            for j, r in enumerate(res.runs)]
    kept = {f"kept_share_{name}": [round(float(v), 4) for v in res.keep_masks(keep).flatten(1).double().mean(1)]
            for keep, name in zip(KEEPS, SETTINGS)}  # per unseen image: share of pixels its keep mask keeps
    return res.maps, res.assigned, {"clusters": info, "skipped": {str(k): v for k, v in res.skipped.items()},
                                    "keep_rule": "whole segments in importance order until > p of the pixels",
                                    **kept}, res


def score_maps(st: SeedState, maps: torch.Tensor, method: str, reuse=None) -> dict:
    from cnnlens.metrics import average_drop_increase
    from cnnlens.metrics.single_step import keep_masks

    clf, x, c = st.td.clf, st.x_s, st.c_s
    out_ad, out_ai, flip = {}, {}, None
    for keep, name in zip(KEEPS, SETTINGS):
        if reuse is not None:  # ACE: whole segments until > keep of the pixels, the rest black
            m = reuse.keep_masks(keep).to(x.dtype)
            ad, ai = average_drop_increase(clf, x, m, c, mode="soft", batch_size=st.batch_size)
            cls = clf.predict(x * m[:, None], batch_size=st.batch_size) if name == "keep20" else None
        else:
            ad, ai = average_drop_increase(clf, x, maps, c, mode="keep", keep=keep, batch_size=st.batch_size,
                                           seed=st.seed)
            cls = None
            if name == "keep20":
                m = keep_masks(maps, tuple(x.shape[-2:]), keep, "bilinear", st.seed)
                cls = clf.predict(x * m[:, None].to(x.dtype), batch_size=st.batch_size)
        out_ad[name], out_ai[name] = ad, ai
        if name == "keep20":
            flip = cls != c
    ad, ai = average_drop_increase(clf, x, maps, c, mode="soft", batch_size=st.batch_size)
    out_ad["soft"], out_ai["soft"] = ad, ai
    return {"AD": {k: [int(round(AD_SCALE * float(v))) for v in t.tolist()] for k, t in out_ad.items()},
            "AI": {k: "".join("1" if v > 0.5 else "0" for v in t.tolist()) for k, t in out_ai.items()},
            "flip_keep20": "".join("1" if b else "0" for b in flip.tolist())}


def run_unit(st: SeedState, method: str, key: str, path: Path, digest: str) -> dict:
    from cnnlens._io import atomic_write_bytes

    t0 = time.perf_counter()
    reuse = None
    if method == "ri":
        maps, assigned, extra = ri_unit(st)
    elif method == "random":
        maps, assigned, extra = random_unit(st)
    elif method == "ace":
        maps, assigned, extra, reuse = ace_unit(st)
    elif method in OWN:
        maps, assigned, extra = own_unit(st, method[:-len("_own")])
    else:
        maps, assigned, extra = cam_unit(st, method)
    scores = score_maps(st, maps, method, reuse)
    took = time.perf_counter() - t0
    rec = {"task": st.td.task, "model": st.td.model_name, "classes": list(st.td.classes), "seed": st.seed,
           "method": method, "config_key": key, "weights": digest, "git_rev": git_rev(),
           "layer": st.ri.layer_name, "sizes": {"R": int(st.r_idx.size), "S": int(st.s_idx.size),
                                                "V": int(st.centre_ref.numel()), "Q": st.ri.n_boundaries},
           "fill": "black (pixel 0)", "wall_s": round(took, 2), "seed_setup_s": round(st.setup_s, 2),
           "threads": torch.get_num_threads(),
           "c": "".join(str(int(v)) for v in st.c_s.tolist()),
           "assigned": assigned.tolist(), "centre_cls": st.centre_cls.tolist(), **scores, "extra": extra}
    atomic_write_bytes(path, gzip.compress((json.dumps(rec, separators=(",", ":")) + "\n").encode(), mtime=0))
    return rec


def task_meta(td: TaskData, draws: dict, digest: str) -> dict:
    """Draw overlaps, model accuracy on the test split, and the black-image prediction."""
    from cnnlens import zoo

    clf = td.clf
    x_te = td.images("test", np.arange(len(td.test.labels)))
    acc = float((clf.predict(x_te, batch_size=500) == td.test.labels).double().mean())
    black = torch.zeros(1, *clf.input_shape)
    with torch.no_grad():
        p_black = torch.softmax(clf.logits(black), 1)[0]
    rec = zoo.training_record(td.model_name) or {}
    return {"task": td.task, "model": td.model_name, "classes": list(td.classes),
            "class_names": list(td.train.class_names), "weights": digest,
            "test_accuracy": round(acc, 4), "test_images": int(len(td.test.labels)),
            "recorded_test_accuracy": rec.get("test_accuracy"),
            "black_image": {"class": int(p_black.argmax()), "probs": [round(float(v), 4) for v in p_black]},
            "R_overlap": overlaps(draws["R"]), "S_overlap": overlaps(draws["S"]),
            "R_per_class_available": [int((td.train.labels == k).sum()) for k in range(td.n_classes)],
            "S_pool": int(len(td.test.labels))}


def run(args: argparse.Namespace) -> None:
    from cnnlens._io import atomic_write_text

    torch.set_num_threads(args.threads)
    git_rev()  # the commit of the code at the start of the run
    t_start = time.perf_counter()
    out = Path(args.out)
    for task in args.tasks:
        td = None
        for seed in args.seeds:
            st = None
            for method in args.methods:
                if (time.perf_counter() - t_start) / 60 > args.max_minutes:
                    print(f"--max-minutes {args.max_minutes} reached; stopping (re-run the same command to "
                          "continue)", flush=True)
                    return
                if td is None:
                    td = TaskData(task)
                    digest = weights_digest(td.clf)
                    draws = td.draws()
                    meta_path = out / task / "task.json"
                    if not meta_path.is_file() or json.loads(meta_path.read_text()).get("weights") != digest:
                        atomic_write_text(meta_path, json.dumps(task_meta(td, draws, digest), indent=1) + "\n")
                key = config_key(task, method, digest)
                path = out / task / f"s{seed}_{method}.json.gz"
                if path.is_file() and read_unit(path).get("config_key") == key:
                    continue
                if st is None:
                    st = SeedState(td, seed, draws, batch_size=args.batch_size)
                    print(f"{task} seed {seed}: shared setup {st.setup_s:.1f} s", flush=True)
                rec = run_unit(st, method, key, path, digest)
                ad20 = np.mean(rec["AD"]["keep20"]) / AD_SCALE * 100
                print(f"{task} seed {seed} {method}: mAD@20 {ad20:.2f} %, {rec['wall_s']:.1f} s "
                      f"({(time.perf_counter() - t_start) / 60:.1f} min so far)", flush=True)


# ------------------------------------------------------------------------------------------- fills
FILLS = ("black", "mean", "blur")  # black = the paper's; mean = the Classifier's mean grey; blur = Gaussian 11×11, σ 5


def fill_scores(st: SeedState, maps: torch.Tensor, keep: float = 0.2) -> dict:
    """AD/AI at keep-20 % with the removed pixels set to each fill of :data:`FILLS` (the same kept
    pixels and tie-break as the main units; ``black`` reproduces their keep20 values)."""
    from cnnlens import fills
    from cnnlens.metrics.single_step import keep_masks

    clf, x, c = st.td.clf, st.x_s, st.c_s
    m = keep_masks(maps, tuple(x.shape[-2:]), keep, "bilinear", st.seed)[:, None].to(x.dtype)
    with torch.no_grad():
        p0 = clf.probs(x, batch_size=st.batch_size).double().cpu()
    y = p0.gather(1, c.cpu()[:, None])[:, 0]
    out: dict = {"AD": {}, "AI": {}, "flip": {}}
    for name in FILLS:
        masked = x * m + fills.fill(name, x, clf) * (1 - m)
        with torch.no_grad():
            p1 = clf.probs(masked, batch_size=st.batch_size).double().cpu()
        o = p1.gather(1, c.cpu()[:, None])[:, 0]
        ad = torch.where(y > 0, (y - o).clamp_min(0) / y.clamp_min(1e-300), torch.zeros_like(y))
        out["AD"][name] = [int(round(AD_SCALE * float(v))) for v in ad.tolist()]
        out["AI"][name] = "".join("1" if v else "0" for v in (o > y).tolist())
        out["flip"][name] = "".join("1" if v else "0" for v in (p1.argmax(1) != c.cpu()).tolist())
    return out


def run_fills(args: argparse.Namespace) -> None:
    """Fill sensitivity (issue 25, the black-image problem): the Table 1 maps scored at keep-20 % with
    black, mean-grey and blurred fills; units ``<out>/<task>/fill_s<seed>_<method>.json.gz``."""
    from cnnlens import fills
    from cnnlens._io import atomic_write_bytes

    torch.set_num_threads(args.threads)
    git_rev()
    t_start = time.perf_counter()
    out = Path(args.out)
    for task in args.tasks:
        td = None
        for seed in args.seeds:
            st = None
            for method in [m for m in args.methods if m in ("ri", "gradcam", "gradcam++", "scorecam", "random")]:
                if (time.perf_counter() - t_start) / 60 > args.max_minutes:
                    print(f"--max-minutes {args.max_minutes} reached; stopping (re-run to continue)", flush=True)
                    return
                if td is None:
                    td = TaskData(task)
                    digest = weights_digest(td.clf)
                    draws = td.draws()
                key = config_key(task, method + "+fills", digest)
                path = out / task / f"fill_s{seed}_{method}.json.gz"
                if path.is_file() and read_unit(path).get("config_key") == key:
                    continue
                if st is None:
                    st = SeedState(td, seed, draws, batch_size=args.batch_size)
                t0 = time.perf_counter()
                maps = {"ri": ri_unit, "random": random_unit}.get(method, lambda s: cam_unit(s, method))(st)[0]
                rec = {"task": task, "seed": seed, "method": method, "config_key": key, "git_rev": git_rev(),
                       "c": "".join(str(int(v)) for v in st.c_s.tolist()), **fill_scores(st, maps)}
                with torch.no_grad():
                    fill_cls = {n: int(td.clf.predict(fills.fill(n, torch.zeros(1, *td.clf.input_shape), td.clf))[0])
                                for n in ("black", "mean")}
                rec["fill_image_class"] = fill_cls
                rec["wall_s"] = round(time.perf_counter() - t0, 2)
                atomic_write_bytes(path, gzip.compress((json.dumps(rec, separators=(",", ":")) + "\n").encode(),
                                                       mtime=0))
                ad = {n: np.mean(v) / AD_SCALE * 100 for n, v in rec["AD"].items()}
                print(f"{task} seed {seed} {method}: mAD@20 " + ", ".join(f"{n} {v:.2f}" for n, v in ad.items())
                      + f" ({(time.perf_counter() - t_start) / 60:.1f} min so far)", flush=True)


def load_fill_units(out: Path = OUT) -> list[dict]:
    return [read_unit(p) for p in sorted(Path(out).glob("*/fill_s*_*.json.gz"))]


def fill_stats(units: list[dict]) -> dict:
    """Per task × method × fill: mAD@20 and mAI@20 (%) per seed, mean ± std (ddof 1), share of S
    whose masked image changes class; per task × fill the method with the lowest mAD."""
    by: dict = {}
    for u in units:
        by.setdefault(u["task"], {}).setdefault(u["method"], {})[u["seed"]] = u
    out: dict = {}
    for task in [t for t in TASKS if t in by]:
        tm = by[task]
        out[task] = {"methods": {}, "best": {}}
        for method in [m for m in METHODS if m in tm]:
            seeds = sorted(tm[method])
            row = {"seeds": seeds}
            for f in FILLS:
                ads = [100 * np.mean(tm[method][s]["AD"][f]) / AD_SCALE for s in seeds]
                ais = [100 * np.mean([ch == "1" for ch in tm[method][s]["AI"][f]]) for s in seeds]
                fl = [100 * np.mean([ch == "1" for ch in tm[method][s]["flip"][f]]) for s in seeds]
                (a, sa), (b, sb) = _ms(ads), _ms(ais)
                row[f] = {"mAD": a, "mAD_std": sa, "mAI": b, "mAI_std": sb, "flip": float(np.mean(fl))}
            out[task]["methods"][method] = row
        for f in FILLS:
            cands = [m for m in out[task]["methods"] if m != "random"]
            out[task]["best"][f] = min(cands, key=lambda m: out[task]["methods"][m][f]["mAD"])
        out[task]["fill_image_class"] = next(iter(next(iter(tm.values())).values()))["fill_image_class"]
    return out


def fill_markdown(stats: dict) -> str:
    lines = ["| task | method | seeds | mAD@20 black | mAD@20 mean grey | mAD@20 blur | mAI@20 black | mAI@20 mean | "
             "mAI@20 blur | masked class ≠ c: black / mean / blur (%) |", "|---|---|---|---|---|---|---|---|---|---|"]
    for task, t in stats.items():
        for method, r in t["methods"].items():
            cells = []
            for f in FILLS:
                v = f"{r[f]['mAD']:.2f} ± {r[f]['mAD_std']:.2f}"
                cells.append(f"**{v}**" if t["best"][f] == method else v)
            cells += [f"{r[f]['mAI']:.2f} ± {r[f]['mAI_std']:.2f}" for f in FILLS]
            lines.append(f"| {task} | {LABELS.get(method, method)} | {len(r['seeds'])} | " + " | ".join(cells)
                         + " | " + " / ".join(f"{r[f]['flip']:.1f}" for f in FILLS) + " |")
    return "\n".join(lines) + "\n"


def fills_table(args: argparse.Namespace) -> None:
    from cnnlens._io import atomic_write_text

    stats = fill_stats(load_fill_units(Path(args.out)))
    md = fill_markdown(stats)
    atomic_write_text(Path(args.out) / "fills.md", md)
    atomic_write_text(Path(args.out) / "fills.json", json.dumps(stats, indent=1) + "\n")
    print(md)


# ------------------------------------------------------------------------------------------- table
def read_unit(path: Path) -> dict:
    return json.loads(gzip.decompress(Path(path).read_bytes()))


def load_units(out: Path = OUT) -> list[dict]:
    return [read_unit(p) for p in sorted(Path(out).glob("*/s*_*.json.gz"))]


def unit_values(u: dict, setting: str) -> tuple[np.ndarray, np.ndarray]:
    ad = np.asarray(u["AD"][setting], dtype=np.float64) / AD_SCALE
    ai = np.frombuffer(u["AI"][setting].encode(), dtype=np.uint8) == ord("1")
    return ad, ai.astype(np.float64)


def _ms(v: list[float]) -> tuple[float, float]:
    a = np.asarray(v, dtype=np.float64)
    return float(a.mean()), float(a.std(ddof=1)) if a.size > 1 else 0.0


def load_black(out: Path = OUT) -> dict[str, int]:
    """Per task, the class its model predicts for an all-black image (``<task>/task.json``)."""
    return {p.parent.name: json.loads(p.read_text())["black_image"]["class"] for p in sorted(Path(out).glob("*/task.json"))}


def _paired(a_units: dict, b_units: dict, setting: str, n_boot: int) -> dict:
    """Method a − method b in mAD (percentage points) on the seeds both have: per-seed mean paired
    difference, their mean, a paired bootstrap 95 % CI (images resampled within each seed, the same
    draw for both methods; numpy default_rng(0)) and the number of seeds a wins."""
    common = sorted(set(a_units) & set(b_units))
    rng = np.random.default_rng(0)
    diffs, boots = [], np.zeros(n_boot)
    for s in common:
        a, _ = unit_values(a_units[s], setting)
        b, _ = unit_values(b_units[s], setting)
        d = 100 * (a - b)
        diffs.append(float(d.mean()))
        idx = rng.integers(0, d.size, size=(n_boot, d.size))
        boots += d[idx].mean(1)
    boots /= max(1, len(common))
    lo, hi = np.percentile(boots, [2.5, 97.5])
    return {"seeds": common, "mean_diff": float(np.mean(diffs)), "per_seed_diff": diffs, "ci": [float(lo), float(hi)],
            "ri_wins": int(sum(d < -1e-9 for d in diffs))}


def table_stats(units: list[dict], n_boot: int = 2000, black: dict[str, int] | None = None) -> dict:
    """Per task × method × setting: per-seed mAD/mAI (%), mean ± std (ddof 1) over seeds; RI vs the
    best baseline (lowest mean mAD among Grad-CAM, Grad-CAM++, Score-CAM, ACE) on the seeds both
    have: mean paired difference, a paired bootstrap 95 % CI (images resampled within each seed,
    the same draw for both methods; numpy default_rng(0)), and the number of seeds RI wins."""
    by: dict = {}
    for u in units:
        by.setdefault(u["task"], {}).setdefault(u["method"], {})[u["seed"]] = u
    stats: dict = {"tasks": {}}
    for task in [t for t in TASKS if t in by] + sorted(t for t in by if t not in TASKS):
        tm = by[task]
        ts: dict = {"methods": {}, "pairs": {}}
        for method in [m for m in METHODS if m in tm]:
            seeds = sorted(tm[method])
            ms: dict = {"seeds": seeds, "settings": {}}
            for setting in SETTINGS:
                ads, ais = [], []
                for s in seeds:
                    ad, ai = unit_values(tm[method][s], setting)
                    ads.append(100 * ad.mean())
                    ais.append(100 * ai.mean())
                (a, sa), (b, sb) = _ms(ads), _ms(ais)
                ms["settings"][setting] = {"mAD": a, "mAD_std": sa, "mAI": b, "mAI_std": sb,
                                           "mAD_per_seed": ads, "mAI_per_seed": ais}
            ms["flip_keep20"] = float(np.mean([np.mean([ch == "1" for ch in tm[method][s]["flip_keep20"]])
                                               for s in seeds])) * 100
            ms["mismatch"] = float(np.mean([np.mean([int(u_c) != tm[method][s]["centre_cls"][a]
                                                     for u_c, a in zip(tm[method][s]["c"], tm[method][s]["assigned"])])
                                            for s in seeds])) * 100
            if black and task in black:  # mAD@20 split by whether c is the class of an all-black image
                for name, same in (("black_class", True), ("other_class", False)):
                    vals = []
                    for s in seeds:
                        ad, _ = unit_values(tm[method][s], "keep20")
                        sel = np.array([(int(ch) == black[task]) == same for ch in tm[method][s]["c"]])
                        vals.append(100 * ad[sel].mean() if sel.any() else float("nan"))
                    ms[f"mAD20_{name}"] = float(np.mean(vals))
            if all("kept_share_keep20" in tm[method][s]["extra"] for s in seeds):  # ACE: masks can stay below p
                ms["kept"] = {}
                for name in SETTINGS[:3]:
                    v = np.concatenate([np.asarray(tm[method][s]["extra"][f"kept_share_{name}"]) for s in seeds])
                    ms["kept"][name] = {"mean": float(v.mean()) * 100, "empty": float((v == 0).mean()) * 100,
                                        "over_p": float((v > KEEPS[SETTINGS.index(name)]).mean()) * 100}
            if method == "ri":
                ms["coverage"] = float(np.mean([np.mean([ch == "1" for ch in tm[method][s]["extra"]["covered"]])
                                                for s in seeds])) * 100
            ts["methods"][method] = ms
        if "ri" in tm:
            for setting in SETTINGS:
                base = [m for m in BASELINES if m in tm]
                if not base:
                    continue
                best = min(base, key=lambda m: ts["methods"][m]["settings"][setting]["mAD"])
                ts["pairs"][setting] = {"best": best, **_paired(tm["ri"], tm[best], setting, n_boot)}
                if "ace" in tm and best != "ace":  # the paper's fifth row, on the seeds it has
                    ts.setdefault("pairs_ace", {})[setting] = {"best": "ace", **_paired(tm["ri"], tm["ace"], setting,
                                                                                        n_boot)}
        stats["tasks"][task] = ts
    return stats


def _fmt(m: float, s: float, n: int = 2) -> str:
    return f"{m:.2f} ± {s:.2f}" if n > 1 else f"{m:.2f} (1 run)"


def table_markdown(stats: dict) -> str:
    lines = ["| task | method | seeds | mAD@20 (%) ↓ | mAI@20 (%) ↑ | mAD@10 | mAD@40 | mAD soft | mAI soft | "
             "masked class ≠ c @20 (%) | class ≠ interpreted image's (%) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for task, ts in stats["tasks"].items():
        for method, ms in ts["methods"].items():
            st, n = ms["settings"], len(ms["seeds"])
            cells = [_fmt(st[k][m], st[k][f"{m}_std"], n) for k, m in
                     (("keep20", "mAD"), ("keep20", "mAI"), ("keep10", "mAD"), ("keep40", "mAD"), ("soft", "mAD"),
                      ("soft", "mAI"))]
            lines.append(
                f"| {task} | {LABELS.get(method, method)} | {n} | " + " | ".join(cells) + f" | {ms['flip_keep20']:.1f} | "
                + ("– |" if method in OWN else f"{ms['mismatch']:.1f} |"))
    lines += ["", "RI − best baseline, and RI − ACE on the seeds ACE ran (mAD, percentage points; negative = RI "
              "better; 95 % paired bootstrap CI over images within seeds):", "",
              "| task | setting | best baseline | seeds | RI − best | 95 % CI | seeds RI wins |", "|---|---|---|---|---|---|---|"]
    for task, ts in stats["tasks"].items():
        for setting, p in [*ts["pairs"].items(), *ts.get("pairs_ace", {}).items()]:
            lines.append(f"| {task} | {setting} | {LABELS.get(p['best'], p['best'])} | {len(p['seeds'])} | "
                         f"{p['mean_diff']:+.2f} | [{p['ci'][0]:+.2f}, {p['ci'][1]:+.2f}] | "
                         f"{p['ri_wins']}/{len(p['seeds'])} |")
    if any("mAD20_black_class" in ms for ts in stats["tasks"].values() for ms in ts["methods"].values()):
        lines += ["", "mAD@20 (%) split by the unseen image's class c: c = the class the model gives an all-black image "
                  "(masking pushes towards c) | c = another class (masking pushes away from c); mean over seeds:", "",
                  "| task | method | c = black image's class | c ≠ black image's class |", "|---|---|---|---|"]
        for task, ts in stats["tasks"].items():
            for method, ms in ts["methods"].items():
                if "mAD20_black_class" in ms:
                    lines.append(f"| {task} | {LABELS.get(method, method)} | {ms['mAD20_black_class']:.2f} | "
                                 f"{ms['mAD20_other_class']:.2f} |")
    kept = [(task, ms) for task, ts in stats["tasks"].items() for m, ms in ts["methods"].items() if "kept" in ms]
    if kept:
        lines += ["", "ACE keep masks (segments of important concepts only, added by importance until > p): share of "
                  "the image kept, mean over unseen images and runs (%), share of images with an empty mask (%), share "
                  "whose mask passed p (%):", "", "| task | keep 10 %: kept / empty / > p | keep 20 % | keep 40 % |",
                  "|---|---|---|---|"]
        for task, ms in kept:
            lines.append(f"| {task} | " + " | ".join(
                f"{ms['kept'][n]['mean']:.1f} / {ms['kept'][n]['empty']:.1f} / {ms['kept'][n]['over_p']:.1f}"
                for n in SETTINGS[:3]) + " |")
    cov = [f"{task} {ts['methods']['ri']['coverage']:.1f} %" for task, ts in stats["tasks"].items()
           if "ri" in ts["methods"]]
    if cov:
        lines += ["", "RI coverage of S (share of unseen images inside some polytope of V): " + ", ".join(cov)]
    return "\n".join(lines) + "\n"


def table(args: argparse.Namespace) -> None:
    from cnnlens._io import atomic_write_text

    stats = table_stats(load_units(Path(args.out)), black=load_black(Path(args.out)))
    md = table_markdown(stats)
    atomic_write_text(Path(args.out) / "table.md", md)
    atomic_write_text(Path(args.out) / "table.json", json.dumps(stats, indent=1) + "\n")
    print(md)


# ------------------------------------------------------------------------------------------- boundaries
def boundary_stats(units: list[dict]) -> dict:
    """Issue 25 item 4 from the RI units: share of the |Q| sampled boundaries whose two classes
    include Class(x) (over the |V| interpreted images, and over all of R), the same share inside
    the chosen P(x), |P(x)|, |C| (covered references), and coverage of S."""
    out: dict = {}
    for u in units:
        if u["method"] != "ri":
            continue
        e = u["extra"]
        cs = e["centres"]
        t = out.setdefault(u["task"], {"seeds": [], "share_Q_sep": [], "share_P_sep": [], "share_Q_sep_over_R": [],
                                       "P_size": [], "C_size": [], "C_and_D": [], "coverage": [], "distinct": []})
        t["seeds"].append(u["seed"])
        t["share_Q_sep"].append(float(np.mean([c["share_Q_sep"] for c in cs])))
        t["share_P_sep"].append(float(np.mean([c["share_P_sep"] for c in cs if c["share_P_sep"] is not None])))
        t["share_Q_sep_over_R"].append(e["share_Q_sep_over_R"])
        t["P_size"].append(float(np.mean([c["P"] for c in cs])))
        t["C_size"].append(float(np.mean([c["C"] for c in cs])))
        t["C_and_D"].append(float(np.mean([c["C_and_D"] for c in cs])))
        t["coverage"].append(float(np.mean([ch == "1" for ch in e["covered"]])))
        t["distinct"].append(e["n_distinct_boundaries"])
        # distinct interpretations among the |V| centres: P(x) itself is not stored, so centres with
        # equal (|P|, |C|, |C ∩ D|, δ, covered unseen images) count as one (a proxy; equal P gives equal tuples)
        t.setdefault("distinct_P", []).append(len({(c["P"], c["C"], c["C_and_D"], c["delta"], c["n_cover_S"])
                                                   for c in cs}))
        t.setdefault("V", []).append(len(cs))
    return out


def boundary_markdown(stats: dict, extra: dict | None = None) -> str:
    """The boundary table (Table 1 tasks in ``TASKS`` order, then the extra models); pipes inside
    cells are escaped (``\\|``) so the table renders."""
    lines = ["| task (model) | seeds | boundaries separating Class(x): share of Q, V images (%) | over all of R (%) | "
             "inside P(x) (%) | mean \\|P(x)\\| | mean \\|C\\| covered refs | mean \\|C ∩ D\\| | coverage of S (%) | "
             "distinct of \\|Q\\| | distinct P(x) among \\|V\\| |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    rows = {t: stats[t] for t in TASKS if t in stats}
    rows.update({t: v for t, v in stats.items() if t not in rows})
    rows.update(extra or {})
    for task, t in rows.items():
        label = task.replace("|", "\\|")
        lines.append(f"| {label} | {len(t['seeds'])} | {100 * np.mean(t['share_Q_sep']):.1f} | "
                     f"{100 * np.mean(t['share_Q_sep_over_R']):.1f} | {100 * np.mean(t['share_P_sep']):.1f} | "
                     f"{np.mean(t['P_size']):.1f} | {np.mean(t['C_size']):.0f} | {np.mean(t['C_and_D']):.1f} | "
                     f"{100 * np.mean(t['coverage']):.1f} | {np.mean(t['distinct']):.0f} | "
                     + (f"{np.mean(t['distinct_P']):.1f} of {np.mean(t['V']):.0f} |" if "distinct_P" in t else "– |"))
    return "\n".join(lines) + "\n"


def extra_boundaries(model: str, dataset: str, classes: list[int] | None, seeds: list[int],
                     per_class: int, n_unseen: int, batch_size: int = 250) -> dict:
    """The same boundary statistics for a zoo model outside the Table 1 tasks (MNIST's 10-class
    ``mnist_cnn``; the old 10-class ``fashion_vgg`` on the 4-class subset): R drawn per class from
    the train split, S from the test split, V = 10·C k-means centres."""
    from cnnlens import RepresentativeInterpreter, zoo
    from cnnlens.representative.evaluation import _kmeans, _sqdist

    clf = zoo.load_classifier(model)
    kw = {} if classes is None else {"classes": classes}
    tr, te = zoo.load_dataset(dataset, split="train", **kw), zoo.load_dataset(dataset, split="test", **kw)
    n_cls = int(torch.unique(tr.labels).numel())
    t: dict = {"seeds": [], "share_Q_sep": [], "share_P_sep": [], "share_Q_sep_over_R": [], "P_size": [],
               "C_size": [], "C_and_D": [], "coverage": [], "distinct": []}
    for seed in seeds:
        r = draw_indices(tr.labels.numpy(), per_class, seed, 0)
        s = unseen_indices(len(te.labels), n_unseen, seed, 0)
        ri = RepresentativeInterpreter(clf, tr.images[torch.as_tensor(r)], n_boundaries=SIZES["n_boundaries"],
                                       seed=seed, batch_size=batch_size)
        centres = _kmeans(ri.features_, 10 * n_cls, seed)
        cref = _sqdist(centres, ri.features_).argmin(1)
        ccls = ri.predictions_[cref]
        it = ri.interpret_features(ri.features_[cref], ccls, k=0)
        top2 = ri.boundaries_.top2.cpu()
        sep = (top2[None, :, 0] == ccls[:, None]) | (top2[None, :, 1] == ccls[:, None])
        r_sep = (top2[None, :, 0] == ri.predictions_[:, None]) | (top2[None, :, 1] == ri.predictions_[:, None])
        psi_s, _ = ri._features_logits(te.images[torch.as_tensor(s)])
        f_s = psi_s.reshape(psi_s.shape[0], -1).to(ri.compute_dtype)
        sides_s = (f_s @ ri.W_.T + ri.b_) >= 0
        cov = torch.zeros(f_s.shape[0], dtype=torch.bool)
        for j, p in enumerate(it.boundaries):
            cov |= (sides_s[:, p] == it.sides[j, p][None]).all(1)
        t["seeds"].append(seed)
        t["share_Q_sep"].append(float(sep.double().mean()))
        t["share_P_sep"].append(float(np.mean([float(sep[j, p].double().mean()) for j, p in enumerate(it.boundaries)
                                               if p.numel()])))
        t["share_Q_sep_over_R"].append(float(r_sep.double().mean()))
        t["P_size"].append(float(np.mean([c["P"] for c in it.counts])))
        t["C_size"].append(float(np.mean([c["C"] for c in it.counts])))
        t["C_and_D"].append(float(np.mean([c["C_and_D"] for c in it.counts])))
        t["coverage"].append(float(cov.double().mean()))
        t["distinct"].append(ri.n_distinct_boundaries)
        t.setdefault("distinct_P", []).append(len({tuple(p.tolist()) for p in it.boundaries}))
        t.setdefault("V", []).append(len(it.boundaries))
    return t


def boundaries(args: argparse.Namespace) -> None:
    from cnnlens._io import atomic_write_text

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    stats = boundary_stats(load_units(out))
    path = out / "boundaries_extra.json"
    extra = json.loads(path.read_text()) if path.is_file() else {}
    if args.extra:
        t0 = time.perf_counter()
        extra["mnist (mnist_cnn, 10 classes; R 300/class of 400, |S| 500)"] = extra_boundaries(
            "mnist_cnn", "mnist", None, args.seeds, 300, 500)
        extra["fashion4 on the old 10-class fashion_vgg (28²)"] = extra_boundaries(
            "fashion_vgg", "fashion_mnist", [0, 2, 4, 6], args.seeds, SIZES["per_class"], SIZES["n_unseen"])
        extra["_wall_s"] = round(time.perf_counter() - t0, 1)
        atomic_write_text(path, json.dumps(extra, indent=1) + "\n")
    md = boundary_markdown(stats, {k: v for k, v in extra.items() if not k.startswith("_")})
    atomic_write_text(out / "boundaries.md", md)
    atomic_write_text(out / "boundaries.json", json.dumps({"tasks": stats, "extra": extra}, indent=1) + "\n")
    print(md)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="RI Table 1 the paper's way (issue 25)")
    ap.add_argument("command", choices=("run", "table", "boundaries", "fills", "fills-table"))
    ap.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    ap.add_argument("--seeds", nargs="+", type=int, default=list(range(5)))
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    ap.add_argument("--max-minutes", type=float, default=float("inf"))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=250)
    ap.add_argument("--extra", action="store_true", help="boundaries: also run mnist_cnn and fashion_vgg")
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args(argv)
    import cnnlens

    cnnlens.tune_cpu_malloc()
    {"run": run, "table": table, "boundaries": boundaries, "fills": run_fills,
     "fills-table": fills_table}[args.command](args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
