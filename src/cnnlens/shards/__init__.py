"""Sharded, resumable runs over data sets (docs/algorithms.md §11).

A run is planned as shards — a task's label (method, evaluate row, DA rule) × a contiguous image
range of ``shard_size`` images — each computed by the pure function :func:`run_shard` with
``first_index`` = the range's start, and written atomically to
``OUT/shards/<label>/<first>-<last>.npz`` with its config digest. A re-run skips the shards
whose file holds the same config (a damaged one is recomputed with a warning); the merge alone
writes the final outputs, which are those of the unsharded run. Per-image seed streams make the
results independent of the layout.

- :func:`explain_sharded` → ``maps.npz``, overlays, ``grid.png``, ``params.json``;
- :func:`evaluate_sharded` → ``results/<row>.json``, ``table.md/csv/json``, ``per_image.csv``, ``curves.png``;
- :func:`ablate_sharded` → per-image PNGs and rules, ``summary.json``, ``mar.csv``, ``ablation.npz``.

Engines (``engine=`` of the wrappers, :func:`execute`): ``local`` (:func:`run`, in process) and
``ray`` (:mod:`cnnlens.shards.ray_engine`: one Ray actor per worker holds its own :class:`Context`
and runs :func:`run_shard` on specs; an optional extra, ``pip install cnnlens[ray]``). Building
blocks: :func:`plan` (via ``plan_explain`` / ``plan_evaluate`` / ``plan_ablate``), :func:`pending`,
:func:`run_shard`, :func:`run` and the ``merge_*`` functions.
"""
from __future__ import annotations

from ._core import Context, ShardSpec, config_digest, pending, plan, read_shard, run, run_shard, write_shard
from .ablate import ablate_sharded, merge_ablate, plan_ablate
from .engines import ENGINES, execute
from .evaluate import evaluate_sharded, merge_evaluate, plan_evaluate
from .explain import GRID_ROWS, explain_sharded, merge_explain, plan_explain

__all__ = [
    "ENGINES", "execute", "Context", "ShardSpec", "config_digest", "pending", "plan", "read_shard", "run", "run_shard", "write_shard",
    "ablate_sharded", "plan_ablate", "merge_ablate", "evaluate_sharded", "plan_evaluate", "merge_evaluate",
    "explain_sharded", "plan_explain", "merge_explain", "GRID_ROWS",
]
