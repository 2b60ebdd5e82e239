"""The engine's ``optim/state_bytes``: recorded once, after the first step, equal to the closed
form of the optimizer's state (4 bytes per element of each 32-bit moment, 1 per element of each
8-bit one plus 4 per block of 2048, 4 per step counter), and flagged as a diagnostic."""

from __future__ import annotations

import math

import pytest

from core.metrics import is_diagnostic
from optim.quantization import MIN_QUANTIZED_SIZE
from tests.worker.splits import builtin_split, make_spec
from worker.data import prepare
from worker.engine import train
from worker.engine.recorder import STATE_BYTES
from worker.sink import ListSink


def _expected(shapes: list[int], eight_bit: bool) -> int:
    total = 0
    for n in shapes:
        moment = n + 4 * math.ceil(n / 2048) if eight_bit and n >= MIN_QUANTIZED_SIZE else 4 * n
        total += 2 * moment + 4
    return total


@pytest.mark.parametrize("solver, eight_bit", [("adam", False), ("adam8bit", True)])
def test_state_bytes_is_recorded_once_after_the_first_step(solver, eight_bit):
    split = builtin_split("digits")
    spec = make_spec(split, solver={"name": solver, "base_lr": 1e-2},
                     architecture={"name": "mlp", "depth": 1, "width": 128}, epochs=2, batch_size=128)
    sink = ListSink()
    result = train(spec, prepare(split, "cpu"), sink=sink)
    assert result.status == "succeeded"
    series = sink.series(STATE_BYTES)
    assert len(series) == 1 and series[0][0] == 1
    shapes = [p.numel() for p in result.model.parameters()]  # weights 64x128 (quantized), 128x10 and biases
    assert any(n >= MIN_QUANTIZED_SIZE for n in shapes)
    assert series[0][1] == _expected(shapes, eight_bit)
    assert is_diagnostic(STATE_BYTES)
