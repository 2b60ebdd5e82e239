"""Newton and Hessian-free: the Hessian they use is torch.autograd.functional's, one undamped step
solves a quadratic, Levenberg-Marquardt damping rescues steps plain Newton gets wrong, and CG
solves what torch.linalg.solve solves."""

import pytest
import torch

from optim import HessianFree, Newton
from optim.newton import _loss_grad_hessian, conjugate_gradient


def _spd(n, seed):
    g = torch.Generator().manual_seed(seed)
    m = torch.randn(n, n, generator=g, dtype=torch.float64)
    return m @ m.T + torch.eye(n, dtype=torch.float64)


def _closure_for(opt, loss_fn, params):
    """The engine's closure: zero grads, loss, backward, return the detached loss."""

    def closure():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(*params)
        loss.backward()
        return loss.detach()

    return closure


def _mlp_loss(w1, b1, w2):
    x = torch.linspace(-1, 1, 12, dtype=torch.float64).reshape(4, 3)
    return (torch.tanh(x @ w1 + b1) @ w2).sin().pow(2).mean()


def test_hessian_is_torch_autograd_functional_hessian():
    g = torch.Generator().manual_seed(0)
    shapes = [(3, 5), (5,), (5, 2)]
    params = [torch.randn(s, generator=g, dtype=torch.float64, requires_grad=True) for s in shapes]
    opt = Newton(params)
    loss, grad, hessian, live = _loss_grad_hessian(_closure_for(opt, _mlp_loss, params), params)
    assert live.all()

    flat = torch.cat([p.detach().reshape(-1) for p in params])

    def flat_loss(v):
        pieces, offset = [], 0
        for s in shapes:
            n = torch.Size(s).numel()
            pieces.append(v[offset : offset + n].reshape(s))
            offset += n
        return _mlp_loss(*pieces)

    expected = torch.autograd.functional.hessian(flat_loss, flat)
    torch.testing.assert_close(hessian, expected, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(grad, torch.func.grad(flat_loss)(flat), rtol=1e-12, atol=1e-14)
    assert all(not p.grad.requires_grad for p in params)  # the double-backward graph was released


@pytest.mark.parametrize("cls, kwargs", [
    (Newton, dict(damping=0.0)),
    (HessianFree, dict(damping=0.0, cg_max_iter=20, cg_tol=1e-14)),
])
def test_one_undamped_step_solves_a_quadratic(cls, kwargs):
    n = 8
    a = _spd(n, 1)
    b = torch.randn(n, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    x = torch.zeros(n, dtype=torch.float64, requires_grad=True)
    opt = cls([x], **kwargs)
    opt.step(_closure_for(opt, lambda x: 0.5 * x @ a @ x - b @ x, [x]))
    torch.testing.assert_close(x.detach(), torch.linalg.solve(a, b), rtol=1e-9, atol=1e-10)


def _pseudo_huber(x):
    # convex, but plain Newton from |x| > 1 overshoots: x <- -x^3
    return torch.sqrt(1 + x * x).sum()


def _double_well(x):
    # negative curvature around 0: the Hessian there is not positive definite
    return (x**4 - 2 * x**2).sum()


DAMPING_CASES = {
    "pseudo-huber-from-2": (_pseudo_huber, 2.0, 0.0),
    "double-well-from-0.1": (_double_well, 0.1, 1.0),
}


@pytest.mark.parametrize("cls", [Newton, HessianFree])
@pytest.mark.parametrize("fn, start, minimizer", DAMPING_CASES.values(), ids=DAMPING_CASES.keys())
def test_damping_makes_every_step_descend_to_the_minimizer(cls, fn, start, minimizer):
    x = torch.tensor([start], dtype=torch.float64, requires_grad=True)
    opt = cls([x], damping=1e-4)
    closure = _closure_for(opt, fn, [x])
    losses = [fn(x).item()]
    for _ in range(40):
        opt.step(closure)
        losses.append(fn(x).item())
    assert all(b <= a + 1e-15 for a, b in zip(losses, losses[1:])), losses
    assert abs(x.item() - minimizer) < 1e-6


def test_plain_newton_diverges_where_damped_newton_converges():
    x = torch.tensor([2.0], dtype=torch.float64, requires_grad=True)
    opt = Newton([x], damping=0.0, adaptive_damping=False)
    closure = _closure_for(opt, _pseudo_huber, [x])
    for _ in range(3):
        opt.step(closure)
    assert abs(x.item()) > 1e6  # 2 -> -8 -> 512 -> -1.3e8: the oracle x <- -x^3
    torch.testing.assert_close(x.detach(), torch.tensor([-(2.0 ** 27)], dtype=torch.float64), rtol=1e-9, atol=0)


def test_damping_grows_on_rejection_and_shrinks_on_acceptance():
    x = torch.tensor([2.0], dtype=torch.float64, requires_grad=True)
    opt = Newton([x], damping=1e-4, damping_factor=10.0)
    closure = _closure_for(opt, _pseudo_huber, [x])
    opt.step(closure)
    grown = opt.state[x]["damping"]
    assert grown > 1e-4  # the full step to -8 was rejected at least once
    for _ in range(6):
        opt.step(closure)
    assert opt.state[x]["damping"] < grown


@pytest.mark.parametrize("n, seed", [(5, 0), (30, 1)])
def test_conjugate_gradient_solves_spd_systems(n, seed):
    a = _spd(n, seed)
    g = torch.randn(n, generator=torch.Generator().manual_seed(seed + 10), dtype=torch.float64)
    d, (g_dot_d, d_a_d) = conjugate_gradient(lambda v: a @ v, g, max_iter=4 * n, tol=1e-13)
    torch.testing.assert_close(d, torch.linalg.solve(a, -g), rtol=1e-9, atol=1e-10)
    torch.testing.assert_close(torch.tensor([g_dot_d, d_a_d], dtype=torch.float64), torch.stack([g @ d, d @ a @ d]), rtol=1e-9, atol=1e-12)


def test_conjugate_gradient_stops_on_negative_curvature_with_steepest_descent():
    a = torch.diag(torch.tensor([-1.0, 2.0], dtype=torch.float64))
    g = torch.tensor([1.0, 0.0], dtype=torch.float64)
    d, (g_dot_d, d_a_d) = conjugate_gradient(lambda v: a @ v, g, max_iter=10, tol=1e-12)
    assert torch.equal(d, -g)
    assert g_dot_d == -1.0 and d_a_d == -1.0


def test_hessian_free_trains_a_small_network():
    g = torch.Generator().manual_seed(3)
    params = [torch.randn(s, generator=g, dtype=torch.float64, requires_grad=True) for s in [(3, 5), (5,), (5, 2)]]
    opt = HessianFree(params)
    closure = _closure_for(opt, _mlp_loss, params)
    start = _mlp_loss(*params).item()
    for _ in range(15):
        opt.step(closure)
    assert _mlp_loss(*params).item() < 1e-3 * start


INVALID = {
    Newton: {
        "lr": dict(lr=0.0),
        "damping": dict(damping=-1.0),
        "damping_factor": dict(damping_factor=1.0),
        "max_params": dict(max_params=0),
    },
    HessianFree: {
        "lr": dict(lr=0.0),
        "damping": dict(damping=-1.0),
        "cg_max_iter": dict(cg_max_iter=0),
        "cg_tol": dict(cg_tol=-1.0),
    },
}


@pytest.mark.parametrize(
    "cls, name, kwargs",
    [(cls, name, kw) for cls, cases in INVALID.items() for name, kw in cases.items()],
    ids=[f"{cls.__name__}-{name}" for cls, cases in INVALID.items() for name in cases],
)
def test_rejects_invalid_hyperparameters_naming_them(cls, name, kwargs):
    with pytest.raises(ValueError, match=name):
        cls([torch.zeros(2, requires_grad=True)], **kwargs)


def test_newton_refuses_models_above_max_params():
    with pytest.raises(ValueError, match="max_params"):
        Newton([torch.zeros(50, 50, requires_grad=True)])
    Newton([torch.zeros(40, 50, requires_grad=True)])  # 2000 = the default limit


@pytest.mark.parametrize("cls", [Newton, HessianFree])
def test_a_closure_without_tensor_backward_is_refused(cls):
    x = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
    opt = cls([x])

    def closure():
        opt.zero_grad()
        loss = (x**4).sum()
        torch.autograd.backward(loss)  # out of keep_graph's reach: no second derivatives
        return loss

    with pytest.raises(RuntimeError, match=r"loss.backward\(\)"):
        opt.step(closure)
    assert torch.equal(x.detach(), torch.tensor([1.0, 2.0], dtype=torch.float64))


@pytest.mark.parametrize("cls", [Newton, HessianFree])
def test_a_parameter_without_gradient_stays_put_and_the_rest_step_as_without_it(cls):
    g = torch.Generator().manual_seed(5)
    start = [torch.randn(s, generator=g, dtype=torch.float64) for s in [(3, 5), (5,), (5, 2)]]

    def run(optimized):
        params = [p.clone().requires_grad_(True) for p in start]
        opt = cls([params[i] for i in optimized])

        def closure():
            opt.zero_grad(set_to_none=True)
            for p in params:
                p.grad = None
            loss = _mlp_loss(*params)
            loss.backward()
            params[1].grad = None  # as torch does for a parameter the loss did not reach
            return loss

        for _ in range(3):
            opt.step(closure)
        return [p.detach() for p in params]

    with_frozen = run([0, 1, 2])
    without = run([0, 2])
    assert torch.equal(with_frozen[1], start[1])
    for a, b in zip(with_frozen, without):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
