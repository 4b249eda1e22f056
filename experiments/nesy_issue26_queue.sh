#!/bin/bash
# Issue 26 run queue, in priority order. Resumable: re-running it skips finished runs and continues
# an unfinished one from its last per-epoch checkpoint (out/…/ckpt).
#   nohup nice -n 5 bash experiments/nesy_issue26_queue.sh > out/queue.log 2>&1 &
cd "$(dirname "$0")/.."
PY="${PY:-.venv/bin/python}"
export PYTHONPATH="$PWD/src"
CONV="--epochs 60 --ce-epochs 30 --patience 4 --lr-patience 1 --min-delta 1e-3 --lr 3e-4 --rules-every 5 --skip-texture
      --out out/nesy_conv --results experiments/results/nesy_conv/results.json"
FIX5="--epochs 5 --lr 1e-4 --skip-texture --out out/nesy_fixed5 --results experiments/results/nesy/results_fixed_5ep.json"
ALL="CE NE TS1 TS2 TS3 TS4 TS5"
set -e
$PY experiments/nesy_reproduction.py --subsets P2 --strategies $ALL --seeds 0 $CONV             # convergence, P2 seed 0
$PY experiments/nesy_reproduction.py --subsets P2 P3.1 --strategies $ALL --seeds 0 $FIX5      # the fixes, 5 epochs, seed 0
$PY experiments/nesy_reproduction.py --subsets P2 P3.1 --strategies $ALL --seeds 0 $CONV      # convergence, P3.1 seed 0
$PY experiments/nesy_reproduction.py --subsets P2 P3.1 --strategies $ALL --seeds 0 1 $FIX5    # the fixes, seed 1
$PY experiments/nesy_reproduction.py --subsets P2 P3.1 --strategies $ALL --seeds 0 1 $CONV    # convergence, seed 1
$PY experiments/nesy_reproduction.py --subsets P2 P3.1 P5 --strategies CE NE TS1 TS2 TS3 --seeds 0 1 2 $CONV  # the core
$PY experiments/nesy_reproduction.py --subsets P2 P3.1 --strategies $ALL --seeds 0 1 2 3 4 $FIX5  # the fixes, 5 epochs, seeds 2–4
$PY experiments/nesy_reproduction.py --subsets P3.2 P3.3 P10 --strategies CE NE TS1 TS2 TS3 --seeds 0 1 2 $CONV  # beyond the core
