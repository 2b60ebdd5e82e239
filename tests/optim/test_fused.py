"""``fused=True`` (optim/_fused.py): the compiled CPU kernels against our foreach path and torch's
own ``fused=True``, over solvers x hyperparameters x float32/float64, with two parameter groups
and a step where one parameter has no gradient; state_dicts moving between the paths; the
fallback to foreach when the kernel cannot build or does not apply, warned once."""

from __future__ import annotations

import inspect
import warnings

import pytest
import torch

from optim import _fused
from optim.adagrad import Adagrad
from optim.adam import Adam, Adam8bit, AdamW
from optim.lamb import LAMB
from optim.lion import Lion
from optim.rmsprop import RMSprop
from optim.sgd import SGD

STEPS = 12
SHAPES = [(33, 7), (7,), (), (5, 4, 3)]
NO_GRAD_STEP = 4  # the last parameter has no gradient at this step (its state is created later)
# normwise agreement: max|a - b| <= RTOL * max|b| per tensor, i.e. to the dtype's rounding
RTOL = {torch.float32: 1e-6, torch.float64: 1e-12}
# torch's fused kernels order the arithmetic differently (sqrt(v) / sqrt(bc2) + eps, ...)
TORCH_RTOL = {torch.float32: 1e-5, torch.float64: 1e-10}

CASES = [
    (Adam, {}),
    (Adam, {"amsgrad": True, "weight_decay": 0.01}),
    (Adam, {"maximize": True, "weight_decay": 0.1, "betas": (0.8, 0.99), "eps": 1e-6}),
    (Adam, {"amsgrad": True, "maximize": True, "lr": 0.01}),
    (AdamW, {}),
    (AdamW, {"amsgrad": True, "weight_decay": 0.1, "lr": 0.01}),
    (AdamW, {"maximize": True, "betas": (0.3, 0.9)}),  # 1 - beta1 > 0.5: lerp's other form
    (SGD, {"lr": 0.05}),
    (SGD, {"lr": 0.05, "momentum": 0.9}),
    (SGD, {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
    (SGD, {"lr": 0.05, "momentum": 0.8, "dampening": 0.3, "maximize": True}),
    (SGD, {"lr": 0.05, "weight_decay": 0.1, "maximize": True}),
    (Adagrad, {}),
    (Adagrad, {"lr_decay": 0.01, "weight_decay": 0.01, "initial_accumulator_value": 0.1, "eps": 1e-6}),
    (Adagrad, {"maximize": True, "lr": 0.1}),
    (Lion, {}),
    (Lion, {"lr": 0.01, "weight_decay": 0.1, "betas": (0.95, 0.98)}),
    (Lion, {"maximize": True, "lr": 0.01}),
    (RMSprop, {}),
    (RMSprop, {"momentum": 0.9, "centered": True, "weight_decay": 0.01}),
    (RMSprop, {"centered": True, "alpha": 0.3, "maximize": True}),  # 1 - alpha > 0.5: lerp's other form
    (RMSprop, {"momentum": 0.5, "eps": 1e-4, "lr": 0.001}),
    (LAMB, {}),
    (LAMB, {"weight_decay": 0.01, "lr": 0.01, "betas": (0.8, 0.9)}),
    (LAMB, {"maximize": True, "eps": 1e-8}),
]


def _torch_has_fused(cls) -> bool:
    theirs = getattr(torch.optim, cls.__name__, None)
    return theirs is not None and "fused" in inspect.signature(theirs).parameters


TORCH_CASES = [case for case in CASES if _torch_has_fused(case[0])]  # torch has no Lion, no fused RMSprop
DTYPES = [torch.float32, torch.float64]


def _case_id(case) -> str:
    cls, hparams = case
    return cls.__name__ + "".join(f"-{k}={v}" for k, v in hparams.items())


def _grads(step: int, dtype) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(100 + step)
    return [torch.randn(s, generator=g, dtype=torch.float64).to(dtype) for s in SHAPES]


def _initial(dtype) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return [torch.randn(s, generator=g, dtype=torch.float64).to(dtype).requires_grad_(True) for s in SHAPES]


def _run(make, dtype, steps=STEPS, *, params=None, opt=None, start=0):
    """Parameters after ``steps`` steps of fixed random gradients: two groups (the second with half
    the learning rate), the last parameter without a gradient at ``NO_GRAD_STEP``."""
    if params is None:
        params = _initial(dtype)
    if opt is None:
        lr = make.keywords.get("lr", 1e-3) if hasattr(make, "keywords") else 1e-3
        opt = make([{"params": params[:2]}, {"params": params[2:], "lr": lr * 0.5}])
    for step in range(start, start + steps):
        for p, g in zip(params, _grads(step, dtype)):
            p.grad = None if (step == NO_GRAD_STEP and p is params[-1]) else g
        opt.step()
    return [p.detach().clone() for p in params], opt, params


def _maker(cls, hparams, **flags):
    """``fused`` goes to the constructor, or into every group for RMSprop (torch's signature)."""
    group_flags = {}
    if "fused" in flags and "fused" not in inspect.signature(cls).parameters:
        group_flags = {"fused": flags.pop("fused")}

    def make(groups):
        return cls([{**group, **group_flags} for group in groups], **hparams, **flags)

    make.keywords = hparams
    return make


def assert_close_normwise(actual, expected, rtol):
    for a, b in zip(actual, expected, strict=True):
        assert torch.isfinite(a).all()
        scale = b.abs().max().item()
        err = (a - b).abs().max().item()
        assert err <= rtol * scale, f"max |a - b| = {err:.3g} > {rtol:g} * max|b| = {rtol * scale:.3g}"


@pytest.fixture
def fused_warnings():
    """Warnings of the fused path collected afresh (the once-per-process memory emptied)."""
    _fused._warned.clear()
    yield
    _fused._warned.clear()


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_fused_matches_foreach(case, dtype):
    cls, hparams = case
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the kernel must really run, not fall back
        fused, opt, _ = _run(_maker(cls, hparams, fused=True), dtype)
    foreach, _, _ = _run(_maker(cls, hparams, foreach=True), dtype)
    assert_close_normwise(fused, foreach, RTOL[dtype])
    assert opt.param_groups[0]["fused"] is True


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("case", TORCH_CASES, ids=_case_id)
def test_fused_matches_torch_fused(case, dtype):
    cls, hparams = case
    ours, _, _ = _run(_maker(cls, hparams, fused=True), dtype)
    theirs, _, _ = _run(_maker(getattr(torch.optim, cls.__name__), hparams, fused=True), dtype)
    assert_close_normwise(ours, theirs, TORCH_RTOL[dtype])


@pytest.mark.parametrize("case", [CASES[1], CASES[5], CASES[9], CASES[13], CASES[16], CASES[19], CASES[23]], ids=_case_id)
def test_state_dict_moves_between_fused_and_foreach(case):
    """Half a run fused, the state_dict loaded into a foreach optimizer for the rest (and the other
    way round) ends where an uninterrupted foreach run ends."""
    cls, hparams = case
    dtype = torch.float32
    whole, _, _ = _run(_maker(cls, hparams, foreach=True), dtype, 2 * STEPS)
    for first, then in (({"fused": True}, {"foreach": True}), ({"foreach": True}, {"fused": True})):
        _, opt, params = _run(_maker(cls, hparams, **first), dtype, STEPS)
        fresh_params = [p.detach().clone().requires_grad_(True) for p in params]
        lr = hparams.get("lr", 1e-3)
        fresh = _maker(cls, hparams, **then)([{"params": fresh_params[:2]}, {"params": fresh_params[2:], "lr": lr / 2}])
        fresh.load_state_dict(opt.state_dict())
        for group in fresh.param_groups:  # the loaded groups carry the first run's flags; keep the fresh one's
            group.update(fused=then.get("fused"), foreach=then.get("foreach"))
        resumed, _, _ = _run(None, dtype, STEPS, params=fresh_params, opt=fresh, start=STEPS)
        assert_close_normwise(resumed, whole, RTOL[dtype])


@pytest.mark.parametrize("case", [CASES[1], CASES[9]], ids=_case_id)
def test_build_failure_falls_back_to_foreach_and_warns_once(case, monkeypatch, fused_warnings):
    def broken():
        raise _fused.BuildError("simulated: no compiler")

    monkeypatch.setattr(_fused, "_build", broken)
    _fused._build_outcome.cache_clear()
    try:
        cls, hparams = case
        with pytest.warns(RuntimeWarning, match="did not build.*no compiler") as caught:
            fallback, _, _ = _run(_maker(cls, hparams, fused=True), torch.float64)
        assert len([w for w in caught if "fused=True" in str(w.message)]) == 1
    finally:
        _fused._build_outcome.cache_clear()
    foreach, _, _ = _run(_maker(cls, hparams, foreach=True), torch.float64)
    for a, b in zip(fallback, foreach):
        assert torch.equal(a, b)


def test_unsupported_dtype_falls_back_and_warns_once(fused_warnings):
    with pytest.warns(RuntimeWarning, match="no fused kernel for BFloat16 tensors") as caught:
        fallback, _, _ = _run(_maker(Adam, {"lr": 0.01}, fused=True), torch.bfloat16)
    assert len(caught) == 1
    foreach, _, _ = _run(_maker(Adam, {"lr": 0.01}, foreach=True), torch.bfloat16)
    for a, b in zip(fallback, foreach):
        assert torch.equal(a, b)


def test_sparse_gradients_fall_back_to_the_loop(fused_warnings):
    params = [torch.zeros(6, requires_grad=True), torch.zeros(6, requires_grad=True)]
    opt = SGD([params[0]], lr=0.5, fused=True)
    loop = SGD([params[1]], lr=0.5, foreach=False)
    grad = torch.sparse_coo_tensor([[1, 4]], [2.0, -1.0], (6,))
    params[0].grad, params[1].grad = grad, grad.clone()
    with pytest.warns(RuntimeWarning, match="sparse"):
        opt.step()
    loop.step()
    assert torch.equal(params[0], params[1])
    assert params[0][1].item() == -1.0  # 0 - 0.5 * 2


def test_complex_parameters_step_as_real_pairs():
    g = torch.Generator().manual_seed(3)
    base = torch.randn(8, dtype=torch.complex64, generator=g)
    grads = [torch.randn(8, dtype=torch.complex64, generator=g) for _ in range(5)]
    results = []
    for flags in ({"fused": True}, {"foreach": True}):
        p = base.clone().requires_grad_(True)
        opt = Adam([p], lr=0.1, amsgrad=True, **flags)
        for grad in grads:
            p.grad = grad
            opt.step()
        results.append(p.detach())
    assert_close_normwise([torch.view_as_real(results[0])], [torch.view_as_real(results[1])], 1e-6)


@pytest.mark.parametrize("cls", [Adam, AdamW, SGD, Adagrad, Lion, LAMB])
def test_fused_and_foreach_together_is_refused_as_in_torch(cls):
    """torch raises RuntimeError; ours is also the ValueError of our other argument checks."""
    p = [torch.zeros(2, requires_grad=True)]
    for expected in (ValueError, RuntimeError):
        with pytest.raises(expected, match="fused and foreach cannot be True together"):
            cls(p, lr=0.1, fused=True, foreach=True)
    if _torch_has_fused(cls):
        with pytest.raises(RuntimeError):
            getattr(torch.optim, cls.__name__)(p, lr=0.1, fused=True, foreach=True)


def test_eightbit_state_keeps_its_own_path_under_fused():
    """fused applies to parameters with 32-bit state; those with 8-bit moments take the 8-bit path
    (dequantize, step, quantize) exactly as without the flag."""
    g = torch.Generator().manual_seed(5)
    big, small = torch.randn(8192, generator=g), torch.randn(16, generator=g)
    runs = []
    for flags in ({"fused": True}, {}):
        params = [big.clone().requires_grad_(True), small.clone().requires_grad_(True)]
        opt = Adam8bit(params, lr=0.01, **flags)
        for step in range(3):
            for p in params:
                p.grad = torch.ones_like(p) * (step + 1)
            opt.step()
        runs.append([p.detach() for p in params])
    assert torch.equal(runs[0][0], runs[1][0])
    assert_close_normwise([runs[0][1]], [runs[1][1]], 1e-6)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("case", [CASES[1], CASES[9], CASES[20], CASES[23]], ids=_case_id)
def test_tensors_larger_than_a_chunk_in_parallel(case, threads):
    """100,003 elements span several of the kernel's 32,768-element chunks (and LAMB's per-chunk
    norm sums); with 2 threads the chunks run concurrently and the result is unchanged."""
    cls, hparams = case
    g = torch.Generator().manual_seed(7)
    base = torch.randn(100_003, generator=g)
    grads = [torch.randn(100_003, generator=g) for _ in range(4)]
    previous = torch.get_num_threads()
    results = []
    try:
        torch.set_num_threads(threads)
        for flags in ({"fused": True}, {"foreach": True}):
            p = base.clone().requires_grad_(True)
            opt = _maker(cls, hparams, **flags)([{"params": [p]}])
            for grad in grads:
                p.grad = grad
                opt.step()
            results.append(p.detach())
    finally:
        torch.set_num_threads(previous)
    assert_close_normwise([results[0]], [results[1]], RTOL[torch.float32])


@pytest.mark.parametrize(
    ("make_second", "reason"),
    [
        (lambda g: torch.randn(6, generator=g).to(torch.bfloat16), "BFloat16"),
        (lambda g: torch.randn(4, 6, generator=g).t(), "non-contiguous"),
    ],
    ids=["bfloat16", "non-contiguous"],
)
@pytest.mark.parametrize("case", [CASES[1], CASES[9], CASES[20], CASES[23]], ids=_case_id)
def test_a_refused_tensor_leaves_the_group_untouched_for_foreach(case, make_second, reason, fused_warnings):
    """The kernel checks every tensor before writing any: a group whose second tensor it cannot
    take steps wholly through foreach, with the first tensor's state not stepped twice."""
    cls, hparams = case
    g = torch.Generator().manual_seed(11)
    first, second = torch.randn(6, generator=g), make_second(g)
    grads = [(torch.randn(6, generator=g), torch.randn(second.shape, generator=g).to(second.dtype)) for _ in range(3)]
    results = []
    with pytest.warns(RuntimeWarning, match=reason):
        for flags in ({"fused": True}, {"foreach": True}):
            params = [first.clone().requires_grad_(True), second.clone().requires_grad_(True)]
            opt = _maker(cls, hparams, **flags)([{"params": params}])
            for g1, g2 in grads:
                params[0].grad, params[1].grad = g1, g2
                opt.step()
            results.append([p.detach() for p in params])
    for a, b in zip(*results):
        assert torch.equal(a, b)
