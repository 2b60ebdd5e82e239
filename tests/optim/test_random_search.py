"""RandomSearch: greedy Gaussian search, checked against a transcription of its rule, on a
quadratic with a known minimum, and for reproducibility and resumption."""

import inspect
import io

import pytest
import torch

from optim import RandomSearch
from tests.optim.parity import assert_same, continue_run, trajectory

DEFAULTS = dict(lr=1.0, sigma=0.1, n_samples=1, decay=1.0)
STEPS = 60


class ReferenceRandomSearch:
    """The documented rule: candidates theta + lr * sigma * decay^t * z, z ~ N(0, I) drawn from a
    CPU generator seeded with ``seed``, in parameter order; move to the best strictly lower one."""

    def __init__(self, groups, seed, lr=1.0, sigma=0.1, n_samples=1, decay=1.0):
        self.groups = [{"lr": lr, "sigma": sigma, "decay": decay, **g} for g in groups]
        self.n_samples, self.t = n_samples, 0
        self.generator = torch.Generator().manual_seed(seed)

    def zero_grad(self, set_to_none=True):
        for g in self.groups:
            for p in g["params"]:
                p.grad = None

    @torch.no_grad()
    def step(self, closure):
        closure = torch.enable_grad()(closure)  # the harness's closure calls backward()
        start = [[p.clone() for p in g["params"]] for g in self.groups]
        best_loss, best = closure().item(), start
        for _ in range(self.n_samples):
            candidate = [
                [p0 + g["lr"] * g["sigma"] * g["decay"] ** self.t * torch.randn(p0.shape, generator=self.generator,
                                                                                dtype=p0.dtype)
                 for p0 in group_start]
                for g, group_start in zip(self.groups, start)
            ]
            for g, values in zip(self.groups, candidate):
                for p, v in zip(g["params"], values):
                    p.copy_(v)
            loss = closure().item()
            if loss < best_loss:
                best_loss, best = loss, candidate
        for g, values in zip(self.groups, best):
            for p, v in zip(g["params"], values):
                p.copy_(v)
        self.t += 1


CASES = [
    pytest.param(dict(seed=0), None, id="defaults"),
    pytest.param(dict(seed=1, sigma=0.05, n_samples=3), dict(lr=0.5), id="three-samples-two-lrs"),
    pytest.param(dict(seed=2, lr=0.3, decay=0.97, n_samples=2), dict(sigma=0.3), id="decay-group-sigma"),
]


def test_constructor_defaults():
    signature = inspect.signature(RandomSearch)
    assert {name: signature.parameters[name].default for name in DEFAULTS} == DEFAULTS


@pytest.mark.parametrize("foreach", [False, True])
@pytest.mark.parametrize("kwargs, group2", CASES)
def test_matches_the_documented_rule(kwargs, group2, foreach):
    ours = trajectory(lambda g: RandomSearch(g, foreach=foreach, **kwargs), STEPS, group2=group2, closure=True)
    reference = trajectory(lambda g: ReferenceRandomSearch(g, **kwargs), STEPS, group2=group2, closure=True)
    assert_same(ours, reference, 1e-12, "RandomSearch vs its rule")


@pytest.mark.parametrize("kwargs, group2", CASES)
def test_foreach_matches_single_tensor(kwargs, group2):
    single = trajectory(lambda g: RandomSearch(g, foreach=False, **kwargs), STEPS, group2=group2, closure=True)
    multi = trajectory(lambda g: RandomSearch(g, foreach=True, **kwargs), STEPS, group2=group2, closure=True)
    assert_same(multi, single, 1e-13, "foreach vs single tensor")


@pytest.mark.parametrize("kwargs, group2", CASES)
def test_state_dict_resume_equals_uninterrupted_run(kwargs, group2):
    def make(groups, seed=kwargs["seed"]):
        return RandomSearch(groups, **{**kwargs, "seed": seed})

    uninterrupted = trajectory(make, 30, group2=group2, closure=True)
    first, opt, params = trajectory(make, 12, group2=group2, closure=True, return_opt=True)
    saved = io.BytesIO()
    torch.save(opt.state_dict(), saved)
    saved.seek(0)
    fresh_params = [p.detach().clone().requires_grad_(True) for p in params]
    # A different seed: everything that matters must come from the state dict.
    _, fresh, _ = trajectory(lambda g: make(g, seed=99), 0, group2=group2, params=fresh_params, return_opt=True)
    fresh.load_state_dict(torch.load(saved))
    rest = continue_run(fresh, fresh_params, 18, start=12, closure=True)
    assert_same(first + rest, uninterrupted, 0.0, "resumed run")


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


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(lr=-1.0), "lr"),
        (dict(sigma=0.0), "sigma"),
        (dict(n_samples=0), "n_samples"),
        (dict(n_samples=1.5), "n_samples"),
        (dict(decay=0.0), "decay"),
        (dict(decay=1.01), "decay"),
        (dict(seed=-1), "seed"),
    ],
)
def test_rejects_bad_hyperparameters(kwargs, name):
    with pytest.raises(ValueError, match=name):
        RandomSearch([torch.zeros(2, requires_grad=True)], **kwargs)


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
