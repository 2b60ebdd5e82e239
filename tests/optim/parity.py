"""Shared harness for optimizer parity tests: a small float64 model, two parameter groups,
and a step where one parameter gets no gradient, run for N steps under two optimizers."""

from __future__ import annotations

import io
import math
from collections.abc import Callable

import torch

SHAPES = [(6, 4), (6,), (3, 6), (3,)]
NO_GRAD_STEP = 7  # at this step the last parameter's grad is None (torch skips such params)


def mlp(params: list[torch.Tensor]) -> torch.nn.Module:
    """The model of ``loss_fn`` as modules (its w1, b1, w2, b2 copied in), for solvers that hook layers."""
    model = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.Tanh(), torch.nn.Linear(6, 3)).double()
    with torch.no_grad():
        for p, v in zip(model.parameters(), params, strict=True):
            p.copy_(v)
    return model


def initial_params(seed: int = 0, dtype=torch.float64) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(s, generator=g, dtype=dtype) * 0.5 for s in SHAPES]


def batch(step: int, dtype=torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1000 + step)
    x = torch.randn(16, 4, generator=g, dtype=dtype)
    y = torch.randn(16, 3, generator=g, dtype=dtype)
    return x, y


def loss_fn(params: list[torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    w1, b1, w2, b2 = params
    h = torch.tanh(x @ w1.T + b1)
    return ((h @ w2.T + b2 - y) ** 2).mean()


def trajectory(
    make_opt: Callable[[list[dict]], torch.optim.Optimizer],
    steps: int = 50,
    group2: dict | None = None,
    seed: int = 0,
    dtype=torch.float64,
    closure: bool = False,
    return_opt: bool = False,
    params: list[torch.Tensor] | None = None,
    start: int = 0,
):
    """Run ``steps`` optimizer steps and return the parameters after each step.

    ``make_opt`` gets the param groups (first: first layer, defaults; second: second layer with
    ``group2``'s overrides).  With ``closure=True`` the optimizer is stepped with a closure."""
    if params is None:
        params = [p.clone().requires_grad_(True) for p in initial_params(seed, dtype)]
    groups = [{"params": params[:2]}, {"params": params[2:], **(group2 or {})}]
    opt = make_opt(groups)
    history = _run(opt, params, steps, closure, dtype, start)
    return (history, opt, params) if return_opt else history


def _run(opt, params, steps, closure, dtype, start=0):
    history = []
    for step in range(start, start + steps):
        x, y = batch(step, dtype)

        def closure_fn(x=x, y=y, step=step):
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(params, x, y)
            loss.backward()
            if step == NO_GRAD_STEP:
                params[-1].grad = None
            return loss

        if closure:
            opt.step(closure_fn)
        else:
            closure_fn()
            opt.step()
        history.append([p.detach().clone() for p in params])
    return history


def continue_run(opt, params, steps, start, closure=False, dtype=torch.float64):
    """Continue an existing optimizer for ``steps`` more steps starting at batch ``start``."""
    return _run(opt, params, steps, closure, dtype, start)


def resume(make_opt, params, state_dict, start: int, steps: int, group2: dict | None = None, *,
           return_opt: bool = False, closure: bool = False, dtype=torch.float64):
    """A fresh optimizer (``make_opt`` over copies of ``params`` in ``trajectory``'s two groups)
    loaded from ``state_dict``, run ``steps`` more steps from batch ``start``: the second half
    of an interrupted run, to compare with the uninterrupted one."""
    fresh = [p.detach().clone().requires_grad_(True) for p in params]
    opt = make_opt([{"params": fresh[:2]}, {"params": fresh[2:], **(group2 or {})}])
    opt.load_state_dict(state_dict)
    history = continue_run(opt, fresh, steps, start, closure, dtype)
    return (history, opt) if return_opt else history


def resume_through_file(make, group2: dict | None = None, first: int = 12, then: int = 18, *,
                        closure: bool = False, make_fresh=None):
    """Run ``first`` steps, pass the state_dict through torch.save / torch.load, load it into a
    fresh optimizer (``make_fresh``, default ``make``) over copies of the parameters and run
    ``then`` more.  Returns (that run, the uninterrupted run of first + then steps, the fresh
    optimizer)."""
    uninterrupted = trajectory(make, first + then, group2=group2, closure=closure)
    head, opt, params = trajectory(make, first, group2=group2, closure=closure, return_opt=True)
    saved = io.BytesIO()
    torch.save(opt.state_dict(), saved)
    saved.seek(0)
    fresh_params = [p.detach().clone().requires_grad_(True) for p in params]
    _, fresh, _ = trajectory(make_fresh or make, 0, group2=group2, params=fresh_params, return_opt=True)
    fresh.load_state_dict(torch.load(saved))
    return head + continue_run(fresh, fresh_params, then, first, closure), uninterrupted, fresh


def lr_scaled_midway(make, first: int = 20, then: int = 40, factor: float = 0.1):
    """Parameters after each step of a run whose groups' lr is multiplied by ``factor`` after
    ``first`` steps (a scheduler's cut), then ``then`` steps more."""
    history, opt, params = trajectory(make, first, return_opt=True)
    for group in opt.param_groups:
        group["lr"] *= factor
    return history + continue_run(opt, params, then, start=first)


def max_rel_diff(a: list[list[torch.Tensor]], b: list[list[torch.Tensor]]) -> float:
    """Largest elementwise |a-b| / max(|b|, 1e-12 scale) over all steps and tensors."""
    assert len(a) == len(b)
    worst = 0.0
    for sa, sb in zip(a, b, strict=True):
        for ta, tb in zip(sa, sb, strict=True):
            if not (torch.isfinite(ta).all() and torch.isfinite(tb).all()):
                return math.inf  # a NaN must never compare as a match
            denom = tb.abs().clamp_min(1e-8)
            worst = max(worst, ((ta - tb).abs() / denom).max().item())
    return worst


def assert_same(a, b, tol: float = 1e-10, what: str = ""):
    d = max_rel_diff(a, b)
    assert d <= tol, f"{what}: max relative difference {d:.3e} > {tol:.0e}"
