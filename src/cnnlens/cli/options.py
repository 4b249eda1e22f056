"""The option groups every ``cnnlens`` command shares, spelled and parsed one way (docs/algorithms.md §8).

- image source: image files, ``--images DIR``, ``--dataset NAME`` (``--split``), ``--limit N``,
  ``--skip-bad``;
- model: ``--model``, ``--weights``, ``--model-kwargs``, ``--trust-pickle``, ``--mean``, ``--std``,
  ``--input-shape``, ``--class-names``, ``--feature-layer``;
- run: ``--device``, ``--batch-size``, ``--seed``, ``--quiet`` (no progress bars: the command runs
  inside :func:`cnnlens._progress.quiet_progress`), ``--out``, ``--report``;
- output: ``--out`` is a folder or a file target (``add_out(kind=...)``); :func:`cnnlens.cli.main`
  checks it with :func:`check_out` before the command does any work, and a command records the
  files it wrote with :func:`record_outputs` (its ``--report`` page shows those and nothing else);
- method options: ``--param METHOD.KEY=VALUE`` (repeatable; VALUE is read as JSON — numbers,
  ``true``/``false``, ``null``, lists — else kept as a string).

Old spellings stay as hidden aliases (not in ``--help``; same destination): ``--n`` and
``--n-images`` for ``--limit``, ``--no-progress`` for ``--quiet``, and ``--param KEY=VALUE``
without a method (the option goes to the listed methods that take it; see
:func:`method_params`).
"""
from __future__ import annotations

import argparse
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .. import validation
from ..errors import CnnlensError

__all__ = [
    "add_image_source", "add_model_options", "add_device", "add_batch_size", "add_seed", "add_quiet", "add_shards", "check_shards",
    "add_out", "add_report", "add_param", "alias", "at_least_one", "method_params", "split_list",
    "check_out", "record_outputs", "engine_kw",
    "LIMIT_ALIASES", "QUIET_ALIASES",
]

LIMIT_ALIASES = ("--n", "--n-images")  # old spellings of --limit (evaluate, represent)
QUIET_ALIASES = ("--no-progress",)  # old spelling of --quiet (demo)


def alias(p: argparse.ArgumentParser, *names: str, dest: str, **kwargs: Any) -> None:
    """Old spellings of an option: hidden from ``--help``, writing the same ``dest``; they set
    nothing unless given (the visible option's default stands)."""
    p.add_argument(*names, dest=dest, help=argparse.SUPPRESS, default=argparse.SUPPRESS, **kwargs)


def at_least_one(option: str, value: Any) -> int:
    """``value`` when it is an integer >= 1; else a :class:`CnnlensError` ``OPTION must be >= 1``."""
    try:
        return validation.integer(option, value, minimum=1)  # type: ignore[return-value]
    except CnnlensError:
        raise CnnlensError(f"{option} must be >= 1, got {value}") from None


# ------------------------------------------------------------------ image source
def add_image_source(p: argparse.ArgumentParser, *, files: bool = True, images_paths: bool = False,
                     limit_help: str = "use only the first N images", limit_default: int | None = None,
                     dataset_help: str = "a bundled dataset (see `cnnlens datasets`)",
                     images_help: str = "a folder of images (or root/<class>/<image> layout)",
                     skip_bad: bool = True) -> None:
    """Image files (positional, when ``files``), ``--images`` (one folder; one folder or image
    files when ``images_paths``), ``--dataset``/``--split``, ``--limit`` (aliases ``--n``,
    ``--n-images``) and ``--skip-bad``."""
    if files:
        p.add_argument("files", nargs="*", help="image files")
    if images_paths:
        p.add_argument("--images", nargs="+", metavar="PATH", help="image files, or one folder of images")
    else:
        p.add_argument("--images", metavar="DIR", help=images_help)
    p.add_argument("--dataset", metavar="NAME", help=dataset_help)
    p.add_argument("--split", help="dataset split (e.g. train/test)")
    p.add_argument("--limit", type=int, default=limit_default, metavar="N",
                   help=limit_help + ("" if limit_default is None else f" (default {limit_default})"))
    alias(p, *LIMIT_ALIASES, dest="limit", type=int)
    if skip_bad:
        p.add_argument("--skip-bad", action="store_true", help="skip unreadable image files instead of failing")


# ------------------------------------------------------------------ model
def add_model_options(p: argparse.ArgumentParser) -> None:
    """The options that pick a model: a bundled name, or a user model file (§1)."""
    p.add_argument("--model", default="mobilenet_v2_imagenet",
                   help="bundled model name (`cnnlens models`), a TorchScript file, a pickled model "
                        "(needs --trust-pickle), or package.module:factory with --weights")
    p.add_argument("--weights", help="state-dict file for a package.module:factory model (weights_only loading); "
                                     "'none' uses the factory's own weights (random for torchvision factories)")
    p.add_argument("--model-kwargs", metavar="JSON", help="keyword arguments for a package.module:factory model, "
                                                          "e.g. '{\"num_classes\": 10}' for a fine-tuned head")
    p.add_argument("--trust-pickle", action="store_true", help="allow loading a pickled nn.Module (runs code from the file)")
    p.add_argument("--mean", help="user model: per-channel mean, e.g. 0.485,0.456,0.406 (pixel space)")
    p.add_argument("--std", help="user model: per-channel std, e.g. 0.229,0.224,0.225")
    p.add_argument("--input-shape", help="user model: C,H,W the model takes, e.g. 3,224,224 (image files are fitted to it)")
    p.add_argument("--class-names", metavar="FILE", help="user model: text file with one class name per line")
    p.add_argument("--feature-layer", default="auto", help="feature layer name, or 'auto' (default)")


# ------------------------------------------------------------------ run options
def add_device(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 … (default: cpu)")


def add_batch_size(p: argparse.ArgumentParser, default: int = 64,
                   help: str = "images/perturbations per forward pass") -> None:
    p.add_argument("--batch-size", type=int, default=default, metavar="N", help=f"{help} (default {default})")


def add_seed(p: argparse.ArgumentParser, help: str = "random seed") -> None:
    p.add_argument("--seed", type=int, default=0, help=f"{help} (default 0)")


def add_shards(p: argparse.ArgumentParser) -> None:
    """``--shard-size N`` (a sharded, resumable run: OUT/shards/<method>/<first>-<last>.npz, then
    the merge; image folders and files are then read lazily) and ``--num-workers N`` (decoding
    processes of such a streamed folder)."""
    p.add_argument("--shard-size", type=int, default=None, metavar="N",
                   help="run in shards of N images per method, each written to OUT/shards/ as it finishes; a "
                        "re-run resumes at shard granularity; --images folders are then read lazily (default: one run)")
    p.add_argument("--num-workers", type=int, default=0, metavar="N",
                   help="with --shard-size: processes decoding the images of a folder (default 0: this process)")
    p.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="with --shard-size: who runs the shards: local (this process, default) or ray (one Ray actor "
                        "per worker, retrying a dead worker's shard; pip install cnnlens[ray])")
    p.add_argument("--address", default=None, metavar="ADDR",
                   help="with --engine ray: the Ray cluster (auto, HOST:PORT, ray://…; default: a local Ray on this machine)")
    p.add_argument("--ray-workers", dest="ray_workers", type=int, default=None, metavar="N",
                   help="with --engine ray: actors, one model load each (default: one per CPU, or per GPU)")


def check_shards(args: argparse.Namespace) -> bool:
    """``--shard-size`` >= 1, ``--num-workers`` >= 0, ``--engine ray`` (with Ray installed) and its
    ``--address``/``--ray-workers`` (before the model loads); True for a sharded run."""
    if getattr(args, "num_workers", 0):
        validation.integer("--num-workers", args.num_workers, minimum=0)
        if args.shard_size is None:
            raise CnnlensError("--num-workers decodes a streamed folder: it needs --shard-size")
    engine = getattr(args, "engine", "local")
    if getattr(args, "address", None) is not None and engine != "ray":
        raise CnnlensError("--address names a Ray cluster: it needs --engine ray")
    if getattr(args, "ray_workers", None) is not None:
        if engine != "ray":
            raise CnnlensError("--ray-workers counts Ray actors: it needs --engine ray")
        at_least_one("--ray-workers", args.ray_workers)
    if getattr(args, "shard_size", None) is None:
        if engine == "ray":
            raise CnnlensError("--engine ray runs shards: it needs --shard-size")
        return False
    at_least_one("--shard-size", args.shard_size)
    if engine == "ray":
        from ..shards.ray_engine import require_ray

        require_ray()
    return True


def engine_kw(args: argparse.Namespace) -> dict[str, Any]:
    """The ``engine``/``address``/``workers`` keywords of the ``*_sharded`` functions from the options."""
    return {"engine": getattr(args, "engine", "local"), "address": getattr(args, "address", None),
            "workers": getattr(args, "ray_workers", None)}


def add_quiet(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    alias(p, *QUIET_ALIASES, dest="quiet", action="store_true")


def add_out(p: argparse.ArgumentParser, help: str = "output folder", *, required: bool = True,
            metavar: str = "DIR", default: str | None = None, kind: str = "folder") -> None:
    """``--out``: a ``kind="folder"`` the command writes into, or a ``kind="file"`` it writes.
    :func:`cnnlens.cli.main` runs :func:`check_out` on it before the command starts."""
    if kind not in ("folder", "file"):
        raise ValueError(f"kind must be 'folder' or 'file', got {kind!r}")
    p.add_argument("--out", required=required, metavar=metavar, default=default, help=help)
    p.set_defaults(out_kind=kind)


def check_out(path: str | os.PathLike[str], kind: str, option: str = "--out") -> Path:
    """Check an output target before any work: ``kind="folder"`` — not an existing file, a
    writable folder or one that can be made; ``kind="file"`` — not an existing folder (nor a path
    ending in ``/``), in a writable folder or one that can be made. Creates nothing; returns the
    path; a :class:`CnnlensError` naming ``option`` otherwise (a file in the parent path, no
    write permission, an empty path)."""
    text = os.fspath(path)
    if not str(text).strip():
        raise CnnlensError(f"{option} is empty; give a {kind} path")
    if "\x00" in str(text):
        raise CnnlensError(f"{option} {text!r} holds a NUL character")
    target = Path(text)
    try:
        if kind == "file":
            if str(text).endswith(("/", os.sep)) or target.is_dir():
                what = "is a folder" if target.is_dir() else "names a folder (it ends in '/')"
                raise CnnlensError(f"{option} {text} {what}; give a file path such as {target / 'name'}")
            folder = target.parent
        else:
            if target.exists() and not target.is_dir():
                raise CnnlensError(f"{option} {text} exists and is not a folder")
            folder = target
        existing = folder
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        if existing.exists() and not existing.is_dir():
            raise CnnlensError(f"{option} {text}: {existing} is a file, not a folder")
        if existing.exists() and not os.access(existing, os.W_OK | os.X_OK):
            raise CnnlensError(f"{option} {text}: no permission to write in {existing}")
    except OSError as exc:
        raise CnnlensError(f"{option} {text}: cannot check it ({exc.strerror or exc})") from None
    return target


def record_outputs(args: argparse.Namespace, paths: Iterable[str | os.PathLike[str]]) -> None:
    """Record the files this run wrote (or reused) under ``--out``: the ``--report`` page shows
    those and nothing else in the folder."""
    args.outputs = [*getattr(args, "outputs", []), *(Path(p) for p in paths)]


def add_report(p: argparse.ArgumentParser) -> None:
    p.add_argument("--report", action="store_true",
                   help="also write OUT/report.html, a self-contained page of the results")


# ------------------------------------------------------------------ method options
def add_param(p: argparse.ArgumentParser) -> None:
    p.add_argument("--param", action="append", metavar="METHOD.KEY=VALUE",
                   help="a method option (JSON value), e.g. gradcam.layer=model.20, lime.num_samples=500 "
                        "or da_pos.iterations=50; repeatable")


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        return text  # a bare string such as slic


def _takes(method: str, key: str) -> bool | None:
    """True when ``method``'s function names ``key``; None when it only takes ``**params``."""
    from ..attribution import method_info

    names, var_kw = validation.accepted_params(method_info(method).fn, skip=("seed", "batch_size", "layer"))
    return True if key in names else (None if var_kw else False)


def method_params(items: list[str] | None, methods: list[str], shared: dict[str, Any] | None = None,
                  option: str = "--methods") -> dict[str, dict[str, Any]]:
    """``--param METHOD.KEY=VALUE`` items → ``{method: {key: value}}``.

    A METHOD not in ``methods`` is an error. Options without a method (``--param KEY=VALUE``,
    the old ``explain`` spelling, and ``shared`` ones such as ``explain --num-samples``) go to the
    listed methods whose function names the option; when none does, to those that take any
    ``**params``; when none does either, to every listed method. The values are never checked
    here: :func:`cnnlens.explain` checks them against each method.
    """
    out: dict[str, dict[str, Any]] = {}
    loose: dict[str, Any] = {}
    for item in items or []:
        if "=" not in item:
            raise CnnlensError(f"--param expects METHOD.KEY=VALUE (e.g. gradcam.layer=model.20), got {item!r}")
        key, value = item.split("=", 1)
        method, _, name = key.rpartition(".")
        method, name = method.strip(), name.strip().replace("-", "_")
        if not name.isidentifier():
            raise CnnlensError(f"--param {item!r}: {name!r} is not a parameter name")
        if not method:
            loose[name] = _value(value)
            continue
        if method not in methods:
            raise CnnlensError(f"--param {item!r}: method {method!r} is not in {option} ({', '.join(methods)})")
        out.setdefault(method, {})[name] = _value(value)
    loose.update({k: v for k, v in (shared or {}).items() if v is not None})
    for name, value in loose.items():
        takes = {m: _takes(m, name) for m in methods}
        to = [m for m, t in takes.items() if t] or [m for m, t in takes.items() if t is None] or list(methods)
        for m in to:
            out.setdefault(m, {}).setdefault(name, value)  # METHOD.KEY wins over KEY
    return out


def metric_params(items: list[str] | None, metrics: list[str]) -> dict[str, dict[str, Any]]:
    """``--metric-param METRIC.KEY=VALUE`` items → ``{metric: {key: value}}`` (METRIC by any of its
    names; it must be among ``metrics``). The options are checked by the metric itself."""
    from ..metrics.registry import canonical_metric

    asked = {canonical_metric(m) for m in metrics}
    out: dict[str, dict[str, Any]] = {}
    for item in items or []:
        key, eq, value = item.partition("=")
        metric, _, name = key.rpartition(".")
        name = name.strip().replace("-", "_")
        if not eq or not metric.strip() or not name.isidentifier():
            raise CnnlensError(f"--metric-param expects METRIC.KEY=VALUE (e.g. max_sensitivity.radius=0.05), got {item!r}")
        canon = canonical_metric(metric.strip().replace("-", "_"))
        if canon not in asked:
            raise CnnlensError(f"--metric-param {item!r}: metric {metric.strip()!r} is not in --metrics ({', '.join(metrics)})")
        out.setdefault(canon, {})[name] = _value(value)
    return out


def split_list(text: str | None) -> list[str] | None:
    """``a,b , c`` → ``["a", "b", "c"]``; ``None`` stays ``None``; an empty list is an error."""
    if text is None:
        return None
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise CnnlensError(f"expected a comma-separated list, got {text!r}")
    return items
