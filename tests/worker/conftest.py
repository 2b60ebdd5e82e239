"""Worker tests share two CPU cores with everything else: one intra-op thread avoids the
oversubscription that makes small kernels crawl on a loaded machine."""

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
