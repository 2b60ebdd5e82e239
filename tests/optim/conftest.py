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
