"""Every optimizer without a torch twin against its transcribed algorithm (references.py): the
paper's defaults, each case with and without foreach, foreach against the loop, and a checkpoint
through torch.save resumed exactly."""

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from optim import LAMB, LARS, AdaBound, AdaBoundW, Lion, RandomSearch
from tests.optim import references as ref
from tests.optim.parity import assert_same, resume_through_file, trajectory

STEPS = 60


@dataclass(frozen=True)
class Paper:
    ours: type
    reference: Callable  # (param groups, case kwargs) -> the transcription
    cases: list  # pytest.param(kwargs, group2)
    defaults: dict  # the constructor's defaults, as published
    foreach_tol: float = 1e-12
    reference_tol: float = 1e-10
    closure: bool = False  # stepped with a closure (a search, not a gradient method)
    fresh: dict = field(default_factory=dict)  # what the optimizer loading a checkpoint is built with instead

    @property
    def name(self) -> str:
        return self.ours.__name__


PAPERS = [
    Paper(LAMB, lambda g, kw: ref.ReferenceLAMB(g, **{**ref.LAMB_DEFAULTS, **kw}), ref.LAMB_CASES, ref.LAMB_DEFAULTS),
    Paper(Lion, lambda g, kw: ref.ReferenceLion(g, **{**ref.LION_DEFAULTS, **kw}), ref.LION_CASES, ref.LION_DEFAULTS,
          foreach_tol=1e-13),
    Paper(LARS, lambda g, kw: ref.ReferenceLARS(g, **{**ref.LARS_DEFAULTS, **kw}), ref.LARS_CASES, ref.LARS_DEFAULTS),
    Paper(AdaBound, lambda g, kw: ref.ReferenceAdaBound(g, False, **{**ref.ADABOUND_DEFAULTS, **kw}),
          ref.ADABOUND_CASES, ref.ADABOUND_DEFAULTS),
    Paper(AdaBoundW, lambda g, kw: ref.ReferenceAdaBound(g, True, **{**ref.ADABOUND_DEFAULTS, **kw}),
          ref.ADABOUND_CASES, ref.ADABOUND_DEFAULTS),
    # a different seed when resuming: everything that matters must come from the state dict
    Paper(RandomSearch, lambda g, kw: ref.ReferenceRandomSearch(g, **kw), ref.RANDOM_SEARCH_CASES,
          ref.RANDOM_SEARCH_DEFAULTS, foreach_tol=1e-13, reference_tol=1e-12, closure=True, fresh={"seed": 99}),
]
CASES = [pytest.param(p, *c.values, id=f"{p.name}-{c.id}") for p in PAPERS for c in p.cases]


@pytest.mark.parametrize("p", [pytest.param(p, id=p.name) for p in PAPERS])
def test_constructor_defaults_are_the_papers(p):
    signature = inspect.signature(p.ours)
    assert {name: signature.parameters[name].default for name in p.defaults} == p.defaults


@pytest.mark.parametrize("foreach", [False, True], ids=lambda f: f"foreach{f}")
@pytest.mark.parametrize("p, kwargs, group2", CASES)
def test_matches_the_published_algorithm(p, kwargs, group2, foreach):
    ours = trajectory(lambda g: p.ours(g, foreach=foreach, **kwargs), STEPS, group2=group2, closure=p.closure)
    reference = trajectory(lambda g: p.reference(g, kwargs), STEPS, group2=group2, closure=p.closure)
    assert_same(ours, reference, p.reference_tol, f"{p.name} vs its reference")


@pytest.mark.parametrize("p, kwargs, group2", CASES)
def test_foreach_matches_single_tensor(p, kwargs, group2):
    single = trajectory(lambda g: p.ours(g, foreach=False, **kwargs), STEPS, group2=group2, closure=p.closure)
    multi = trajectory(lambda g: p.ours(g, foreach=True, **kwargs), STEPS, group2=group2, closure=p.closure)
    assert_same(multi, single, p.foreach_tol, "foreach vs single tensor")


@pytest.mark.parametrize("p, kwargs, group2", CASES)
def test_state_dict_resume_equals_uninterrupted_run(p, kwargs, group2):
    resumed, uninterrupted, _ = resume_through_file(
        lambda g: p.ours(g, **kwargs), group2, closure=p.closure, make_fresh=lambda g: p.ours(g, **{**kwargs, **p.fresh})
    )
    assert_same(resumed, uninterrupted, 0.0, "resumed run")
