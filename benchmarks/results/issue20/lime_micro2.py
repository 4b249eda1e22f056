import sys, time, torch, cnnlens
from cnnlens import zoo
from cnnlens.attribution.lime import segment
torch.set_num_threads(1)
cnnlens.tune_cpu_malloc()
clf = zoo.load_classifier("mnist_cnn")
ds = zoo.load_dataset("mnist")
x = ds.images[:4]; t = clf.predict(x)
segs = segment(x, "quickshift", seed=0)
kw = {sys.argv[1]: False}
ts = []
for r in range(7):
    c0 = time.process_time()
    e = cnnlens.explain(clf, x, "lime", target=t, segments=segs, num_samples=1000, batch_size=64, **kw)
    ts.append(time.process_time() - c0)
xs = x.repeat(1000, 1, 1, 1); cs = []
for r in range(7):
    c0 = time.process_time()
    for c in xs.split(64): clf.logits(c.clone(), batch_size=64)
    cs.append(time.process_time() - c0)
print(f"{sys.argv[2]} lime best {min(ts)*1e3:.0f} ms median {sorted(ts)[3]*1e3:.0f}; loop best {min(cs)*1e3:.0f} median {sorted(cs)[3]*1e3:.0f}; ratio best {min(ts)/min(cs):.2f}")
if len(sys.argv) > 3:
    import cProfile, pstats
    pr = cProfile.Profile(); pr.enable()
    for r in range(3): cnnlens.explain(clf, x, "lime", target=t, segments=segs, num_samples=1000, batch_size=64, **kw)
    pr.disable(); pstats.Stats(pr).sort_stats("tottime").print_stats(14)
