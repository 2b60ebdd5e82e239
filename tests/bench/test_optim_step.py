"""``descent bench optim`` on a tiny size: every implementation is timed, the ratios and
bandwidths are computed from the times it measured, and its table reads back as those numbers."""

from __future__ import annotations

import pytest
import torch

from bench.optim_step import TORCH_COUNTERPARTS, VARIANTS, bytes_per_step, make_params, run_benchmark, table
from bench.table import parse_markdown, render
from optim import catalog

ONLY = ["sgd", "adam", "lion"]  # torch-named with fused, torch-named, and one torch lacks


@pytest.fixture(scope="module")
def result():
    return run_benchmark(device="cpu", n_params=10_000, n_tensors=7, repeats=2, only=ONLY, threads=1, best_of=2)


def test_rows_cover_every_implementation(result):
    impls = {}
    for row in result.rows:
        impls.setdefault(row.optimizer, []).append(row.implementation)
    assert set(impls) == set(ONLY)
    for name in ("sgd", "adam"):  # ours and torch 2.13 have fused SGD and Adam on CPU
        assert impls[name] == [
            "ours loop", "ours foreach", "ours fused", "torch for-loop", "torch foreach", "torch fused",
        ]
    assert impls["lion"] == ["ours loop", "ours foreach", "ours fused"]  # torch has no Lion: compared with its Adam


def test_ratios_are_computed_from_the_measured_times(result):
    """Torch-named solvers: ratios to their own torch rows.  Others: to torch's Adam, timed in the
    same interleaved rounds (so the denominators are carried on the row)."""
    by_key = {(r.optimizer, r.implementation): r for r in result.rows}
    for row in result.rows:
        assert row.ms > 0
        if row.optimizer in TORCH_COUNTERPARTS:
            assert row.reference == row.optimizer
            torch_rows = [r for (opt, impl), r in by_key.items() if opt == row.optimizer and impl.startswith("torch")]
            assert row.torch_fastest_ms == min(r.ms for r in torch_rows)
            assert row.torch_foreach_ms == by_key[(row.optimizer, "torch foreach")].ms
        else:
            assert row.reference == "adam" and row.torch_fastest_ms <= row.torch_foreach_ms
        assert row.vs_torch_fastest == pytest.approx(row.ms / row.torch_fastest_ms, rel=1e-12)
        assert row.vs_torch_foreach == pytest.approx(row.ms / row.torch_foreach_ms, rel=1e-12)
        if row.optimizer in ("sgd", "adam"):
            assert row.torch_fused_ms == by_key[(row.optimizer, "torch fused")].ms
        else:  # lion: torch's fused Adam, timed in the same rounds
            assert row.torch_fused_ms > 0
        assert row.vs_torch_fused == pytest.approx(row.ms / row.torch_fused_ms, rel=1e-12)
    assert by_key[("adam", "torch foreach")].vs_torch_foreach == 1.0
    assert min(r.vs_torch_fastest for r in result.rows if r.optimizer == "sgd" and r.implementation[0] == "t") == 1.0


def test_bandwidth_counts_the_bytes_the_update_moves(result):
    """SGD with momentum: read p, g, buf, write p, buf = 5 float32 per parameter; Adam 7; Lion 5."""
    per_param = {"sgd": 5, "adam": 7, "lion": 5}
    for row in result.rows:
        assert row.bytes_per_step == 4 * 10_000 * per_param[row.optimizer]
        assert row.gbps == pytest.approx(row.bytes_per_step / (row.ms * 1e-3) / 1e9)
    assert result.copy_gbps > 0


def test_the_table_reads_back_as_the_measured_numbers(result):
    text = render(table(result), markdown=True)
    assert "10,000 float32 params in 7 tensors, best of 2 medians of 2 steps" in text.splitlines()[0]
    (rows,) = parse_markdown(text)
    assert len(rows) == len(result.rows)
    for cells, row in zip(rows, result.rows):
        assert (cells["optimizer"], cells["implementation"]) == (row.optimizer, row.implementation)
        assert float(cells["ms/step"]) == pytest.approx(row.ms, abs=5e-4)
        assert float(cells["vs torch fastest"].rstrip("x")) == pytest.approx(row.vs_torch_fastest, abs=5e-3)
        assert float(cells["vs torch foreach"].rstrip("x")) == pytest.approx(row.vs_torch_foreach, abs=5e-3)
        fused = cells["vs torch fused"]
        assert fused == "-" if row.vs_torch_fused is None else float(fused.rstrip("x")) == pytest.approx(
            row.vs_torch_fused, abs=5e-3)
        assert float(cells["GB/s"]) == pytest.approx(row.gbps, abs=0.05)
        assert cells["compared with"] == f"torch {row.reference}"


def test_variants_are_timed_against_torch_with_the_same_settings():
    r = run_benchmark(device="cpu", n_params=2_000, n_tensors=2, repeats=1, only=["sgd-nesterov-wd"], threads=1)
    assert {row.optimizer for row in r.rows} == {"sgd-nesterov-wd"}
    impls = [row.implementation for row in r.rows]
    assert impls[:2] == ["ours loop", "ours foreach"] and "torch foreach" in impls
    state = {row.implementation: row.bytes_per_step for row in r.rows}
    assert state["ours foreach"] == state["torch foreach"] == 4 * 2_000 * 5  # a momentum buffer each
    with_variants = run_benchmark(device="cpu", n_params=200, n_tensors=2, repeats=1, only=["rmsprop"],
                                  variants=True)
    assert {row.optimizer for row in with_variants.rows} == {"rmsprop", "rmsprop-momentum-centered"}
    assert set(VARIANTS) >= {"sgd-nesterov-wd", "rmsprop-momentum-centered"}


def test_closure_and_model_solvers_are_listed_as_not_timed():
    result = run_benchmark(device="cpu", n_params=1_000, n_tensors=2, repeats=1, only=["lbfgs"], threads=1)
    assert result.rows == [] and "closure" in result.skipped["lbfgs"]
    if "kfac" in catalog.SOLVERS:
        assert "model" in run_benchmark("cpu", 1_000, 2, 1, only=["kfac"]).skipped["kfac"]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"only": ["nosuch"]}, "only"), ({"threads": 0}, "threads"), ({"best_of": 0}, "best_of")],
)
def test_bad_options(kwargs, field):
    with pytest.raises(ValueError, match=field):
        run_benchmark(device="cpu", n_params=100, n_tensors=2, repeats=1, **kwargs)


def test_params_are_split_evenly():
    params = make_params(103, 10, "cpu")
    assert sum(p.numel() for p in params) == 103
    assert {p.numel() for p in params} == {10, 11}
    assert all(p.grad is not None and p.grad.shape == p.shape for p in params)


def test_bytes_per_step_ignores_scalar_state():
    import torch

    params = make_params(100, 2, "cpu")
    opt = torch.optim.Adam(params)
    opt.step()
    assert bytes_per_step(opt, params) == 4 * 100 * 7  # 'step' counters are not parameter-sized


def test_compile_time_is_a_note_of_the_measured_seconds(result):
    import dataclasses

    timed = dataclasses.replace(result, compile_s={"cold build": 12.345, "cached load": 0.0789})
    notes = table(timed).notes
    assert notes[-1].endswith("cold build 12.35 s, cached load 0.08 s")
    assert not any("compiled" in n for n in table(result).notes)  # not measured, not shown


@pytest.mark.slow
def test_compile_seconds_builds_afresh_then_loads_from_the_cache():
    from bench.optim_step import compile_seconds

    seconds = compile_seconds()
    assert list(seconds) == ["cold build", "cached load"]
    assert seconds["cold build"] > seconds["cached load"] > 0


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA; run where a GPU is lent")
def test_cuda_times_the_triton_kernels_as_ours_fused():
    result = run_benchmark(device="cuda", n_params=100_000, n_tensors=5, repeats=3, only=["adam", "lamb"])
    impls = {(row.optimizer, row.implementation) for row in result.rows}
    assert {("adam", "ours fused"), ("lamb", "ours fused"), ("adam", "torch fused")} <= impls
