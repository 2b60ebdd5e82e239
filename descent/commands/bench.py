"""``descent bench optim``: time one optimizer step of every solver against torch.optim.

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


def run(args: argparse.Namespace) -> int:
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
