"""AdaBound and AdaBoundW against a transcription of the authors' algorithm (Luo et al., 2019):
Adam with bias correction whose per-coordinate step is clipped into bounds converging to final_lr."""

import inspect
import io
import math

import pytest
import torch

from optim import AdaBound, AdaBoundW
from tests.optim.parity import assert_same, continue_run, trajectory

PAPER_DEFAULTS = dict(
    lr=1e-3, betas=(0.9, 0.999), final_lr=0.1, gamma=1e-3, eps=1e-8, weight_decay=0.0, amsbound=False
)
STEPS = 60


class ReferenceAdaBound(torch.optim.Optimizer):
    """The authors' AdaBound / AdaBoundW step, one tensor at a time, from the formulas:
    eta_t = clip(lr * sqrt(1 - b2^t) / (1 - b1^t) / (sqrt(v_t) + eps), lower(t), upper(t))."""

    def __init__(self, params, decoupled, maximize=False, **hyper):
        super().__init__(params, dict(decoupled=decoupled, maximize=maximize, **hyper))
        for group in self.param_groups:
            group["lr_at_start"] = group["lr"]

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            b1, b2 = group["betas"]
            lr, wd, eps, gamma = group["lr"], group["weight_decay"], group["eps"], group["gamma"]
            final_lr = group["final_lr"] * lr / group["lr_at_start"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = -p.grad if group["maximize"] else p.grad
                s = self.state[p]
                if not s:
                    s.update(t=0, m=torch.zeros_like(p), v=torch.zeros_like(p), v_max=torch.zeros_like(p))
                s["t"] += 1
                t = s["t"]
                if not group["decoupled"]:
                    g = g + wd * p
                s["m"] = b1 * s["m"] + (1 - b1) * g
                s["v"] = b2 * s["v"] + (1 - b2) * g * g
                s["v_max"] = torch.maximum(s["v_max"], s["v"])
                v = s["v_max"] if group["amsbound"] else s["v"]
                adam_step = lr * math.sqrt(1 - b2**t) / (1 - b1**t) / (torch.sqrt(v) + eps)
                lower = final_lr * (1 - 1 / (gamma * t + 1))
                upper = final_lr * (1 + 1 / (gamma * t))
                new = p - torch.clamp(adam_step, lower, upper) * s["m"]
                if group["decoupled"]:
                    new = new - wd * p
                p.copy_(new)


CLASSES = [pytest.param(AdaBound, False, id="AdaBound"), pytest.param(AdaBoundW, True, id="AdaBoundW")]
# gamma well above the paper's 1e-3 makes the bounds bite within 60 steps, so the clipping is tested.
CASES = [
    pytest.param({}, None, id="paper-defaults"),
    pytest.param(dict(lr=1e-2, final_lr=0.05, gamma=0.3), dict(lr=3e-3), id="tight-bounds-two-lrs"),
    pytest.param(dict(lr=1e-2, gamma=0.1, weight_decay=1e-2), dict(weight_decay=0.0), id="weight-decay"),
    pytest.param(dict(lr=1e-2, gamma=0.1, amsbound=True, weight_decay=1e-3), None, id="amsbound"),
    pytest.param(dict(lr=1e-2, gamma=0.05, maximize=True, weight_decay=1e-3), None, id="maximize"),
]


@pytest.mark.parametrize("cls, _", CLASSES)
def test_constructor_defaults_are_the_papers(cls, _):
    signature = inspect.signature(cls)
    assert {name: signature.parameters[name].default for name in PAPER_DEFAULTS} == PAPER_DEFAULTS


@pytest.mark.parametrize("foreach", [False, True])
@pytest.mark.parametrize("kwargs, group2", CASES)
@pytest.mark.parametrize("cls, decoupled", CLASSES)
def test_matches_authors_algorithm(cls, decoupled, kwargs, group2, foreach):
    ours = trajectory(lambda groups: cls(groups, foreach=foreach, **kwargs), STEPS, group2=group2)
    reference = trajectory(
        lambda groups: ReferenceAdaBound(groups, decoupled, **{**PAPER_DEFAULTS, **kwargs}), STEPS, group2=group2
    )
    assert_same(ours, reference, 1e-10, f"{cls.__name__} vs reference")


@pytest.mark.parametrize("foreach", [False, True])
@pytest.mark.parametrize("cls, decoupled", CLASSES)
def test_final_lr_follows_a_changed_lr(cls, decoupled, foreach):
    # As in the authors' code: a scheduler lowering lr lowers final_lr (and the bounds) with it.
    kwargs = dict(lr=1e-2, final_lr=0.05, gamma=0.3, weight_decay=1e-3)
    ours, opt, params = trajectory(lambda g: cls(g, foreach=foreach, **kwargs), 20, return_opt=True)
    ref, ref_opt, ref_params = trajectory(
        lambda g: ReferenceAdaBound(g, decoupled, **{**PAPER_DEFAULTS, **kwargs}), 20, return_opt=True
    )
    for optimizer in (opt, ref_opt):
        for group in optimizer.param_groups:
            group["lr"] *= 0.1
    ours += continue_run(opt, params, 40, start=20)
    ref += continue_run(ref_opt, ref_params, 40, start=20)
    assert_same(ours, ref, 1e-10, "after an lr change")


@pytest.mark.parametrize("kwargs, group2", CASES)
@pytest.mark.parametrize("cls, _", CLASSES)
def test_foreach_matches_single_tensor(cls, _, kwargs, group2):
    single = trajectory(lambda groups: cls(groups, foreach=False, **kwargs), STEPS, group2=group2)
    multi = trajectory(lambda groups: cls(groups, foreach=True, **kwargs), STEPS, group2=group2)
    assert_same(multi, single, 1e-12, "foreach vs single tensor")


@pytest.mark.parametrize("kwargs, group2", CASES)
@pytest.mark.parametrize("cls, _", CLASSES)
def test_state_dict_resume_equals_uninterrupted_run(cls, _, kwargs, group2):
    def make(groups):
        return cls(groups, **kwargs)

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
        (dict(lr=0.0), "lr"),
        (dict(lr=-1e-3), "lr"),
        (dict(betas=(1.0, 0.999)), "beta parameter at index 0"),
        (dict(betas=(0.9, 1.5)), "beta parameter at index 1"),
        (dict(final_lr=-0.1), "final_lr"),
        (dict(gamma=0.0), "gamma"),
        (dict(gamma=1.0), "gamma"),
        (dict(eps=-1e-8), "eps"),
        (dict(weight_decay=-1e-4), "weight_decay"),
    ],
)
@pytest.mark.parametrize("cls, _", CLASSES)
def test_rejects_bad_hyperparameters(cls, _, kwargs, name):
    with pytest.raises(ValueError, match=name):
        cls([torch.zeros(2, requires_grad=True)], **kwargs)


def test_added_group_gets_its_own_base_lr():
    opt = AdaBound([torch.zeros(2, requires_grad=True)], lr=1e-3)
    opt.add_param_group({"params": [torch.zeros(3, requires_grad=True)], "lr": 4e-3})
    assert [g["base_lr"] for g in opt.param_groups] == [1e-3, 4e-3]
    with pytest.raises(ValueError, match="lr"):
        opt.add_param_group({"params": [torch.zeros(1, requires_grad=True)], "lr": 0.0})
