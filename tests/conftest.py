
import pytest
import torch

import cnnlens

torch.set_num_threads(2)
cnnlens.tune_cpu_malloc()  # as the `cnnlens` command does: no page fault per large activation (BENCHMARKS.md)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def no_hooks_left(model: torch.nn.Module) -> bool:
    """True when no forward/backward hook is registered on any module of ``model``."""
    return all(
        not m._forward_hooks and not m._forward_pre_hooks and not m._backward_hooks
        and not getattr(m, "_backward_pre_hooks", {})
        for m in model.modules()
    )


cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def load_script(folder: str, name: str):
    """The script ``<folder>/<name>.py`` of the repository (``benchmarks``, ``experiments``: scripts,
    not packages) as a module."""
    import importlib.util
    import sys
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / folder / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"cnnlens_{folder}_{name}", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses and pickling look the module up
    spec.loader.exec_module(mod)
    return mod


def load_benchmark(name: str):
    """The script ``benchmarks/<name>.py`` as a module."""
    return load_script("benchmarks", name)
