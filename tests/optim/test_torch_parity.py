"""Every optimizer that mirrors torch.optim (the table in mirrors.py) against its torch twin:
each flag combination with and without foreach, foreach against the loop, checkpoints resumed
seamlessly and interchanged with torch, the state layout, complex and sparse parameters, and the
constructor's signature."""

import copy
import inspect

import pytest
import torch

from tests.optim.mirrors import MIRRORS
from tests.optim.parity import assert_same, continue_run, resume, trajectory

FOREACH = (False, True)


def _table(rows):
    """pytest.params over the mirrors: ``rows(mirror)`` yields (values tuple, id) per mirror."""
    return [pytest.param(m, *values, id=f"{m.name}-{tag}") for m in MIRRORS for values, tag in rows(m)]


def _run(cls, kwargs, group2, steps=50):
    return trajectory(lambda groups: cls(groups, **kwargs), steps, group2=group2)


CASES = _table(lambda m: ((c.values, c.id) for c in m.cases))


@pytest.mark.parametrize("foreach", FOREACH, ids=lambda f: f"foreach{f}")
@pytest.mark.parametrize("m, kwargs, group2", CASES)
def test_matches_torch(m, kwargs, group2, foreach):
    theirs_foreach = foreach if m.torch_foreach is None else m.torch_foreach
    ours = _run(m.ours, {**kwargs, "foreach": foreach}, group2)
    theirs = _run(m.theirs, {**kwargs, "foreach": theirs_foreach}, group2)
    assert_same(ours, theirs, 1e-10, f"{m.name} vs {m.theirs.__module__}")


@pytest.mark.parametrize("m, kwargs, group2", CASES)
def test_foreach_equals_single_tensor(m, kwargs, group2):
    multi = _run(m.ours, {**kwargs, "foreach": True}, group2)
    single = _run(m.ours, {**kwargs, "foreach": False}, group2)
    assert_same(multi, single, m.foreach_tol, "foreach vs single-tensor")


RESUMES = _table(lambda m: (
    ((kwargs, group2, split, foreach), f"{i}-split{split}-foreach{foreach}")
    for i, (kwargs, group2, splits) in enumerate(m.resumes) for split in splits for foreach in FOREACH
))


@pytest.mark.parametrize("m, kwargs, group2, split, foreach", RESUMES)
def test_state_dict_resume_is_seamless(m, kwargs, group2, split, foreach):
    def make(groups):
        return m.ours(groups, **kwargs, foreach=foreach)

    whole, whole_opt, _ = trajectory(make, 40, group2=group2, return_opt=True)
    head, opt, params = trajectory(make, split, group2=group2, return_opt=True)
    tail, resumed = resume(make, params, copy.deepcopy(opt.state_dict()), split, 40 - split, group2, return_opt=True)
    assert_same(head + tail, whole, 0.0, "resumed vs uninterrupted")
    if m.averages:
        assert_same([m.averages(resumed)], [m.averages(whole_opt)], 0.0, "averages")


CHECKPOINTS = _table(lambda m: (
    ((kwargs, group2, split, way), f"{i}-{way}")
    for i, (kwargs, group2, split) in enumerate(m.checkpoints)
    for way in (("torch-to-ours", "ours-to-torch") if m.both_ways else ("torch-to-ours",))
))


@pytest.mark.parametrize("m, kwargs, group2, split, way", CHECKPOINTS)
def test_checkpoint_continues_in_the_other_implementation(m, kwargs, group2, split, way):
    """A checkpoint from one implementation continues in the other exactly as in the first."""
    source, target = (m.theirs, m.ours) if way == "torch-to-ours" else (m.ours, m.theirs)
    _, src_opt, params = trajectory(lambda g: source(g, **kwargs), split, group2=group2, return_opt=True)
    saved = copy.deepcopy(src_opt.state_dict())
    other, other_opt = resume(lambda g: target(g, **kwargs), params, saved, split, 30, group2, return_opt=True)
    same = continue_run(src_opt, params, 30, split)
    assert_same(other, same, 1e-10, f"{target.__module__} continuing a {source.__module__} checkpoint")
    if m.state_keys is not None:
        assert set(saved["state"][0]) == m.state_keys
    if m.averages:
        assert_same([m.averages(other_opt)], [m.averages(src_opt)], 1e-10, "averages")


LAYOUTS = _table(lambda m: (((kwargs, group2, steps), str(i)) for i, (kwargs, group2, steps) in enumerate(m.layouts)))


@pytest.mark.parametrize("m, kwargs, group2, steps", LAYOUTS)
def test_state_layout_matches_torch(m, kwargs, group2, steps):
    ours, theirs = (
        trajectory(lambda g, c=cls: c(g, **kwargs), steps, group2=group2, return_opt=True)[1].state_dict()
        for cls in (m.ours, m.theirs)
    )
    assert [sorted(g) for g in ours["param_groups"]] == [sorted(g) for g in theirs["param_groups"]]
    assert ours["state"].keys() == theirs["state"].keys()
    for pid, their_state in theirs["state"].items():
        our_state = ours["state"][pid]
        assert our_state.keys() == their_state.keys(), pid
        for key, value in their_state.items():
            mine = our_state[key]
            assert (mine.dtype, mine.shape, mine.device) == (value.dtype, value.shape, value.device), key
            torch.testing.assert_close(mine, value, rtol=1e-12, atol=0, msg=key)


def _complex_history(cls, kwargs, problem, foreach, averages=None):
    """Complex parameters minimised under ``cls``: ``fixed-point`` records every step of one
    vector (and its averages); the others record the end of a run over two random tensors."""
    if problem == "fixed-point":
        params = [torch.tensor([1 + 2j, -0.5 + 0.1j], dtype=torch.complex128, requires_grad=True)]
        targets, steps = [torch.tensor(0.3 - 0.2j, dtype=torch.complex128)], 10
    else:
        g = torch.Generator().manual_seed(3)
        params = [torch.randn(s, dtype=torch.complex128, generator=g).requires_grad_(True) for s in [(4, 3), (5,)]]
        random = [torch.randn(p.shape, dtype=torch.complex128, generator=g) for p in params]
        targets, steps = (random if problem == "random-targets" else [torch.tensor(1j)] * 2), 20
    opt = cls(params, **kwargs, foreach=foreach)
    history = []
    for _ in range(steps):
        opt.zero_grad()
        sum(((p - t).abs() ** 2).sum() for p, t in zip(params, targets)).backward()
        opt.step()
        if problem == "fixed-point":
            extra = averages(opt) if averages else []
            history.append([torch.view_as_real(t.detach()).clone() for t in [*params, *extra]])
    return history if problem == "fixed-point" else [[p.detach().clone() for p in params]]


COMPLEX = _table(lambda m: (((f,), f"foreach{f}") for f in FOREACH) if m.complex else ())


@pytest.mark.parametrize("m, foreach", COMPLEX)
def test_complex_parameters_match_torch(m, foreach):
    kwargs, problem, tol = m.complex
    theirs_foreach = foreach if m.torch_foreach is None else m.torch_foreach
    ours = _complex_history(m.ours, kwargs, problem, foreach, m.averages)
    theirs = _complex_history(m.theirs, kwargs, problem, theirs_foreach, m.averages)
    assert_same(ours, theirs, tol, f"complex {m.name} vs torch")


@pytest.mark.parametrize("m", [pytest.param(m, id=m.name) for m in MIRRORS if m.sparse])
def test_sparse_gradient_matches_torch(m):
    kwargs, extra = m.sparse

    def run(cls):
        torch.manual_seed(0)
        emb = torch.nn.Embedding(10, 3, sparse=True).double()
        opt = cls(emb.parameters(), **kwargs)
        for step in range(5):
            opt.zero_grad()
            emb(torch.tensor([step, step + 1, *extra])).pow(2).sum().backward()
            opt.step()
        return [[emb.weight.detach().clone()]]

    assert_same(run(m.ours), run(m.theirs), 1e-12, f"sparse {m.name}")


@pytest.mark.parametrize("m", [pytest.param(m, id=m.name) for m in MIRRORS])
def test_signature_matches_torch(m):
    """Same names, order, keyword-only markers and defaults: a drop-in replacement."""

    def signature(cls):
        return [(p.name, p.kind, p.default) for p in inspect.signature(cls.__init__).parameters.values()]

    assert signature(m.ours) == signature(m.theirs)
