"""Lookahead against a transcription of Algorithm 1 of Zhang et al. (2019), around torch's
SGD and Adam checked against transcriptions of their own update rules."""

import copy
import inspect
import math
import pickle
import warnings

import pytest
import torch

from optim import Lookahead
from tests.optim.parity import assert_same, batch, initial_params, loss_fn, resume_through_file, trajectory

STEPS = 60


class ReferenceSGD(torch.optim.Optimizer):
    """Heavy-ball SGD: b = m b + g; w = w - lr b."""

    def __init__(self, params, lr, momentum):
        super().__init__(params, dict(lr=lr, momentum=momentum))

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    b = self.state[p].setdefault("b", torch.zeros_like(p))
                    b.copy_(group["momentum"] * b + p.grad)
                    p.copy_(p - group["lr"] * b)


class ReferenceAdam(torch.optim.Optimizer):
    """Algorithm 1 of Kingma & Ba (2015)."""

    def __init__(self, params, lr):
        super().__init__(params, dict(lr=lr))

    @torch.no_grad()
    def step(self):
        b1, b2, eps = 0.9, 0.999, 1e-8
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                s = self.state[p]
                if not s:
                    s.update(t=0, m=torch.zeros_like(p), v=torch.zeros_like(p))
                s["t"] += 1
                s["m"] = b1 * s["m"] + (1 - b1) * p.grad
                s["v"] = b2 * s["v"] + (1 - b2) * p.grad**2
                m_hat, v_hat = s["m"] / (1 - b1 ** s["t"]), s["v"] / (1 - b2 ** s["t"])
                p.copy_(p - group["lr"] * m_hat / (torch.sqrt(v_hat) + eps))


class ReferenceLookahead:
    """Algorithm 1: phi_0 = theta at the first step; every k inner steps
    phi = phi + alpha (theta - phi), theta = phi."""

    def __init__(self, inner, k, alpha):
        self.inner, self.k, self.alpha, self.t, self.slow = inner, k, alpha, 0, None
        self.param_groups = inner.param_groups

    def zero_grad(self, set_to_none=True):
        self.inner.zero_grad(set_to_none=set_to_none)

    @torch.no_grad()
    def step(self):
        params = [p for group in self.param_groups for p in group["params"]]
        if self.slow is None:
            self.slow = [p.clone() for p in params]
        self.inner.step()
        self.t += 1
        if self.t % self.k == 0:
            for p, phi in zip(params, self.slow):
                phi.copy_(phi + self.alpha * (p - phi))
                p.copy_(phi)


INNER = {
    "sgd-momentum": (lambda g: torch.optim.SGD(g, lr=0.05, momentum=0.9), lambda g: ReferenceSGD(g, 0.05, 0.9)),
    "adam": (lambda g: torch.optim.Adam(g, lr=1e-2), lambda g: ReferenceAdam(g, 1e-2)),
}
CASES = [
    pytest.param("sgd-momentum", {}, dict(lr=0.02), id="sgd-paper-defaults"),
    pytest.param("adam", {}, None, id="adam-paper-defaults"),
    pytest.param("sgd-momentum", dict(k=1, alpha=0.8), None, id="k1"),
    pytest.param("adam", dict(k=3, alpha=0.0), None, id="alpha0-restarts-from-start"),
    pytest.param("adam", dict(k=7, alpha=0.3), dict(lr=3e-3), id="k7"),
]


def test_constructor_defaults_are_the_papers():
    signature = inspect.signature(Lookahead)
    assert (signature.parameters["k"].default, signature.parameters["alpha"].default) == (5, 0.5)


@pytest.mark.parametrize("foreach", [False, True])
@pytest.mark.parametrize("inner, kwargs, group2", CASES)
def test_matches_paper_algorithm(inner, kwargs, group2, foreach):
    make_inner, make_reference_inner = INNER[inner]
    ours = trajectory(lambda g: Lookahead(make_inner(g), foreach=foreach, **kwargs), STEPS, group2=group2)
    k, alpha = kwargs.get("k", 5), kwargs.get("alpha", 0.5)
    reference = trajectory(lambda g: ReferenceLookahead(make_reference_inner(g), k, alpha), STEPS, group2=group2)
    assert_same(ours, reference, 1e-10, "Lookahead vs Algorithm 1")


@pytest.mark.parametrize("k", [1, 4])
def test_alpha_one_is_the_inner_optimizer_alone(k):
    make_inner = INNER["adam"][0]
    wrapped = trajectory(lambda g: Lookahead(make_inner(g), k=k, alpha=1.0), STEPS)
    alone = trajectory(make_inner, STEPS)
    assert_same(wrapped, alone, 1e-12, "alpha = 1")  # phi + (theta - phi) is theta up to rounding


@pytest.mark.parametrize("inner, kwargs, group2", CASES)
def test_foreach_matches_single_tensor(inner, kwargs, group2):
    make_inner = INNER[inner][0]
    single = trajectory(lambda g: Lookahead(make_inner(g), foreach=False, **kwargs), STEPS, group2=group2)
    multi = trajectory(lambda g: Lookahead(make_inner(g), foreach=True, **kwargs), STEPS, group2=group2)
    assert_same(multi, single, 0.0, "foreach vs single tensor")


@pytest.mark.parametrize("inner, kwargs, group2", CASES)
def test_state_dict_resume_equals_uninterrupted_run(inner, kwargs, group2):
    make_inner = INNER[inner][0]

    def make(groups):
        return Lookahead(make_inner(groups), **kwargs)

    # the cut (12) falls mid-period for k > 1
    resumed, uninterrupted, fresh = resume_through_file(make, group2)
    assert fresh.param_groups is fresh.base_optimizer.param_groups
    assert_same(resumed, uninterrupted, 0.0, "resumed run")


@pytest.mark.parametrize("clone", [copy.deepcopy, lambda opt: pickle.loads(pickle.dumps(opt))])
def test_deepcopy_and_pickle_keep_the_wrapper(clone):
    params = [torch.ones(2, requires_grad=True)]
    opt = Lookahead(torch.optim.SGD(params, lr=0.1), k=3, alpha=0.25)
    copied = clone(opt)
    assert (copied.k, copied.alpha, type(copied.base_optimizer)) == (3, 0.25, torch.optim.SGD)
    assert copied.param_groups is copied.base_optimizer.param_groups


def test_lr_scheduler_drives_the_inner_optimizer():
    # StepLR halves the lr every 10 steps; the reference sets the same lr by hand each step.
    params = [p.clone().requires_grad_(True) for p in initial_params()]
    ref_params = [p.clone().requires_grad_(True) for p in initial_params()]
    opt = Lookahead(torch.optim.SGD(params, lr=0.1, momentum=0.9))
    assert isinstance(opt, torch.optim.Optimizer)
    reference = ReferenceLookahead(ReferenceSGD(ref_params, 0.1, 0.9), 5, 0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. "lr_scheduler.step() before optimizer.step()"
        scheduler = torch.optim.lr_scheduler.StepLR(opt, step_size=10, gamma=0.5)
        for step in range(35):
            x, y = batch(step)
            for o, ps in ((opt, params), (reference, ref_params)):
                o.zero_grad()
                loss_fn(ps, x, y).backward()
            reference.param_groups[0]["lr"] = 0.1 * 0.5 ** (step // 10)
            opt.step()
            reference.step()
            scheduler.step()
    assert opt.base_optimizer.param_groups[0]["lr"] == pytest.approx(0.1 * 0.5**3)
    assert_same([params], [ref_params], 1e-10, "scheduled Lookahead")


def test_closure_loss_is_returned_and_zero_grad_clears_grads():
    w = torch.tensor([1.0, -2.0], requires_grad=True)
    opt = Lookahead(torch.optim.SGD([w], lr=0.1))

    def closure():
        opt.zero_grad()
        loss = (w**2).sum()
        loss.backward()
        return loss

    assert opt.step(closure).item() == 5.0
    opt.zero_grad()
    assert w.grad is None


def test_added_param_group_reaches_the_inner_optimizer():
    inner = torch.optim.SGD([torch.ones(2, requires_grad=True)], lr=0.1)
    opt = Lookahead(inner)
    extra = torch.ones(3, requires_grad=True)
    opt.add_param_group({"params": [extra], "lr": 0.5})
    assert len(inner.param_groups) == 2 and inner.param_groups[1]["params"] == [extra]
    extra.grad = torch.ones(3)
    opt.step()
    assert torch.equal(extra.detach(), torch.full((3,), 0.5))


@pytest.mark.parametrize(
    "kwargs, error, name",
    [
        (dict(k=0), ValueError, "k"),
        (dict(k=2.5), ValueError, "k"),
        (dict(alpha=-0.1), ValueError, "alpha"),
        (dict(alpha=1.5), ValueError, "alpha"),
        (dict(alpha=math.nan), ValueError, "alpha"),
    ],
)
def test_rejects_bad_hyperparameters(kwargs, error, name):
    with pytest.raises(error, match=name):
        Lookahead(torch.optim.SGD([torch.zeros(2, requires_grad=True)], lr=0.1), **kwargs)


def test_rejects_a_base_that_is_not_an_optimizer():
    with pytest.raises(TypeError, match="base_optimizer"):
        Lookahead([torch.zeros(2, requires_grad=True)])
