"""``descent bench solvers --device``: the same problem on every device, so a solver's loss after
the timed steps matches the CPU's to float32 rounding (torch's CUDA kernels sum in another order)."""

from __future__ import annotations

import pytest
import torch

from bench.solvers import run_solver_benchmark, table


def _losses(device: str) -> dict[str, float]:
    result = run_solver_benchmark(only=["sgd", "adam", "lbfgs"], hidden=8, batch=64, steps=5, rounds=1,
                                  warmup=1, device=device)
    assert f"device {result.device}," in table(result).head
    return {row.solver: row.final_loss for row in result.rows}


def test_cpu_is_named_in_the_table():
    losses = _losses("cpu")
    assert set(losses) == {"sgd", "adam", "lbfgs"}


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA; run where a GPU is lent")
def test_cuda_ends_where_the_cpu_ends():
    cpu, cuda = _losses("cpu"), _losses("cuda")
    # a solver that reaches zero loss on one device can end a float32 rounding above it on the other
    assert cuda == pytest.approx(cpu, rel=1e-4, abs=1e-6)
