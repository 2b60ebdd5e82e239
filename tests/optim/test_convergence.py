"""Every catalog solver reaches the known minimum of an ill-conditioned quadratic and of Rosenbrock.

The quadratic is least squares through ``nn.Linear`` (so solvers that hook the model's layers see
an ordinary layer): f(w) = mean((Xw - y)^2) / 2 with X built so that the Hessian X^T X / n has
eigenvalues logspace(0, 2): condition number 100.  Its minimizer w* is planted (y = X w*), so the
oracle is closed-form.  Rosenbrock's minimum is (1, 1).  Each solver has its own settings row
(learning rate, steps, tolerance); a solver added to the catalog without a row fails here."""

from __future__ import annotations

import math

import pytest
import torch

from optim import catalog
from optim.factory import build_optimizer
from optim.schedulers import build_scheduler

DIM = 6
ROWS = 24


def _quadratic_data():
    g = torch.Generator().manual_seed(7)
    q_rows, _ = torch.linalg.qr(torch.randn(ROWS, DIM, generator=g, dtype=torch.float64))
    q_cols, _ = torch.linalg.qr(torch.randn(DIM, DIM, generator=g, dtype=torch.float64))
    eig = torch.logspace(0, 2, DIM, dtype=torch.float64)
    x = math.sqrt(ROWS) * q_rows @ torch.diag(eig.sqrt()) @ q_cols.T
    w_star = torch.randn(DIM, generator=g, dtype=torch.float64)
    return x, x @ w_star, w_star


class Rosenbrock(torch.nn.Module):
    """Rosenbrock as least squares over a batch of two samples, so that solvers which need
    per-sample gradients (natural gradient) see a batch: the one-hot sample i selects the residual
    r_i, r = (1 - x, 10 (y - x^2)), and 2 mean(r^2) = f(x, y), minimized at (1, 1)."""

    def __init__(self):
        super().__init__()
        self.xy = torch.nn.Parameter(torch.tensor([-1.2, 1.0], dtype=torch.float64))

    def forward(self, onehot):
        x, y = self.xy
        return onehot @ torch.stack([1 - x, 10 * (y - x**2)])


def _quadratic_problem():
    x, y, w_star = _quadratic_data()
    model = torch.nn.Linear(DIM, 1, bias=False).double()
    torch.nn.init.zeros_(model.weight)

    def loss():
        return 0.5 * ((model(x).squeeze(1) - y) ** 2).mean()

    return model, loss, lambda: model.weight.detach().squeeze(0), w_star


def _rosenbrock_problem():
    model = Rosenbrock()
    samples = torch.eye(2, dtype=torch.float64)

    def loss():
        return 2 * (model(samples) ** 2).mean()

    return model, loss, lambda: model.xy.detach(), torch.ones(2, dtype=torch.float64)


PROBLEMS = {"quadratic": _quadratic_problem, "rosenbrock": _rosenbrock_problem}


def row(hparams, steps, tol, decay=None, warmup=0):
    """Settings for one solver on one problem: hyperparameters, steps, tolerance on ||x - x*||, an
    optional per-step exponential lr decay (sign-like methods only settle when the step shrinks)
    and warm-up steps (RAdam's first steps are unadapted SGD steps, too long on Rosenbrock)."""
    return {"hparams": hparams, "steps": steps, "tol": tol, "decay": decay, "warmup": warmup}


# solver -> problem -> settings.  Tolerances are on the distance to the minimizer.
SETTINGS = {
    "sgd": {
        "quadratic": row({"lr": 0.015, "momentum": 0.8}, 400, 1e-8),
        "rosenbrock": row({"lr": 1.5e-3, "momentum": 0.9}, 4000, 1e-6),
    },
    "adagrad": {
        "quadratic": row({"lr": 1.0}, 1500, 1e-6),
        "rosenbrock": row({"lr": 0.5}, 6000, 3e-2),
    },
    "adadelta": {
        "quadratic": row({"lr": 0.3, "eps": 0.1}, 3000, 1e-8, decay=0.999),
        "rosenbrock": row({"lr": 0.3, "eps": 1e-3, "rho": 0.99}, 8000, 1e-2, decay=0.9995),
    },
    "asgd": {
        "quadratic": row({"lr": 0.015, "lambd": 0.0}, 1500, 1e-8),
        "rosenbrock": row({"lr": 1.9e-3, "lambd": 0.0}, 8000, 1e-2),
    },
    "rprop": {
        "quadratic": row({"lr": 0.1}, 1000, 1e-4),
        "rosenbrock": row({"lr": 0.01}, 3000, 3e-2),
    },
    "rmsprop": {
        "quadratic": row({"lr": 0.01, "momentum": 0.9}, 1500, 1e-8, decay=0.997),
        "rosenbrock": row({"lr": 1e-3, "momentum": 0.9}, 5000, 1e-4, decay=0.999),
    },
    "adam": {
        "quadratic": row({"lr": 0.05}, 1500, 1e-8),
        "rosenbrock": row({"lr": 0.02}, 5000, 1e-6),
    },
    "adamw": {
        "quadratic": row({"lr": 0.05, "weight_decay": 0.0}, 1500, 1e-8),
        "rosenbrock": row({"lr": 0.02, "weight_decay": 0.0}, 5000, 1e-6),
    },
    "adamax": {
        "quadratic": row({"lr": 0.3}, 1500, 1e-8),
        "rosenbrock": row({"lr": 0.02}, 5000, 1e-3),
    },
    "nadam": {
        "quadratic": row({"lr": 0.05}, 1500, 1e-8),
        "rosenbrock": row({"lr": 0.05}, 5000, 1e-4, decay=0.9995),
    },
    "radam": {
        "quadratic": row({"lr": 0.05}, 1500, 1e-8, warmup=50),
        "rosenbrock": row({"lr": 0.03}, 5000, 1e-6, warmup=200),
    },
    "lion": {
        "quadratic": row({"lr": 0.1}, 1500, 1e-5, decay=0.99),
        "rosenbrock": row({"lr": 0.01}, 5000, 1e-4, decay=0.998),
    },
    "adabound": {
        "quadratic": row({"lr": 0.01}, 1500, 1e-8),
        "rosenbrock": row({"lr": 0.005}, 5000, 1e-6, decay=0.9995),
    },
    "adaboundw": {
        "quadratic": row({"lr": 0.01}, 1500, 1e-8),
        "rosenbrock": row({"lr": 0.005}, 5000, 1e-6, decay=0.9995),
    },
    # LAMB's step has length lr * ||x|| whatever the gradient, so it ends in a ball of about one
    # final step around x*: the decay must take lr * ||x*|| well below tol (here to a few 1e-8), while
    # the lr summed over all steps (lr / (1 - decay)) still covers the path, which grows ||x|| by
    # a factor e^(sum of lr) at most (from 0 on the quadratic, past the origin on Rosenbrock)
    "lamb": {
        "quadratic": row({"lr": 0.1}, 1500, 1e-6, decay=0.99),
        "rosenbrock": row({"lr": 0.15}, 4000, 1e-6, decay=0.996),
    },
    # LARS's step is lr * trust_coefficient * ||x|| (momentum 0.9 amplifies it ~10x): the same
    # ball and budget as LAMB's, with the budget lr * trust_coefficient / (1 - decay)
    "lars": {
        "quadratic": row({"lr": 0.3, "trust_coefficient": 0.01}, 2000, 1e-4, decay=0.997),
        "rosenbrock": row({"lr": 2.5, "trust_coefficient": 0.002}, 5000, 1e-5, decay=0.998),
    },
    "lookahead": {
        "quadratic": row({"base": "adam", "lr": 0.05}, 1500, 1e-6),
        "rosenbrock": row({"base": "adam", "lr": 0.02}, 5000, 1e-4),
    },
    "randomsearch": {
        "quadratic": row({"lr": 1.0, "sigma": 0.1, "n_samples": 4}, 3000, 3e-3, decay=0.998),
        "rosenbrock": row({"lr": 1.0, "sigma": 0.3}, 3000, 1e-4, decay=0.998),
    },
    "lbfgs": {
        "quadratic": row({"line_search_fn": "strong_wolfe", "tolerance_grad": 1e-12, "tolerance_change": 1e-15}, 5, 1e-6),
        "rosenbrock": row({"line_search_fn": "strong_wolfe", "tolerance_grad": 1e-12, "tolerance_change": 1e-15}, 10, 1e-6),
    },
    "bfgs": {
        "quadratic": row({"tolerance_grad": 1e-12, "tolerance_change": 1e-15}, 5, 1e-6),
        "rosenbrock": row({"tolerance_grad": 1e-12, "tolerance_change": 1e-15}, 10, 1e-6),
    },
    "newton": {
        "quadratic": row({}, 5, 1e-10),
        "rosenbrock": row({}, 60, 1e-9),
    },
    "hessianfree": {
        "quadratic": row({}, 20, 1e-9),
        "rosenbrock": row({}, 100, 1e-9),
    },
    # the sampled Gaussian Fisher is the Gauss-Newton matrix in expectation; on two residuals
    # it is too noisy, and the damped empirical Fisher is used there.  The empirical Fisher is
    # 8 sum r_i^2 grad r_i grad r_i^T: it vanishes at the zero-residual minimum, where the step
    # becomes lr / damping times the gradient.  With a small damping that step is unstable on
    # the Hessian's eigenvalue 1001.6 and the iterate wanders chaotically at |r|^2 ~ damping;
    # damping 80 keeps the Fisher's step far out (r^2 |grad r|^2 >> damping) and makes the end
    # heavy-ball descent with step 2.5e-3 (stable: 2.5e-3 * 1001.6 < 2 (1 + 0.9)) converging at
    # the rate 0.989 per step its theory gives for the eigenvalue 0.4: ~5e-8 after 1500 steps
    "naturalgradient": {
        "quadratic": row({"lr": 0.5, "fisher": "sampled", "likelihood": "gaussian"}, 200, 1e-8),
        "rosenbrock": row({"lr": 0.2, "damping": 80.0, "fisher": "empirical", "momentum": 0.9}, 1500, 1e-5),
    },
    # Rosenbrock has no Linear layer: K-FAC's SGD-with-momentum fallback drives it
    "kfac": {
        "quadratic": row({"lr": 0.5, "damping": 0.1, "kl_clip": None, "momentum": 0.0}, 300, 1e-6),
        "rosenbrock": row({"lr": 1.5e-3, "kl_clip": None, "momentum": 0.9}, 4000, 1e-6),
    },
    "shampoo": {
        "quadratic": row({"lr": 0.3, "graft": "adam"}, 1000, 1e-8),
        "rosenbrock": row({"lr": 0.2, "graft": "adam", "update_freq": 1}, 5000, 5e-2, decay=0.9995),
    },
}
# the 8-bit solvers keep 32-bit state on problems this small (every tensor is under the 4096
# elements they quantize): their base solvers' rows; tests/optim/test_eightbit.py follows the 8-bit path
SETTINGS.update({f"{base}8bit": SETTINGS[base] for base in ("adam", "adamw", "lion")})


def _minimize(name: str, problem: str, settings: dict):
    torch.manual_seed(0)  # zeroth-order and noisy solvers draw from the global generator
    model, loss_fn, position, minimizer = PROBLEMS[problem]()
    entry = catalog.solver(name)
    opt = build_optimizer(list(model.parameters()), name, settings["hparams"], model=model)
    sched = None
    if settings["decay"] is not None or settings["warmup"]:
        sched = build_scheduler(
            opt, "exponentiallr", {"gamma": settings["decay"] or 1.0}, warmup_steps=settings["warmup"]
        )

    def closure():
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        return loss

    for _ in range(settings["steps"]):
        if entry.needs_closure:
            opt.step(closure)
        else:
            closure()
            opt.step()
        if sched is not None:
            sched.step_batch()
            sched.step_epoch()
    return position(), minimizer


@pytest.mark.parametrize("problem", sorted(PROBLEMS))
@pytest.mark.parametrize("name", sorted(catalog.SOLVERS))
def test_reaches_the_minimum(name, problem):
    if name not in SETTINGS:
        pytest.fail(f"solver {name!r} has no convergence settings: add a row to SETTINGS")
    settings = SETTINGS[name][problem]
    found, minimizer = _minimize(name, problem, settings)
    distance = (found - minimizer).norm().item()
    assert distance <= settings["tol"], f"{name} on {problem}: |x - x*| = {distance:.3e} > {settings['tol']:.0e}"


def test_every_settings_row_names_a_catalog_solver_or_an_exported_class():
    """Rows are keyed by lowercase class name; a typo would silently leave a solver untested."""
    import optim

    exported = {name.lower() for name in optim._EXPORTS if name[0].isupper()}
    assert set(SETTINGS) <= exported | set(catalog.SOLVERS)


def test_quadratic_is_as_conditioned_as_stated():
    x, y, w_star = _quadratic_data()
    eig = torch.linalg.eigvalsh(x.T @ x / ROWS)
    assert eig.max() / eig.min() == pytest.approx(100.0, rel=1e-9)
    assert torch.linalg.lstsq(x, y.unsqueeze(1)).solution.squeeze(1) == pytest.approx(w_star, abs=1e-10)


@pytest.mark.parametrize("solver", ["sgd"])
def test_worked_example_plain_gradient_descent(solver):
    """f(x) = x^2 - 4x + 3 from x = 0 with lr 0.3: x1 = 0.3 * 4 = 1.2, x2 = 1.2 + 0.3 * 1.6 = 1.68."""
    x = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = build_optimizer([x], solver, {"lr": 0.3})
    expected = [1.2, 1.68]
    for want in expected:
        opt.zero_grad()
        (x**2 - 4 * x + 3).sum().backward()
        opt.step()
        assert x.item() == pytest.approx(want, abs=1e-15)
