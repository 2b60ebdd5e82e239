"""NaturalGradient: its Fisher is the average outer product of per-sample gradients computed one
sample at a time, its step is the damped solve with that Fisher, and it reaches scipy's optimum
of an L2-regularised logistic regression."""

import numpy as np
import pytest
import scipy.optimize
import torch
import torch.nn.functional as F
from sklearn.datasets import load_breast_cancer
from sklearn.preprocessing import StandardScaler
from torch import nn

from optim import NaturalGradient
from optim.natural_gradient import solve_damped_gram


def _mlp(inputs=3, hidden=4, outputs=3):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(inputs, hidden), nn.Tanh(), nn.Linear(hidden, outputs)).double()


def _batch(n=5, inputs=3, classes=3):
    g = torch.Generator().manual_seed(1)
    return torch.randn(n, inputs, generator=g, dtype=torch.float64), torch.randint(0, classes, (n,), generator=g)


def _flat_grad(loss, model):
    return torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, list(model.parameters()))])


def _fisher_of_rows(rows):
    u = torch.stack(rows)
    return u.T @ u / u.shape[0]


def _empirical_rows(model, x, per_sample_loss):
    return [_flat_grad(per_sample_loss(model(x[i : i + 1]), i), model) for i in range(x.shape[0])]


EMPIRICAL_CASES = {
    "cross-entropy": lambda x, t: (
        lambda out: F.cross_entropy(out, t), lambda out, i: F.cross_entropy(out, t[i : i + 1])
    ),
    "mse": lambda x, t: (
        lambda out: F.mse_loss(out, out.detach().sin() + 1), lambda out, i: F.mse_loss(out, out.detach().sin() + 1)
    ),
}


@pytest.mark.parametrize("losses", EMPIRICAL_CASES.values(), ids=EMPIRICAL_CASES.keys())
def test_empirical_fisher_is_the_mean_outer_product_of_per_sample_gradients(losses):
    model = _mlp()
    x, t = _batch()
    batch_loss, per_sample_loss = losses(x, t)
    opt = NaturalGradient(model.parameters(), model=model)
    # one sample at a time first: the optimizer records the last training forward pass
    expected = _fisher_of_rows(_empirical_rows(model, x, per_sample_loss))
    batch_loss(model(x)).backward()
    torch.testing.assert_close(opt.fisher_matrix(), expected, rtol=1e-10, atol=1e-14)


def test_sampled_categorical_fisher_uses_labels_drawn_from_the_model():
    model = _mlp()
    x, t = _batch()
    opt = NaturalGradient(model.parameters(), model=model, fisher="sampled")
    torch.manual_seed(123)
    with torch.no_grad():
        sampled = torch.distributions.Categorical(probs=torch.softmax(model(x), -1)).sample()
    expected = _fisher_of_rows(_empirical_rows(model, x, lambda out, i: F.cross_entropy(out, sampled[i : i + 1])))

    F.cross_entropy(model(x), t).backward()
    torch.manual_seed(123)  # the same draw, made by the optimizer
    torch.testing.assert_close(opt.fisher_matrix(), expected, rtol=1e-10, atol=1e-14)


def test_sampled_gaussian_fisher_uses_targets_drawn_around_the_output():
    model = _mlp(outputs=2)
    x, _ = _batch()
    opt = NaturalGradient(model.parameters(), model=model, fisher="sampled", likelihood="gaussian")
    torch.manual_seed(7)
    with torch.no_grad():
        out = model(x)
        targets = out + torch.randn_like(out)  # y ~ N(z, I)
    rows = _empirical_rows(model, x, lambda out, i: 0.5 * (out - targets[i : i + 1]).pow(2).sum())

    model(x).pow(2).mean().backward()
    torch.manual_seed(7)  # the same draw, made by the optimizer
    torch.testing.assert_close(opt.fisher_matrix(), _fisher_of_rows(rows), rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("batch", [40, 5], ids=["dense-solve", "woodbury"])
def test_step_is_the_damped_fisher_solve(batch):
    model = _mlp()  # 31 parameters: a batch of 40 solves densely, a batch of 5 through Woodbury
    x, t = _batch(batch)
    lr, damping = 0.7, 0.05
    opt = NaturalGradient(model.parameters(), model=model, lr=lr, damping=damping)
    before = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    fisher = _fisher_of_rows(_empirical_rows(model, x, lambda out, i: F.cross_entropy(out, t[i : i + 1])))
    F.cross_entropy(model(x), t).backward()
    grad = torch.cat([p.grad.reshape(-1) for p in model.parameters()])
    opt.step()
    after = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    expected = before - lr * torch.linalg.solve(fisher + damping * torch.eye(before.numel(), dtype=torch.float64), grad)
    torch.testing.assert_close(after, expected, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("batch, n", [(3, 10), (10, 3)])
def test_woodbury_and_dense_solves_agree(batch, n):
    g = torch.Generator().manual_seed(batch)
    u = torch.randn(batch, n, generator=g, dtype=torch.float64)
    rhs = torch.randn(n, generator=g, dtype=torch.float64)
    dense = torch.linalg.solve(u.T @ u / batch + 0.1 * torch.eye(n, dtype=torch.float64), rhs)
    torch.testing.assert_close(solve_damped_gram(u, rhs, 0.1), dense, rtol=1e-10, atol=1e-12)


L2 = 1e-3


def _breast_cancer():
    x, y = load_breast_cancer(return_X_y=True)
    return torch.tensor(StandardScaler().fit_transform(x)), torch.tensor(y)


def _objective(model, x, y):
    return F.cross_entropy(model(x), y) + 0.5 * L2 * model.weight.pow(2).sum()


def _scipy_optimum(x, y):
    model = nn.Linear(30, 2).double()

    def value_and_grad(v):
        with torch.no_grad():
            model.weight.copy_(torch.tensor(v[:60]).reshape(2, 30))
            model.bias.copy_(torch.tensor(v[60:]))
        model.zero_grad()
        loss = _objective(model, x, y)
        loss.backward()
        return loss.item(), torch.cat([model.weight.grad.reshape(-1), model.bias.grad]).numpy()

    result = scipy.optimize.minimize(
        value_and_grad, np.zeros(62), jac=True, method="L-BFGS-B", options=dict(gtol=1e-12, ftol=1e-15, maxiter=10_000)
    )
    return result.fun


@pytest.mark.parametrize("fisher", ["empirical", "sampled"])
def test_converges_on_regularised_logistic_regression(fisher):
    x, y = _breast_cancer()
    best = _scipy_optimum(x, y)
    torch.manual_seed(0)
    model = nn.Linear(30, 2).double()
    opt = NaturalGradient(model.parameters(), model=model, lr=0.5, damping=1e-2, fisher=fisher)
    start = _objective(model, x, y).item()
    for _ in range(40):
        _objective(model, x, y).backward()
        opt.step()
        opt.zero_grad()
    final = _objective(model, x, y).item()
    assert start > 10 * best
    assert final <= best * (1 + 1e-2), (final, best)


INVALID = {
    "lr": dict(lr=-1.0),
    "damping": dict(damping=0.0),
    "fisher": dict(fisher="true"),
    "likelihood": dict(likelihood="poisson"),
    "momentum": dict(momentum=-1.0),
    "max_params": dict(max_params=10),
    "model": dict(model=None),
}


@pytest.mark.parametrize("name, kwargs", INVALID.items(), ids=INVALID.keys())
def test_rejects_invalid_arguments_naming_them(name, kwargs):
    model = _mlp()
    with pytest.raises(ValueError, match=name):
        NaturalGradient(model.parameters(), **{"model": model, **kwargs})


def test_refuses_parameters_outside_the_model_and_a_step_without_a_forward_pass():
    model = _mlp()
    with pytest.raises(ValueError, match="params"):
        NaturalGradient([torch.zeros(2, requires_grad=True)], model=model)
    opt = NaturalGradient(model.parameters(), model=model)
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    with pytest.raises(RuntimeError, match="forward pass"):
        opt.step()
