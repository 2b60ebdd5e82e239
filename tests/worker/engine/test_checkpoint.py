"""Checkpoints are read weights-only: every catalogued solver and scheduler resumes bit for bit
from a file ``torch.load(weights_only=True)`` accepts, the python and numpy generators come back
exactly, and a file that would run code when unpickled (or one an older worker wrote) is refused
with an error naming it, its payload never run."""

from __future__ import annotations

import os
import random
import uuid

import numpy as np
import pytest
import torch

from optim import catalog
from tests.worker.splits import builtin_split, make_spec
from worker.data import prepare
from worker.engine import checkpoint, train
from worker.sink import ListSink

TIMING = {"epoch_time", "samples_per_s"}
EPOCHS = 3


def _values(sink: ListSink) -> dict[tuple[str, int], float]:
    return {(p.name, p.step): p.value for p in sink.points if p.name not in TIMING}


def _solver_body(name: str, **extra) -> dict:
    entry = catalog.solver(name)
    body: dict = {"name": name}
    if entry.wraps:
        body["base"] = "adam"
    if any(h.name == "lr" for h in entry.hyperparameters):
        body["base_lr"] = 1e-2 if entry.family != "second_order" else 1.0
    return {**body, **extra}


def _assert_resumes_bit_for_bit(spec, split, tmp_path) -> None:
    """Train ``spec`` whole; train it again, stopped mid-way through the last epoch, and resume
    from the checkpoint the last finished epoch left: same weights, same metrics."""
    whole_sink = ListSink()
    whole = train(spec, prepare(split), sink=whole_sink)
    assert whole.status == "succeeded"
    steps_per_epoch = whole.step // EPOCHS
    interrupt_at = (EPOCHS - 1) * steps_per_epoch + 1

    ckpt = tmp_path / "last.pt"
    first_sink = ListSink()
    first = train(spec, prepare(split), sink=first_sink, checkpoint_path=ckpt,
                  should_cancel=lambda p: p.step == interrupt_at)
    assert first.status == "cancelled" and first.step == interrupt_at
    stored = torch.load(ckpt, map_location="cpu", weights_only=True)  # what a resume reads
    assert stored["format"] == checkpoint.FORMAT and stored["step"] == (EPOCHS - 1) * steps_per_epoch

    resumed_sink = ListSink()
    resumed = train(spec, prepare(split), sink=resumed_sink, checkpoint_path=ckpt, resume_from=ckpt)
    assert resumed.status == "succeeded" and resumed.step == whole.step
    for name, tensor in whole.model.state_dict().items():
        assert torch.equal(tensor, resumed.model.state_dict()[name]), name
    assert {**_values(first_sink), **_values(resumed_sink)} == _values(whole_sink)


_SOLVER_CASES = [(name, {}) for name in sorted(catalog.SOLVERS)] + [
    ("adam", {"amsgrad": True}),
    ("lbfgs", {"line_search_fn": "strong_wolfe"}),
    ("lookahead", {"base": "sgd"}),
    ("naturalgradient", {"fisher": "sampled", "base_lr": 0.01}),
    ("randomsearch", {"seed": 3}),
    ("shampoo", {"graft": "adam"}),
]


@pytest.mark.parametrize(("name", "extra"), _SOLVER_CASES, ids=[f"{n}-{e}" if e else n for n, e in _SOLVER_CASES])
def test_every_catalogued_solver_resumes_bit_for_bit_from_a_weights_only_checkpoint(name, extra, tmp_path):
    split = builtin_split("wine")
    entry = catalog.solver(name)
    # 13·4 + 4 + 4·3 + 3 = 71 parameters: small enough for every second-order solver
    width = 4 if entry.max_params is not None or entry.needs_closure else 16
    # dropout draws from torch's generator on every step; naturalgradient's per-sample gradients
    # (torch.func.vmap) refuse random operations, so it trains without
    dropout = 0.0 if name == "naturalgradient" else 0.1
    spec = make_spec(split, solver=_solver_body(name, **extra), epochs=EPOCHS, batch_size=32,
                     architecture={"name": "mlp", "depth": 1, "width": width, "dropout": dropout})
    _assert_resumes_bit_for_bit(spec, split, tmp_path)


_SCHEDULER_REQUIRED = {
    "exponentiallr": {"gamma": 0.5},
    "cycliclr": {"base_lr": 1e-3, "max_lr": 1e-2},
    "onecyclelr": {"max_lr": 1e-2},
}


@pytest.mark.parametrize("name", sorted(catalog.SCHEDULERS))
def test_every_catalogued_scheduler_resumes_bit_for_bit_from_a_weights_only_checkpoint(name, tmp_path):
    split = builtin_split("wine")
    scheduler = {"name": name, "warmup_steps": 2, **_SCHEDULER_REQUIRED.get(name, {})}
    spec = make_spec(split, solver={"name": "sgd", "base_lr": 0.05, "momentum": 0.9}, scheduler=scheduler,
                     epochs=EPOCHS, batch_size=32, gradient_noise=0.01)
    _assert_resumes_bit_for_bit(spec, split, tmp_path)


def test_python_and_numpy_generators_come_back_exactly(tmp_path):
    checkpoint.seed_everything(11)
    random.gauss(0, 1)  # leaves a cached second gaussian in both generators
    np.random.standard_normal()
    path = tmp_path / "rng.pt"
    checkpoint.save(path, {"rng": checkpoint.rng_states()})
    expected = (random.random(), random.gauss(0, 1), np.random.standard_normal(3).tolist(),
                np.random.randint(0, 2**31, 4).tolist(), torch.rand(3))

    checkpoint.seed_everything(12)
    checkpoint.set_rng_states(checkpoint.load(path)["rng"])
    got = (random.random(), random.gauss(0, 1), np.random.standard_normal(3).tolist(),
           np.random.randint(0, 2**31, 4).tolist(), torch.rand(3))
    assert got[:4] == expected[:4] and torch.equal(got[4], expected[4])


class _Payload:
    """Unpickling this runs ``touch marker``: what a crafted checkpoint would do."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_a_checkpoint_that_would_run_code_is_refused_and_never_runs_it(tmp_path):
    marker = tmp_path / f"pwned-{uuid.uuid4().hex}"
    path = tmp_path / "last.pt"
    torch.save({"format": checkpoint.FORMAT, "step": 0, "payload": _Payload(marker)}, path)

    with pytest.raises(ValueError) as refused:
        checkpoint.load(path)
    assert str(path) in str(refused.value) and "restart it from scratch" in str(refused.value)
    assert "os.system" in str(refused.value) or "posix.system" in str(refused.value)

    split = builtin_split("wine")
    with pytest.raises(ValueError, match="cannot be loaded safely"):
        train(make_spec(split), prepare(split), sink=ListSink(), resume_from=path)
    assert not marker.exists()

    # the payload is live: the unsafe loader this replaced would have run it
    torch.load(path, weights_only=False)
    assert marker.exists()


def test_a_checkpoint_an_older_worker_wrote_is_refused_naming_the_file(tmp_path):
    old = tmp_path / "format1.pt"  # format 1 stored the generators' states as python and numpy objects
    torch.save({"format": 1, "step": 3, "rng": {"numpy": np.random.get_state(), "python": random.getstate()}}, old)
    with pytest.raises(ValueError, match="restart it from scratch") as refused:
        checkpoint.load(old)
    assert str(old) in str(refused.value) and "older worker" in str(refused.value)

    plain = tmp_path / "plain.pt"  # loadable, but of another format
    torch.save({"format": 1, "step": 3}, plain)
    with pytest.raises(ValueError, match=f"{plain}.* format 1, expected {checkpoint.FORMAT}.*from scratch"):
        checkpoint.load(plain)


@pytest.mark.parametrize("value", [np.float64(1.0), np.arange(3), np.int64(2), {1, np.int32(2)}, object()])
def test_saving_a_value_a_weights_only_load_refuses_fails_and_writes_nothing(value, tmp_path):
    path = tmp_path / "last.pt"
    with pytest.raises(TypeError, match=r"state\['optimizer'\]\['state'\]\['x'\].*weights-only"):
        checkpoint.save(path, {"optimizer": {"state": {"x": value}}})
    assert not path.exists() and not list(tmp_path.iterdir())
