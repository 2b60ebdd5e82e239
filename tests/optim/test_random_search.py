"""RandomSearch: greedy Gaussian search on a quadratic with a known minimum, its seeding, closure
and maximize; against a transcription of its rule and across checkpoints in test_paper_parity.py."""

import pytest
import torch

from optim import RandomSearch
from tests.optim.parity import assert_same, trajectory


def quadratic(dim=10, seed=0):
    """f(w) = ||A w - b||^2 with A well conditioned; minimum f* = 0 at w* = A^-1 b."""
    g = torch.Generator().manual_seed(seed)
    a = torch.eye(dim, dtype=torch.float64) + 0.1 * torch.randn(dim, dim, generator=g, dtype=torch.float64)
    b = torch.randn(dim, generator=g, dtype=torch.float64)
    return lambda w: ((a @ w - b) ** 2).sum()


@pytest.mark.parametrize("n_samples, decay", [(1, 1.0), (4, 1.0), (4, 0.995)])
def test_decreases_a_quadratic_and_never_accepts_a_worse_point(n_samples, decay):
    f = quadratic()
    w = torch.zeros(10, dtype=torch.float64, requires_grad=True)
    opt = RandomSearch([w], lr=1.0, sigma=0.05, n_samples=n_samples, decay=decay, seed=3)
    start = f(w).item()
    previous, accepted, rejected = start, 0, 0
    for _ in range(400):
        before = w.detach().clone()
        returned = opt.step(lambda: f(w))
        assert returned.item() == previous  # the loss at the point the step started from
        now = f(w).item()
        if torch.equal(w.detach(), before):
            rejected += 1
        else:
            assert now < previous, "accepted a point that is not strictly better"
            accepted += 1
        previous = now
    assert accepted > 10 and rejected > 10
    assert previous < 0.05 * start


def test_same_seed_same_run_and_global_seed_reproduces_seed_none():
    def run(**kwargs):
        return trajectory(lambda g: RandomSearch(g, **kwargs), 20, closure=True)

    assert_same(run(seed=5), run(seed=5), 0.0, "same seed")
    assert not torch.equal(run(seed=5)[-1][0], run(seed=6)[-1][0])
    torch.manual_seed(123)
    first = run()
    torch.manual_seed(123)
    assert_same(run(), first, 0.0, "seed=None under torch.manual_seed")


def test_step_needs_a_closure():
    opt = RandomSearch([torch.zeros(2, requires_grad=True)], seed=0)
    with pytest.raises(RuntimeError, match="closure"):
        opt.step()


def test_maximize_is_the_same_search_on_the_negated_objective():
    """Same seed: maximizing f visits exactly the points that minimizing -f visits, and f rises."""
    target = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)

    def run(maximize: bool):
        x = torch.zeros(3, dtype=torch.float64, requires_grad=True)
        opt = RandomSearch([x], lr=0.5, n_samples=3, seed=7, maximize=maximize)
        sign = 1.0 if maximize else -1.0
        values, points = [], []
        for _ in range(30):
            values.append(float(opt.step(lambda: sign * -((x - target) ** 2).sum())))
            points.append(x.detach().clone())
        return values, points

    up_values, up_points = run(True)
    down_values, down_points = run(False)
    for a, b in zip(up_points, down_points):
        assert torch.equal(a, b)
    assert up_values == [-v for v in down_values]
    assert up_values[-1] > up_values[0]
    assert all(later >= earlier for earlier, later in zip(up_values, up_values[1:]))


def test_mixed_maximize_groups_are_refused():
    a, b = torch.zeros(2, requires_grad=True), torch.zeros(2, requires_grad=True)
    opt = RandomSearch([{"params": [a]}, {"params": [b], "maximize": True}], seed=0)
    with pytest.raises(ValueError, match="maximize"):
        opt.step(lambda: (a.sum() + b.sum()))
