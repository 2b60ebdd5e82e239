"""``fused=True`` on CUDA (optim/_fused_triton.py): the Triton kernels against our foreach path.

Without a GPU the kernels run in Triton's interpreter on CPU tensors.  The interpreter is chosen
when Triton is imported (``TRITON_INTERPRET=1``), and another test of the same process may have
imported Triton already (torch's compiler does), so the Triton steps run in a child process, this
file run as a script, which saves its results; the foreach steps, the oracle, run here.  The
``gpu`` tests check the same on CUDA, where the kernels are compiled."""

from __future__ import annotations

import inspect
import os
import platform
import subprocess
import sys
import warnings

import pytest
import torch

from optim import _fused
from optim.adagrad import Adagrad
from optim.adam import Adam, AdamW
from optim.lamb import LAMB
from optim.lion import Lion
from optim.rmsprop import RMSprop
from optim.sgd import SGD

if platform.system() != "Linux" or platform.machine() != "x86_64":  # triton has wheels for these only
    pytest.skip("triton is a dev dependency on x86_64 Linux only", allow_module_level=True)

STEPS = 3
SIZES = [1, 1000, 5003, (3, 7)]  # odd sizes: one element, partial blocks of 1024, several blocks
LRS = [None, 0.5, 2.0]  # the group's lr scaled at each step: a runtime scalar, as a schedule changes it
RTOL = 1e-6  # normwise, to float32 rounding (torch's CPU foreach kernels use fused multiply-adds)
CPP_RTOL = 1e-7  # normwise, against our C++ kernels: the same operations, none fused

CASES = [
    (Adam, {}),
    (Adam, {"amsgrad": True, "weight_decay": 0.01}),
    (Adam, {"maximize": True, "weight_decay": 0.1, "betas": (0.8, 0.99), "eps": 1e-6}),
    (AdamW, {}),
    (AdamW, {"amsgrad": True, "weight_decay": 0.1, "lr": 0.01, "maximize": True}),
    (AdamW, {"betas": (0.3, 0.9)}),  # 1 - beta1 > 0.5: lerp's other form
    (SGD, {"lr": 0.05}),
    (SGD, {"lr": 0.05, "momentum": 0.9}),
    (SGD, {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
    (SGD, {"lr": 0.05, "momentum": 0.8, "dampening": 0.3, "maximize": True}),
    (SGD, {"lr": 0.05, "weight_decay": 0.1, "maximize": True}),
    (Adagrad, {"lr_decay": 0.01, "weight_decay": 0.01, "initial_accumulator_value": 0.1, "eps": 1e-6}),
    (Adagrad, {"maximize": True, "lr": 0.1}),
    (Lion, {"lr": 0.01, "weight_decay": 0.1, "betas": (0.95, 0.98)}),
    (Lion, {"maximize": True, "lr": 0.01}),
    (RMSprop, {"lr": 0.01}),
    (RMSprop, {"lr": 0.01, "centered": True, "weight_decay": 0.01}),
    (RMSprop, {"lr": 0.01, "momentum": 0.9, "maximize": True}),
    (RMSprop, {"lr": 0.01, "centered": True, "momentum": 0.5}),
    (RMSprop, {"lr": 0.01, "centered": True, "alpha": 0.3}),  # 1 - alpha > 0.5: lerp's other form
    (LAMB, {"lr": 0.01}),
    (LAMB, {"lr": 0.01, "weight_decay": 0.1, "betas": (0.8, 0.99), "eps": 1e-4, "maximize": True}),
]


def _case_id(case) -> str:
    cls, hparams = case
    return cls.__name__ + "".join(f"-{k}={v}" for k, v in hparams.items())


def _run(case, device="cpu", dtype=torch.float32, **flags) -> list[torch.Tensor]:
    """STEPS steps from fixed parameters and gradients; the parameters and every state tensor after."""
    cls, hparams = case
    g = torch.Generator().manual_seed(0)
    shapes = [(s,) if isinstance(s, int) else s for s in SIZES]
    params = [torch.randn(s, generator=g).to(device, dtype).requires_grad_(True) for s in shapes]
    if "fused" in flags and "fused" not in inspect.signature(cls).parameters:  # RMSprop: a group key
        opt = cls([{"params": params, "fused": flags.pop("fused")}], **hparams, **flags)
    else:
        opt = cls(params, **hparams, **flags)
    base_lr = opt.param_groups[0]["lr"]
    for scale in LRS:
        opt.param_groups[0]["lr"] = base_lr * (scale or 1.0)
        for p in params:
            p.grad = torch.randn(p.shape, generator=g).to(device, dtype)
        opt.step()
    tensors = [p.detach() for p in params]
    for p in params:
        tensors += [v for _, v in sorted(opt.state[p].items()) if torch.is_tensor(v) and v.dim() > 0]
    return [t.cpu() for t in tensors]


def assert_close_normwise(actual, expected, rtol):
    assert len(actual) == len(expected)
    for a, b in zip(actual, expected, strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape
        assert torch.isfinite(a).all()
        scale = b.abs().max().item()
        err = (a - b).abs().max().item()
        assert err <= rtol * scale, f"max |a - b| = {err:.3g} > {rtol:g} * max|b| = {rtol * scale:.3g}"


def _child(out: str) -> None:
    """The Triton side, in Triton's interpreter: every case with ``fused=True`` on CPU tensors
    routed to the Triton kernels, counting kernel calls; warnings are errors (no fallback)."""
    from optim import _fused_triton

    _fused.TRITON_ON_CPU = True
    # small programs, so that a tensor spans several (5003 elements: 5 chunks, the last partial) and
    # LAMB adds its norm sums in several trips
    _fused_triton.BLOCK, _fused_triton.CHUNK, _fused_triton.REDUCE_BLOCK = 256, 1024, 2
    calls = {op: 0 for op in _fused_triton.KERNELS}

    def counting(op, kernel):
        def call(*args):
            calls[op] += 1
            return kernel(*args)

        return call

    for op, kernel in list(_fused_triton.KERNELS.items()):
        _fused_triton.KERNELS[op] = counting(op, kernel)
    launches = []
    launch = _fused_triton._Group.launch

    def counting_launch(group, kernel, *args, **keywords):
        launches.append(kernel)
        return launch(group, kernel, *args, **keywords)

    _fused_triton._Group.launch = counting_launch
    results = {"ops": sorted(_fused_triton.KERNELS), "cases": {}}
    for case in CASES:
        before, launched = sum(calls.values()), len(launches)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            tensors = _run(case, fused=True)
        results["cases"][_case_id(case)] = (tensors, sum(calls.values()) - before, len(launches) - launched)
    with warnings.catch_warnings(record=True) as caught:  # float64: refused, the foreach path instead
        warnings.simplefilter("always")
        tensors = _run(CASES[1], dtype=torch.float64, fused=True)
    results["float64"] = (tensors, [str(w.message) for w in caught])
    flat = torch.zeros(64)
    results["aligned"] = [_fused_triton._Group([[flat[k:k + 8], flat[32:40]], []]).aligned for k in (0, 1, 2, 4)]
    torch.save(results, out)


@pytest.fixture(scope="module")
def triton_results(tmp_path_factory):
    out = tmp_path_factory.mktemp("triton") / "results.pt"
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    done = subprocess.run(
        [sys.executable, __file__, str(out)], env=env, capture_output=True, text=True, timeout=300,
        cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return torch.load(out)


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_triton_kernels_match_foreach(case, triton_results):
    tensors, calls, launches = triton_results["cases"][_case_id(case)]
    assert calls == STEPS  # one kernel call per group per step: the Triton path ran, no fallback
    # one launch per group per step for the group's 4 tensors (LAMB: moments, norms, step)
    assert launches == STEPS * (3 if case[0] is LAMB else 1)
    assert_close_normwise(tensors, _run(case, foreach=True), RTOL)


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_triton_kernels_match_the_cpp_kernels(case, triton_results):
    """The C++ kernels make the same operations in the same order without fused multiply-adds, so
    the two agree more tightly than either does with torch's foreach kernels."""
    tensors, _, _ = triton_results["cases"][_case_id(case)]
    assert_close_normwise(tensors, _run(case, fused=True), CPP_RTOL)


def test_the_triton_operators_are_the_ones_dispatch_names(triton_results):
    assert triton_results["ops"] == sorted(_fused.TRITON_OPS)


def test_a_launch_is_aligned_when_every_address_is_a_multiple_of_16_bytes(triton_results):
    assert triton_results["aligned"] == [True, False, False, True]  # float offsets 0, 1, 2, 4 of one buffer


def test_float64_is_refused_with_a_warning_and_steps_through_foreach(triton_results):
    tensors, messages = triton_results["float64"]
    assert messages == ["fused=True: no Triton kernel for torch.float64 tensors (float32 only); using the foreach "
                        "path instead"]
    assert_close_normwise(tensors, _run(CASES[1], dtype=torch.float64, foreach=True), 1e-12)


@pytest.fixture
def fused_warnings():
    """Warnings of the fused path collected afresh (the once-per-process memory emptied)."""
    _fused._warned.clear()
    yield
    _fused._warned.clear()


def test_cpu_tensors_keep_the_cpp_kernel(monkeypatch):
    """Users' CPU steps never reach Triton: only the test switch routes them there."""

    def no_triton():
        raise AssertionError("the Triton path was taken for CPU tensors")

    monkeypatch.setattr(_fused, "_triton_outcome", no_triton)
    assert not _fused.TRITON_ON_CPU
    assert not _fused._wants_triton("adam_", [torch.zeros(3)])
    monkeypatch.setattr(_fused, "TRITON_ON_CPU", True)
    assert _fused._wants_triton("adam_", [torch.zeros(3)])
    assert not _fused._wants_triton("nosuch_", [torch.zeros(3)])  # an operator without a Triton twin: the C++ one
    assert not _fused._wants_triton("adam_", [])


@pytest.mark.parametrize("case", [CASES[1], CASES[8], CASES[11], CASES[13]], ids=_case_id)
def test_without_triton_the_step_warns_and_takes_foreach(case, monkeypatch, fused_warnings):
    monkeypatch.setattr(_fused, "_triton_outcome", lambda: (None, "ModuleNotFoundError: No module named 'triton'"))
    monkeypatch.setattr(_fused, "TRITON_ON_CPU", True)
    with pytest.warns(RuntimeWarning, match="Triton, which runs the fused steps of CUDA tensors, did not import"):
        fused = _run(case, fused=True)
    assert_close_normwise(fused, _run(case, foreach=True), 0.0)


cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


@pytest.mark.gpu
@cuda
@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_cuda_fused_step_runs_the_triton_kernel(case, monkeypatch):
    from optim import _fused_triton

    calls = []
    for op, kernel in list(_fused_triton.KERNELS.items()):
        monkeypatch.setitem(_fused_triton.KERNELS, op, lambda *args, _k=kernel, _op=op: calls.append(_op) or _k(*args))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no fallback warning
        fused = _run(case, device="cuda", fused=True)
    assert len(calls) == STEPS
    assert_close_normwise(fused, _run(case, foreach=True), RTOL)


@pytest.mark.gpu
@cuda
@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_cuda_fused_step_never_waits_for_the_device(case, no_device_waits):
    """The tables reach the device by an asynchronous copy and the bias corrections come from the
    CPU step counters: torch's sync debug mode raises on any call that waits for the GPU."""
    cls, hparams = case
    params = [torch.randn(s, device="cuda", requires_grad=True) for s in (5003, 1000)]
    if "fused" not in inspect.signature(cls).parameters:  # RMSprop: a group key
        opt = cls([{"params": params, "fused": True}], **hparams)
    else:
        opt = cls(params, fused=True, **hparams)
    for p in params:
        p.grad = torch.randn_like(p)
    opt.step()  # state allocated
    with no_device_waits():
        for _ in range(3):
            opt.step()


@pytest.mark.gpu
@cuda
def test_a_learning_rate_schedule_compiles_no_new_kernels():
    from optim import _fused_triton

    def compiled():
        return sum(len(cache[0]) for cache in _fused_triton._adam_kernel.device_caches.values())

    p = torch.randn(5003, device="cuda", requires_grad=True)
    opt = Adam([p], lr=1e-3, fused=True)
    p.grad = torch.randn_like(p)
    opt.step()
    after_first = compiled()
    for step in range(5):
        opt.param_groups[0]["lr"] = 1e-3 / (step + 2)
        opt.step()
    assert compiled() == after_first


@pytest.mark.gpu
@cuda
def test_cuda_float64_falls_back_to_foreach(fused_warnings):
    with pytest.warns(RuntimeWarning, match="no Triton kernel for torch.float64 tensors"):
        fused = _run((RMSprop, {}), device="cuda", dtype=torch.float64, fused=True)
    assert_close_normwise(fused, _run((RMSprop, {}), device="cuda", dtype=torch.float64, foreach=True), 0.0)


@pytest.mark.gpu
@cuda
@pytest.mark.parametrize("case", [CASES[1], CASES[8], CASES[18], CASES[21]], ids=_case_id)
def test_cuda_parameters_at_unaligned_addresses(case, monkeypatch):
    """Parameters that are views of one buffer at odd offsets (4 bytes past a 16-byte boundary): the
    launches take the kernels' unaligned variant, and the steps agree with foreach as aligned ones do."""
    from optim import _fused_triton

    alignments = []
    launch = _fused_triton._Group.launch

    def recording(group, *args, **keywords):
        alignments.append(group.aligned)
        return launch(group, *args, **keywords)

    monkeypatch.setattr(_fused_triton._Group, "launch", recording)
    cls, hparams = case
    results = []
    for flags in ({"fused": True}, {"foreach": True}):
        g = torch.Generator().manual_seed(0)
        flat = torch.randn(1 + 5003 + 1000, generator=g).cuda()
        params = [torch.nn.Parameter(flat[1:5004]), torch.nn.Parameter(flat[5004:])]
        assert params[0].data_ptr() % 16 == 4
        opt = cls([{"params": params, **flags}], **hparams) if cls is RMSprop else cls(params, **hparams, **flags)
        for _ in range(STEPS):
            for p in params:
                p.grad = torch.randn(p.shape, generator=g).cuda()
            opt.step()
        results.append([p.detach().cpu() for p in params])
    assert alignments and not any(alignments)
    assert_close_normwise(results[0], results[1], RTOL)


if __name__ == "__main__":
    _child(sys.argv[1])
