"""Shard units, their files and the in-process engine (docs/algorithms.md §11).

A shard is one unit of work: a task (``explain``, ``evaluate``, ``ablate``), a label (the method,
the evaluate row, ``da_pos``/``da_neg``) and a contiguous image range ``[start, stop)``. Its file
``OUT/shards/<label>/<first>-<last>.npz`` (``last`` inclusive, six digits at least) holds the
result arrays and one JSON ``meta`` entry with the shard's ``config`` and its ``digest`` (SHA-256
of the canonical JSON of task, label, range and config). A file is *done* when it loads and its
digest is the one planned; a damaged file is recomputed with a warning, a file of other
settings is recomputed silently (overwritten).
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import warnings
import zipfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import validation
from .._imaging import method_slug
from .._io import atomic_write_bytes, default_file_mode
from ..errors import CnnlensError, one_line

__all__ = ["ShardSpec", "Context", "plan", "pending", "config_digest", "names_digest", "read_shard",
           "write_shard", "run_shard", "run", "TASKS", "write_npz_stream"]

#: task name → compute function ``fn(spec, ctx) -> (arrays, meta)``; filled by the task modules
TASKS: dict[str, Callable[[ShardSpec, Context], tuple[dict[str, np.ndarray], dict[str, Any]]]] = {}


@dataclass(frozen=True)
class ShardSpec:
    """One unit of work (pure data: picklable, JSON-able ``config``): see the module docstring."""

    task: str
    label: str
    start: int
    stop: int
    path: str
    config: Mapping[str, Any] = field(hash=False)
    digest: str = ""

    @property
    def n(self) -> int:
        return self.stop - self.start

    def __str__(self) -> str:
        return f"{self.task} {self.label} images {self.start}-{self.stop - 1}"


@dataclass
class Context:
    """What a worker holds besides the specs: the loaded model and the image source (a tensor,
    an :class:`~cnnlens.data.ImageDataset` or a lazy :class:`~cnnlens.data.ImageStream`), the
    image names and labels, the output folder, and task options that are objects rather than data
    (``extra``). A Ray actor builds one per worker and then runs :func:`run_shard` on specs."""

    clf: Any
    images: Any
    names: Sequence[str]
    out: Path
    labels: Any = None
    extra: dict[str, Any] = field(default_factory=dict)


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def config_digest(task: str, label: str, start: int, stop: int, config: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the canonical JSON of a shard's identity and settings."""
    blob = _canonical({"task": task, "label": label, "start": start, "stop": stop, "config": config})
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def names_digest(names: Sequence[str]) -> str:
    """A short digest of image names: a shard's config holds it, so other images give another shard."""
    return hashlib.sha256("\n".join(map(str, names)).encode("utf-8")).hexdigest()[:16]


def shard_file(out: Path, label: str, start: int, stop: int) -> Path:
    return Path(out) / "shards" / method_slug(label) / f"{start:06d}-{stop - 1:06d}.npz"


def plan(task: str, out: str | os.PathLike[str], labels: Sequence[str], n: int, shard_size: int | None,
         config: Callable[[str], Mapping[str, Any]], names: Sequence[str] | None = None) -> list[ShardSpec]:
    """Every shard of a run: each label × consecutive ranges of ``shard_size`` images (``None``: one
    range of all ``n``). ``config(label)`` gives the settings that determine a label's results;
    with ``names`` each shard's config also holds a digest of its images' names."""
    if task not in TASKS:
        raise CnnlensError(f"unknown shard task {task!r}; known: {', '.join(TASKS)}")
    n = validation.integer("n", n, minimum=1)
    size = n if shard_size is None else validation.integer("shard_size", shard_size, minimum=1)
    specs = []
    for label in labels:
        base = dict(config(label))
        for start in range(0, n, size):
            stop = min(start + size, n)
            cfg = {**base, "images": names_digest(names[start:stop])} if names is not None else base
            cfg = json.loads(_canonical(cfg))  # the JSON form: what a stored file holds
            specs.append(ShardSpec(task, label, start, stop, str(shard_file(Path(out), label, start, stop)), cfg,
                                   config_digest(task, label, start, stop, cfg)))
    return specs


def read_shard(spec: ShardSpec, *, warn: bool = True) -> dict[str, Any] | None:
    """The stored result of ``spec`` (``{"meta": …, name: array …}``), or ``None`` when its file is
    missing, holds other settings, or is damaged (then with a warning naming the file)."""
    path = Path(spec.path)
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
        meta = json.loads(str(data.pop("meta")))
        if not isinstance(meta, dict) or "digest" not in meta:
            raise ValueError("no meta entry")
    except Exception as exc:  # zip/npz/JSON errors of a truncated or overwritten file
        if warn:
            warnings.warn(f"shard file {path} is damaged ({one_line(exc)}); recomputing {spec}", RuntimeWarning,
                          stacklevel=2)
        return None
    if meta["digest"] != spec.digest:
        return None
    data["meta"] = meta
    return data


def pending(specs: Iterable[ShardSpec]) -> tuple[list[ShardSpec], list[ShardSpec]]:
    """``(done, todo)``: shards whose file holds this config, and the others."""
    done: list[ShardSpec] = []
    todo: list[ShardSpec] = []
    for s in specs:
        (done if read_shard(s) is not None else todo).append(s)
    return done, todo


def write_shard(spec: ShardSpec, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> Path:
    """Write a shard's file atomically (``meta`` gains ``config``, ``digest``, ``task``, ``label``, range)."""
    full = {**meta, "task": spec.task, "label": spec.label, "start": spec.start, "stop": spec.stop,
            "config": spec.config, "digest": spec.digest}
    bio = io.BytesIO()
    np.savez_compressed(bio, meta=np.array(json.dumps(full, default=str)), **arrays)
    atomic_write_bytes(spec.path, bio.getvalue())
    return Path(spec.path)


def run_shard(spec: ShardSpec, ctx: Context) -> Path:
    """Compute one shard and write its file; a pure function of ``spec`` and the worker's
    ``ctx`` (model and images), safe to run in any process and to repeat."""
    arrays, meta = TASKS[spec.task](spec, ctx)
    return write_shard(spec, arrays, meta)


def run(specs: Sequence[ShardSpec], ctx: Context, *, progress: bool = True) -> tuple[int, int]:
    """The in-process engine: run every shard of ``specs`` that is not done yet, one after the
    other, with a progress bar over the shards. Returns ``(computed, reused)``."""
    from .._progress import bar

    done, todo = pending(specs)
    if done:
        print(f"reusing {len(done)} finished shard(s) of {len(specs)} under {Path(ctx.out) / 'shards'}")
    pbar = bar(todo, desc="shards", unit="shard", progress=progress, leave=True, min_total=1)
    for spec in pbar:
        pbar.set_postfix_str(f"{spec.label} {spec.start}-{spec.stop - 1}")
        run_shard(spec, ctx)
    return len(todo), len(done)


def load_all(specs: Sequence[ShardSpec]) -> Iterable[tuple[ShardSpec, dict[str, Any]]]:
    """Each shard's stored result, in ``specs`` order; a missing one is an error (run them first)."""
    for spec in specs:
        data = read_shard(spec)
        if data is None:
            raise CnnlensError(f"shard {spec} is not done ({spec.path}); run the shards before merging")
        yield spec, data


def write_npz_stream(path: Path, entries: Sequence[tuple[str, tuple[int, ...], Any, Callable[[], Iterable[np.ndarray]]]]) -> None:
    """Write an ``.npz`` (deflated) whose arrays arrive in parts, so no array is held whole:
    ``entries`` are ``(name, shape, dtype, parts)`` with ``parts()`` yielding consecutive blocks
    along the first axis. Written to a temporary file, then renamed (atomic)."""
    import tempfile

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as zf:
            for name, shape, dtype, parts in entries:
                dtype = np.dtype(dtype)
                with zf.open(f"{name}.npy", "w", force_zip64=True) as fh:
                    np.lib.format.write_array_header_1_0(fh, {"descr": np.lib.format.dtype_to_descr(dtype),
                                                               "fortran_order": False, "shape": tuple(shape)})
                    rows = 0
                    for block in parts():
                        block = np.ascontiguousarray(block, dtype=dtype)
                        fh.write(block.tobytes())
                        rows += block.shape[0]
                    if rows != shape[0]:
                        raise CnnlensError(f"{path}: array {name!r} got {rows} rows, expected {shape[0]}")
        os.chmod(tmp, default_file_mode())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _target_list(target: Any) -> Any:
    """``target`` as JSON data: ``None``, an int, or a list with one class per image of the run."""
    if target is None or isinstance(target, int):
        return target
    if hasattr(target, "tolist"):
        target = target.tolist()
    return [int(t) for t in target] if isinstance(target, (list, tuple)) else target


def shard_target(target: Any, spec: ShardSpec) -> Any:
    """A shard's part of the run's ``target``: a per-image list is sliced to the shard's range."""
    return target[spec.start:spec.stop] if isinstance(target, list) else target


def merge_info(parts: Sequence[Any], sizes: Sequence[int]) -> Any:
    """Merge per-shard ``info``/``params`` records: lists with one entry per image are
    concatenated, dicts merged key by key, values equal in every shard kept, anything else kept
    as the list of per-shard values."""
    first = parts[0]
    if all(isinstance(p, dict) for p in parts):
        keys = list(dict.fromkeys(k for p in parts for k in p))
        return {k: merge_info([p.get(k) for p in parts], sizes) for k in keys}
    if all(isinstance(p, list) and len(p) == s for p, s in zip(parts, sizes)):
        return [v for p in parts for v in p]
    if all(_canonical(p) == _canonical(first) for p in parts):
        return first
    return {"per_shard": list(parts)}
