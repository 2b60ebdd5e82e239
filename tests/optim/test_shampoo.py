"""Shampoo: without preconditioning it is its graft bit for bit; with it, one step is the paper's
L^{-1/4} G R^{-1/4} (scipy's fractional matrix power as oracle), and it beats Adagrad on an
ill-conditioned matrix quadratic."""

import numpy as np
import pytest
import scipy.linalg
import torch

from optim import Shampoo
from tests.optim import parity

GRAFT_CASES = {
    "adagrad": (dict(graft="adagrad"), lambda g: torch.optim.Adagrad(g, lr=0.1)),
    "adagrad-weight-decay": (
        dict(graft="adagrad", weight_decay=0.1), lambda g: torch.optim.Adagrad(g, lr=0.1, weight_decay=0.1)
    ),
    "sgd": (dict(graft="sgd"), lambda g: torch.optim.SGD(g, lr=0.1)),
    "sgd-momentum": (dict(graft="sgd", momentum=0.9), lambda g: torch.optim.SGD(g, lr=0.1, momentum=0.9)),
    "adam": (dict(graft="adam", graft_eps=1e-8), lambda g: torch.optim.Adam(g, lr=0.1)),
    "adam-betas": (
        dict(graft="adam", graft_eps=1e-8, betas=(0.8, 0.99)), lambda g: torch.optim.Adam(g, lr=0.1, betas=(0.8, 0.99))
    ),
}


@pytest.mark.parametrize("kwargs, make_torch", GRAFT_CASES.values(), ids=GRAFT_CASES.keys())
def test_without_preconditioning_it_is_the_grafted_optimizer_exactly(kwargs, make_torch):
    ours = parity.trajectory(lambda g: Shampoo(g, lr=0.1, precondition=False, **kwargs), steps=30)
    torchs = parity.trajectory(make_torch, steps=30)
    for step, (a, b) in enumerate(zip(ours, torchs)):
        for x, y in zip(a, b):
            assert torch.equal(x, y), f"step {step}"


def _fractional_power(matrix: torch.Tensor, power: float) -> torch.Tensor:
    return torch.tensor(np.real(scipy.linalg.fractional_matrix_power(matrix.numpy(), power)))


def _mode_multiply(tensor: np.ndarray, matrix: np.ndarray, mode: int) -> np.ndarray:
    return np.moveaxis(np.tensordot(matrix, np.moveaxis(tensor, mode, 0), axes=(1, 0)), 0, mode)


@pytest.mark.parametrize("shape", [(4, 3), (3, 2, 4), (5,)], ids=["matrix", "order-3", "vector"])
def test_first_step_is_the_papers_preconditioned_gradient_grafted_to_adagrad(shape):
    g = torch.Generator().manual_seed(0)
    p0 = torch.randn(shape, generator=g, dtype=torch.float64)
    target = torch.randn(shape, generator=g, dtype=torch.float64)
    p = p0.clone().requires_grad_(True)
    lr, eps = 0.1, 1e-3
    opt = Shampoo([p], lr=lr, epsilon=eps, update_freq=1)
    (0.5 * (p - target).pow(2) * torch.arange(1, p.numel() + 1).reshape(shape)).sum().backward()
    grad = p.grad.clone()
    opt.step()

    order = len(shape)
    preconditioned = grad.numpy()
    for mode in range(order):
        unfolded = np.moveaxis(grad.numpy(), mode, 0).reshape(shape[mode], -1)
        statistic = torch.tensor(eps * np.eye(shape[mode]) + unfolded @ unfolded.T)
        root = _fractional_power(statistic, -1.0 / (2 * order)).numpy()
        preconditioned = _mode_multiply(preconditioned, root, mode)
    preconditioned = torch.tensor(preconditioned)
    adagrad_step = grad / (grad.abs() + 1e-10)  # Adagrad's first step: g / sqrt(g^2)
    expected = p0 - lr * preconditioned * (adagrad_step.norm() / preconditioned.norm())
    torch.testing.assert_close(p.detach(), expected, rtol=1e-9, atol=1e-12)


def _ill_conditioned(n, condition, generator):
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=generator, dtype=torch.float64))
    return q @ torch.diag(torch.logspace(0, -np.log10(condition), n, dtype=torch.float64)) @ q.T


def test_beats_adagrad_on_an_ill_conditioned_matrix_quadratic():
    # f(W) = 1/2 |A W B - C|^2: a Kronecker-structured Hessian (B B^T) (x) (A^T A), Shampoo's case
    g = torch.Generator().manual_seed(0)
    a, b = _ill_conditioned(8, 30.0, g), _ill_conditioned(6, 30.0, g)
    c = a @ torch.randn(8, 6, generator=g, dtype=torch.float64) @ b

    def final_loss(make_opt, steps=100):
        w = torch.zeros(8, 6, dtype=torch.float64, requires_grad=True)
        opt = make_opt([w])
        for _ in range(steps):
            opt.zero_grad()
            (0.5 * (a @ w @ b - c).pow(2).sum()).backward()
            opt.step()
        return (0.5 * (a @ w @ b - c).pow(2).sum()).item()

    lrs = (0.03, 0.1, 0.3, 1.0, 3.0)
    adagrad = {lr: final_loss(lambda ps, lr=lr: torch.optim.Adagrad(ps, lr=lr)) for lr in lrs}
    shampoo = {lr: final_loss(lambda ps, lr=lr: Shampoo(ps, lr=lr, update_freq=1)) for lr in lrs}
    assert min(adagrad, key=adagrad.get) not in (lrs[0], lrs[-1]), adagrad  # Adagrad's best lr is inside the grid
    assert min(shampoo.values()) < 0.1 * min(adagrad.values()), (shampoo, adagrad)


def test_large_dimensions_and_scalars_skip_preconditioning():
    big = torch.zeros(3, 50, requires_grad=True)
    scalar = torch.zeros((), requires_grad=True)
    opt = Shampoo([big, scalar], max_preconditioner_dim=10)
    (big.sum() + scalar).backward()
    opt.step()
    assert [s.shape for s in opt.state[big]["statistics"]] == [torch.Size([3, 3])]
    assert opt.state[scalar]["statistics"] == []


def test_state_dict_resumes_exactly():
    def make(groups):
        return Shampoo(groups, lr=0.05, update_freq=3, momentum=0.5)

    straight = parity.trajectory(make, steps=10)
    _, opt, params = parity.trajectory(make, steps=4, return_opt=True)
    saved = opt.state_dict()
    _, _, fresh_params = parity.trajectory(make, steps=4, return_opt=True)
    resumed = make([{"params": fresh_params[:2]}, {"params": fresh_params[2:]}])
    resumed.load_state_dict(saved)
    rest = parity.continue_run(resumed, fresh_params, 6, start=4)
    parity.assert_same(rest, straight[4:], 0.0, "resume")


def _matrix_quadratic_steps(make_opt, shape, steps, on_step=lambda step, opt, p: None):
    """``steps`` steps on f(W) = 1/2 |D (W - T_step)|^2 with a per-step target, so every step's
    gradient (and so every statistic) differs; returns the parameter after each step."""
    g = torch.Generator().manual_seed(3)
    p = torch.randn(shape, generator=g, dtype=torch.float64).requires_grad_(True)
    weights = torch.rand(shape, generator=g, dtype=torch.float64) + 0.5
    targets = [torch.randn(shape, generator=g, dtype=torch.float64) for _ in range(steps)]
    opt = make_opt([p])
    history = []
    for step in range(1, steps + 1):
        opt.zero_grad()
        (0.5 * (weights * (p - targets[step - 1])).pow(2).sum()).backward()
        opt.step()
        on_step(step, opt, p)
        history.append(p.detach().clone())
    return history


ROOT_CASES = {
    "matrix-every-3": ((4, 3), 3, 8, {1, 4, 7}),
    "matrix-every-1": ((4, 3), 1, 4, {1, 2, 3, 4}),
    "order-3-every-4": ((3, 2, 4), 4, 9, {1, 5, 9}),
    "vector-every-2": ((5,), 2, 5, {1, 3, 5}),
}


@pytest.mark.parametrize("shape, freq, steps, recomputed", ROOT_CASES.values(), ids=ROOT_CASES.keys())
def test_inverse_roots_are_recomputed_every_update_freq_steps(shape, freq, steps, recomputed):
    """The inverse roots are recomputed at steps 1, update_freq + 1, 2 update_freq + 1, ...
    (1-based; the code's ``(step - 1) % update_freq == 0``): there each stored root is exactly
    ``inverse_root`` of its current statistic; at every other step it is bit for bit the previous
    step's, and so stale (the statistics grew with the new gradient).  Recomputing every step,
    never after the first, or one step off the cadence fails here."""
    from optim.shampoo import inverse_root

    eps = 1e-4
    seen = {}

    def check(step, opt, p):
        state = opt.state[p]
        roots = [r.clone() for r in state["inverse_roots"]]
        fresh = [inverse_root(s, 2 * len(shape), eps) for s in state["statistics"]]
        assert len(roots) == len(shape)
        if step in recomputed:
            for i, (root, want) in enumerate(zip(roots, fresh)):
                assert torch.equal(root, want), f"step {step}: root {i} is not the current statistic's"
                if step > 1:
                    assert not torch.equal(root, seen[step - 1][i]), f"step {step}: root {i} did not change"
        else:
            for i, (root, want) in enumerate(zip(roots, fresh)):
                assert torch.equal(root, seen[step - 1][i]), f"step {step}: root {i} changed between recomputes"
                assert not torch.equal(root, want), f"step {step}: root {i} stale check is vacuous"
        seen[step] = roots

    _matrix_quadratic_steps(lambda ps: Shampoo(ps, lr=0.05, epsilon=eps, update_freq=freq), shape, steps, check)
    assert set(seen) == set(range(1, steps + 1))


def test_update_freq_changes_the_trajectory():
    """Stale roots precondition differently from fresh ones: update_freq=1 and update_freq=4
    agree on step 1 (both compute the roots there) and differ from step 2 on, where only the
    first recomputes; an optimizer that ignored update_freq would give identical runs."""
    def run(freq):
        return _matrix_quadratic_steps(lambda ps: Shampoo(ps, lr=0.05, epsilon=1e-4, update_freq=freq), (4, 3), 6)

    every, sparse = run(1), run(4)
    assert torch.equal(every[0], sparse[0])
    for step in range(1, 6):
        assert (every[step] - sparse[step]).abs().max() > 1e-6, f"step {step + 1}"


INVALID = {
    "lr": dict(lr=-1.0),
    "graft": dict(graft="rmsprop"),
    "momentum": dict(momentum=-0.5),
    "beta": dict(betas=(1.0, 0.999)),
    "graft_eps": dict(graft_eps=-1.0),
    "epsilon": dict(epsilon=0.0),
    "update_freq": dict(update_freq=0),
    "max_preconditioner_dim": dict(max_preconditioner_dim=0),
    "weight_decay": dict(weight_decay=-1.0),
}


@pytest.mark.parametrize("name, kwargs", INVALID.items(), ids=INVALID.keys())
def test_rejects_invalid_hyperparameters_naming_them(name, kwargs):
    with pytest.raises(ValueError, match=name):
        Shampoo([torch.zeros(2, requires_grad=True)], **kwargs)
