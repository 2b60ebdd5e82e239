"""The convergence diagnosis stays silent on a healthy run: an mlp learning digits with Adam,
trained by the real engine, whose recorded points are read as the api reads stored ones."""

from __future__ import annotations

from core.diagnosis import aggregate, diagnose_aggregates
from tests.worker.splits import builtin_split, make_spec
from worker.data import prepare
from worker.engine import train
from worker.sink import ListSink


def test_a_digits_mlp_trained_with_adam_gets_no_finding():
    split = builtin_split("digits")
    spec = make_spec(split, solver={"name": "adam", "base_lr": 1e-3}, architecture={"name": "mlp"},
                     epochs=12, batch_size=64, diagnostics_every=4)
    sink = ListSink()
    result = train(spec, prepare(split), sink=sink)
    assert result.status == "succeeded" and result.summary["test/accuracy"] >= 0.9
    assert diagnose_aggregates(aggregate((p.name, p.epoch, p.value) for p in sink.points)) == []
