"""The engine's fused default (worker/engine/fused_default.py): the rule's table; engine runs that
take the fused kernel when it is ready and the default path when it is not (the oracle: whether
``optim._fused.run`` is called, and the log line); fused runs equal default-path runs to float32
rounding (Adam, AdamW, SGD with momentum on a digits MLP); a resume reproduces the uninterrupted
run exactly with fused on both sides, and a checkpoint written fused resumed where the kernel is
not ready never reaches it."""

from __future__ import annotations

import logging

import pytest
import torch

from optim import _fused
from tests.worker.splits import builtin_split, make_spec
from worker.data import prepare
from worker.engine import fused_default, train
from worker.sink import ListSink

F32, F64 = torch.float32, torch.float64

# devices, dtypes, solver has a fused step, spec chooses the path, kernel ready -> fused, why (a part of it)
RULE = [
    (["cpu"], [F32], True, False, True, True, "fused CPU kernel"),
    (["cpu", "cpu"], [F32, F64], True, False, True, True, "fused CPU kernel"),
    (["cuda"], [F32], True, False, True, False, "not on the CPU"),
    (["cpu", "cuda"], [F32], True, False, True, False, "not on the CPU"),
    ([], [], True, False, True, False, "not on the CPU"),
    (["cpu"], [F32], False, False, True, False, "no fused step"),
    (["cpu"], [F32], True, True, True, False, "path the spec chose"),
    (["cpu"], [torch.bfloat16], True, False, True, False, "bfloat16 parameters"),
    (["cpu"], [F32, torch.complex64], True, False, True, False, "complex64, float32 parameters"),
    (["cpu"], [F32], True, False, False, False, "fused kernel not built yet"),
]


@pytest.mark.parametrize(("devices", "dtypes", "capable", "spec_chooses", "ready", "fused", "why"), RULE)
def test_the_rule(devices, dtypes, capable, spec_chooses, ready, fused, why):
    """And readiness, which may load the library, is asked only when all else allows fused."""
    asked = []
    got = fused_default.wanted(devices=devices, dtypes=dtypes, capable=capable, spec_chooses=spec_chooses,
                               ready=lambda: asked.append(1) or ready)
    assert got[0] is fused and why in got[1]
    assert bool(asked) == (fused or "not built" in why)


@pytest.mark.parametrize(("name", "hparams", "fused"), [
    ("adam", {"lr": 1e-3}, True),
    ("rmsprop", {"lr": 1e-3}, True),
    ("lookahead", {"base": "sgd"}, True),
    ("nadam", {"lr": 1e-3}, False),
    ("lookahead", {"base": "radam"}, False),
    ("adam", {"lr": 1e-3, "foreach": False}, False),  # a spec's own choice wins (no catalog field offers one yet)
    ("adam", {"lr": 1e-3, "fused": False}, False),
    ("adam", {"lr": 1e-3, "foreach": None}, True),  # None: not a choice
])
def test_choose_asks_the_solver_and_the_spec(name, hparams, fused, monkeypatch):
    monkeypatch.setattr(fused_default, "kernel_ready", lambda: True)
    params = [torch.nn.Parameter(torch.zeros(3))]
    assert fused_default.choose(name, hparams, params)[0] is fused


@pytest.fixture(scope="module")
def kernel():
    assert _fused.warm(), "the fused CPU kernel does not build on this machine"


@pytest.fixture
def kernel_calls(kernel, monkeypatch) -> list[str]:
    calls: list[str] = []
    real = _fused.run
    monkeypatch.setattr(_fused, "run", lambda op, *args: calls.append(op) or real(op, *args))
    return calls


def _ready(monkeypatch, ready: bool) -> None:
    monkeypatch.setattr(fused_default, "kernel_ready", lambda: ready)


def _train(spec, split, **kwargs):
    sink = ListSink()
    return train(spec, prepare(split), sink=sink, **kwargs), sink


# solver section, the kernel its fused step calls
SOLVERS = [
    ({"name": "adam", "base_lr": 1e-3}, "adam_"),
    ({"name": "adamw", "base_lr": 1e-3, "weight_decay": 0.05}, "adam_"),
    ({"name": "sgd", "base_lr": 0.05, "momentum": 0.9}, "sgd_"),
]
EPOCH_METRICS = ("train/epoch_loss", "train/accuracy", "val/loss", "val/accuracy", "test/loss", "test/accuracy")


def _digits_spec(solver, **training):
    split = builtin_split("digits")
    arch = {"name": "mlp", "depth": 2, "width": 64}
    return make_spec(split, solver=solver, architecture=arch, **{"epochs": 4, "batch_size": 64, **training}), split


@pytest.mark.parametrize(("solver", "op"), SOLVERS, ids=[s["name"] for s, _ in SOLVERS])
def test_a_fused_run_equals_the_default_path_to_float32_rounding(solver, op, kernel_calls, monkeypatch, caplog):
    spec, split = _digits_spec(solver)
    runs = {}
    for ready in (True, False):
        _ready(monkeypatch, ready)
        kernel_calls.clear()
        with caplog.at_level(logging.INFO, logger="worker.engine.loop"):
            caplog.clear()
            runs[ready] = _train(spec, split)
        paths = [r.getMessage() for r in caplog.records if "steps through" in r.getMessage()]
        assert len(paths) == 1 and paths[0].endswith("fused CPU kernel" if ready else "(fused kernel not built yet)")
        assert kernel_calls == ([op] * runs[ready][0].step if ready else [])
    (fused, fused_sink), (plain, plain_sink) = runs[True], runs[False]
    # The kernel and the default path differ by float32 rounding in a step (tests/optim/test_fused.py);
    # training amplifies that (Adam's m / sqrt(v) turns a rounding in a near-zero gradient into up to
    # a step of lr), so the runs agree to rounding over the first epoch and within ROUNDING_DRIFT after.
    first_epoch = fused.step // 4
    got, want = [v for _, v in fused_sink.series("train/loss")], [v for _, v in plain_sink.series("train/loss")]
    assert len(got) == len(want) == fused.step
    assert got[:first_epoch] == pytest.approx(want[:first_epoch], rel=1e-5)
    for name in ("train/loss", *EPOCH_METRICS):
        got, want = [v for _, v in fused_sink.series(name)], [v for _, v in plain_sink.series(name)]
        assert len(got) == len(want) > 0, name
        if name.endswith("accuracy"):  # a sample on a decision boundary may flip
            assert got == pytest.approx(want, abs=1 / 300), name
        else:
            assert got == pytest.approx(want, rel=ROUNDING_DRIFT), name
    _assert_parameters_close(fused.model, plain.model)


# Relative drift that float32 rounding differences grow to over these 4-epoch runs: measured on one
# thread (the worker tests' setting), at most 7e-5 in a loss (bound 1e-3) and, in a parameter,
# 5.7e-3 of the largest weight for Adam (2.1e-3 in the resume test; SGD and AdamW 3e-7), against a
# bound of 1e-2.  The first epoch's 1e-5 is what catches a wrong update: Adam's step size 1 % off
# moves its losses by 1.6e-3.
ROUNDING_DRIFT = 1e-3


def _assert_parameters_close(model, reference) -> None:
    for a, b in zip(model.parameters(), reference.parameters(), strict=True):
        assert (a - b).abs().max() <= 10 * ROUNDING_DRIFT * b.abs().max()


def test_a_resume_with_fused_on_both_sides_reproduces_the_run_exactly(kernel_calls, monkeypatch, tmp_path):
    _ready(monkeypatch, True)
    spec, split = _digits_spec(SOLVERS[0][0], epochs=3)
    whole, whole_sink = _train(spec, split)
    ckpt = tmp_path / "last.pt"
    stop_at = whole.step // 3 + 5  # mid-way through the second epoch
    first, _ = _train(spec, split, checkpoint_path=ckpt, should_cancel=lambda p: p.step == stop_at)
    assert first.status == "cancelled"
    kernel_calls.clear()
    resumed, resumed_sink = _train(spec, split, checkpoint_path=ckpt, resume_from=ckpt)
    assert len(kernel_calls) == whole.step - whole.step // 3  # every step after the checkpoint, fused
    for name, tensor in whole.model.state_dict().items():
        assert torch.equal(tensor, resumed.model.state_dict()[name]), name
    assert resumed_sink.series("test/loss") == whole_sink.series("test/loss")


def test_a_fused_checkpoint_resumed_where_the_kernel_is_not_ready_takes_the_default_path(
    kernel_calls, monkeypatch, tmp_path,
):
    """The loaded parameter groups carry the writer's fused flag; the resumed run keeps its own,
    so it never builds the kernel mid-run, and ends where the default path ends (to rounding)."""
    spec, split = _digits_spec(SOLVERS[0][0], epochs=2)
    ckpt = tmp_path / "last.pt"
    _ready(monkeypatch, True)
    _train(spec, split, checkpoint_path=ckpt, should_cancel=lambda p: p.step == 20)
    assert kernel_calls
    _ready(monkeypatch, False)
    whole, _ = _train(spec, split)
    kernel_calls.clear()
    resumed, _ = _train(spec, split, checkpoint_path=ckpt, resume_from=ckpt)
    assert kernel_calls == [] and resumed.step == whole.step
    _assert_parameters_close(resumed.model, whole.model)
    # and the other way: a default-path checkpoint resumed where the kernel is ready steps fused
    _train(spec, split, checkpoint_path=ckpt, should_cancel=lambda p: p.step == 20)
    assert kernel_calls == []
    _ready(monkeypatch, True)
    resumed, _ = _train(spec, split, checkpoint_path=ckpt, resume_from=ckpt)
    assert len(kernel_calls) == whole.step // 2  # the second epoch's steps; the first came from the checkpoint
