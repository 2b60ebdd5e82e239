"""For every catalog solver: k steps, ``state_dict()``, a fresh optimizer on fresh parameters
loads it, and continuing gives exactly the uninterrupted run (closure solvers get a closure,
model solvers a model, the wrapper its base; stochastic ones resume their noise from the state)."""

from __future__ import annotations

import copy

import pytest
import torch

from optim import catalog
from optim.factory import build_optimizer
from tests.optim import parity

FIRST, THEN = 12, 10  # the cut falls after parity.NO_GRAD_STEP, so state of a skipped step is saved too

# solvers whose constructor takes one parameter group (torch's LBFGS convention)
SINGLE_GROUP = {"lbfgs", "bfgs", "newton", "hessianfree", "naturalgradient"}
# non-default hyperparameters that make the saved state richer (momentum buffers, max trackers)
HPARAMS = {
    "sgd": {"momentum": 0.9, "lr": 0.05},
    "rmsprop": {"momentum": 0.9, "centered": True},
    "adam": {"amsgrad": True},
    "adabound": {"amsbound": True},
    "lookahead": {"k": 4},  # the cut (12) is a sync step of k=4; the test below also cuts mid-cycle
    "randomsearch": {"n_samples": 2},
}


class Run:
    """One solver on the parity problem, driven as the engine drives it."""

    def __init__(self, name: str, hparams: dict, start_params):
        self.entry = catalog.solver(name)
        self.model = parity.mlp(start_params)
        self.params = list(self.model.parameters())
        groups = (
            self.params if name in SINGLE_GROUP
            else [{"params": self.params[:2]}, {"params": self.params[2:], "lr": self._half_lr(hparams)}]
        )
        self.opt = build_optimizer(groups, name, hparams, model=self.model)

    def _half_lr(self, hparams):
        return 0.5 * hparams.get("lr", self.entry.defaults()["lr"])

    def steps(self, n: int, start: int):
        history = []
        for step in range(start, start + n):
            x, y = parity.batch(step)

            def closure(step=step, x=x, y=y):
                self.opt.zero_grad(set_to_none=True)
                loss = ((self.model(x) - y) ** 2).mean()
                loss.backward()
                if step == parity.NO_GRAD_STEP:
                    self.params[-1].grad = None
                return loss

            if self.entry.needs_closure:
                self.opt.step(closure)
            else:
                closure()
                self.opt.step()
            history.append([p.detach().clone() for p in self.params])
        return history


def _resumed(name: str, hparams: dict, first: int, then: int):
    torch.manual_seed(0)
    run = Run(name, hparams, parity.initial_params())
    head = run.steps(first, 0)
    saved = copy.deepcopy(run.opt.state_dict())
    torch.manual_seed(123)  # a resumed run must not depend on the global generator's position
    fresh = Run(name, hparams, [p.detach().clone() for p in run.params])
    fresh.opt.load_state_dict(saved)
    return head + fresh.steps(then, first)


def _uninterrupted(name: str, hparams: dict, steps: int):
    torch.manual_seed(0)
    return Run(name, hparams, parity.initial_params()).steps(steps, 0)


def _hparams(name):
    seeded = {"seed": 0} if "seed" in {h.name for h in catalog.solver(name).hyperparameters} else {}
    return {**seeded, **HPARAMS.get(name, {})}


@pytest.mark.parametrize("name", sorted(catalog.SOLVERS))
def test_resume_equals_uninterrupted(name):
    hparams = _hparams(name)
    whole = _uninterrupted(name, hparams, FIRST + THEN)
    parity.assert_same(_resumed(name, hparams, FIRST, THEN), whole, tol=0.0, what=f"{name} resumed")
    moved = (whole[-1][0] - whole[FIRST - 1][0]).abs().max().item()
    assert moved > 0, f"{name}: no movement after the cut; the comparison would be vacuous"


@pytest.mark.parametrize("first", [3, 5])
def test_lookahead_resumes_mid_cycle(first):
    """Lookahead's slow weights and step counter live in its state: cut between two syncs."""
    if "lookahead" not in catalog.SOLVERS:
        pytest.fail("lookahead is not in the catalog")
    whole = _uninterrupted("lookahead", {"k": 4}, first + 6)
    parity.assert_same(_resumed("lookahead", {"k": 4}, first, 6), whole, tol=0.0, what="lookahead mid-cycle")


@pytest.mark.parametrize("name", sorted(SINGLE_GROUP))
def test_single_group_table_is_true(name):
    """The table above is what the constructors enforce, not a guess."""
    if name not in catalog.SOLVERS:
        pytest.fail(f"{name} is not in the catalog")
    params = [p.clone().requires_grad_(True) for p in parity.initial_params()]
    with pytest.raises(ValueError):
        build_optimizer([{"params": params[:2]}, {"params": params[2:]}], name, {}, model=parity.mlp(params))
