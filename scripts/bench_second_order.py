"""Cost per optimizer step of the second-order solvers, relative to torch.optim.Adam on the same model.

    python scripts/bench_second_order.py [--repeats 5] [--block-seconds 0.5] [--threads N]

Each solver runs with its catalog defaults on a cycle of random minibatches (a fixed batch would
be memorised within a few L-BFGS steps, after which a step costs one evaluation); a step is whatever one ``step``
call does (for the closure-driven solvers that includes every closure evaluation it makes, counted
in the last column).  Each timed block runs as many steps as fill about ``--block-seconds`` (so a
0.5 ms Adam step and a 1 s Newton step are timed over similar spans), solvers take turns inside
each repeat so that load on a shared machine hits them alike, and the table reports the best
repeat (as ``timeit`` does: noise only ever adds time).  The Adam baseline is measured in the
same run.  Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import platform
import time

import torch
import torch.nn.functional as F
from torch import nn

from optim import catalog
from optim.factory import build_optimizer

SOLVERS = ("lbfgs", "bfgs", "newton", "hessianfree", "naturalgradient", "kfac", "shampoo")
MODELS = {
    # name: (layer widths, batch size); the first fits Newton's and BFGS's max_params
    "mlp 64-16-10": ((64, 16, 10), 256),
    "mlp 64-128-10": ((64, 128, 10), 256),
}


def make_model(widths, seed=0):
    torch.manual_seed(seed)
    layers = []
    for fan_in, fan_out in zip(widths, widths[1:]):
        layers += [nn.Linear(fan_in, fan_out), nn.Tanh()]
    return nn.Sequential(*layers[:-1])


def make_batches(widths, batch, count=8, seed=1):
    g = torch.Generator().manual_seed(seed)
    return [
        (torch.randn(batch, widths[0], generator=g), torch.randint(0, widths[-1], (batch,), generator=g))
        for _ in range(count)
    ]


class Runner:
    """One solver on its own copy of the model, stepping the way the engine would."""

    def __init__(self, name, widths, batch):
        self.model = make_model(widths)
        self.batches = make_batches(widths, batch)
        self.steps = 0
        self.evaluations = 0
        params = list(self.model.parameters())
        if name == "adam":
            self.needs_closure, self.opt = False, torch.optim.Adam(params, lr=1e-3)
        else:
            entry = catalog.solver(name)
            self.needs_closure = entry.needs_closure
            self.opt = build_optimizer(params, name, {}, model=self.model if entry.needs_model else None)

    def closure(self):
        self.evaluations += 1
        x, y = self.batches[self.steps % len(self.batches)]
        self.opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(self.model(x), y)
        loss.backward()
        return loss.detach()

    def step(self):
        if self.needs_closure:
            self.opt.step(self.closure)
        else:
            self.closure()
            self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        self.steps += 1

    def time_steps(self, steps):
        start = time.perf_counter()
        for _ in range(steps):
            self.step()
        return (time.perf_counter() - start) / steps

    def steps_for(self, seconds):
        """Steps that take about ``seconds``, from one timed step after warm-up."""
        return max(1, round(seconds / self.time_steps(1)))


def fits(name, n_params):
    if name == "adam":
        return True
    limit = catalog.solver(name).max_params
    return limit is None or n_params <= limit


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--block-seconds", type=float, default=0.5, help="length of one timed block")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
          f"{torch.get_num_threads()} threads, best of {args.repeats} blocks of ~{args.block_seconds} s\n")
    print("| model | params | solver | ms / step | x Adam | closure calls / step |")
    print("|---|---:|---|---:|---:|---:|")
    for model_name, (widths, batch) in MODELS.items():
        n_params = sum(p.numel() for p in make_model(widths).parameters())
        names = ["adam", *(s for s in SOLVERS if fits(s, n_params))]
        runners = {name: Runner(name, widths, batch) for name in names}
        block_steps = {}
        for name, runner in runners.items():  # warm-up: lazy state, first eigendecompositions, allocator
            runner.time_steps(2)
            block_steps[name] = runner.steps_for(args.block_seconds)
            runner.evaluations = runner.steps = 0
        times = {name: [] for name in names}
        for _ in range(args.repeats):
            for name, runner in runners.items():
                times[name].append(runner.time_steps(block_steps[name]))
        adam = min(times["adam"])
        for name in names:
            ms = min(times[name])
            calls = runners[name].evaluations / runners[name].steps
            print(f"| {model_name} | {n_params} | {name} | {ms * 1e3:.2f} | {ms / adam:.1f} | {calls:.1f} |")
        skipped = [s for s in SOLVERS if s not in names]
        if skipped:
            print(f"| {model_name} | {n_params} | {', '.join(skipped)} | – | – | above max_params |")


if __name__ == "__main__":
    main()
