"""LRP and DeepLIFT wall time against zennit and captum, side by side in one process (issue 9).

Same model, same batch, same targets; each timing is the median of ``--runs`` runs after one
warm-up. LRP: cnnlens ``lrp`` (ε-α2β1-Flat) vs zennit 0.5.1 ``EpsilonAlpha2Beta1Flat`` with its
torchvision canonizers. DeepLIFT: cnnlens ``deeplift`` vs captum ``DeepLift`` where captum runs
(it refuses or is incomplete on max-pool after ReLU; see tests/attribution/test_propagation.py).
Results also report the largest relative difference of the attributions.

    python benchmarks/bench_propagation.py --runs 5 --size 112 --batch 4
"""
from __future__ import annotations

import argparse
import platform
import statistics
import time
import warnings

import torch
from torch import nn


def _median_time(fn, runs: int) -> float:
    fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--size", type=int, default=112)
    ap.add_argument("--batch", type=int, default=4)
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    import torchvision
    from captum.attr import DeepLift
    from zennit.attribution import Gradient
    from zennit.composites import EpsilonAlpha2Beta1Flat
    from zennit.torchvision import ResNetCanonizer, VGGCanonizer

    from cnnlens import Classifier, explain, zoo

    torch.manual_seed(0)
    print(f"# torch {torch.__version__}, {platform.machine()}, threads {torch.get_num_threads()}, "
          f"runs {args.runs}, input {args.size}², batch {args.batch}")
    print("| method | model | cnnlens s | peer | peer s | ratio (ours/peer) | max rel. diff |")
    print("|---|---|---|---|---|---|---|")
    x = torch.rand(args.batch, 3, args.size, args.size)
    targets = list(range(args.batch))
    for arch, canon in (("vgg11", VGGCanonizer), ("resnet18", ResNetCanonizer)):
        model = getattr(torchvision.models, arch)().eval()
        clf = Classifier(model)
        ours = explain(clf, x, "lrp", target=targets).attributions

        def run_ours() -> None:
            explain(clf, x, "lrp", target=targets, batch_size=args.batch)

        def run_zennit() -> torch.Tensor:
            with Gradient(model=model, composite=EpsilonAlpha2Beta1Flat(canonizers=[canon()])) as attr:
                return attr(x.clone().requires_grad_(), lambda out: torch.eye(1000)[targets] * out)[1]

        diff = float((ours - run_zennit()).abs().max() / run_zennit().abs().max())
        t_ours, t_peer = _median_time(run_ours, args.runs), _median_time(run_zennit, args.runs)
        print(f"| lrp ε-α2β1-Flat | {arch} | {t_ours:.3f} | zennit 0.5.1 | {t_peer:.3f} | "
              f"{t_ours / t_peer:.2f} | {diff:.1e} |")

    plain = nn.Sequential(nn.Conv2d(3, 16, 3), nn.ReLU(), nn.Conv2d(16, 32, 3, stride=2), nn.ReLU(),
                          nn.Conv2d(32, 64, 3, stride=2), nn.ReLU(), nn.AdaptiveAvgPool2d(4),
                          nn.Flatten(), nn.Linear(1024, 10)).eval()
    mnist = zoo.load_classifier("mnist_cnn")
    digits = zoo.load_dataset("mnist").images[: args.batch * 4]
    cases = (("plain CNN (conv/ReLU/avg-pool)", Classifier(plain), plain, x, "max-pool free"),
             ("mnist_cnn (max-pool after ReLU)", mnist, mnist.model, digits, "captum incomplete"))
    for name, clf, model, xs, note in cases:
        t = clf.predict(xs)
        ours = explain(clf, xs, "deeplift", target=t).attributions
        norm = nn.Identity()
        if clf.mean is not None:
            mean, std = clf.mean, clf.std

            class _Norm(nn.Module):
                def forward(self, z: torch.Tensor) -> torch.Tensor:
                    return (z - mean) / std

            norm = _Norm()
        wrapped = nn.Sequential(norm, model).eval()

        def run_captum() -> torch.Tensor:
            return DeepLift(wrapped).attribute(xs.clone(), baselines=torch.zeros_like(xs), target=t)

        def run_ours_dl() -> None:
            explain(clf, xs, "deeplift", target=t, batch_size=2 * len(xs))

        diff = float((ours - run_captum()).abs().max() / run_captum().abs().max())
        t_ours, t_peer = _median_time(run_ours_dl, args.runs), _median_time(run_captum, args.runs)
        print(f"| deeplift | {name} | {t_ours:.3f} | captum 0.9 | {t_peer:.3f} | "
              f"{t_ours / t_peer:.2f} | {diff:.1e} ({note}) |")


if __name__ == "__main__":
    main()
