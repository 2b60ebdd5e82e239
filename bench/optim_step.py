"""``descent bench optim``: one ``step()`` of each Descent optimizer against torch.optim's.

For every solver that steps without a closure or a model, on ``n_params`` float32 parameters
split into ``n_tensors`` tensors with fixed random gradients: our per-tensor loop
(``foreach=False``), multi-tensor path (``foreach=True``) and, where the solver has one, fused
path (``fused=True``: the C++ kernels of ``optim._fused`` on the CPU, the Triton kernels of
``optim._fused_triton`` on CUDA), and where torch has the algorithm,
torch's for-loop, foreach and fused implementations (fused where torch supports it on the
device).  Each is the median of ``repeats`` steps after a warm-up, with the device synchronized
around every step.  Solvers torch lacks are compared with torch's Adam (foreach and fastest) as a
reference point.  ``variants=True`` adds the non-default settings of the classic optimizers
(Nesterov with weight decay, centered RMSprop with momentum), each against torch with the same
settings.

Achieved bandwidth is the bytes the algorithm must move per step, reading the parameter, its
gradient and every parameter-sized state tensor and writing the parameter and the state back,
divided by the time; the same run measures ``copy_`` between two buffers of ``n_params`` floats
as the device's practical ceiling.  ``compile_time`` also times, in child processes, building our
fused kernels from scratch (what the first run on a machine pays) and loading them from the disk
cache (what every later process pays); neither is in the per-step times.

    >>> result = run_benchmark(device="cpu", n_params=10_000_000, n_tensors=50, repeats=20)
    >>> print(render(table(result)))
"""

from __future__ import annotations

import argparse
import inspect
import statistics
import time
from dataclasses import dataclass, field

from bench.table import Table, ratio

# our catalog name -> torch.optim class name, where torch implements the same algorithm
TORCH_COUNTERPARTS = {
    "sgd": "SGD", "adagrad": "Adagrad", "adadelta": "Adadelta", "asgd": "ASGD", "rprop": "Rprop",
    "rmsprop": "RMSprop", "adam": "Adam", "adamw": "AdamW", "adamax": "Adamax", "nadam": "NAdam",
    "radam": "RAdam",
}
# benchmarked settings where the defaults are not the common case (SGD is timed with momentum)
SETTINGS = {"sgd": {"lr": 0.01, "momentum": 0.9}}
# non-default settings of the classic optimizers, timed with ``variants``: label -> (solver, settings)
VARIANTS = {
    "sgd-nesterov-wd": ("sgd", {"lr": 1e-3, "momentum": 0.9, "nesterov": True, "weight_decay": 1e-4}),
    "rmsprop-momentum-centered": ("rmsprop", {"lr": 1e-3, "momentum": 0.9, "centered": True}),
}
REFERENCE = "adam"  # torch optimizer the solvers without a counterpart are compared with
WARMUP_STEPS = 3


@dataclass
class Row:
    optimizer: str
    implementation: str  # "ours loop", "ours foreach", "ours fused", "ours" (no flag), "torch for-loop", ...
    ms: float
    bytes_per_step: int
    reference: str = ""  # the torch optimizer the ratios compare with
    torch_fastest_ms: float | None = None  # the reference's times, measured in the same rounds
    torch_foreach_ms: float | None = None
    torch_fused_ms: float | None = None

    @property
    def vs_torch_fastest(self) -> float | None:
        return self.ms / self.torch_fastest_ms if self.torch_fastest_ms else None

    @property
    def vs_torch_foreach(self) -> float | None:
        return self.ms / self.torch_foreach_ms if self.torch_foreach_ms else None

    @property
    def vs_torch_fused(self) -> float | None:
        return self.ms / self.torch_fused_ms if self.torch_fused_ms else None

    @property
    def gbps(self) -> float:
        return self.bytes_per_step / (self.ms * 1e-3) / 1e9


@dataclass
class BenchResult:
    device: str
    n_params: int
    n_tensors: int
    repeats: int
    copy_gbps: float
    torch_version: str
    threads: int | None = None
    best_of: int = 1
    rows: list[Row] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    compile_s: dict[str, float] = field(default_factory=dict)  # "cold build", "cached load" of our fused kernels


def _sync(device):
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def make_params(n_params: int, n_tensors: int, device, seed: int = 0):
    """``n_tensors`` float32 leaf tensors of (nearly) equal size summing to ``n_params``, with gradients."""
    import torch

    if not 1 <= n_tensors <= n_params:
        raise ValueError(f"tensors: need 1 <= tensors <= params, got {n_tensors} and {n_params}")
    g = torch.Generator().manual_seed(seed)
    sizes = [n_params // n_tensors + (1 if i < n_params % n_tensors else 0) for i in range(n_tensors)]
    params = []
    for size in sizes:
        p = (torch.randn(size, generator=g) * 0.1).to(device).requires_grad_(True)
        p.grad = (torch.randn(size, generator=g) * 0.01).to(device)
        params.append(p)
    return params


def time_interleaved(opts: dict, device, repeats: int, warmup: int = WARMUP_STEPS) -> dict[str, float]:
    """Median milliseconds of one ``step()`` per optimizer, stepping them in turn, one step each
    per round, so that load from other processes falls on all of them alike."""
    for _ in range(warmup):
        for opt in opts.values():
            opt.step()
    _sync(device)
    times: dict[str, list[float]] = {label: [] for label in opts}
    for _ in range(repeats):
        for label, opt in opts.items():
            start = time.perf_counter()
            opt.step()
            _sync(device)
            times[label].append(time.perf_counter() - start)
    return {label: statistics.median(t) * 1e3 for label, t in times.items()}


def copy_bandwidth(n_params: int, device, repeats: int) -> float:
    """GB/s of ``dst.copy_(src)`` on ``n_params`` float32 (one read and one write per element)."""
    import torch

    src = torch.randn(n_params, device=device)
    dst = torch.empty_like(src)
    times = []
    for i in range(repeats + WARMUP_STEPS):
        _sync(device)
        start = time.perf_counter()
        dst.copy_(src)
        _sync(device)
        if i >= WARMUP_STEPS:
            times.append(time.perf_counter() - start)
    return 2 * src.element_size() * n_params / statistics.median(times) / 1e9


def bytes_per_step(opt, params) -> int:
    """Bytes an update must move: read param, grad and state; write param and state (parameter-sized
    state tensors only; step counters and other scalars are negligible)."""
    total = 0
    for p in params:
        states = [v for v in opt.state[p].values() if hasattr(v, "shape") and v.shape == p.shape]
        total += p.numel() * p.element_size() * (3 + 2 * len(states))
    return total


def _ours(name: str, params, foreach, hparams: dict):
    from optim.factory import build_optimizer

    return build_optimizer(params, name, hparams, foreach=foreach)


def _ours_fused(name: str, params, hparams: dict):
    """Our solver with ``fused=True`` (not a catalog field) in its parameter group, where every
    solver with a fused path reads it (RMSprop takes it only there, keeping torch's signature)."""
    import warnings

    from optim import catalog

    entry = catalog.solver(name)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a fallback to foreach is not a fused row
        opt = catalog.load_class(entry)([{"params": params, "fused": True}], **entry.validate_params(dict(hparams)))
        opt.step()
    return opt


def _has_fused(name: str) -> bool:
    """Whether the solver has a fused update function (``optim._base.Optimizer._update_functions``)."""
    import torch

    from optim import catalog

    cls = catalog.load_class(catalog.solver(name))
    if not hasattr(cls, "_update_functions"):
        return False
    return len(cls([torch.zeros(1, requires_grad=True)])._update_functions()) == 3


_COMPILE_SCRIPT = (
    "import time; start = time.perf_counter(); from optim import _fused; _fused._build(); "
    "print(time.perf_counter() - start)"
)


def compile_seconds() -> dict[str, float]:
    """Seconds to build our fused CPU kernels in a fresh build directory (the first process on a
    machine) and then to load them from it (every later process), each in a child process with
    torch already imported before the clock starts."""
    import os
    import subprocess
    import sys
    import tempfile

    out = {}
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "TORCH_EXTENSIONS_DIR": cache}
        script = "import torch; " + _COMPILE_SCRIPT
        for label in ("cold build", "cached load"):
            done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
            out[label] = float(done.stdout.strip().splitlines()[-1])
    return out


def _torch(name: str, params, impl: str, hparams: dict):
    import torch

    cls = getattr(torch.optim, TORCH_COUNTERPARTS[name])
    flags = {"for-loop": {"foreach": False}, "foreach": {"foreach": True}, "fused": {"fused": True}}[impl]
    return cls(params, **hparams, **flags)


def _measure(builders: dict, n_params, n_tensors, device, repeats, best_of) -> dict[str, tuple[float, int]]:
    """{label: (best median ms, bytes per step)} for optimizers built by ``builders`` on copies of
    the same parameters; an implementation torch lacks for this optimizer/device is left out.

    Each round builds every optimizer afresh on fresh copies, allocated in a rotated order: where a
    tensor lands in memory moves a memory-bound step by a few percent (one kernel on two sets of
    tensors of the same sizes differed by up to 4 % on one core), so no row keeps one placement for
    all its rounds."""
    base = make_params(n_params, n_tensors, device)
    best: dict[str, float] = {}
    bytes_of: dict[str, int] = {}
    labels = list(builders)
    for round_ in range(best_of):
        opts, params_of = {}, {}
        shift = round_ % len(labels)
        for label in labels[shift:] + labels[:shift]:
            build = builders[label]
            params = [p.detach().clone().requires_grad_(True) for p in base]
            for p, b in zip(params, base):
                p.grad = b.grad.clone()
            try:
                opts[label] = build(params)
                opts[label].step()  # fused/foreach support is checked on the first step
            except (RuntimeError, ValueError, TypeError, Warning):  # Warning: our fused fell back to foreach
                opts.pop(label, None)
                continue
            params_of[label] = params
        opts = {label: opts[label] for label in labels if label in opts}  # step in the table's order
        for label, ms in time_interleaved(opts, device, repeats).items():
            best[label] = min(ms, best.get(label, ms))
            bytes_of[label] = bytes_per_step(opts[label], params_of[label])
        del opts, params_of
    return {label: (best[label], bytes_of[label]) for label in best}


def benchable(names=None) -> tuple[list[str], dict[str, str]]:
    """Solvers that step on plain parameters without a closure, and why the others are left out."""
    from optim import catalog

    names = sorted(catalog.SOLVERS) if names is None else names
    chosen, skipped = [], {}
    for name in names:
        entry = catalog.solver(name)
        if entry.needs_closure:
            skipped[name] = "needs a closure (several loss evaluations per step)"
        elif entry.needs_model:
            skipped[name] = "needs the model's forward pass"
        else:
            chosen.append(name)
    return chosen, skipped


def run_benchmark(
    device: str = "cpu", n_params: int = 10_000_000, n_tensors: int = 50, repeats: int = 20,
    only: list[str] | None = None, threads: int | None = None, best_of: int = 1, variants: bool = False,
    compile_time: bool = False,
) -> BenchResult:
    """Time every benchable solver (or ``only`` those; a name in ``VARIANTS`` is allowed).  Each
    row is the median of ``repeats`` steps, the best such median of ``best_of`` rounds;
    ``threads`` sets torch's intra-op CPU threads for the run (on a machine shared with other jobs
    one thread gives steadier numbers); ``variants`` adds ``VARIANTS`` of the solvers timed;
    ``compile_time`` adds :func:`compile_seconds` on CPU."""
    import torch

    if threads is not None and threads < 1:
        raise ValueError(f"threads: must be >= 1, got {threads}")
    if best_of < 1 or repeats < 1:
        raise ValueError(f"repeats, best_of: must be >= 1, got {repeats} and {best_of}")
    cases, skipped = _cases(only, variants)
    previous = torch.get_num_threads()
    try:
        if threads is not None:
            torch.set_num_threads(threads)
        dev = torch.device(device)
        result = BenchResult(
            device=str(dev), n_params=n_params, n_tensors=n_tensors, repeats=repeats,
            copy_gbps=copy_bandwidth(n_params, dev, repeats), torch_version=torch.__version__, skipped=skipped,
            threads=torch.get_num_threads() if dev.type == "cpu" else None, best_of=best_of,
        )
        for label, name, hparams in cases:
            result.rows += _time_case(label, name, hparams, dev, n_params, n_tensors, repeats, best_of)
        if compile_time and dev.type == "cpu":
            result.compile_s = compile_seconds()
        return result
    finally:
        torch.set_num_threads(previous)


def _cases(only: list[str] | None, variants: bool) -> tuple[list[tuple[str, str, dict]], dict[str, str]]:
    """(row label, solver, settings) to time, and the solvers left out with the reason."""
    from optim import catalog

    unknown = [n for n in only or () if n not in catalog.SOLVERS and n not in VARIANTS]
    if unknown:
        raise ValueError(f"only: unknown solvers {unknown}; known: {sorted(catalog.SOLVERS)} and {sorted(VARIANTS)}")
    names, skipped = benchable(None if only is None else [n for n in only if n not in VARIANTS])
    cases = [(name, name, SETTINGS.get(name, {})) for name in names]
    for label, (name, hparams) in VARIANTS.items():
        if (only and label in only) or (variants and (only is None or name in names)):
            cases.append((label, name, hparams))
    return cases, skipped


def _time_case(label: str, name: str, hparams: dict, dev, n_params, n_tensors, repeats, best_of) -> list[Row]:
    """Rows of one solver with one setting: ours, and torch's with the same settings (or torch's
    Adam with its defaults where torch lacks the algorithm)."""
    same = name in TORCH_COUNTERPARTS
    reference, theirs_hparams = (name, hparams) if same else (REFERENCE, {})
    builders = {}
    flags = ((False, "ours loop"), (True, "ours foreach")) if _accepts_foreach(name) else ((None, "ours"),)
    for foreach, impl in flags:
        builders[impl] = lambda p, f=foreach: _ours(name, p, f, hparams)
    if _has_fused(name):  # the C++ kernels on the CPU, the Triton ones on CUDA; elsewhere the row is left out
        builders["ours fused"] = lambda p: _ours_fused(name, p, hparams)
    for impl in ("for-loop", "foreach", "fused"):
        builders[f"torch {impl}"] = lambda p, i=impl: _torch(reference, p, i, theirs_hparams)
    measured = _measure(builders, n_params, n_tensors, dev, repeats, best_of)
    theirs = {impl: ms for impl, (ms, _) in measured.items() if impl.startswith("torch")}
    fastest = min(theirs.values(), default=None)
    return [
        Row(label, impl, ms, nbytes, reference=label if same else reference, torch_fastest_ms=fastest,
            torch_foreach_ms=theirs.get("torch foreach"), torch_fused_ms=theirs.get("torch fused"))
        for impl, (ms, nbytes) in measured.items()
        if same or not impl.startswith("torch")  # the reference's own rows are printed under its name
    ]


def _accepts_foreach(name: str) -> bool:
    from optim import catalog

    return "foreach" in inspect.signature(catalog.load_class(catalog.solver(name))).parameters


COLUMNS = (
    "optimizer", "implementation", "ms/step", "vs torch fastest", "vs torch foreach", "vs torch fused", "GB/s",
    "compared with",
)


def table(result: BenchResult) -> Table:
    """The rows under a line describing the run; solvers not timed are noted with the reason."""
    threads = f" ({result.threads} threads)" if result.threads else ""
    head = (
        f"device {result.device}{threads}, {result.n_params:,} float32 params in {result.n_tensors} tensors, "
        f"best of {result.best_of} medians of {result.repeats} steps, torch {result.torch_version}; "
        f"copy_ bandwidth {result.copy_gbps:.1f} GB/s"
    )
    notes = [f"not timed: {name} ({why})" for name, why in sorted(result.skipped.items())]
    if result.compile_s:
        notes.append(
            "ours fused, kernels compiled once per machine (not in ms/step): "
            + ", ".join(f"{label} {s:.2f} s" for label, s in result.compile_s.items())
        )
    out = Table(head, COLUMNS, notes=notes)
    for r in result.rows:
        out.add(r.optimizer, r.implementation, f"{r.ms:.3f}", ratio(r.vs_torch_fastest), ratio(r.vs_torch_foreach),
                ratio(r.vs_torch_fused), f"{r.gbps:.1f}", f"torch {r.reference}")
    return out


# -- descent bench optim ----------------------------------------------------------------------

TITLE = "Optimizer step"
HELP = "one optimizer step, ours (loop, foreach, fused) vs torch.optim (for-loop, foreach, fused)"
QUICK = {"params": 20_000, "tensors": 4, "repeats": 2, "only": ["sgd", "adam", "lion"], "compile_time": False}


def _names(text: str) -> list[str]:
    return [name.strip().lower() for name in text.split(",") if name.strip()]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N, or auto: cpu and cuda when available")
    p.add_argument("--params", type=int, default=10_000_000, help="float32 parameters in all (default 10M)")
    p.add_argument("--tensors", type=int, default=50, help="tensors they are split into (default 50)")
    p.add_argument("--repeats", type=int, default=20, help="timed steps per implementation; the median is shown")
    p.add_argument("--only", type=_names, default=None,
                   help=f"comma-separated solver names, e.g. adam,sgd, or variants: {', '.join(VARIANTS)}")
    p.add_argument("--variants", action="store_true", help=f"also time {', '.join(VARIANTS)}")
    p.add_argument("--best-of", type=int, default=1, help="rounds; each row keeps its best median (default 1)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--compile-time", action=argparse.BooleanOptionalAction, default=True,
                   help="on CPU, also time building our fused kernels afresh and loading them cached")


def measure(args: argparse.Namespace) -> list[Table]:
    import torch

    if args.device == "auto":
        devices = ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]
    else:
        devices = [args.device]
    return [
        table(run_benchmark(device=device, n_params=args.params, n_tensors=args.tensors, repeats=args.repeats,
                            only=args.only, threads=args.threads, best_of=args.best_of, variants=args.variants,
                            compile_time=args.compile_time))
        for device in devices
    ]


__all__ = ["BenchResult", "Row", "TORCH_COUNTERPARTS", "VARIANTS", "make_params", "run_benchmark", "table"]
