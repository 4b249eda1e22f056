"""One-off timing (issue "every model", item 5): forward_unchecked scoring with the plain layout vs
channels-last, per dtype, on the MNIST CNN (CPU). Run: PYTHONPATH=src python <this file>."""
import time

import torch

from cnnlens import zoo
from cnnlens.classifier.forward import channels_last

torch.manual_seed(0)
clf = zoo.load_classifier("mnist_cnn")
base = clf.model
x0 = torch.rand(128, 1, 28, 28)
for dtype in (torch.float32, torch.float64, torch.float16, torch.bfloat16):
    model = base.to(dtype)
    x = clf.normalize(x0.to(dtype))
    res = {}
    for name, prep in (("plain", lambda t: t), ("channels_last", channels_last)):
        with torch.no_grad():
            model(prep(x))
            best = float("inf")
            for _ in range(5):
                t0 = time.perf_counter()
                for _ in range(3):
                    model(prep(x))
                best = min(best, (time.perf_counter() - t0) / 3)
        res[name] = best
    print(f"{str(dtype):16s} plain {res['plain'] * 1e3:7.2f} ms  channels_last {res['channels_last'] * 1e3:7.2f} ms"
          f"  ratio cl/plain {res['channels_last'] / res['plain']:.2f}")
base.float()
