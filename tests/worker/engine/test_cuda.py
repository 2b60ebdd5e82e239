"""The engine on a GPU: device-resident data, bf16 autocast and fp16 with a GradScaler.  These
need CUDA and are skipped without it (the development machines and CI have none); run them
where a GPU is lent: ``pytest -m gpu``."""

from __future__ import annotations

import pytest
import torch

from tests.worker.splits import builtin_split, make_spec
from worker.data import prepare
from worker.engine import train
from worker.sink import ListSink

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA; run where a GPU is lent"),
]


def _train(precision: str):
    split = builtin_split("digits")
    spec = make_spec(split, solver={"name": "adam", "base_lr": 3e-3}, precision=precision, epochs=8,
                     batch_size=64, device="cuda")
    sink = ListSink()
    result = train(spec, prepare(split, "cuda"), sink=sink)
    return result, sink


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_learns_digits_like_fp32(precision):
    """Autocast changes the arithmetic, not the outcome: test accuracy within two points of the
    same run in fp32, every recorded loss finite, weights kept in fp32."""
    reference, _ = _train("fp32")
    result, sink = _train(precision)
    assert result.status == "succeeded"
    assert all(torch.isfinite(torch.tensor(v)) for _, v in sink.series("train/loss"))
    assert result.summary["test/accuracy"] >= reference.summary["test/accuracy"] - 0.02
    assert all(p.dtype == torch.float32 and p.is_cuda for p in result.model.parameters())


def test_fp32_on_cuda_matches_the_cpu_run_closely():
    """The same seed on the GPU and the CPU: the same data order and initial weights, so the
    first losses agree to float32 rounding (kernels differ, so not bit for bit)."""
    split = builtin_split("digits")
    losses = {}
    for device in ("cpu", "cuda"):
        spec = make_spec(split, solver={"name": "sgd", "base_lr": 0.05}, epochs=1, batch_size=64, device=device)
        sink = ListSink()
        train(spec, prepare(split, device), sink=sink)
        losses[device] = [v for _, v in sink.series("train/loss")][:5]
    assert losses["cuda"] == pytest.approx(losses["cpu"], rel=1e-3)
