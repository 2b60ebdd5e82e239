"""Lion against a line-by-line transcription of Algorithm 2 of Chen et al. (2023)."""

import inspect
import io

import pytest
import torch

from optim import Lion
from tests.optim.parity import assert_same, continue_run, trajectory

PAPER_DEFAULTS = dict(lr=1e-4, betas=(0.9, 0.99), weight_decay=0.0)
STEPS = 60


class ReferenceLion(torch.optim.Optimizer):
    """Algorithm 2 of the paper, one tensor at a time, straight from the formulas."""

    def __init__(self, params, lr, betas, weight_decay, maximize=False):
        super().__init__(params, dict(lr=lr, betas=betas, weight_decay=weight_decay, maximize=maximize))

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            lr, wd = group["lr"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = -p.grad if group["maximize"] else p.grad
                m = self.state[p].setdefault("m", torch.zeros_like(p))
                c = beta1 * m + (1 - beta1) * g
                p.copy_(p - lr * (torch.sign(c) + wd * p))
                m.copy_(beta2 * m + (1 - beta2) * g)


CASES = [
    pytest.param({}, None, id="paper-defaults"),
    pytest.param(dict(lr=3e-3, weight_decay=0.5), dict(lr=1e-3), id="weight-decay-two-lrs"),
    pytest.param(dict(lr=2e-3, betas=(0.5, 0.9)), dict(weight_decay=0.1), id="betas-group-decay"),
    pytest.param(dict(lr=1e-3, weight_decay=0.2, maximize=True), None, id="maximize"),
]


def test_constructor_defaults_are_the_papers():
    signature = inspect.signature(Lion)
    assert {name: signature.parameters[name].default for name in PAPER_DEFAULTS} == PAPER_DEFAULTS


@pytest.mark.parametrize("foreach", [False, True])
@pytest.mark.parametrize("kwargs, group2", CASES)
def test_matches_paper_algorithm(kwargs, group2, foreach):
    ours = trajectory(lambda groups: Lion(groups, foreach=foreach, **kwargs), STEPS, group2=group2)
    reference = trajectory(lambda groups: ReferenceLion(groups, **{**PAPER_DEFAULTS, **kwargs}), STEPS, group2=group2)
    assert_same(ours, reference, 1e-10, "Lion vs Algorithm 2")


@pytest.mark.parametrize("kwargs, group2", CASES)
def test_foreach_matches_single_tensor(kwargs, group2):
    single = trajectory(lambda groups: Lion(groups, foreach=False, **kwargs), STEPS, group2=group2)
    multi = trajectory(lambda groups: Lion(groups, foreach=True, **kwargs), STEPS, group2=group2)
    assert_same(multi, single, 1e-13, "foreach vs single tensor")


@pytest.mark.parametrize("kwargs, group2", CASES)
def test_state_dict_resume_equals_uninterrupted_run(kwargs, group2):
    def make(groups):
        return Lion(groups, **kwargs)

    uninterrupted = trajectory(make, 30, group2=group2)
    first, opt, params = trajectory(make, 12, group2=group2, return_opt=True)
    saved = io.BytesIO()
    torch.save(opt.state_dict(), saved)
    saved.seek(0)
    fresh_params = [p.detach().clone().requires_grad_(True) for p in params]
    _, fresh, _ = trajectory(make, 0, group2=group2, params=fresh_params, return_opt=True)
    fresh.load_state_dict(torch.load(saved))
    assert_same(first + continue_run(fresh, fresh_params, 18, start=12), uninterrupted, 0.0, "resumed run")


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(lr=-1e-4), "lr"),
        (dict(betas=(1.0, 0.99)), "beta parameter at index 0"),
        (dict(betas=(0.9, -0.01)), "beta parameter at index 1"),
        (dict(betas=(0.9, 0.99, 0.999)), "betas"),
        (dict(weight_decay=-1e-2), "weight_decay"),
        (dict(weight_decay=float("nan")), "weight_decay"),
    ],
)
def test_rejects_bad_hyperparameters(kwargs, name):
    with pytest.raises(ValueError, match=name):
        Lion([torch.zeros(2, requires_grad=True)], **kwargs)


def test_every_coordinate_moves_by_exactly_lr():
    # The sign update: from zero momentum the first step is -lr * sign(g), whatever |g| is.
    p = torch.tensor([1.0, -2.0, 3.0, 0.5], dtype=torch.float64, requires_grad=True)
    p.grad = torch.tensor([1e-6, -50.0, 0.0, 3.0], dtype=torch.float64)
    Lion([p], lr=0.25).step()
    assert torch.equal(p.detach(), torch.tensor([0.75, -1.75, 3.0, 0.25], dtype=torch.float64))
