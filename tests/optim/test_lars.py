"""LARS against a transcription of Algorithm 1 of You et al. (2017)."""

import inspect
import io

import pytest
import torch

from optim import LARS
from tests.optim.parity import assert_same, continue_run, trajectory

# The paper gives momentum 0.9 and eta = 0.001; lr (its gamma_0) and eps have no published
# default: LARS uses 1.0 and 1e-8 (the usual implementations').
PAPER_DEFAULTS = dict(momentum=0.9, weight_decay=0.0, trust_coefficient=1e-3)
DEFAULTS = dict(lr=1.0, eps=1e-8, exclude_1d=False, **PAPER_DEFAULTS)
STEPS = 60


class ReferenceLARS(torch.optim.Optimizer):
    """Algorithm 1 of the paper, one layer (tensor) at a time, straight from the formulas:
    local = eta ||w|| / (||g|| + beta ||w|| + eps); v = m v + lr local (g + beta w); w = w - v."""

    def __init__(self, params, maximize=False, **hyper):
        super().__init__(params, dict(maximize=maximize, **hyper))

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            beta, eta = group["weight_decay"], group["trust_coefficient"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = -p.grad if group["maximize"] else p.grad
                w_norm = torch.sqrt((p * p).sum())
                g_norm = torch.sqrt((g * g).sum())
                if group["exclude_1d"] and p.dim() <= 1:
                    local = 1.0
                elif w_norm > 0 and g_norm > 0:
                    local = eta * w_norm / (g_norm + beta * w_norm + group["eps"])
                else:
                    local = 1.0
                v = self.state[p].setdefault("v", torch.zeros_like(p))
                v.copy_(group["momentum"] * v + group["lr"] * local * (g + beta * p))
                p.copy_(p - v)


CASES = [
    pytest.param({}, None, id="defaults"),
    pytest.param(dict(lr=5.0, weight_decay=5e-4), dict(lr=2.0), id="weight-decay-two-lrs"),
    pytest.param(dict(lr=3.0, momentum=0.0, trust_coefficient=0.01), None, id="no-momentum"),
    pytest.param(dict(lr=3.0, exclude_1d=True, weight_decay=1e-3), dict(lr=0.05), id="exclude-1d"),
    pytest.param(dict(lr=2.0, eps=0.5, momentum=0.5), dict(weight_decay=0.1), id="large-eps-group-decay"),
    pytest.param(dict(lr=4.0, weight_decay=1e-3, maximize=True), None, id="maximize"),
]


def test_constructor_defaults():
    signature = inspect.signature(LARS)
    assert {name: signature.parameters[name].default for name in DEFAULTS} == DEFAULTS


@pytest.mark.parametrize("foreach", [False, True])
@pytest.mark.parametrize("kwargs, group2", CASES)
def test_matches_paper_algorithm(kwargs, group2, foreach):
    ours = trajectory(lambda groups: LARS(groups, foreach=foreach, **kwargs), STEPS, group2=group2)
    reference = trajectory(lambda groups: ReferenceLARS(groups, **{**DEFAULTS, **kwargs}), STEPS, group2=group2)
    assert_same(ours, reference, 1e-10, "LARS vs Algorithm 1")


@pytest.mark.parametrize("foreach", [False, True])
def test_lr_change_reaches_only_new_momentum_contributions(foreach):
    # The momentum accumulates lr * local * (g + beta w): an lr change (a scheduler) does not rescale v.
    kwargs = dict(lr=5.0, weight_decay=1e-3)
    ours, opt, params = trajectory(lambda g: LARS(g, foreach=foreach, **kwargs), 20, return_opt=True)
    ref, ref_opt, ref_params = trajectory(lambda g: ReferenceLARS(g, **{**DEFAULTS, **kwargs}), 20, return_opt=True)
    for optimizer in (opt, ref_opt):
        for group in optimizer.param_groups:
            group["lr"] *= 0.1
    ours += continue_run(opt, params, 40, start=20)
    ref += continue_run(ref_opt, ref_params, 40, start=20)
    assert_same(ours, ref, 1e-10, "after an lr change")


@pytest.mark.parametrize("kwargs, group2", CASES)
def test_foreach_matches_single_tensor(kwargs, group2):
    single = trajectory(lambda groups: LARS(groups, foreach=False, **kwargs), STEPS, group2=group2)
    multi = trajectory(lambda groups: LARS(groups, foreach=True, **kwargs), STEPS, group2=group2)
    assert_same(multi, single, 1e-12, "foreach vs single tensor")


@pytest.mark.parametrize("kwargs, group2", CASES)
def test_state_dict_resume_equals_uninterrupted_run(kwargs, group2):
    def make(groups):
        return LARS(groups, **kwargs)

    uninterrupted = trajectory(make, 30, group2=group2)
    first, opt, params = trajectory(make, 12, group2=group2, return_opt=True)
    saved = io.BytesIO()
    torch.save(opt.state_dict(), saved)
    saved.seek(0)
    fresh_params = [p.detach().clone().requires_grad_(True) for p in params]
    _, fresh, _ = trajectory(make, 0, group2=group2, params=fresh_params, return_opt=True)
    fresh.load_state_dict(torch.load(saved))
    assert_same(first + continue_run(fresh, fresh_params, 18, start=12), uninterrupted, 0.0, "resumed run")


@pytest.mark.parametrize("foreach", [False, True])
def test_first_step_length_is_eta_lr_times_weight_norm(foreach):
    # Without weight decay and eps the local rate makes the step eta * lr * ||w|| long, whatever ||g||.
    p = torch.tensor([[3.0, 4.0], [0.0, 0.0]], dtype=torch.float64, requires_grad=True)
    p.grad = torch.tensor([[1e-3, -2e2], [5.0, 0.1]], dtype=torch.float64)
    before = p.detach().clone()
    LARS([p], lr=2.0, trust_coefficient=0.01, eps=0.0, foreach=foreach).step()
    torch.testing.assert_close(torch.linalg.vector_norm(p.detach() - before).item(), 2.0 * 0.01 * 5.0, rtol=1e-14, atol=0)


@pytest.mark.parametrize("foreach", [False, True])
def test_zero_layer_takes_a_plain_sgd_step(foreach):
    p = torch.zeros(2, 2, dtype=torch.float64, requires_grad=True)
    p.grad = torch.tensor([[1.0, -2.0], [0.5, 0.0]], dtype=torch.float64)
    LARS([p], lr=0.1, foreach=foreach).step()
    torch.testing.assert_close(p.detach(), -0.1 * p.grad, rtol=1e-15, atol=0)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(lr=-1.0), "lr"),
        (dict(momentum=-0.1), "momentum"),
        (dict(momentum=1.0), "momentum"),
        (dict(weight_decay=-1e-4), "weight_decay"),
        (dict(trust_coefficient=0.0), "trust_coefficient"),
        (dict(eps=-1e-8), "eps"),
    ],
)
def test_rejects_bad_hyperparameters(kwargs, name):
    with pytest.raises(ValueError, match=name):
        LARS([torch.zeros(2, requires_grad=True)], **kwargs)
