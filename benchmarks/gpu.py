"""GPU benchmark (issue 23 item 5): every cnnlens method and the metric games against the peers,
side by side on one device in one run, under a hard time budget.

    PYTHONPATH=src python benchmarks/gpu.py --device cuda --out $OUT --max-seconds 420 [--peers-dir .peers]
    PYTHONPATH=src python benchmarks/gpu.py --device cpu --quick --out /tmp/gpu_bench      # a smoke run

What it measures, per model (the bundled ``mobilenet_v2_imagenet`` on the ``photos`` at 224² and
``mnist_cnn`` on ``mnist``), with the same images, targets (the predicted classes) and batch size
for cnnlens and each peer:

* a calibration: the best per-image forward (no grad, masked copies resident on the device, batch
  ``--batch-size``, best of 3 after a warm-up); efficiency = forward passes × that time / seconds;
* every registered method (``cnnlens.methods()``; ``ri`` and ``ace`` get a small reference set:
  the other test images), ours and the peer where one exists — captum (saliency, guided backprop,
  DeepLIFT), pytorch-grad-cam (Grad-CAM, Grad-CAM++, Score-CAM), zennit (LRP ε-α2β1-Flat), lime
  (LIME with our superpixels); agreement = max |Δ| of the min-max normalised maps (LIME: the
  correlation of the per-superpixel weights, which is sampling noise-bound, BENCHMARKS.md);
* the metric games: ``evaluate`` with OVERVIEW's six metrics (``rise`` protocol) on the Grad-CAM
  maps, and the ``gomez`` insertion/deletion games side by side with saliency-maps-metrics
  (``benchmarks/bench_metrics.py``'s ``side_by_side``) on a 7×7 and a pixel map.

Timing: ``torch.cuda.synchronize()`` before and after every timed call; one warm-up call first
(the perturbation methods warm up on one image with small settings); the one-pass gradient
methods run three times alternating ours / peer and each side's best is kept.

Budget: ``--max-seconds`` (default 420) is a hard limit. Rows are measured in order of importance
(calibration; the gradient/CAM/propagation methods and their peers; Score-CAM, LIME, RISE; the
metric games; Extremal Perturbation, DA; RI, ACE), both models per stage; the table is written
(``gpu_bench.md`` and ``gpu_bench.json``, atomically) after every row; a timer interrupts the row
in flight when the budget is near, and every row not reached is listed as such.

A peer that cannot be imported is a row "not installed", never an error. The device machine
installs nothing: carry the peers (pure Python) and the bundled weights/digits with
``benchmarks/gpu_pack.sh`` (a folder, ``--peers-dir``, prepended to ``sys.path``).
"""
from __future__ import annotations

import argparse
import datetime
import importlib
import importlib.metadata
import json
import math
import os
import platform
import signal
import subprocess
import sys
import time
import traceback
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # bench_attribution, bench_metrics (run as a script or imported by a test)

#: table columns, in order (the JSON rows carry the same keys)
COLUMNS = ("model", "images", "task", "implementation", "seconds", "ms_per_image", "forwards", "ms_per_forward",
           "efficiency", "agreement", "status")
#: peer name -> (distribution, module)
PEERS = {
    "captum": ("captum", "captum"),
    "pytorch-grad-cam": ("grad-cam", "pytorch_grad_cam"),
    "zennit": ("zennit", "zennit"),
    "lime": ("lime", "lime"),
    "saliency-maps-metrics": ("saliency-maps-metrics", "saliency_maps_metrics"),
}
#: method -> its peer
METHOD_PEER = {"saliency": "captum", "guided_backprop": "captum", "deeplift": "captum", "gradcam": "pytorch-grad-cam",
               "gradcam++": "pytorch-grad-cam", "scorecam": "pytorch-grad-cam", "lrp": "zennit", "lime": "lime"}
ONE_PASS = ("saliency", "guided_backprop", "gradcam", "gradcam++", "lrp", "deeplift")
#: small settings: the warm-up of the full run, and every call of --quick
SMALL = {
    "lime": {"num_samples": 32},
    "rise": {"n_masks": 32},
    "extremal_perturbation": {"iterations": 3},
    "da_pos": {"iterations": 2},
    "da_neg": {"iterations": 2},
    "ri": {"n_boundaries": 8},
    "ace": {"n_segments": (4, 8), "n_clusters": 4, "n_members": 10, "n_random": 4, "max_images": 8,
            "max_random_images": 8},
}
#: full settings beyond the method's defaults (ACE's reference set is small: fewer concepts)
FULL = {"ace": {"n_segments": (15, 50), "n_clusters": 10, "n_random": 4, "max_images": 8, "max_random_images": 16}}
#: stages in order of importance; "metrics" = the games
STAGES = (ONE_PASS, ("scorecam", "lime", "rise"), ("metrics",), ("extremal_perturbation", "da_pos", "da_neg"),
          ("ri", "ace"))


class OutOfTime(BaseException):
    """Raised by the budget timer inside the row in flight (not an ``Exception``: nothing swallows it)."""


def _on_alarm(signum, frame):
    raise OutOfTime


def sync() -> None:
    import torch

    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


def clocked(fn):
    """``(result, seconds)`` of ``fn()``, the device synchronised before and after."""
    from bench_attribution import timed

    sync()
    out, t = timed(lambda: (fn(), sync())[0])
    return out, t.wall


def peer_version(name: str, wanted: set[str]) -> str | None:
    """``"name version"`` of an importable peer that was asked for, else None."""
    dist, module = PEERS[name]
    if name not in wanted:
        return None
    try:
        importlib.import_module(module)
    except Exception:  # noqa: BLE001 - any import failure means "not installed" here
        return None
    try:
        return f"{name} {importlib.metadata.version(dist)}"
    except importlib.metadata.PackageNotFoundError:
        return name


def max_delta(ours, theirs) -> str:
    import numpy as np
    import torch

    from cnnlens.explanation import minmax_normalize

    a = minmax_normalize(torch.as_tensor(ours).detach().float().cpu()).numpy()
    b = minmax_normalize(torch.as_tensor(np.asarray(theirs)).detach().float().cpu()).numpy()
    return f"max |Δ| of normalised maps {float(np.abs(a - b).max()):.1e}"


# ------------------------------------------------------------------ peers: maps (N, H, W) of the same inputs
def _captum(cls_name: str, reduce: str):
    def run(case, m, x, t):
        from bench_attribution import _Module
        from captum import attr

        kw = {"baselines": x.new_zeros(x.shape)} if cls_name == "DeepLift" else {}
        a = getattr(attr, cls_name)(_Module(case.clf)).attribute(x.clone().requires_grad_(True), target=t.tolist(), **kw)
        return a.detach().abs().amax(1) if reduce == "absmax" else a.detach().sum(1)
    return run


def _grad_cam(cls_name: str):
    def run(case, m, x, t):
        import pytorch_grad_cam
        from bench_attribution import _Module
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

        cam = getattr(pytorch_grad_cam, cls_name)(model=_Module(case.clf), target_layers=[case.clf.layer_module(None, x)[0]])
        cam.batch_size = case.bs
        return cam(input_tensor=x, targets=[ClassifierOutputTarget(int(c)) for c in t])
    return run


def _zennit(case, m, x, t):
    import torch
    from bench_attribution import _Module
    from zennit.attribution import Gradient
    from zennit.canonizers import SequentialMergeBatchNorm
    from zennit.composites import EpsilonAlpha2Beta1Flat

    onehot = torch.eye(int(case.clf.num_classes or 0), device=x.device)[t]
    with Gradient(model=_Module(case.clf), composite=EpsilonAlpha2Beta1Flat(canonizers=[SequentialMergeBatchNorm()])) as a:
        return a(x.clone().requires_grad_(), lambda out: onehot * out)[1].detach().sum(1)


def _lime(case, m, x, t):
    """lime 0.2.0.1 with our superpixels; returns the correlation of its weights with ours."""
    import numpy as np
    import torch
    from lime import lime_image

    out = []
    for i in range(x.shape[0]):
        seg = case.segments[i].numpy()
        img = x[i].expand(3, -1, -1) if x.shape[1] == 1 else x[i]
        fn = lambda imgs: case.clf.probs(torch.from_numpy(imgs).permute(0, 3, 1, 2).float()[:, : x.shape[1]]  # noqa: E731
                                         .to(x.device), batch_size=case.bs).cpu().numpy()
        r = lime_image.LimeImageExplainer(random_state=0).explain_instance(
            img.permute(1, 2, 0).double().cpu().numpy(), fn, labels=(int(t[i]),), top_labels=None, hide_color=0,
            num_samples=case.params("lime")["num_samples"], batch_size=case.bs, segmentation_fn=lambda _im, s=seg: s,
            num_features=100000)
        w = np.zeros(int(seg.max()) + 1)
        for f, v in r.local_exp[int(t[i])]:
            w[f] = v
        ours = np.array([float(m.maps[i].cpu()[case.segments[i] == f][0]) for f in range(len(w))])
        out.append(float(np.corrcoef(ours, w)[0, 1]) if len(w) > 1 else 1.0)
    return "weight correlation with ours " + ", ".join(f"{c:.2f}" for c in out) + " (sampling noise, see BENCHMARKS.md)"


PEER_RUN = {"saliency": _captum("Saliency", "absmax"), "guided_backprop": _captum("GuidedBackprop", "absmax"),
            "deeplift": _captum("DeepLift", "sum"), "gradcam": _grad_cam("GradCAM"),
            "gradcam++": _grad_cam("GradCAMPlusPlus"), "scorecam": _grad_cam("ScoreCAM"), "lrp": _zennit, "lime": _lime}


# ------------------------------------------------------------------ one model's inputs
def _photos(name: str):
    """The zoo's photo set; where the device's scikit-image/-learn lack the files, the uint8 copy
    that gpu_pack.sh put on sys.path (``<peers-dir>/<name>.pt``)."""
    import torch

    from cnnlens import zoo

    try:
        return zoo.load_dataset(name).images
    except Exception:  # noqa: BLE001 - AssetMissingError, or a photo file missing
        for d in sys.path:
            f = Path(d or ".") / f"{name}.pt"
            if f.is_file():
                print(f"{name}: the zoo's files are missing here; using {f}", flush=True)
                return torch.load(f).float() / 255
        raise


class Case:
    """A model with its images, targets, reference set, batch size and settings."""

    def __init__(self, name: str, n: int, device: str, bs: int, quick: bool) -> None:
        import torch

        from cnnlens import zoo

        self.name, self.bs, self.quick = name, bs, quick
        self.clf = zoo.load_classifier(name, device=device)
        if name == "mobilenet_v2_imagenet":
            photos = _photos("photos")
            self.x = photos[:n].to(device)
            try:
                extra = _photos("imagenet_photos")
            except Exception:  # noqa: BLE001 - the reference set is then the photos alone
                extra = photos[:0]
            ref = torch.cat([photos, extra])
        else:
            digits = zoo.load_dataset("mnist").images
            self.x = digits[:n].to(device)
            ref = digits[: max(n, 40 if quick else 200)]
        self.reference = ref.to(device)  # holds the explained images: ACE finds their classes in it
        self.targets = self.clf.predict(self.x)
        self.t_fwd: float | None = None
        self._segments = None
        self.maps: dict[str, object] = {}

    @property
    def segments(self):
        if self._segments is None:
            from cnnlens.attribution.lime import segment

            self._segments = segment(self.x.cpu(), "quickshift", seed=0)
        return self._segments

    def params(self, method: str, small: bool = False, n: int | None = None) -> dict:
        p = dict(SMALL.get(method, {}) if (small or self.quick) else FULL.get(method, {}))
        if method == "lime":
            p.setdefault("num_samples", 1000)
            p["segments"] = self.segments[:n]
        if method in ("ri", "ace"):
            p["reference"] = self.reference
        from cnnlens.attribution import method_info

        if "progress" in method_info(method).params:
            p["progress"] = False
        return p

    def explain(self, method: str, n: int | None = None, small: bool = False):
        import cnnlens

        sel = slice(None) if n is None else slice(0, n)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return cnnlens.explain(self.clf, self.x[sel], method, target=self.targets[sel], batch_size=self.bs,
                                   **self.params(method, small, n))


def forwards_of(method: str, e, case: Case, n: int) -> int | None:
    """Forward passes a method made (None: not a forward-pass count, e.g. one forward + backward)."""
    p = e.params
    if method == "scorecam":
        return int(e.info["forward_passes"])
    if method in ("da_pos", "da_neg"):
        return int(sum(e.info["evaluations"]))
    if method == "rise":
        return n * int(p["n_masks"])
    if method == "lime":
        return n * int(p["num_samples"])
    return None


# ------------------------------------------------------------------ the run
class Bench:
    def __init__(self, args) -> None:
        self.args, self.rows, self.t0 = args, [], time.monotonic()
        self.out = Path(args.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.env: dict = {}
        self.stopped = False

    def remaining(self) -> float:
        return self.args.max_seconds - (time.monotonic() - self.t0)

    def add(self, case_or_model, task: str, impl: str, seconds=None, forwards=None, agreement: str = "",
            status: str = "ok", n: int | None = None, passes_label: str | None = None) -> None:
        model = case_or_model if isinstance(case_or_model, str) else case_or_model.name
        if n is None and not isinstance(case_or_model, str):
            n = int(case_or_model.x.shape[0])
        t_fwd = None if isinstance(case_or_model, str) else case_or_model.t_fwd
        row = {"model": model, "images": n, "task": task, "implementation": impl, "seconds": seconds,
               "ms_per_image": seconds / n * 1e3 if seconds is not None and n else None,
               "forwards": passes_label if passes_label is not None else forwards,
               "ms_per_forward": seconds / forwards * 1e3 if seconds is not None and forwards else None,
               "efficiency": forwards * t_fwd / seconds if seconds and forwards and t_fwd else None,
               "agreement": agreement, "status": status}
        self.rows.append(row)
        print(f"[{time.monotonic() - self.t0:6.1f} s] {row}", flush=True)
        self.write()

    def write(self) -> None:
        """gpu_bench.json and gpu_bench.md, each written to a temporary file and renamed."""
        data = {"env": self.env, "columns": list(COLUMNS), "rows": self.rows,
                "elapsed_s": round(time.monotonic() - self.t0, 1), "complete": not self.stopped}
        for name, text in (("gpu_bench.json", json.dumps(data, indent=1, default=str)), ("gpu_bench.md", self.markdown())):
            tmp = self.out / f".{name}.tmp"
            tmp.write_text(text)
            os.replace(tmp, self.out / name)

    def markdown(self) -> str:
        def cell(v):
            if v is None:
                return "–"
            if isinstance(v, float):
                return f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"
            return str(v).replace("|", "\\|")
        head = ", ".join(f"{k}: {v}" for k, v in self.env.items())
        lines = [f"{head}", "", "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
        lines += ["| " + " | ".join(cell(r[c]) for c in COLUMNS) + " |" for r in self.rows]
        return "\n".join(lines) + "\n"

    # -------------------------------------------------------------- rows
    def calibrate(self, case: Case) -> None:
        import torch

        x = case.x[torch.arange(case.bs, device=case.x.device) % case.x.shape[0]]
        xb = x * (torch.rand(case.bs, 1, *x.shape[-2:], device=x.device) > 0.5).float()
        clocked(lambda: case.clf.logits(xb, batch_size=case.bs))
        best = min(clocked(lambda: case.clf.logits(xb, batch_size=case.bs))[1] for _ in range(3))
        case.t_fwd = best / case.bs
        self.add(case, "forward (calibration)", f"Classifier.logits, batch {case.bs}", best, case.bs, n=case.bs)

    def method(self, case: Case, method: str, wanted: set[str]) -> None:
        n = int(case.x.shape[0])
        peer = METHOD_PEER.get(method)
        version = peer_version(peer, wanted) if peer else None
        one_pass = method in ONE_PASS
        if not one_pass:  # warm-up: one image, small settings
            case.explain(method, n=1, small=True)
        best, e = math.inf, None
        peer_best, agreement = math.inf, ""
        for rep in range(3 if one_pass else 1):
            e, s = clocked(lambda: case.explain(method))
            best = min(best, s)
            if version and method != "lime":
                if rep == 0 and not one_pass:
                    clocked(lambda: PEER_RUN[method](case, e, case.x[:1], case.targets[:1]))  # the peer's warm-up
                ref, s = clocked(lambda: PEER_RUN[method](case, e, case.x, case.targets))
                peer_best, agreement = min(peer_best, s), max_delta(e.maps, ref)
        case.maps[method] = e.maps
        fw = forwards_of(method, e, case, n)
        label = "1 fwd + bwd" if one_pass else None
        if method == "extremal_perturbation":
            label = f"{n * int(e.params['iterations'])} fwd + bwd"
        self.add(case, method, "cnnlens", best, fw, passes_label=label)
        if peer is None:
            return
        if version is None:
            self.add(case, method, peer, status="not installed" if peer in wanted else "left out (--peers)")
            return
        if method == "lime":
            agreement, peer_best = clocked(lambda: PEER_RUN["lime"](case, e, case.x, case.targets))
        if method == "scorecam":  # the peer scores every channel
            fw = n * int(e.info["channels"])
        self.add(case, method, version, peer_best, fw, agreement,
                 passes_label="1 fwd + bwd" if one_pass else None)

    def metrics(self, case: Case, wanted: set[str]) -> None:
        import torch

        import cnnlens
        from cnnlens.metrics.evaluate import preset_step
        from cnnlens.metrics.games import n_forwards

        n, _, h, w = case.x.shape
        maps = case.maps.get("gradcam")
        if maps is None:
            maps = case.explain("gradcam").maps
        run = lambda xs, ms: cnnlens.evaluate(case.clf, xs, ms, protocol="rise", target=case.targets[: len(xs)],  # noqa: E731
                                              batch_size=case.bs)
        clocked(lambda: run(case.x[:1], maps[:1]))  # warm-up
        res, s = clocked(lambda: run(case.x, maps))
        fw = 2 * n_forwards(n, h * w, preset_step("rise", h * w, (h, w))) + 2 * n
        self.add(case, "metrics: " + "+".join(res) + " (rise, Grad-CAM maps)", "cnnlens", s, fw)
        version = peer_version("saliency-maps-metrics", wanted)
        g = torch.Generator().manual_seed(0)
        for label, size in (("7x7 map", 7), ("pixel map", h)):
            task = f"games iauc+dauc+ic+dc (gomez, {label})"
            if version is None:
                self.add(case, task, "saliency-maps-metrics",
                         status="not installed" if "saliency-maps-metrics" in wanted else "left out (--peers)")
                continue
            from bench_metrics import side_by_side

            m = torch.rand(n, size, size, generator=g).to(case.x.device)
            sub = "blur" if case.x.shape[1] == 3 else "black"
            side_by_side(task, case.clf, case.x[:1], m[:1], sub, case.bs)  # warm-up
            sync()
            r = side_by_side(task, case.clf, case.x, m, sub, case.bs)
            fw = 2 * n * (r["steps"] + 1)
            self.add(case, task, "cnnlens", r["ours"], fw)
            self.add(case, task, version, r["ref"], fw, f"max |Δ| of IAUC/DAUC/IC/DC {r['maxdiff']:.1e}")


def parse(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--out", required=True, help="folder for gpu_bench.md / gpu_bench.json")
    ap.add_argument("--max-seconds", type=float, default=420.0, help="hard time budget of the whole run")
    ap.add_argument("--quick", action="store_true", help="small settings (a CPU smoke run)")
    ap.add_argument("--models", default="mobilenet_v2_imagenet,mnist_cnn")
    ap.add_argument("--tasks", default="all", help="methods and/or 'metrics', comma-separated (default: all)")
    ap.add_argument("--peers", default=",".join(PEERS), help="peers to compare with (default: all five)")
    ap.add_argument("--peers-dir", default=None, help="folder prepended to sys.path (benchmarks/gpu_pack.sh)")
    ap.add_argument("--batch-size", type=int, default=None, help="default 128 on cuda, 64 on cpu")
    ap.add_argument("--n-photos", type=int, default=None, help="MobileNetV2 images (default 2; --quick 1)")
    ap.add_argument("--n-mnist", type=int, default=None, help="MNIST images (default 16; --quick 2)")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    return ap.parse_args(argv)


def _git_rev() -> str:
    try:
        return subprocess.run(["git", "-C", str(HERE), "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              timeout=10).stdout.strip() or os.environ.get("CNNLENS_REV", "unknown")
    except (OSError, subprocess.SubprocessError):
        return os.environ.get("CNNLENS_REV", "unknown")


def main(argv=None) -> int:
    args = parse(argv)
    if args.peers_dir:
        sys.path.insert(0, str(Path(args.peers_dir).resolve()))
    try:
        import cnnlens
    except ImportError:  # run without PYTHONPATH=src
        sys.path.insert(0, str(HERE.parent / "src"))
        import cnnlens
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device == "cpu":
        cnnlens.tune_cpu_malloc()
    cuda = args.device.startswith("cuda")
    bs = args.batch_size or (128 if cuda else 64)
    wanted = {p.strip() for p in args.peers.split(",") if p.strip()}
    unknown = wanted - set(PEERS)
    if unknown:
        raise SystemExit(f"unknown peers {sorted(unknown)}; known: {', '.join(PEERS)}")
    all_tasks = [*cnnlens.methods(), "metrics"]
    tasks = all_tasks if args.tasks == "all" else [t.strip() for t in args.tasks.split(",")]
    bad = [t for t in tasks if t not in all_tasks]
    if bad:
        raise SystemExit(f"unknown tasks {bad}; known: {', '.join(all_tasks)}")
    bench = Bench(args)
    bench.env = {
        "device": torch.cuda.get_device_name(0) if cuda and torch.cuda.is_available() else args.device,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "git": _git_rev(), "torch": torch.__version__, "python": platform.python_version(),
        "cpu threads": torch.get_num_threads(), "batch size": bs, "max seconds": args.max_seconds,
        "quick": args.quick,
        "peers": ", ".join(peer_version(p, wanted) or f"{p} (not installed)" for p in PEERS if p in wanted),
    }
    if cuda and not torch.cuda.is_available():
        bench.env["status"] = "no CUDA device visible"
        bench.write()
        print("no CUDA device visible", file=sys.stderr)
        return 2
    n_photos = args.n_photos or (1 if args.quick else 2)
    n_mnist = args.n_mnist or (2 if args.quick else 16)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    jobs = [("calibrate", m, None) for m in models]
    for stage in STAGES:
        jobs += [("task", m, t) for t in stage for m in models if t in tasks]
    jobs += [("task", m, t) for t in tasks if not any(t in s for s in STAGES) for m in models]  # plug-in methods
    reserve = 3.0  # for the last write
    old = signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, max(0.01, args.max_seconds - reserve))
    cases: dict[str, Case] = {}
    try:
        for kind, model, task in jobs:
            label = "forward (calibration)" if kind == "calibrate" else task
            if bench.stopped:
                bench.add(model, label, "–", status="not reached (time budget)")
                continue
            try:
                if model not in cases:
                    cases[model] = Case(model, n_photos if model == "mobilenet_v2_imagenet" else n_mnist,
                                        args.device, bs, args.quick)
                case = cases[model]
                if kind == "calibrate":
                    bench.calibrate(case)
                elif task == "metrics":
                    bench.metrics(case, wanted)
                else:
                    bench.method(case, task, wanted)
            except OutOfTime:
                bench.stopped = True
                bench.add(model, label, "–", status="stopped at the time budget")
            except Exception as exc:  # noqa: BLE001 - one failing row must not end the run
                traceback.print_exc()
                msg = " ".join(str(exc).split())[:160]
                bench.add(model, label, "–", status=f"error: {type(exc).__name__}: {msg}")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    bench.write()
    print(bench.markdown())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
