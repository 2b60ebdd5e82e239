"""Gradient tools against torch.nn.utils and torch.autograd.gradcheck, closed-form derivatives
and the noise schedule of Neelakantan et al. (2015)."""

import io
import math

import pytest
import torch

from optim import GradientNoise, clip_grad_norm_, clip_grad_value_, gradcheck, numeric_gradient
from optim.grad_tools import GradcheckError

SHAPES = [(6, 4), (6,), (3, 6), (3,)]


def params_with_grads(dtype, seed=0, none_at=1):
    """Two identical sets of parameters with random gradients (one of them None)."""
    g = torch.Generator().manual_seed(seed)
    ours, theirs = [], []
    for i, shape in enumerate(SHAPES):
        value = torch.randn(shape, generator=g, dtype=dtype)
        grad = None if i == none_at else 3 * torch.randn(shape, generator=g, dtype=dtype)
        for target in (ours, theirs):
            p = value.clone().requires_grad_(True)
            p.grad = None if grad is None else grad.clone()
            target.append(p)
    return ours, theirs


TOLERANCE = {torch.float64: 1e-13, torch.float32: 1e-6}


@pytest.mark.parametrize("foreach", [False, True])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("max_norm", [0.5, 1e4])  # clipping and not
@pytest.mark.parametrize("norm_type", [1.0, 2.0, 3.5, math.inf])
def test_clip_grad_norm_matches_torch(norm_type, max_norm, dtype, foreach):
    ours, theirs = params_with_grads(dtype)
    total = clip_grad_norm_(ours, max_norm, norm_type=norm_type, foreach=foreach)
    expected = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type=norm_type, foreach=foreach)
    tol = TOLERANCE[dtype]
    torch.testing.assert_close(total, expected, rtol=tol, atol=0)
    for a, b in zip(ours, theirs):
        if b.grad is None:
            assert a.grad is None
        else:
            torch.testing.assert_close(a.grad, b.grad, rtol=tol, atol=tol)


@pytest.mark.parametrize("norm_type", [2.0, math.inf])
def test_clipped_norm_is_max_norm(norm_type):
    ours, _ = params_with_grads(torch.float64)
    clip_grad_norm_(ours, 0.5, norm_type=norm_type)
    after = torch.linalg.vector_norm(torch.cat([p.grad.reshape(-1) for p in ours if p.grad is not None]), norm_type)
    torch.testing.assert_close(after.item(), 0.5, rtol=1e-5, atol=0)  # 1e-6 is added to the norm


def test_clip_grad_norm_single_tensor_and_no_grads():
    p = torch.tensor([3.0, 4.0], requires_grad=True)
    p.grad = torch.tensor([3.0, 4.0])
    assert clip_grad_norm_(p, 1.0).item() == pytest.approx(5.0)
    torch.testing.assert_close(p.grad, torch.tensor([0.6, 0.8]), rtol=1e-6, atol=0)
    q = torch.zeros(2, requires_grad=True)
    assert torch.equal(clip_grad_norm_([q], 1.0), torch.nn.utils.clip_grad_norm_([q], 1.0))


@pytest.mark.parametrize("bad", [math.inf, math.nan])
def test_clip_grad_norm_nonfinite(bad):
    ours, theirs = params_with_grads(torch.float64)
    for ps in (ours, theirs):
        ps[0].grad[0, 0] = bad
    with pytest.raises(RuntimeError, match="non-finite"):
        clip_grad_norm_(ours, 1.0, error_if_nonfinite=True)
    total = clip_grad_norm_(ours, 1.0)
    expected = torch.nn.utils.clip_grad_norm_(theirs, 1.0)
    torch.testing.assert_close(total, expected, equal_nan=True)
    for a, b in zip(ours, theirs):
        if b.grad is not None:
            torch.testing.assert_close(a.grad, b.grad, equal_nan=True)


@pytest.mark.parametrize("foreach", [False, True])
@pytest.mark.parametrize("clip_value", [0.1, 2.0, 100.0])
def test_clip_grad_value_matches_torch(clip_value, foreach):
    ours, theirs = params_with_grads(torch.float64)
    assert clip_grad_value_(ours, clip_value, foreach=foreach) is None
    torch.nn.utils.clip_grad_value_(theirs, clip_value, foreach=foreach)
    for a, b in zip(ours, theirs):
        assert (a.grad is None and b.grad is None) or torch.equal(a.grad, b.grad)


# -- gradient noise --------------------------------------------------------------------------

SAMPLES = 200_000
# The sample variance of n normal draws has relative standard deviation sqrt(2 / (n - 1)) =
# 0.32% here, the sample mean standard deviation sigma / sqrt(n): 5 of each bounds the test.
VARIANCE_RTOL = 5 * math.sqrt(2 / (SAMPLES - 1))


@pytest.mark.parametrize("eta", [0.01, 0.3, 1.0])  # the paper's values
def test_gradient_noise_variance_follows_the_schedule(eta):
    gamma = 0.55
    p = torch.zeros(SAMPLES, dtype=torch.float64, requires_grad=True)
    noise = GradientNoise([p], eta=eta, gamma=gamma, seed=0)
    for t in (0, 1, 9, 99):
        noise.step = t  # jump ahead: drawing the steps in between would only cost time
        p.grad = torch.zeros_like(p)
        noise()
        expected = eta / (1 + t) ** gamma
        assert abs(p.grad.var().item() / expected - 1) < VARIANCE_RTOL, f"variance at t={t}"
        assert abs(p.grad.mean().item()) < 5 * math.sqrt(expected / SAMPLES), f"mean at t={t}"


def test_gradient_noise_adds_to_the_gradient_and_skips_missing_grads():
    a = torch.zeros(1000, requires_grad=True)
    b = torch.zeros(3, requires_grad=True)
    a.grad = torch.full((1000,), 7.0)
    GradientNoise([{"params": [a, b]}], eta=1e-4, seed=0)()
    assert b.grad is None
    assert abs(a.grad.mean().item() - 7.0) < 5 * 1e-2 / math.sqrt(1000)
    assert a.grad.std().item() == pytest.approx(1e-2, rel=0.15)


def test_gradient_noise_as_an_optimizer_pre_hook():
    p = torch.zeros(4, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.SGD([p], lr=1.0)
    noise = GradientNoise([p], eta=0.3, seed=1)
    reference = GradientNoise([torch.zeros(4, dtype=torch.float64, requires_grad=True)], eta=0.3, seed=1)
    reference.params[0].grad = torch.zeros(4, dtype=torch.float64)
    reference()
    handle = noise.register(opt)
    p.grad = torch.zeros_like(p)
    opt.step()
    assert noise.step == 1
    assert torch.equal(p.detach(), -reference.params[0].grad)
    handle.remove()
    opt.step()
    assert noise.step == 1


def test_gradient_noise_resumes_from_its_state_dict():
    def fresh(seed):
        p = torch.zeros(50, dtype=torch.float64, requires_grad=True)
        return p, GradientNoise([p], eta=0.3, seed=seed)

    p, noise = fresh(seed=4)
    for _ in range(3):
        p.grad = torch.zeros_like(p)
        noise()
    saved = io.BytesIO()
    torch.save(noise.state_dict(), saved)
    saved.seek(0)
    q, resumed = fresh(seed=99)
    resumed.load_state_dict(torch.load(saved))
    p.grad, q.grad = torch.zeros_like(p), torch.zeros_like(q)
    noise()
    resumed()
    assert resumed.step == 4 and torch.equal(p.grad, q.grad)


@pytest.mark.parametrize("kwargs, name", [(dict(eta=0.0), "eta"), (dict(gamma=-0.5), "gamma"), (dict(seed=-1), "seed")])
def test_gradient_noise_rejects_bad_hyperparameters(kwargs, name):
    with pytest.raises(ValueError, match=name):
        GradientNoise([torch.zeros(2, requires_grad=True)], **kwargs)


# -- numeric gradient and gradcheck --------------------------------------------------------------

X = torch.tensor([-1.5, -0.3, 0.0, 0.7, 2.0], dtype=torch.float64)
M = torch.tensor([[0.5, -1.0], [2.0, 1.5]], dtype=torch.float64)

# f, point, closed-form derivative (shape f(x).shape + x.shape)
POLYNOMIALS = [
    pytest.param(lambda x: (2 * x**3 - 3 * x**2 + 5 * x - 7).sum(), X, 6 * X**2 - 6 * X + 5, id="cubic-sum"),
    pytest.param(
        lambda x: x[0] ** 2 * x[1] + 3 * x[1] ** 3 - x[0] * x[2],
        X[1:4],
        torch.stack([2 * X[1] * X[2] - X[3], X[1] ** 2 + 9 * X[2] ** 2, -X[1]]),
        id="multivariate",
    ),
    pytest.param(lambda m: (m**4).sum(), M, 4 * M**3, id="matrix-quartic"),
    pytest.param(lambda x: x**2 + 1, X, torch.diag(2 * X), id="jacobian"),
]


@pytest.mark.parametrize("f, x, derivative", POLYNOMIALS)
def test_numeric_gradient_matches_closed_form(f, x, derivative):
    # Truncation eps^2 f'''/6 ~ 1e-11 and rounding ulp(f)/eps ~ 1e-9 for these |f| <= 50.
    torch.testing.assert_close(numeric_gradient(f, x, eps=1e-6), derivative, rtol=1e-7, atol=1e-7)


def test_numeric_gradient_is_a_central_difference():
    # ((x + h)^3 - (x - h)^3) / 2h = 3 x^2 + h^2 exactly: a one-sided difference would be off by O(h).
    h = 0.1
    torch.testing.assert_close(numeric_gradient(lambda x: (x**3).sum(), X, eps=h), 3 * X**2 + h**2, rtol=1e-12, atol=1e-12)


def test_numeric_gradient_leaves_its_input_alone():
    x = X.clone()
    numeric_gradient(lambda v: (v**2).sum(), x)
    assert torch.equal(x, X)


class Cube(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x**3

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return grad_output * 3 * x**2


class CubeWrongDerivative(Cube):
    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return grad_output * 2 * x**2


class CubeIgnoringGradOutput(Cube):
    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return 3 * x**2


W = torch.tensor([[0.3, -1.2, 0.8], [1.1, 0.4, -0.6]], dtype=torch.float64)
CHECKS = [
    pytest.param(lambda x: torch.sin(x) * x, (X,), True, id="torch-ops"),
    pytest.param(lambda x, w: torch.tanh(w @ x), (X[:3], W), True, id="two-inputs"),
    pytest.param(lambda x: Cube.apply(x), (X,), True, id="custom-function"),
    pytest.param(lambda x: Cube.apply(x).sum(), (X,), True, id="custom-function-sum"),
    pytest.param(lambda x: CubeWrongDerivative.apply(x), (X,), False, id="wrong-derivative"),
    pytest.param(lambda x: 3 * CubeIgnoringGradOutput.apply(x), (X,), False, id="ignores-grad-output"),
]


@pytest.mark.parametrize("f, inputs, correct", CHECKS)
def test_gradcheck_agrees_with_torch(f, inputs, correct):
    inputs = tuple(x.clone().requires_grad_(True) for x in inputs)
    assert torch.autograd.gradcheck(f, inputs, raise_exception=False) is correct  # the oracle agrees
    assert gradcheck(f, inputs, raise_exception=False) is correct
    if correct:
        assert gradcheck(f, inputs) is True
    else:
        with pytest.raises(GradcheckError, match="input 0"):
            gradcheck(f, inputs)


def test_gradcheck_needs_an_input_that_requires_grad():
    with pytest.raises(ValueError, match="requires_grad"):
        gradcheck(lambda x: x**2, (X,))
