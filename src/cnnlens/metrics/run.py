"""Methods × metrics into an output folder: what ``cnnlens evaluate`` and the demo write (docs/algorithms.md §3, §8).

Writes into ``out``: ``results/<method>.json`` as soon as each method is done (every metric's
per-image values, mean, std and parameters), then ``table.md`` (OVERVIEW's layout with ↑/↓),
``table.csv``, ``per_image.csv``, ``table.json`` and ``curves.png`` (mean insertion/deletion
curves). All files are written atomically; a re-run with the same settings skips the methods
whose results are already there, so an interrupted run never loses finished work.
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

from .._imaging import method_slug
from ..errors import one_line

__all__ = ["run_evaluate", "write_tables", "evaluate_config"]


def evaluate_config(source: dict[str, Any], metrics: list[str], protocol: str, seed: int, n_images: int,
                    evaluate_params: dict[str, Any]) -> dict[str, Any]:
    """The settings a ``results/<row>.json`` records (its ``config``, with the row's ``method_params``)."""
    return {"source": source, "metrics": metrics, "protocol": protocol, "seed": seed, "n_images": n_images,
            **{k: v for k, v in evaluate_params.items() if k not in ("labels", "masks")}}


def run_evaluate(clf: Any, images: Any, labels: Any, out: Path, *, methods: list[str], metrics: list[str],
                 protocol: str, seed: int, batch_size: int, method_params: dict[str, dict[str, Any]],
                 evaluate_params: dict[str, Any], source: dict[str, Any], random_baseline: bool = True,
                 progress: bool = True, outputs: list[Path] | None = None) -> Any:
    """Compare ``methods`` on ``images`` and write the outputs described in the module
    docstring into ``out``; rows already in ``out/results`` with the same settings are reused.
    Returns the table; ``outputs``, when given, is extended with the files of this run (those
    written and the reused ``results/`` files), never other files found in ``out``."""
    from .._io import atomic_write_text
    from .compare import RANDOM_LABEL, compare, result_from_dict

    results_dir = out / "results"
    config = evaluate_config(source, metrics, protocol, seed, int(images.shape[0]), evaluate_params)
    done: dict[str, Any] = {}
    for label in [*methods, *([RANDOM_LABEL] if random_baseline else [])]:
        path = results_dir / f"{method_slug(label)}.json"
        if not path.exists():
            continue
        try:
            stored = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            warnings.warn(f"{path} is unreadable; recomputing {label}", RuntimeWarning, stacklevel=2)
            continue
        want = json.loads(json.dumps({**config, "method_params": method_params.get(label, {})}, default=str))
        if not isinstance(stored, dict) or stored.get("config") != want:
            continue  # other settings (or not a results file): recomputed and overwritten
        try:
            done[label] = {m: result_from_dict(r) for m, r in stored["results"].items()}
        except (KeyError, AttributeError, TypeError, ValueError, IndexError, RuntimeError) as exc:
            warnings.warn(f"{path} is damaged ({one_line(exc)}); recomputing {label}", RuntimeWarning, stacklevel=2)
    if done:
        print(f"reusing finished results of {', '.join(done)} from {results_dir}")

    def save(label: str, res: dict[str, Any], seconds: float) -> None:
        payload = {"config": {**config, "method_params": method_params.get(label, {})}, "seconds": seconds,
                   "results": {m: r.to_dict() for m, r in res.items()}}
        atomic_write_text(results_dir / f"{method_slug(label)}.json", json.dumps(payload, indent=1, default=str))

    table = compare(clf, images, methods=methods, metrics=metrics, protocol=protocol, seed=seed,
                    batch_size=batch_size, method_params=method_params, random_baseline=random_baseline,
                    progress=progress, on_result=save, done=done, labels=labels, **evaluate_params)
    table.params["source"] = source
    files = write_tables(table, out, [*methods, *([RANDOM_LABEL] if random_baseline else [])], metrics)
    if outputs is not None:
        outputs.extend(files)
    return table


def write_tables(table: Any, out: Path, rows: list[str], metrics: list[str]) -> list[Path]:
    """Write ``table.md``, ``table.csv``, ``per_image.csv``, ``table.json`` (and ``curves.png`` when a
    game metric was asked) of ``table``; returns those files and the ``results/`` file of each row."""
    from .._io import atomic_write_text

    atomic_write_text(out / "table.md", table.to_markdown())
    table.to_csv(out / "table.csv")
    table.to_csv(out / "per_image.csv", per_image=True)
    table.to_json(out / "table.json")
    files = [out / "results" / f"{method_slug(label)}.json" for label in rows]
    files += [out / "table.md", out / "table.csv", out / "per_image.csv", out / "table.json"]
    if any(m in ("iauc", "dauc", "ic", "dc") for m in metrics):
        table.plot_curves(out / "curves.png")
        files.append(out / "curves.png")
    return files
