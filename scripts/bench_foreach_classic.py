"""Time Descent's classic optimizers against torch.optim on the foreach path.

    python scripts/bench_foreach_classic.py [--device cpu] [--params 10_000_000] [--tensors 50] [CASE ...]

Both optimizers step the same ~10M float32 parameters (in ~50 tensors) with fixed gradients;
steps alternate between the two so that machine noise hits both alike.  Prints the median step
time of each after warm-up and the ratio ours / torch.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import optim

CASES = {
    "SGD-momentum": ("SGD", {"lr": 1e-3, "momentum": 0.9}),
    "SGD-nesterov-wd": ("SGD", {"lr": 1e-3, "momentum": 0.9, "nesterov": True, "weight_decay": 1e-4}),
    "RMSprop": ("RMSprop", {"lr": 1e-3}),
    "RMSprop-momentum-centered": ("RMSprop", {"lr": 1e-3, "momentum": 0.9, "centered": True}),
    "Adagrad": ("Adagrad", {"lr": 1e-2}),
    "Adadelta": ("Adadelta", {}),
    "ASGD": ("ASGD", {"lr": 1e-3}),
    "Rprop": ("Rprop", {"lr": 1e-3}),
}


def make_params(total: int, count: int, device: str, seed: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    sizes = [total // count] * count
    params = []
    for n in sizes:
        p = torch.randn(n, generator=g).to(device).requires_grad_(True)
        p.grad = torch.randn(n, generator=g).to(device)
        params.append(p)
    return params


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def bench(case: str, total: int, count: int, device: str, warmup: int, steps: int) -> tuple[float, float]:
    name, kwargs = CASES[case]
    ours = getattr(optim, name)(make_params(total, count, device, 0), foreach=True, **kwargs)
    theirs = getattr(torch.optim, name)(make_params(total, count, device, 0), foreach=True, **kwargs)
    times = {id(ours): [], id(theirs): []}
    for i in range(warmup + steps):
        for opt in (ours, theirs) if i % 2 == 0 else (theirs, ours):
            sync(device)
            start = time.perf_counter()
            opt.step()
            sync(device)
            if i >= warmup:
                times[id(opt)].append(time.perf_counter() - start)
    return statistics.median(times[id(ours)]), statistics.median(times[id(theirs)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--params", type=int, default=10_000_000)
    parser.add_argument("--tensors", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    parser.add_argument("cases", nargs="*", default=list(CASES))
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"{'case':28} {'ours ms':>9} {'torch ms':>9} {'ratio':>7}   ({args.device}, torch {torch.__version__})")
    for case in args.cases:
        ours, theirs = bench(case, args.params, args.tensors, args.device, args.warmup, args.steps)
        print(f"{case:28} {ours * 1e3:9.2f} {theirs * 1e3:9.2f} {ours / theirs:7.3f}")


if __name__ == "__main__":
    main()
