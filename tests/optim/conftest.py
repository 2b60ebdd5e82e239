"""Fixtures the optimizer tests share."""

import pytest
import torch


@pytest.fixture
def float64_default():
    """float64 as torch's default dtype for the test: the scalars torch keeps in the default dtype
    (step counters, NAdam's mu_product, ASGD's eta and mu) are then float64 too."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


@pytest.fixture
def no_device_waits():
    """Steps taken inside ``with no_device_waits():`` raise on any call that waits for the GPU (an
    ``.item()`` of a CUDA tensor, a copy to pageable memory): torch's sync debug mode at "error"."""
    import contextlib

    @contextlib.contextmanager
    def strict():
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("error")
        try:
            yield
        finally:
            torch.cuda.set_sync_debug_mode("default")

    return strict
