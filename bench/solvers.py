"""``descent bench solvers``: cost of one training step of every catalogued solver on the same
small model, relative to Adam.

``descent bench optim`` times the update alone on millions of parameters; the second-order solvers
cannot be timed that way (they need a closure or the model's forward pass, and are meant for
small models).  Here every solver trains the same MLP (tanh hidden layer, softmax output) on the
same fixed batch of Gaussian-blob data, and a step is what the training engine does for that
solver: ``zero_grad``, forward, loss, backward and ``step()`` for the ordinary ones; one
``step(closure)`` for the closure-driven ones, however many times they call the closure.

Every round starts again from the same initial weights with a fresh optimizer and times its
first ``steps`` steps: the working phase of training (a converged L-BFGS would otherwise stop
after one evaluation and look cheap).  A row is the mean milliseconds per step of those steps
(a mean, not a median, so a periodic cost such as K-FAC's inverse update or Shampoo's root
recomputation is counted at its amortised rate), the best of ``rounds`` rounds.  Adam runs the
same fresh steps in alternation with every solver, round for round, and the ratio is the
solver's best round over Adam's.  A solver whose step takes longer than ``max_block_s /
steps`` (Newton's dense Hessian) is timed over fewer steps, at least one; ``steps`` in its row
says how many.  ``evals/step`` counts forward/backward passes: one for the ordinary solvers,
more for line searches and Levenberg–Marquardt checks.

Several ``hidden`` sizes give one table each: ``--hidden 16,128`` times the 64-16-10 MLP that
fits Newton's and BFGS's ``max_params`` and the 64-128-10 one that does not (they are listed as
not timed there).

    >>> result = run_solver_benchmark(hidden=24, batch=512, steps=10)
    >>> print(render(table(result)))
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field

from bench.table import Table, ratio

REFERENCE = "adam"


@dataclass
class SolverRow:
    solver: str
    family: str
    steps: int
    ms: float
    adam_ms: float  # the reference, timed in the same rounds
    evals_per_step: float
    final_loss: float

    @property
    def vs_adam(self) -> float:
        return self.ms / self.adam_ms


@dataclass
class SolverBenchResult:
    n_params: int
    batch: int
    steps: int
    rounds: int
    threads: int
    torch_version: str
    warmup: int = 0
    device: str = "cpu"
    rows: list[SolverRow] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)


def make_problem(features: int, hidden: int, classes: int, batch: int, seed: int = 0, device: str = "cpu"):
    """A fixed batch of ``classes`` Gaussian blobs in ``features`` dimensions and the MLP's builder,
    on ``device`` (drawn on the CPU, so every device starts from the same numbers)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(classes, features, generator=g) * 0.3  # overlapping: the loss stays well above 0
    y = torch.arange(batch) % classes
    x = centres[y] + torch.randn(batch, features, generator=g)

    def model():
        torch.manual_seed(seed)
        return torch.nn.Sequential(
            torch.nn.Linear(features, hidden), torch.nn.Tanh(), torch.nn.Linear(hidden, classes)
        ).to(device)

    return x.to(device), y.to(device), model


class _Stepper:
    """One solver on its own copy of the model, stepped the way the engine steps it."""

    def __init__(self, name: str, build_model, x, y):
        import torch

        from optim import catalog
        from optim.factory import build_optimizer

        self.entry = catalog.solver(name)
        self.model = build_model()
        self.x, self.y = x, y
        self.loss_fn = torch.nn.functional.cross_entropy
        self.opt = build_optimizer(
            self.model.parameters(), name, {}, model=self.model if self.entry.needs_model else None
        )
        self.evals = 0
        self.loss = float("nan")

    def _closure(self):
        self.evals += 1
        self.opt.zero_grad(set_to_none=True)
        loss = self.loss_fn(self.model(self.x), self.y)
        loss.backward()
        self.loss = loss.item()
        return loss

    def step(self) -> None:
        if self.entry.needs_closure:
            self.opt.step(self._closure)
        else:
            self._closure()
            self.opt.step()

    def timed_block(self, steps: int) -> float:
        """Mean milliseconds per step over ``steps`` steps."""
        import torch

        start = time.perf_counter()
        for _ in range(steps):
            self.step()
        if self.x.is_cuda:  # the last step's kernels, queued but not yet run
            torch.cuda.synchronize(self.x.device)
        return (time.perf_counter() - start) * 1e3 / steps


def run_solver_benchmark(
    only: list[str] | None = None, features: int = 64, hidden: int = 24, classes: int = 10, batch: int = 512,
    steps: int = 10, rounds: int = 3, warmup: int = 2, threads: int | None = None, seed: int = 0,
    max_block_s: float = 10.0, device: str = "cpu",
) -> SolverBenchResult:
    """Time every catalogued solver (or ``only`` those) against Adam on one MLP and batch.
    Solvers whose ``max_params`` is below the model's size are skipped, with the reason."""
    import torch

    from optim import catalog

    for key, value in (("steps", steps), ("rounds", rounds), ("batch", batch), ("hidden", hidden)):
        if value < 1:
            raise ValueError(f"{key}: must be >= 1, got {value}")
    if threads is not None and threads < 1:
        raise ValueError(f"threads: must be >= 1, got {threads}")
    names = sorted(catalog.SOLVERS) if only is None else list(only)
    unknown = [n for n in names if n not in catalog.SOLVERS]
    if unknown:
        raise ValueError(f"only: unknown solvers {unknown}; known: {sorted(catalog.SOLVERS)}")
    previous = torch.get_num_threads()
    try:
        if threads is not None:
            torch.set_num_threads(threads)
        x, y, build_model = make_problem(features, hidden, classes, batch, seed, device)
        n_params = sum(p.numel() for p in build_model().parameters())
        result = SolverBenchResult(
            n_params, batch, steps, rounds, torch.get_num_threads(), torch.__version__, warmup=warmup,
            device=str(x.device),
        )
        for name in names:
            entry = catalog.solver(name)
            if entry.max_params is not None and n_params > entry.max_params:
                result.skipped[name] = f"model has {n_params} parameters, max_params is {entry.max_params}"
                continue
            warm, warm_adam = _Stepper(name, build_model, x, y), _Stepper(REFERENCE, build_model, x, y)
            step_ms = min((warm.timed_block(1) for _ in range(max(1, warmup))), default=0.0)
            for _ in range(warmup):  # lazy state, allocator, first-call paths
                warm_adam.step()
            n = max(1, min(steps, int(max_block_s * 1e3 / max(step_ms, 1e-9))))
            best, best_adam = float("inf"), float("inf")
            for _ in range(rounds):
                adam, ours = _Stepper(REFERENCE, build_model, x, y), _Stepper(name, build_model, x, y)
                best_adam = min(best_adam, adam.timed_block(n))
                best = min(best, ours.timed_block(n))
            result.rows.append(SolverRow(name, entry.family, n, best, best_adam, ours.evals / n, ours.loss))
        return result
    finally:
        torch.set_num_threads(previous)


COLUMNS = ("solver", "family", "steps", "ms/step", "vs adam", "evals/step", "loss after")


def table(result: SolverBenchResult) -> Table:
    """The rows under a line describing the run; solvers not timed are noted with the reason."""
    head = (
        f"MLP with {result.n_params:,} parameters, batch {result.batch}, device {result.device}, "
        f"{result.threads} threads, "
        f"best of {result.rounds} rounds of the first {result.steps} steps from the same start, "
        f"torch {result.torch_version}; 'loss after' is the batch loss at the round's last step"
    )
    out = Table(head, COLUMNS, notes=[f"not timed: {name} ({why})" for name, why in sorted(result.skipped.items())])
    for r in result.rows:
        out.add(r.solver, r.family, r.steps, f"{r.ms:.3f}", ratio(r.vs_adam), f"{r.evals_per_step:.2f}",
                f"{r.final_loss:.4f}")
    return out


# -- descent bench solvers --------------------------------------------------------------------

TITLE = "Every solver on one model: cost of a training step relative to Adam"
HELP = "one training step of every solver on one small MLP, relative to Adam"
QUICK = {"hidden": [4], "batch": 20, "steps": 1, "rounds": 1, "only": ["sgd", "lbfgs"]}


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v.strip()]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--hidden", type=_ints, default=[24],
                   help="hidden units of the MLP, or several comma-separated: one table each (default 24: 1,810 "
                        "parameters)")
    p.add_argument("--batch", type=int, default=512, help="samples in the fixed batch (default 512)")
    p.add_argument("--steps", type=int, default=10, help="steps timed per round, from the start (default 10)")
    p.add_argument("--rounds", type=int, default=3, help="timed blocks; the best is kept (default 3)")
    p.add_argument("--only", type=lambda t: [n.strip().lower() for n in t.split(",") if n.strip()], default=None,
                   help="comma-separated solver names, e.g. lbfgs,kfac")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")


def measure(args: argparse.Namespace) -> list[Table]:
    return [
        table(run_solver_benchmark(only=args.only, hidden=hidden, batch=args.batch, steps=args.steps,
                                   rounds=args.rounds, threads=args.threads, device=args.device))
        for hidden in args.hidden
    ]


__all__ = ["SolverBenchResult", "SolverRow", "make_problem", "run_solver_benchmark", "table"]
