import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    """The metric tests run thousands of tiny forwards (and the reference package loops per
    step); on a shared 2-core machine intra-op threads only add synchronisation cost."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
