"""Train the project's own zoo CNNs on real Fashion-MNIST and ship them as package data (issue #7).

Models (architectures in ``src/cnnlens/models/fashion.py``; SPEC §3, §4, §5, §6.9):

- ``fashion_vgg`` — VGG-style, last conv 256 filters, FC-ReLU-FC head; 10 classes, 1×28×28.
- ``fashion_pair_seq`` — plain ``nn.Sequential``, Pullover vs Coat at 1×128×128 (bilinear
  upsampling in the data pipeline), random rotation ≤ 15° and horizontal flip while training.
- ``fashion_cnn_s`` / ``fashion_cnn_m`` / ``fashion_cnn_l`` — depth family (1, 2, 4 convs),
  10 classes, 1×28×28.
- ``mnist_cnn_s`` / ``mnist_cnn_s_random_labels`` — the ``fashion_cnn_s`` architecture on a
  2,000-image MNIST subset (the first 2,000 of the zoo's ``mnist`` train split), with the true
  labels and with the labels randomly permuted (seed ``seed + 2``): the pair of Adebayo et al.'s
  data randomisation test (docs/algorithms.md §10.1). The permuted-label model memorises its
  training set (train accuracy, recorded) and is at chance on the test split.
- ``texture_cnn`` / ``texture_cnn_ts3`` — a small CNN (``cnnlens.models.texture_cnn``, 64
  last-conv filters) trained with cross-entropy on the zoo's ``texture_scenes`` train split, and
  its fine-tune with the NESY sparsity loss (TS3; ``NESY_RECIPES``, ``cnnlens.nesy.train``,
  trained in that order). The TS3 record stores the training θ (``zoo.nesy_theta``); both store
  their NeSy program's test metrics (issue 26 item 6: the demo's NeSy section).
- ``fashion_task_tshirt_shirt`` / ``_pullover_coat`` / ``_sneaker_boot`` / ``fashion_task4`` —
  RI Table 1's one model per task (issue 25): ``FashionTaskCNN`` at 1×64×64 (bilinear
  upsampling), conv trunk + FC64–ReLU–FC head that reads all of ψ; 2, 2, 2 and 4 classes.

Each model is built after ``torch.manual_seed(seed)``; batches are drawn from a
``torch.Generator`` seeded with ``seed + 1`` (shuffling and augmentation), Adam with a cosine
learning-rate schedule over the epochs, cross-entropy. Deterministic on CPU
(``torch.use_deterministic_algorithms(True)``; the same seed and thread count give bit-identical
weights). After every epoch the model, optimiser, schedule and generator states are checkpointed
(atomically) to ``--ckpt-dir``; re-running the same command resumes from the last finished epoch.
At the end the test accuracy is measured (full test split, and on the fixed first-N subset that
``tests/test_zoo_trained.py`` re-checks), and ``<out>/<name>.pt`` (a plain state dict, tensors
only — load with ``weights_only=True``) and ``<out>/<name>.json`` (accuracy, recipe, timing)
are written atomically.

    python experiments/train_zoo.py                       # all models, seed 0
    python experiments/train_zoo.py fashion_vgg --epochs 6 --threads 2
    python experiments/train_zoo.py --list
"""
from __future__ import annotations

import argparse
import functools
import io
import json
import math
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "src") not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT / "src"))

from cnnlens import __version__ as CNNLENS_VERSION  # noqa: E402
from cnnlens._io import atomic_write_bytes, atomic_write_text  # noqa: E402
from cnnlens.data.datasets import FASHION_PAIR_CLASSES, load_fashion_mnist, load_mnist, select_classes, upsample_images  # noqa: E402
from cnnlens.models.fashion import FASHION_MEAN, FASHION_STD, PAIR_SEQ_SIZE, FashionDepthCNN, FashionVGG, fashion_pair_seq  # noqa: E402
from cnnlens.models.mnist_cnn import MNIST_MEAN, MNIST_STD  # noqa: E402

WEIGHTS_DIR = ROOT / "src" / "cnnlens" / "weights"
CKPT_DIR = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "cnnlens" / "train_zoo"


@dataclass(frozen=True)
class Recipe:
    """How one zoo model is trained (recorded in its JSON)."""

    name: str
    build: Callable[[], nn.Module] = field(repr=False, compare=False)
    classes: tuple[int, ...] | None  # Fashion-MNIST classes (None = all 10)
    size: int  # input side (28 = native; larger = bilinear upsampling in the pipeline)
    augment: bool  # random rotation ≤ max_rotation° + horizontal flip
    epochs: int
    batch_size: int
    lr: float
    check_n: int  # size of the fixed test subset re-checked by tests/test_zoo_trained.py
    max_rotation: float = 15.0
    dataset: str = "fashion_mnist"  # or "mnist" (the zoo's 5k MNIST: train 4000 / test 1000)
    train_subset: int | None = None  # always train on the first N training images
    permute_labels: bool = False  # train on randomly permuted labels (data randomisation, §10.1)

    @property
    def mean(self) -> float:
        return MNIST_MEAN if self.dataset == "mnist" else FASHION_MEAN

    @property
    def std(self) -> float:
        return MNIST_STD if self.dataset == "mnist" else FASHION_STD

    def record(self) -> dict:
        d = asdict(self)
        d.pop("build")
        return d


RECIPES: dict[str, Recipe] = {
    r.name: r
    for r in (
        Recipe("fashion_vgg", FashionVGG, None, 28, False, 3, 128, 1e-3, 1000),
        Recipe("fashion_pair_seq", fashion_pair_seq, FASHION_PAIR_CLASSES, PAIR_SEQ_SIZE, True,
               3, 64, 1e-3, 500),
        Recipe("fashion_cnn_s", lambda: FashionDepthCNN("s"), None, 28, False, 3, 128, 1e-3, 1000),
        Recipe("fashion_cnn_m", lambda: FashionDepthCNN("m"), None, 28, False, 3, 128, 1e-3, 1000),
        Recipe("fashion_cnn_l", lambda: FashionDepthCNN("l"), None, 28, False, 3, 128, 1e-3, 1000),
        Recipe("mnist_cnn_s", lambda: FashionDepthCNN("s"), None, 28, False, 30, 64, 1e-3, 1000,
               dataset="mnist", train_subset=2000),
        Recipe("mnist_cnn_s_random_labels", lambda: FashionDepthCNN("s"), None, 28, False, 150, 64, 1e-3,
               1000, dataset="mnist", train_subset=2000, permute_labels=True),
    )
}


# --- RI per-task models (issue 25): one FashionTaskCNN per RI Table 1 task, 1×64×64 ---------
from cnnlens.models.fashion import FASHION_TASKS, TASK_SIZE, FashionTaskCNN  # noqa: E402

for _name, _classes in FASHION_TASKS.items():
    RECIPES[_name] = Recipe(_name, functools.partial(FashionTaskCNN, len(_classes)), _classes, TASK_SIZE,
                            False, 4, 64, 1e-3, 1000)
del _name, _classes
# --- end RI per-task models --------------------------------------------------------------------


@functools.lru_cache(maxsize=2)
def _fashion(split: str):
    return load_fashion_mnist(split)


def load_split(recipe: Recipe, split: str, limit: int | None = None):
    """(images (N, 1, 28, 28) in [0, 1], labels (N,)) of the recipe's classes; first ``limit``
    (and, for training, first ``recipe.train_subset``). Labels are the true ones (the permuted
    training labels are made in :func:`train`)."""
    if split == "train" and recipe.train_subset is not None:
        limit = recipe.train_subset if limit is None else min(limit, recipe.train_subset)
    data = load_mnist(split) if recipe.dataset == "mnist" else _fashion(split)
    if recipe.classes is not None:
        data = select_classes(data, recipe.classes)
    if limit is not None:
        data = data.subset(slice(0, limit))
    return data.images, data.labels


def augment_batch(x: torch.Tensor, gen: torch.Generator, max_degrees: float) -> torch.Tensor:
    """Random rotation in [−max_degrees, max_degrees] (bilinear, black fill) and a horizontal
    flip with probability 1/2, per image, batched; randomness from ``gen`` only."""
    n = x.shape[0]
    theta_deg = (torch.rand(n, generator=gen) * 2 - 1) * max_degrees
    flip = torch.rand(n, generator=gen) < 0.5
    a = theta_deg * (math.pi / 180)
    cos, sin = torch.cos(a), torch.sin(a)
    sx = torch.where(flip, -1.0, 1.0)
    # output (u, v) samples input at R(a) · diag(sx, 1) · (u, v): rotation + optional mirror
    mat = torch.stack([torch.stack([cos * sx, -sin, torch.zeros(n)], 1),
                       torch.stack([sin * sx, cos, torch.zeros(n)], 1)], 1)
    grid = F.affine_grid(mat.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def prepare(x: torch.Tensor, recipe: Recipe, gen: torch.Generator | None) -> torch.Tensor:
    """Pixel batch (28²) → normalised model input: upsample, augment (training only), normalise."""
    if recipe.size != x.shape[-1]:
        x = upsample_images(x, recipe.size)
    if gen is not None and recipe.augment:
        x = augment_batch(x, gen, recipe.max_rotation)
    return (x - recipe.mean) / recipe.std


@torch.no_grad()
def accuracy(model: nn.Module, recipe: Recipe, images: torch.Tensor, labels: torch.Tensor,
             batch_size: int = 500) -> float:
    """Top-1 accuracy of ``model`` (eval mode) on pixel images, through :func:`prepare`."""
    model.eval()
    hits = 0
    for i in range(0, len(labels), batch_size):
        logits = model(prepare(images[i:i + batch_size], recipe, None))
        hits += int((logits.argmax(1) == labels[i:i + batch_size]).sum())
    return hits / len(labels)


def _state_bytes(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def train(name: str, *, seed: int = 0, epochs: int | None = None, train_limit: int | None = None,
          test_limit: int | None = None, out_dir: Path = WEIGHTS_DIR, ckpt_dir: Path = CKPT_DIR,
          threads: int | None = None, progress: bool = True, evaluate: bool = True,
          stop_after: int | None = None) -> dict | None:
    """Train zoo model ``name`` (resuming from ``ckpt_dir`` if a matching checkpoint exists),
    write ``out_dir/<name>.pt`` and ``out_dir/<name>.json``; return the JSON record.

    ``stop_after=k`` stops after ``k`` epochs of this call (checkpoint written, nothing else;
    returns ``None``) — a time-boxed run that a later call resumes."""
    if name not in RECIPES:
        raise SystemExit(f"unknown model {name!r}; known: {', '.join(RECIPES)}")
    recipe = RECIPES[name]
    epochs = recipe.epochs if epochs is None else epochs
    if threads is not None:
        torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    config = {"name": name, "seed": seed, "epochs": epochs, "train_limit": train_limit,
              "recipe": recipe.record()}

    x_train, y_train = load_split(recipe, "train", train_limit)
    n = len(y_train)
    if recipe.permute_labels:  # Adebayo et al. 2018, data randomisation: the labels permuted over the images
        y_train = y_train[torch.randperm(n, generator=torch.Generator().manual_seed(seed + 2))]
    torch.manual_seed(seed)
    model = recipe.build()
    opt = torch.optim.Adam(model.parameters(), lr=recipe.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    gen = torch.Generator().manual_seed(seed + 1)
    start, elapsed, history = 0, 0.0, []

    ckpt_path = Path(ckpt_dir) / f"{name}.ckpt.pt"
    if ckpt_path.is_file():
        ck = torch.load(ckpt_path, map_location="cpu", weights_only=True)
        if json.loads(ck["config"]) == config:
            model.load_state_dict(ck["model"])
            opt.load_state_dict(ck["opt"])
            sched.load_state_dict(ck["sched"])
            gen.set_state(ck["gen"])
            start, elapsed = int(ck["epoch"]), float(ck["elapsed"])
            history = json.loads(ck["history"])
            print(f"{name}: resuming after epoch {start}/{epochs} from {ckpt_path}", file=sys.stderr)
        else:
            print(f"{name}: checkpoint {ckpt_path} is for another configuration; starting over",
                  file=sys.stderr)

    steps = math.ceil(n / recipe.batch_size)
    for epoch in range(start, epochs):
        if stop_after is not None and epoch - start >= stop_after:
            print(f"{name}: stopping after epoch {epoch}/{epochs} (--stop-after); re-run to "
                  "resume", file=sys.stderr)
            return None
        t0 = time.perf_counter()
        model.train()
        perm = torch.randperm(n, generator=gen)
        total, bar = 0.0, tqdm(range(steps), desc=f"{name} epoch {epoch + 1}/{epochs}",
                               disable=not progress, leave=False)
        for s in bar:
            idx = perm[s * recipe.batch_size:(s + 1) * recipe.batch_size]
            x = prepare(x_train[idx], recipe, gen)
            loss = F.cross_entropy(model(x), y_train[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            value = float(loss.detach())
            total += value * len(idx)
            if s % 20 == 0:
                bar.set_postfix(loss=f"{value:.3f}")
        sched.step()
        elapsed += time.perf_counter() - t0
        history.append({"epoch": epoch + 1, "train_loss": total / n})
        print(f"{name}: epoch {epoch + 1}/{epochs} train loss {total / n:.4f} "
              f"({elapsed:.0f} s so far)", file=sys.stderr)
        atomic_write_bytes(ckpt_path, _state_bytes({
            "config": json.dumps(config), "model": model.state_dict(), "opt": opt.state_dict(),
            "sched": sched.state_dict(), "gen": gen.get_state(), "epoch": epoch + 1,
            "elapsed": elapsed, "history": json.dumps(history)}))

    model.eval()
    state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    record = {"name": name, "seed": seed, "epochs": epochs, "train_images": n,
              "train_limit": train_limit, "recipe": recipe.record(),
              "mean": recipe.mean, "std": recipe.std, "train_seconds": round(elapsed, 1),
              "threads": torch.get_num_threads(), "history": history,
              "torch": torch.__version__, "cnnlens": CNNLENS_VERSION,
              "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
              "command": "python experiments/train_zoo.py " + name + f" --seed {seed}"
              + ("" if epochs == recipe.epochs else f" --epochs {epochs}")}
    if recipe.permute_labels or recipe.train_subset is not None:
        # memorisation: accuracy on the labels it was trained on (permuted ones if permute_labels)
        record["train_accuracy"] = round(accuracy(model, recipe, x_train, y_train), 4)
    if evaluate:
        x_test, y_test = load_split(recipe, "test", test_limit)
        record["test_images"] = len(y_test)
        record["test_accuracy"] = round(accuracy(model, recipe, x_test, y_test), 4)
        k = min(recipe.check_n, len(y_test))
        record["check_subset"] = k
        record["check_accuracy"] = round(accuracy(model, recipe, x_test[:k], y_test[:k]), 4)
    out_dir = Path(out_dir)
    atomic_write_bytes(out_dir / f"{name}.pt", _state_bytes(state))
    atomic_write_text(out_dir / f"{name}.json", json.dumps(record, indent=1) + "\n")
    for suffix in (".pt", ".json"):  # package data: world-readable (the temp file was 0600)
        os.chmod(out_dir / f"{name}{suffix}", 0o644)
    return record


# ---------------------------------------------------------------------------------------------
# NeSy: a texture_scenes CNN and its sparsity-trained fine-tune (issue 26 item 6; docs §6.2–§6.3)
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class NesyRecipe:
    """A zoo model trained with ``cnnlens.nesy.train`` (cross-entropy from scratch, or a
    sparsity-loss fine-tune of another NeSy recipe's model). A sparsity-trained model's record
    stores its training θ (``record["nesy"]["theta"]``, read by ``zoo.nesy_theta``) so that
    ``NeSyModel.fit(binarization="sigmoid", theta=...)`` binarizes as it was trained."""

    name: str
    base: str | None  # the NeSy recipe whose weights are the start (None: from scratch)
    strategy: str  # "CE" or TS1 … TS5
    epochs: int
    lr: float
    weight_decay: float
    k: int | None = None  # filters per class in P (K·C ≤ F/2); None for CE
    batch_size: int = 32
    dataset: str = "texture_scenes"  # zoo dataset: train split to train, test split to test

    def record(self) -> dict:
        return asdict(self)


NESY_RECIPES: dict[str, NesyRecipe] = {
    # the texture_scenes CNN (cnnlens.models.texture_cnn, 64 last-conv filters), cross-entropy
    "texture_cnn": NesyRecipe("texture_cnn", None, "CE", epochs=12, lr=2e-3, weight_decay=0.0),
    # ... fine-tuned with the NESY sparsity loss, TS3 (random P, θ from the start weights), K = 5
    "texture_cnn_ts3": NesyRecipe("texture_cnn_ts3", "texture_cnn", "TS3", epochs=12, lr=1e-3,
                                  weight_decay=5e-3, k=5),
}


def train_nesy(name: str, *, seed: int = 0, epochs: int | None = None, out_dir: Path = WEIGHTS_DIR,
               ckpt_dir: Path = CKPT_DIR, threads: int | None = None, progress: bool = True) -> dict:
    """Train ``NESY_RECIPES[name]`` (resumable: ``cnnlens.nesy.train`` checkpoints every epoch to
    ``ckpt_dir/<name>/``), write ``<name>.pt`` and ``<name>.json``: test accuracy, the training
    θ and P (sparsity strategies), and the NeSy program's metrics on the test split (training θ
    for TS*, post-hoc θ for CE; NeSyModel's default FOLD-SE-M settings)."""
    from cnnlens import Classifier, zoo
    from cnnlens.models.texture import texture_cnn
    from cnnlens.nesy import NeSyModel
    from cnnlens.nesy import train as nesy_train

    recipe = NESY_RECIPES[name]
    epochs = recipe.epochs if epochs is None else epochs
    if threads is not None:
        torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    tr, te = zoo.load_dataset(recipe.dataset, "train"), zoo.load_dataset(recipe.dataset, "test")
    torch.manual_seed(seed)
    net = texture_cnn(len(tr.class_names))
    if recipe.base is not None:  # start from the base recipe's weights as written to out_dir
        net.load_state_dict(torch.load(Path(out_dir) / f"{recipe.base}.pt", map_location="cpu", weights_only=True))
    clf = Classifier(net.eval(), class_names=list(tr.class_names), input_shape=tuple(tr.images.shape[1:]))
    t0 = time.perf_counter()
    res = nesy_train(clf, tr, None, strategy=recipe.strategy, epochs=epochs, seed=seed, lr=recipe.lr,
                     weight_decay=recipe.weight_decay, batch_size=recipe.batch_size, k=recipe.k,
                     checkpoint_dir=Path(ckpt_dir) / name, resume=True, progress=progress)
    elapsed = time.perf_counter() - t0
    if res.theta is not None:
        nesy = NeSyModel.fit(clf, tr.images, tr.labels, binarization="sigmoid", theta=res.theta)
    else:
        nesy = NeSyModel.fit(clf, tr.images, tr.labels, binarization="threshold")
    ev = nesy.evaluate(te.images, te.labels)
    pred = clf.predict(te.images)
    record = {"name": name, "seed": seed, "epochs": epochs, "train_images": len(tr.labels),
              "recipe": recipe.record(), "mean": 0.0, "std": 1.0, "train_seconds": round(elapsed, 1),
              "threads": torch.get_num_threads(), "history": res.history, "torch": torch.__version__,
              "cnnlens": CNNLENS_VERSION, "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
              "command": f"python experiments/train_zoo.py {name} --seed {seed}"
              + ("" if epochs == recipe.epochs else f" --epochs {epochs}"),
              "test_images": len(te.labels), "test_accuracy": round(float((pred == te.labels).float().mean()), 4),
              "check_subset": len(te.labels), "check_accuracy": round(float((pred == te.labels).float().mean()), 4),
              "nesy": {"strategy": recipe.strategy, "layer": res.layer, "k": res.k,
                       "binarization": res.binarization,
                       "theta": None if res.theta is None else [float(v) for v in res.theta.tolist()],
                       "P": None if res.P is None or res.theta is None
                       else [[int(j) for j in row.nonzero().flatten().tolist()] for row in res.P],
                       "fold_params": nesy.fit_info.get("fold_params"), "test_metrics": ev}}
    state = {kk: v.detach().clone().contiguous() for kk, v in clf.model.state_dict().items()}
    out_dir = Path(out_dir)
    atomic_write_bytes(out_dir / f"{name}.pt", _state_bytes(state))
    atomic_write_text(out_dir / f"{name}.json", json.dumps(record, indent=1) + "\n")
    for suffix in (".pt", ".json"):
        os.chmod(out_dir / f"{name}{suffix}", 0o644)
    return record

def summary(out_dir: Path = WEIGHTS_DIR) -> str:
    """Markdown table of the training records in ``out_dir`` (for EXPERIMENTS.md)."""
    rows = ["| model | input | classes | params | weights KiB | seed | epochs | train images | "
            "train s (threads) | test accuracy (images) | check subset acc (first N) |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, recipe in RECIPES.items():
        path = Path(out_dir) / f"{name}.json"
        if not path.is_file():
            rows.append(f"| `{name}` | not trained | | | | | | | | | |")
            continue
        r = json.loads(path.read_text())
        state = torch.load(Path(out_dir) / f"{name}.pt", map_location="cpu", weights_only=True)
        params = sum(v.numel() for v in state.values())
        kib = (Path(out_dir) / f"{name}.pt").stat().st_size / 1024
        classes = "all 10" if recipe.classes is None else "/".join(map(str, recipe.classes))
        rows.append(
            f"| `{name}` | 1×{recipe.size}×{recipe.size} | {classes} | {params:,} | {kib:.0f} | "
            f"{r['seed']} | {r['epochs']} | {r['train_images']} | {r['train_seconds']:.0f} "
            f"({r['threads']}) | {100 * r['test_accuracy']:.2f}% ({r['test_images']}) | "
            f"{100 * r['check_accuracy']:.2f}% ({r['check_subset']}) |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models", nargs="*", help=f"which to train (default all: {', '.join(RECIPES)})")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, help="override the recipe's epoch count")
    p.add_argument("--train-limit", type=int, help="use only the first N training images")
    p.add_argument("--test-limit", type=int, help="evaluate on only the first N test images")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    p.add_argument("--out", type=Path, default=WEIGHTS_DIR, help="where weights/JSON go")
    p.add_argument("--ckpt-dir", type=Path, default=CKPT_DIR, help="per-epoch checkpoints")
    p.add_argument("--stop-after", type=int, metavar="K",
                   help="stop each model after K epochs of this run (resume later)")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--list", action="store_true", help="list the recipes and exit")
    p.add_argument("--summary", action="store_true",
                   help="print a markdown table of the records in --out and exit")
    args = p.parse_args(argv)
    if args.summary:
        print(summary(args.out))
        return 0
    if args.list:
        for r in RECIPES.values():
            print(json.dumps(r.record()))
        for r in NESY_RECIPES.values():
            print(json.dumps(r.record()))
        return 0
    for name in args.models or list(RECIPES):
        t0 = time.perf_counter()
        if name in NESY_RECIPES:  # NeSy block (issue 26 item 6)
            rec = train_nesy(name, seed=args.seed, epochs=args.epochs, out_dir=args.out,
                             ckpt_dir=args.ckpt_dir, threads=args.threads, progress=not args.no_progress)
            print(f"{name}: CNN test accuracy {rec['test_accuracy']:.4f}; NeSy "
                  f"{rec['nesy']['test_metrics']}; {rec['train_seconds']} s training, "
                  f"{time.perf_counter() - t0:.0f} s wall", flush=True)
            continue
        rec = train(name, seed=args.seed, epochs=args.epochs, train_limit=args.train_limit,
                    test_limit=args.test_limit, out_dir=args.out, ckpt_dir=args.ckpt_dir,
                    threads=args.threads, progress=not args.no_progress,
                    stop_after=args.stop_after)
        if rec is None:
            continue
        print(f"{name}: test accuracy {rec.get('test_accuracy', float('nan')):.4f} on "
              f"{rec.get('test_images')} images; {rec['train_seconds']} s training, "
              f"{time.perf_counter() - t0:.0f} s wall", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
