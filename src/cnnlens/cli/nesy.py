"""``cnnlens nesy``: the neuro-symbolic flow on the command line (docs/algorithms.md §6, §8).

    cnnlens nesy train   --model M (--dataset D | --images DIR) --strategy TS3 --epochs 5 --out RUN/
    cnnlens nesy extract --model M [--trained RUN/] (--dataset D | --images DIR) --out nesy.json
    cnnlens nesy predict --model M [--trained RUN/] --rules nesy.json (--dataset D | --images DIR)
    cnnlens nesy justify --model M [--trained RUN/] --rules nesy.json (--image FILE | --dataset D --index I)
    cnnlens nesy label   --model M [--trained RUN/] --rules nesy.json (--dataset texture_scenes | --images DIR) --out labelled.json

``train`` writes ``RUN/model.pt`` (the fine-tuned state dict, loaded with ``weights_only``),
``RUN/training.json`` (strategy, layer, θ, P, history) and checkpoints in ``RUN/checkpoints``
(``--resume`` continues them). ``torchrun --nproc_per_node N -m cnnlens nesy train …`` trains
data-parallel (DDP; gloo on CPU, NCCL with ``--device cuda``, rank r on ``cuda:LOCAL_RANK``):
the same global batches as one process, rank 0 writes. ``--trained RUN/`` loads those weights into the model and, for
TS1–TS5 runs, makes ``extract`` binarize with the training θ (``--binarization auto``); so does
a sparsity-trained zoo model (``--model texture_cnn_ts3``: the θ of its training record).
``--images DIR`` is an ImageFolder (``DIR/<class>/<image>``); for ``label`` it also needs
``DIR/masks/<class>/<image stem>.png`` (concept indices) and ``DIR/concepts.json``
(``{"concepts": [names...]}`` or a list). All outputs are written atomically.
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._io import atomic_write_bytes, atomic_write_text
from ..errors import CnnlensError
from . import options as opt
from .inputs import classifier_from_args, load_image_source, prepare_images

__all__ = ["register"]


# ------------------------------------------------------------------ shared helpers
def _common(p: argparse.ArgumentParser, rules: bool = False) -> None:
    opt.add_model_options(p)
    opt.add_device(p)
    p.add_argument("--trained", metavar="RUN", help="folder written by `cnnlens nesy train` (weights, θ)")
    p.add_argument("--layer", default=None, help="filter layer (default: last Conv2d after its activation)")
    opt.add_seed(p)
    opt.add_batch_size(p, 64, "images per forward pass")
    opt.add_quiet(p)
    if rules:
        p.add_argument("--rules", required=True, metavar="FILE", help="NeSy model JSON from `nesy extract`")


def _data_args(p: argparse.ArgumentParser) -> None:
    opt.add_image_source(p, files=False, images_help="ImageFolder DIR/<class>/<image>",
                         dataset_help="a zoo dataset (see `cnnlens datasets`)")


def _classifier(args: argparse.Namespace):
    opt.at_least_one("--batch-size", args.batch_size)
    clf = classifier_from_args(args)
    if args.trained:
        run = Path(args.trained)
        path = run / "model.pt"
        if not path.is_file():
            raise CnnlensError(f"--trained {run}: no model.pt; give the --out folder of `cnnlens nesy train`")
        state = torch.load(path, map_location=clf.device, weights_only=True)
        try:
            clf.model.load_state_dict(state)
        except RuntimeError as exc:
            raise CnnlensError(f"--trained {run}: weights do not fit --model {args.model} "
                               f"({str(exc).splitlines()[0]})") from None
        clf.model.eval()
    return clf


def _training_info(args: argparse.Namespace) -> dict | None:
    if not args.trained:
        from .. import zoo

        rec = zoo.training_record(args.model) if args.model in zoo.list_models() else None
        nesy = (rec or {}).get("nesy") or {}
        if nesy.get("theta") is not None:  # a sparsity-trained zoo model: its training θ and layer
            return {"binarization": "sigmoid", "theta": nesy["theta"], "layer": nesy["layer"]}
        return None
    path = Path(args.trained) / "training.json"
    if not path.is_file():
        raise CnnlensError(f"--trained {args.trained}: no training.json")
    return json.loads(path.read_text(encoding="utf-8"))


def _load_data(args: argparse.Namespace, clf, need_labels: bool = True):
    if bool(args.dataset) == bool(args.images):
        raise CnnlensError("give exactly one of --dataset NAME or --images DIR")
    data = load_image_source(args, clf, files=False)
    if need_labels:
        if (data.labels < 0).any():
            raise CnnlensError("the images are unlabelled; use a labelled dataset or DIR/<class>/<image> folders")
        n_cls = int(torch.unique(data.labels).numel())
        if n_cls < 2:
            where = f"--images {args.images}" if args.images else f"--dataset {args.dataset}"
            raise CnnlensError(f"{where} has images of a single class; NeSy rules need at least two classes")
    return data


def _metrics_line(m: dict) -> str:
    return (f"NeSy accuracy {m['accuracy']:.4f}, fidelity {m['fidelity']:.4f}, CNN accuracy "
            f"{m['cnn_accuracy']:.4f}, size {m['size']}, rules {m['n_rules']}, filters "
            f"{m['n_filters']}, no rule fired on {m['no_fire']}/{m['n']}")


def _nesy(args: argparse.Namespace, clf):
    from ..nesy.model import NeSyModel

    path = Path(args.rules)
    if not path.is_file():
        raise CnnlensError(f"--rules {path}: file not found")
    return NeSyModel.load(path, clf, batch_size=args.batch_size)


# ------------------------------------------------------------------ commands
def _rank_device(args: argparse.Namespace) -> None:
    """Under torchrun, ``--device cuda`` means this rank's GPU ``cuda:LOCAL_RANK``."""
    from ..nesy.distributed import launched

    if launched() and args.device is not None and args.device.strip() == "cuda":
        args.device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"


def cmd_train(args: argparse.Namespace) -> int:
    from ..nesy.train import train

    _rank_device(args)
    torch.manual_seed(args.seed)
    clf = _classifier(args)
    data = _load_data(args, clf)
    n = len(data)
    n_val = int(round(n * args.val_fraction))
    if not 0 <= n_val < n:
        raise CnnlensError(f"--val-fraction {args.val_fraction} leaves no training images")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(args.seed))
    tr, va = data.subset(perm[n_val:]), (data.subset(perm[:n_val]) if n_val else None)
    out = Path(args.out)
    res = train(clf, tr, va, strategy=args.strategy, epochs=args.epochs, checkpoint_dir=out / "checkpoints",
                resume=args.resume, seed=args.seed, lr=args.lr, weight_decay=args.weight_decay,
                batch_size=args.train_batch_size, alpha=args.alpha, beta=args.beta, k=args.k,
                layer=args.layer, eval_batch_size=args.batch_size, progress=not args.quiet)
    if res.rank != 0:  # torchrun: every rank has the same result, rank 0 writes it
        return 0
    import io

    buf = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in clf.model.state_dict().items()}, buf)
    atomic_write_bytes(out / "model.pt", buf.getvalue())
    info = {"strategy": res.strategy, "layer": res.layer, "k": res.k, "binarization": res.binarization,
            "theta": res.theta.tolist() if res.theta is not None else None,
            "P": res.P.tolist() if res.P is not None else None, "history": res.history,
            "n_train": len(tr), "n_val": n_val, "seed": args.seed, "world_size": res.world_size}
    atomic_write_text(out / "training.json", json.dumps(info, indent=1, default=float))
    last = res.history[-1]
    procs = f" in {res.world_size} processes" if res.world_size > 1 else ""
    print(f"trained {res.strategy} for {len(res.history)} epochs{procs}: train loss {last['train_loss']:.4f}, "
          f"val loss {last['val_loss']:.4f}, val accuracy {last['val_accuracy']:.4f}")
    print(f"wrote {out / 'model.pt'} and {out / 'training.json'}")
    return 0


def cmd_extract(args: argparse.Namespace) -> int:
    from ..nesy.model import NeSyModel

    clf = _classifier(args)
    info = _training_info(args)
    data = _load_data(args, clf)
    binar, theta, layer = args.binarization, None, args.layer
    if binar == "auto":
        binar = info["binarization"] if info else "threshold"
    if binar == "sigmoid" and info and info.get("theta") is not None:
        theta = torch.tensor(info["theta"])
    if layer is None and info:
        layer = info["layer"]
    nesy = NeSyModel.fit(clf, data.images, data.labels, binarization=binar, theta=theta, ratio=args.ratio,
                         tail=args.tail, layer=layer, batch_size=args.batch_size)
    print(nesy.rules.to_asp(), end="")
    print(f"% {binar} binarization of layer {nesy.layer} ({nesy.n_filters} filters)")
    print("% on the training images: " + _metrics_line(nesy.evaluate(data.images, data.labels)))
    nesy.save(args.out)
    print(f"wrote {args.out}")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    clf = _classifier(args)
    nesy = _nesy(args, clf)
    data = _load_data(args, clf, need_labels=False)
    pred = nesy.predict(data.images).tolist()
    lines = ["image,nesy_prediction,class"]
    for name, p in zip(data.names, pred):
        lines.append(f"{name},{p},{clf.class_name(p) if p >= 0 else 'no rule fired'}")
    if args.out:
        atomic_write_text(args.out, "\n".join(lines) + "\n")
        print(f"wrote {args.out}")
    else:
        print("\n".join(lines))
    if bool((data.labels >= 0).all()):
        print(_metrics_line(nesy.evaluate(data.images, data.labels)))
    return 0


def cmd_justify(args: argparse.Namespace) -> int:
    from .. import zoo

    clf = _classifier(args)
    nesy = _nesy(args, clf)
    if bool(args.image) == bool(args.dataset):
        raise CnnlensError("give exactly one of --image FILE or --dataset NAME --index I")
    if args.image:
        image = prepare_images(clf, files=[args.image]).images[:1]
    else:
        data = zoo.load_dataset(args.dataset, **({"split": args.split} if args.split else {}))
        if not 0 <= args.index < len(data):
            raise CnnlensError(f"--index {args.index} out of range for {len(data)} images")
        image = data.images[args.index:args.index + 1]
    j = nesy.justify(image)
    cls = j.prediction
    text = j.to_json(indent=1) if args.json else j.text + (
        f"\nprediction: {clf.class_name(int(cls))}" if cls is not None else "\nno rule fired (no prediction)")
    if args.out:
        atomic_write_text(args.out, text + "\n")
        print(f"wrote {args.out}")
    else:
        print(text)
    return 0


def _folder_masks(root: Path, names: list[str]) -> tuple[torch.Tensor, list[str]]:
    from PIL import Image

    cfile = root / "concepts.json"
    if not cfile.is_file():
        raise CnnlensError(f"{root}: no concepts.json (the concept names, one per mask index)")
    obj = json.loads(cfile.read_text(encoding="utf-8"))
    concepts = obj["concepts"] if isinstance(obj, dict) else obj
    masks = []
    for name in names:
        path = root / "masks" / Path(name).with_suffix(".png")
        if not path.is_file():
            raise CnnlensError(f"no concept mask {path} for image {name}")
        with Image.open(path) as im:
            masks.append(torch.from_numpy(np.asarray(im.convert("L") if im.mode not in ("L", "P", "I") else im).astype(np.int64)))
    shapes = {tuple(m.shape) for m in masks}
    if len(shapes) > 1:
        raise CnnlensError(f"concept masks under {root / 'masks'} have different sizes: {sorted(shapes)[:3]}")
    return torch.stack(masks), list(concepts)


def cmd_label(args: argparse.Namespace) -> int:
    clf = _classifier(args)
    nesy = _nesy(args, clf)
    data = _load_data(args, clf, need_labels=False)
    if args.images:
        masks, concepts = _folder_masks(Path(args.images), data.names)
    else:
        masks, concepts = getattr(data, "masks", None), getattr(data, "concept_names", None)
        if masks is None:
            raise CnnlensError(f"--dataset {args.dataset} has no concept masks; use texture_scenes or --images DIR with masks/")
    labelled = nesy.label(data.images, masks, concepts, m=args.m, margin=args.margin)
    print(labelled.to_asp(), end="")
    for d in nesy.label_details:
        print(f"% f{d['filter']} -> {d['label']} ({', '.join(f'{c} {s:.2f}' for c, s in zip(d['concepts'], d['scores']))})")
    nesy.save(args.out)
    print(f"wrote {args.out}")
    return 0


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("nesy", help="neuro-symbolic rules: sparsity training, extraction, labelling (§6)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="nesy_command", metavar="STEP")

    t = sub.add_parser("train", help="fine-tune a CNN with a NeSy training strategy (TS1-TS5, EBP, CE)")
    _common(t)
    _data_args(t)
    t.add_argument("--strategy", default="TS3", choices=("CE", "EBP", "TS1", "TS2", "TS3", "TS4", "TS5"))
    t.add_argument("--epochs", type=int, default=100, help="epochs (paper: 100)")
    t.add_argument("--lr", type=float, default=5e-6, help="Adam learning rate (paper: 5e-6)")
    t.add_argument("--weight-decay", type=float, default=5e-3, help="Adam L2 (paper: 5e-3)")
    t.add_argument("--train-batch-size", type=int, default=32, help="training batch (paper: 32)")
    t.add_argument("--alpha", type=float, default=1.0)
    t.add_argument("--beta", type=float, default=5.0)
    t.add_argument("--k", type=int, default=None, help="filters per class (default 5 for <= 5 classes, else 20)")
    t.add_argument("--val-fraction", type=float, default=0.1, help="share of images held out for validation")
    t.add_argument("--resume", action="store_true", help="continue from OUT/checkpoints/last.pt")
    opt.add_out(t, "output folder", metavar="RUN")
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("extract", help="binarize filters and learn the FOLD-SE-M rule-set")
    _common(e)
    _data_args(e)
    e.add_argument("--binarization", default="auto", choices=("auto", "sigmoid", "threshold"),
                   help="auto: sigmoid with the training θ for TS runs, else threshold")
    e.add_argument("--ratio", type=float, default=0.8)
    e.add_argument("--tail", type=float, default=5e-3)
    opt.add_out(e, "NeSy model JSON to write", metavar="FILE", kind="file")
    e.set_defaults(func=cmd_extract)

    pr = sub.add_parser("predict", help="classify images with the rules (-1: no rule fired)")
    _common(pr, rules=True)
    _data_args(pr)
    opt.add_out(pr, "CSV to write (default: standard output)", required=False, metavar="FILE", kind="file")
    pr.set_defaults(func=cmd_predict)

    j = sub.add_parser("justify", help="why the rules classify one image as they do")
    _common(j, rules=True)
    j.add_argument("--image", help="an image file")
    j.add_argument("--dataset", metavar="NAME", help="a zoo dataset (see `cnnlens datasets`)")
    j.add_argument("--split", help="dataset split (e.g. train/test)")
    j.add_argument("--index", type=int, default=0, help="image index in --dataset")
    j.add_argument("--json", action="store_true", help="print JSON")
    opt.add_out(j, "file to write (default: standard output)", required=False, metavar="FILE", kind="file")
    j.set_defaults(func=cmd_justify)

    lb = sub.add_parser("label", help="label rule predicates with concepts from masks (§6.8)")
    _common(lb, rules=True)
    _data_args(lb)
    lb.add_argument("--m", type=int, default=10, help="top images per filter (default 10)")
    lb.add_argument("--margin", type=float, default=0.05, help="keep concepts within this of the best")
    opt.add_out(lb, "NeSy model JSON to write (with labels)", metavar="FILE", kind="file")
    lb.set_defaults(func=cmd_label)

    p.set_defaults(func=lambda a: (p.print_help(), 2)[1])
