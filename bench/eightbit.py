"""``descent bench eightbit``: Adam with 8-bit state against 32-bit Adam, trained by the engine.

Each model trains with ``adam`` and with ``adam8bit`` (``optim.quantization``: block-wise
dynamic-tree quantization of both moments, Dettmers et al. 2022) from the same seeds, so a seed's
two runs start from the same weights and see the same batches; only the optimizer state differs.
A row gives the test accuracy over the seeds (mean ± sample standard deviation), the 8-bit run's
difference from its 32-bit twin in accuracy points (mean ± sd of the paired differences), the
``state_bytes`` metric the engine recorded after the first step, and bytes of state per
parameter.

Models: the digits MLP (2×128) and the cnn1d over the digits read as 64-long one-channel signals
(1,797 samples of 10 classes, the size of MNIST-1D's 4,000 of 40; no 1-D dataset is built in):
three convolutions of kernel 5, as MNIST-1D's CNN, 64 channels so that the second and third
(20,480 weights each) are over the 4,096 elements below which state stays 32-bit.

    >>> print(render_all(measure(argparse.Namespace(models=["mlp"], seeds=[0], epochs=1, threads=1))))
"""

from __future__ import annotations

import argparse
import statistics
import time

from bench.table import Table

TITLE = "8-bit optimizer state: Adam8bit against Adam"
HELP = "test accuracy and state bytes of 8-bit vs 32-bit Adam on the digits mlp and cnn1d, over seeds"
QUICK = {"models": ["mlp"], "seeds": [0], "epochs": 1}

# name -> (label, architecture, batch size, base_lr)
MODELS = {
    "mlp": ("mlp 2×128", {"name": "mlp", "depth": 2, "width": 128}, 64, 1e-3),
    "cnn1d": ("cnn1d 3×64 k5, digits as signals", {"name": "cnn1d", "channels": 64, "depth": 3, "kernel_size": 5},
              64, 3e-3),
}
SOLVERS = (("32-bit", "adam"), ("8-bit", "adam8bit"))


def _names(text: str) -> list[str]:
    return [n.strip() for n in text.split(",") if n.strip()]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--models", type=_names, default=list(MODELS), help=f"comma-separated, of {', '.join(MODELS)}")
    p.add_argument("--seeds", type=lambda t: [int(s) for s in _names(t)], default=[0, 1, 2],
                   help="comma-separated training seeds (default 0,1,2)")
    p.add_argument("--epochs", type=int, default=40, help="epochs per run, the same for both (default 40)")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")


def mean_sd(values: list[float]) -> str:
    """``mean ± sd`` (sample standard deviation; one value has none)."""
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.2f} ± {sd:.2f}"


def _spec(split, architecture: dict, batch_size: int, base_lr: float, solver: str, seed: int, epochs: int):
    from core.spec import ExperimentSpec, resolve_spec

    spec = ExperimentSpec.model_validate({
        "name": "bench", "split_id": 1, "architecture": architecture,
        "solver": {"name": solver, "base_lr": base_lr},
        "training": {"epochs": epochs, "batch_size": batch_size, "seed": seed},
    })
    return resolve_spec(spec, split.info, len(split.x_train))


def run_one(split, data, model: str, solver: str, seed: int, epochs: int) -> dict:
    """One engine run: test accuracy (percent), recorded state bytes, parameters, seconds."""
    from worker.engine import train
    from worker.engine.recorder import STATE_BYTES
    from worker.sink import ListSink

    _, architecture, batch_size, base_lr = MODELS[model]
    sink = ListSink()
    start = time.perf_counter()
    result = train(_spec(split, architecture, batch_size, base_lr, solver, seed, epochs), data, sink=sink)
    seconds = time.perf_counter() - start
    (_, state_bytes), = sink.series(STATE_BYTES)
    return {
        "accuracy": 100 * result.summary["test/accuracy"], "state_bytes": int(state_bytes),
        "params": sum(p.numel() for p in result.model.parameters()), "seconds": seconds,
    }


def table(runs: dict[tuple[str, str], list[dict]], seeds: list[int], epochs: int, head_extra: str = "") -> Table:
    """Rows per (model, state) from ``runs[(model, state label)]``, one dict per seed, in seed order."""
    out = Table(
        f"Adam vs Adam8bit on digits, {epochs} epochs, seeds {','.join(map(str, seeds))}{head_extra}",
        ("model", "state", "test accuracy % (mean ± sd)", "Δ vs 32-bit, points", "state bytes", "bytes/param",
         "s/run"),
    )
    for model in dict.fromkeys(m for m, _ in runs):
        base = runs.get((model, SOLVERS[0][0]))
        for label, _ in SOLVERS:
            rows = runs.get((model, label))
            if rows is None:
                continue
            accuracy = [r["accuracy"] for r in rows]
            delta = "-" if rows is base or base is None else mean_sd([a - b["accuracy"] for a, b in zip(accuracy, base)])
            out.add(MODELS[model][0], label, mean_sd(accuracy), delta, f"{rows[0]['state_bytes']:,}",
                    f"{rows[0]['state_bytes'] / rows[0]['params']:.2f}", f"{statistics.fmean(r['seconds'] for r in rows):.1f}")
    params = {MODELS[m][0]: rows[0]["params"] for (m, _), rows in runs.items()}
    out.notes.append("parameters: " + ", ".join(f"{name} {n:,}" for name, n in params.items())
                     + "; state under 4,096 elements a tensor stays 32-bit, which the bytes/param include")
    return out


def measure(args: argparse.Namespace) -> list[Table]:
    import torch

    from bench.engine import digits_split
    from worker.data import prepare

    if args.threads:
        torch.set_num_threads(args.threads)
    unknown = [m for m in args.models if m not in MODELS]
    if unknown:
        raise SystemExit(f"--models: unknown {unknown}; known: {list(MODELS)}")
    split = digits_split()
    data = prepare(split, "cpu")
    run_one(split, data, args.models[0], SOLVERS[0][1], 0, 1)  # warm-up: lazy imports, first allocations
    runs: dict[tuple[str, str], list[dict]] = {}
    for model in args.models:
        for label, solver in SOLVERS:
            runs[(model, label)] = [run_one(split, data, model, solver, seed, args.epochs) for seed in args.seeds]
    return [table(runs, args.seeds, args.epochs, f", CPU, torch {torch.__version__}, {torch.get_num_threads()} threads")]
