"""LAMB against a transcription of Algorithm 2 of You et al. (2019), phi = identity."""

import inspect
import io

import pytest
import torch

from optim import LAMB
from tests.optim.parity import assert_same, continue_run, trajectory

PAPER_DEFAULTS = dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.0)
STEPS = 60


class ReferenceLAMB(torch.optim.Optimizer):
    """Algorithm 2 of the paper, one layer (tensor) at a time, straight from the formulas."""

    def __init__(self, params, lr, betas, eps, weight_decay, maximize=False):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, maximize=maximize))

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            b1, b2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = -p.grad if group["maximize"] else p.grad
                s = self.state[p]
                if not s:
                    s.update(t=0, m=torch.zeros_like(p), v=torch.zeros_like(p))
                s["t"] += 1
                t = s["t"]
                s["m"] = b1 * s["m"] + (1 - b1) * g
                s["v"] = b2 * s["v"] + (1 - b2) * g * g
                m_hat = s["m"] / (1 - b1**t)
                v_hat = s["v"] / (1 - b2**t)
                r = m_hat / (torch.sqrt(v_hat) + group["eps"]) + group["weight_decay"] * p
                weight_norm = torch.sqrt((p * p).sum())
                update_norm = torch.sqrt((r * r).sum())
                ratio = weight_norm / update_norm if weight_norm > 0 and update_norm > 0 else 1.0
                p.copy_(p - group["lr"] * ratio * r)


CASES = [
    pytest.param({}, None, id="paper-defaults"),
    pytest.param(dict(lr=1e-2, weight_decay=0.01), dict(lr=3e-3), id="weight-decay-two-lrs"),
    pytest.param(dict(lr=5e-3, betas=(0.8, 0.99), eps=1e-3), dict(weight_decay=0.1), id="betas-eps-group-decay"),
    pytest.param(dict(lr=5e-3, weight_decay=0.01, maximize=True), None, id="maximize"),
]


def test_constructor_defaults_are_the_papers():
    signature = inspect.signature(LAMB)
    assert {name: signature.parameters[name].default for name in PAPER_DEFAULTS} == PAPER_DEFAULTS


@pytest.mark.parametrize("foreach", [False, True])
@pytest.mark.parametrize("kwargs, group2", CASES)
def test_matches_paper_algorithm(kwargs, group2, foreach):
    ours = trajectory(lambda groups: LAMB(groups, foreach=foreach, **kwargs), STEPS, group2=group2)
    reference = trajectory(lambda groups: ReferenceLAMB(groups, **{**PAPER_DEFAULTS, **kwargs}), STEPS, group2=group2)
    assert_same(ours, reference, 1e-10, "LAMB vs Algorithm 2")


@pytest.mark.parametrize("kwargs, group2", CASES)
def test_foreach_matches_single_tensor(kwargs, group2):
    single = trajectory(lambda groups: LAMB(groups, foreach=False, **kwargs), STEPS, group2=group2)
    multi = trajectory(lambda groups: LAMB(groups, foreach=True, **kwargs), STEPS, group2=group2)
    assert_same(multi, single, 1e-12, "foreach vs single tensor")


@pytest.mark.parametrize("kwargs, group2", CASES)
def test_state_dict_resume_equals_uninterrupted_run(kwargs, group2):
    def make(groups):
        return LAMB(groups, **kwargs)

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
def test_trust_ratio_is_one_for_a_zero_layer(foreach):
    # ||w|| = 0: no rescaling, so the first step is the bias-corrected Adam direction
    # m_hat / (sqrt(v_hat) + eps) = g / (|g| + eps), times lr.
    lr, eps = 0.1, 1e-6
    g = torch.tensor([2.0, -0.5, 0.0], dtype=torch.float64)
    p = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    p.grad = g.clone()
    LAMB([p], lr=lr, eps=eps, foreach=foreach).step()
    torch.testing.assert_close(p.detach(), -lr * g / (g.abs() + eps), rtol=1e-15, atol=0)


@pytest.mark.parametrize("foreach", [False, True])
def test_step_length_is_lr_times_weight_norm(foreach):
    # The trust ratio makes every layer's step lr * ||w|| long, whatever the gradient's scale.
    p = torch.tensor([[3.0, 4.0], [0.0, 0.0]], dtype=torch.float64, requires_grad=True)
    p.grad = torch.tensor([[1e-3, -2e2], [5.0, 0.1]], dtype=torch.float64)
    before = p.detach().clone()
    LAMB([p], lr=0.01, weight_decay=0.3, foreach=foreach).step()
    torch.testing.assert_close(torch.linalg.vector_norm(p.detach() - before).item(), 0.01 * 5.0, rtol=1e-14, atol=0)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(lr=-1e-3), "lr"),
        (dict(betas=(-0.1, 0.999)), "beta parameter at index 0"),
        (dict(betas=(0.9, 1.0)), "beta parameter at index 1"),
        (dict(eps=-1e-6), "eps"),
        (dict(weight_decay=-0.01), "weight_decay"),
    ],
)
def test_rejects_bad_hyperparameters(kwargs, name):
    with pytest.raises(ValueError, match=name):
        LAMB([torch.zeros(2, requires_grad=True)], **kwargs)
