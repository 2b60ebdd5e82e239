"""``descent bench landscape``: what a trained run's loss landscape costs the lab worker.

A digits MLP (2×128, ReLU; the 60/20/20 stratified split of seed 0) is trained with the real
engine (``worker.run.run_experiment``, Adam 1e-3, batch 64) on a scratch PostgreSQL database
(``--postgres-url``, an admin url); then ``worker.lab.landscape.compute_landscape``, the lab
worker's whole job, is timed on it for each grid asked (default a 25×25 plane, the dashboard's
default, and a 31-point line), ``--repeats`` times each, the median shown.  Every grid point
evaluates the train subset (``--train-examples``, default 512) and the whole validation part
(359 rows) in eval mode; ``load`` is reading the run, its split and weights and drawing the
directions, ``grid`` the evaluations.  The centre's validation loss is checked against the run's
recorded last ``val/loss`` on the way (the difference is shown).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from bench import ADMIN_URL
from bench.table import Table

TITLE = "Loss landscape"
HELP = "lab worker time of a trained digits MLP's loss landscape (25x25 plane, 31-point line)"
QUICK = {"repeats": 1, "grids": ["2x9"], "epochs": 2}
COLUMNS = ("grid", "points", "forward passes (examples)", "load", "grid time", "per point", "total (median)",
           "centre vs recorded val/loss (abs. difference)")


def _grids(text: str) -> list[str]:
    grids = [g.strip() for g in text.split(",") if g.strip()]
    for g in grids:
        dims, _, points = g.partition("x")
        if dims not in ("1", "2") or not points.isdigit():
            raise argparse.ArgumentTypeError(f"grids: {g!r} is not DIMSxPOINTS, e.g. 2x25 or 1x31")
    return grids


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--grids", type=_grids, default=["2x25", "1x31"],
                   help="comma-separated DIMSxPOINTS (default 2x25,1x31)")
    p.add_argument("--repeats", type=int, default=3, help="landscapes per grid; the median is shown (default 3)")
    p.add_argument("--epochs", type=int, default=10, help="epochs of the trained run (default 10)")
    p.add_argument("--train-examples", type=int, default=512, help="train subset per point (default 512)")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    p.add_argument("--postgres-url", default=ADMIN_URL, help="admin url of the PostgreSQL server for the scratch db")


def _digits_split(sessions) -> tuple[int, int]:
    """The split's id and its train part's size."""
    import numpy as np
    from sklearn.model_selection import train_test_split

    from bench.identity import default_project_id
    from core.datasets import load_builtin
    from store.db import session_scope
    from store.models import Split
    from store.repositories import splits

    x, y = load_builtin("digits")
    train, rest = train_test_split(np.arange(len(x)), test_size=0.4, random_state=0, stratify=y)
    val, test = train_test_split(rest, test_size=0.5, random_state=0, stratify=y[rest])
    with session_scope(sessions) as session:
        split = splits.add(session, Split(
            project_id=default_project_id(sessions), builtin="digits", strategy="stratified",
            fractions={"train": 0.6, "val": 0.2, "test": 0.2}, seed=0, train_indices=train.tolist(),
            val_indices=val.tolist(), test_indices=test.tolist(),
            summary={"train": len(train), "val": len(val), "test": len(test)}))
        return split.id, len(train)


def _trained_run(runtime, epochs: int) -> tuple[int, float]:
    """A succeeded digits MLP and its recorded last val/loss."""
    from sqlalchemy import select

    from core.datasets import builtin_info
    from core.spec import ExperimentSpec, resolve_spec
    from store.db import session_scope
    from store.models import Metric
    from store.repositories import experiments
    from worker.run import run_experiment

    split_id, n_train = _digits_split(runtime.sessions)
    spec = ExperimentSpec.model_validate({
        "name": "bench-landscape", "split_id": split_id, "architecture": {"name": "mlp", "depth": 2, "width": 128},
        "solver": {"name": "adam", "base_lr": 1e-3}, "training": {"epochs": epochs, "batch_size": 64}})
    spec = resolve_spec(spec, builtin_info("digits"), n_train)
    with session_scope(runtime.sessions) as session:
        experiment_id = experiments.create(session, name=spec.name, spec=spec.model_dump(mode="json"),
                                           solver="adam", tags=[], split_id=split_id, queue="cpu").id
    status = run_experiment(experiment_id, runtime)
    if status != "succeeded":
        raise RuntimeError(f"the benchmark's training ended {status}")
    with session_scope(runtime.sessions) as session:
        recorded = session.execute(select(Metric.value).where(Metric.experiment_id == experiment_id,
                                                             Metric.name == "val/loss")
                                   .order_by(Metric.step.desc()).limit(1)).scalar_one()
    return experiment_id, recorded


def measure(args: argparse.Namespace) -> list[Table]:
    import torch

    from core.settings import Settings
    from store.db import make_engine, make_sessionmaker
    from store.scratch import scratch_database
    from worker.lab.landscape import compute_landscape
    from worker.run import Runtime

    if args.threads:
        torch.set_num_threads(args.threads)
    with scratch_database(args.postgres_url, prefix="descent_bench") as url, tempfile.TemporaryDirectory() as data:
        engine = make_engine(url)
        try:
            settings = Settings(data_dir=Path(data), database_url=url, export_onnx=False)
            runtime = Runtime(settings, make_sessionmaker(engine), host="bench:1")
            experiment_id, recorded = _trained_run(runtime, args.epochs)
            out = Table(f"compute_landscape on a trained digits MLP 2x128 ({args.epochs} epochs), CPU, torch "
                        f"{torch.__version__}, {torch.get_num_threads()} threads, median of {args.repeats}",
                        COLUMNS)
            for grid in args.grids:
                dims, points = (int(v) for v in grid.split("x"))
                results = [compute_landscape({"id": 0, "experiment_id": experiment_id, "spec": {
                    "dims": dims, "points": points, "train_examples": args.train_examples, "seed": seed}}, runtime)
                    for seed in range(args.repeats)]
                timing = {k: statistics.median(r["timings"][k] for r in results) for k in results[0]["timings"]}
                first = results[0]
                n = points ** dims
                examples = first["examples"]["train"] + first["examples"]["val"]
                gap = max(abs(r["centre"]["val"]["loss"] - recorded) for r in results)
                out.add(f"{points}×{points}" if dims == 2 else f"line of {points}", n,
                        f"{n * examples:,} ({examples} a point)", f"{timing['load_s']:.2f} s",
                        f"{timing['grid_s']:.2f} s", f"{timing['per_point_ms']:.1f} ms", f"{timing['total_s']:.2f} s",
                        f"{gap:.1e}")
            out.notes.append(f"{first['parameters']:,} parameters; the directions and subsets change with the seed "
                             "(each repeat draws its own)")
            return [out]
        finally:
            engine.dispose()
