"""``descent bench optim``: time one optimizer step of every solver against torch.optim;
``descent bench solvers``: one training step of every solver on a small MLP against Adam.

torch is imported only when the benchmark runs, so ``descent --help`` stays fast."""

from __future__ import annotations

import argparse


def _names(text: str) -> list[str]:
    return [name.strip().lower() for name in text.split(",") if name.strip()]


def register(name: str, parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="benchmark", metavar="BENCHMARK", required=True)
    p = sub.add_parser(
        "optim", help="one optimizer step, ours vs torch.optim (for-loop, foreach, fused)",
        description="Median time of one step() per optimizer and implementation, with achieved GB/s.",
    )
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N, or auto: cpu and cuda when available")
    p.add_argument("--params", type=int, default=10_000_000, help="float32 parameters in all (default 10M)")
    p.add_argument("--tensors", type=int, default=50, help="tensors they are split into (default 50)")
    p.add_argument("--repeats", type=int, default=20, help="timed steps per implementation; the median is shown")
    p.add_argument("--only", type=_names, default=None, help="comma-separated solver names, e.g. adam,sgd")
    p.add_argument("--best-of", type=int, default=1, help="rounds; each row keeps its best median (default 1)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--markdown", action="store_true", help="print Markdown tables")


    s = sub.add_parser(
        "solvers", help="one training step of every solver on one small MLP, relative to Adam",
        description="Mean time of one training step (forward, backward, step; or step(closure)) per solver, "
                    "with Adam timed in the same rounds.",
    )
    s.add_argument("--hidden", type=int, default=24, help="hidden units of the MLP (default 24: 1,810 parameters)")
    s.add_argument("--batch", type=int, default=512, help="samples in the fixed batch (default 512)")
    s.add_argument("--steps", type=int, default=10, help="steps timed per round, from the start (default 10)")
    s.add_argument("--rounds", type=int, default=3, help="timed blocks; the best is kept (default 3)")
    s.add_argument("--only", type=_names, default=None, help="comma-separated solver names, e.g. lbfgs,kfac")
    s.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    s.add_argument("--markdown", action="store_true", help="print a Markdown table")


def run(args: argparse.Namespace) -> int:
    if args.benchmark == "solvers":
        from optim.bench_solvers import format_solver_table, run_solver_benchmark

        result = run_solver_benchmark(
            only=args.only, hidden=args.hidden, batch=args.batch, steps=args.steps, rounds=args.rounds,
            threads=args.threads,
        )
        print(format_solver_table(result, markdown=args.markdown))
        return 0
    import torch

    from optim.bench import format_table, run_benchmark

    if args.device == "auto":
        devices = ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]
    else:
        devices = [args.device]
    for i, device in enumerate(devices):
        result = run_benchmark(
            device=device, n_params=args.params, n_tensors=args.tensors, repeats=args.repeats,
            only=args.only, threads=args.threads, best_of=args.best_of,
        )
        if i:
            print()
        print(format_table(result, markdown=args.markdown))
    return 0
