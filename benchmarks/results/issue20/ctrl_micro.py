# MobileNetV2 forward-loop control of bench_attribution, 1000 passes at batch 64, CPU time, best of 2
import sys, time, torch, cnnlens
from cnnlens import zoo
torch.set_num_threads(1); cnnlens.tune_cpu_malloc()
clf = zoo.load_classifier("mobilenet_v2_imagenet")
x = zoo.load_dataset("photos").images[:1]
gen = torch.Generator().manual_seed(0)
def loop(passes=640, bs=64):
    with torch.no_grad():
        for a in range(0, passes, bs):
            xb = x[torch.arange(a, a + bs) % 1] * (torch.rand(bs, 1, *x.shape[-2:], generator=gen) > 0.5).float()
            clf.logits(xb, batch_size=bs)
loop(128)
ts = []
for r in range(2):
    c0 = time.process_time(); loop(); ts.append(time.process_time() - c0)
print(sys.argv[1], "control loop ms/pass (CPU):", ", ".join(f"{t/640*1e3:.2f}" for t in ts))
