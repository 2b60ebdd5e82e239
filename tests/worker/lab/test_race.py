"""A race against the same optimizers stepped by hand: Descent's classes built directly on a
float64 point, the objective and its L2 term written out here (the gradient from the closed form,
which tests/worker/lab/test_functions.py checks against autograd; through autograd for Newton,
which differentiates it again), torch's scheduler stepped once per step: the trajectories are
equal bit for bit.  Also: the loss curve is the function along the trajectory,
the learning rate follows the schedule's closed form, a diverging racer is cut and marked, and a
racer that cannot be built says why without stopping the others."""

import math

import pytest
import torch

import optim
from core.lab.functions import FUNCTIONS
from worker.lab.functions import VALUE_AND_GRAD
from worker.lab.race import DIVERGED_BEYOND, GRID_POINTS, run_race

STEPS = 200


def rosenbrock(x, y):
    return (1 - x) ** 2 + 100 * (y - x**2) ** 2


def by_hand(make_optimizer, start, steps, *, closure_solver=False, make_scheduler=None, l2=0.0, autograd=False):
    theta = torch.tensor(start, dtype=torch.float64, requires_grad=True)
    opt = make_optimizer([theta])
    sched = make_scheduler(opt) if make_scheduler else None
    points = [theta.detach().clone()]

    def closure():
        opt.zero_grad()
        if autograd:
            loss = rosenbrock(theta[0], theta[1]) + 0.5 * l2 * (theta**2).sum()
            loss.backward()
            return loss
        x, y = theta.tolist()
        f, fx, fy = VALUE_AND_GRAD["rosenbrock"](x, y)
        theta.grad = torch.tensor([fx + l2 * x, fy + l2 * y], dtype=torch.float64)
        return torch.tensor(f + 0.5 * l2 * (x * x + y * y), dtype=torch.float64)

    for _ in range(steps):
        if closure_solver:
            opt.step(closure)
        else:
            closure()
            opt.step()
        if sched is not None:
            sched.step()
        points.append(theta.detach().clone())
    return torch.stack(points)


def race(*racers, steps=STEPS, start=(-1.5, 2.0)):
    return run_race({"spec": {"function": "rosenbrock", "start": list(start), "steps": steps, "racers": list(racers)}})


def test_trajectories_equal_stepping_the_same_optimizers_by_hand():
    result = race(
        {"solver": {"name": "sgd", "base_lr": 0.0005, "momentum": 0.9}},
        {"solver": {"name": "adam", "base_lr": 0.05}, "scheduler": {"name": "cosineannealinglr", "eta_min": 0.001}},
        {"solver": {"name": "lbfgs", "base_lr": 0.5, "weight_decay": 0.01}},
        {"solver": {"name": "rmsprop", "base_lr": 0.01}},
        {"solver": {"name": "newton", "base_lr": 0.5}},
    )
    sgd, adam, lbfgs, rmsprop, newton = (torch.tensor(r["trajectory"], dtype=torch.float64) for r in result["racers"])
    start = [-1.5, 2.0]
    assert torch.equal(sgd, by_hand(lambda p: optim.SGD(p, lr=0.0005, momentum=0.9), start, STEPS))
    assert torch.equal(adam, by_hand(
        lambda p: optim.Adam(p, lr=0.05), start, STEPS,
        make_scheduler=lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=STEPS, eta_min=0.001)))
    # L-BFGS has no weight decay of its own: an L2 penalty on the objective, as in an experiment
    assert torch.equal(lbfgs, by_hand(lambda p: optim.LBFGS(p, lr=0.5), start, STEPS, closure_solver=True, l2=0.01))
    assert torch.equal(rmsprop, by_hand(lambda p: optim.RMSprop(p, lr=0.01), start, STEPS))
    assert torch.equal(newton, by_hand(lambda p: optim.Newton(p, lr=0.5), start, STEPS, closure_solver=True,
                                       autograd=True))


def test_the_loss_curve_is_the_function_along_the_trajectory_and_lr_follows_the_schedule():
    result = race({"solver": {"name": "adam", "base_lr": 0.1}, "scheduler": {"name": "cosineannealinglr"}})
    racer, = result["racers"]
    assert len(racer["trajectory"]) == len(racer["loss"]) == len(racer["lr"]) == STEPS + 1
    for (x, y), loss in zip(racer["trajectory"], racer["loss"], strict=True):
        assert loss == float(rosenbrock(torch.tensor(x, dtype=torch.float64), torch.tensor(y, dtype=torch.float64)))
    # Loshchilov & Hutter's cosine: lr_t = lr_0 (1 + cos(π t / T)) / 2
    for t, lr in enumerate(racer["lr"]):
        assert math.isclose(lr, 0.1 * (1 + math.cos(math.pi * t / STEPS)) / 2, rel_tol=1e-9, abs_tol=1e-15)
    assert racer["diverged"] is False and racer["error"] is None


def test_plain_gradient_descent_follows_sgds_worked_example_in_each_coordinate():
    """optim.SGD's docstring: f(x) = x² − 4x + 3 from 0 with lr 0.3 goes to 1.2, then 1.68, toward 2;
    in 2-D each coordinate takes the same steps, and the value falls from 6 to 2·(1.68² − 4·1.68 + 3)."""
    racer, = run_race({"spec": {"function": "quadratic", "start": [0, 0], "steps": 2,
                                "racers": [{"solver": {"name": "sgd", "base_lr": 0.3}}]}})["racers"]
    assert [x for point in racer["trajectory"] for x in point] == pytest.approx([0, 0, 1.2, 1.2, 1.68, 1.68], abs=1e-12)
    assert racer["loss"] == pytest.approx([6.0, 2 * (1.2**2 - 4.8 + 3), 2 * (1.68**2 - 4 * 1.68 + 3)], abs=1e-12)


def test_a_diverging_racer_is_cut_before_it_leaves_the_bound_and_marked():
    result = race({"solver": {"name": "sgd", "base_lr": 0.1}}, {"solver": {"name": "adam", "base_lr": 0.01}})
    wild, calm = result["racers"]
    assert wild["diverged"] is True and len(wild["trajectory"]) < STEPS + 1
    assert all(math.isfinite(v) and abs(v) <= DIVERGED_BEYOND for point in wild["trajectory"] for v in point)
    assert all(math.isfinite(v) for v in wild["loss"]) and len(wild["loss"]) == len(wild["trajectory"])
    assert calm["diverged"] is False and len(calm["trajectory"]) == STEPS + 1


def test_a_racer_that_cannot_be_built_says_why_and_the_others_run(monkeypatch):
    from worker.lab import race as module

    real = module.build_optimizer

    def refusing_adagrad(params, name, hparams):
        if name == "adagrad":
            raise ValueError("lr_decay: refused for this test")
        return real(params, name, hparams)

    monkeypatch.setattr(module, "build_optimizer", refusing_adagrad)
    result = race({"solver": {"name": "adagrad"}}, {"solver": {"name": "sgd", "base_lr": 0.001}})
    broken, fine = result["racers"]
    assert broken["error"] == "lr_decay: refused for this test" and broken["trajectory"] == [[-1.5, 2.0]]
    assert fine["error"] is None and len(fine["trajectory"]) == STEPS + 1


def test_the_result_carries_the_contour_grid_over_the_functions_bounds():
    grid = race({"solver": {"name": "sgd"}}, steps=1)["grid"]
    x_min, x_max, y_min, y_max = FUNCTIONS["rosenbrock"].bounds
    assert len(grid["xs"]) == len(grid["ys"]) == len(grid["values"]) == GRID_POINTS
    assert (grid["xs"][0], grid["xs"][-1], grid["ys"][0], grid["ys"][-1]) == (x_min, x_max, y_min, y_max)
