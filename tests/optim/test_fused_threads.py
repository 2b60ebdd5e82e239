"""The fused CPU kernels run on torch's intra-op threads (``torch.set_num_threads``), as torch's own
fused kernels do: measured by the CPU time each thread of the process spends in the steps (Linux's
per-thread counters), which does not depend on how loaded the machine is."""

from __future__ import annotations

import os
import sys

import pytest
import torch

from optim import _fused
from optim.adam import Adam

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/task")


def _cpu_seconds_by_thread() -> dict[int, float]:
    ticks = os.sysconf("SC_CLK_TCK")
    out = {}
    for task in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{task}/stat") as file:
                fields = file.read().rsplit(")", 1)[1].split()
        except OSError:  # the thread ended
            continue
        out[int(task)] = (int(fields[11]) + int(fields[12])) / ticks  # utime + stime
    return out


def _spent(step, threads: int) -> tuple[float, float]:
    """(main thread's CPU seconds, the other threads') over 30 calls of ``step``."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        step()  # starts the thread pool
        before = _cpu_seconds_by_thread()
        for _ in range(30):
            step()
        after = _cpu_seconds_by_thread()
    finally:
        torch.set_num_threads(previous)
    main = os.getpid()
    others = sum(after[t] - before.get(t, 0.0) for t in after if t != main)
    return after[main] - before[main], others


def _with_gradients(params):
    copies = [p.detach().clone().requires_grad_(True) for p in params]
    for c, p in zip(copies, params):
        c.grad = p.grad.clone()
    return copies


def test_a_fused_step_shares_its_work_between_two_threads_as_torchs_does():
    assert _fused._build_outcome()[0] is not None, "the kernel did not build"
    params = [torch.randn(1_000_000, requires_grad=True) for _ in range(4)]
    for p in params:
        p.grad = torch.randn_like(p)
    oracle_main, oracle_others = _spent(torch.optim.Adam(_with_gradients(params), lr=1e-3, fused=True).step, 2)
    assert oracle_others > 0.5 * oracle_main  # torch's fused kernel: the other thread takes about half
    main, others = _spent(Adam(_with_gradients(params), lr=1e-3, fused=True).step, 2)
    # ours likewise; on one thread only (the kernel built without OpenMP) the others would take none
    assert others > 0.5 * main, f"main thread {main:.2f} s, the others {others:.2f} s"
