"""One source of truth for every solver's and scheduler's hyperparameters; needs no torch.

    >>> from optim import catalog
    >>> catalog.solver("adam").defaults()["betas"]
    (0.9, 0.999)

Adding a solver is one entry in one of the ``solvers_*`` modules.
"""

from __future__ import annotations

from optim.catalog import schedulers as _schedulers
from optim.catalog import solvers_adam, solvers_classic, solvers_eightbit, solvers_paper, solvers_second_order
from optim.catalog.schema import Hyperparameter, SchedulerEntry, SolverEntry

SOLVERS: dict[str, SolverEntry] = {
    e.name: e
    for module in (solvers_classic, solvers_adam, solvers_eightbit, solvers_paper, solvers_second_order)
    for e in module.ENTRIES
}
SCHEDULERS: dict[str, SchedulerEntry] = {e.name: e for e in _schedulers.ENTRIES}


def solver(name: str) -> SolverEntry:
    """The entry for ``name`` (lowercase), or ``KeyError`` listing the known names."""
    try:
        return SOLVERS[name]
    except KeyError:
        raise KeyError(f"unknown solver {name!r}; known: {sorted(SOLVERS)}") from None


def scheduler(name: str) -> SchedulerEntry:
    try:
        return SCHEDULERS[name]
    except KeyError:
        raise KeyError(f"unknown scheduler {name!r}; known: {sorted(SCHEDULERS)}") from None


def load_class(entry: SolverEntry | SchedulerEntry):
    """Import the class an entry names (this one needs torch)."""
    from importlib import import_module

    module, _, attr = entry.class_path.rpartition(".")
    return getattr(import_module(module), attr)


__all__ = ["SOLVERS", "SCHEDULERS", "Hyperparameter", "SolverEntry", "SchedulerEntry", "solver", "scheduler", "load_class"]
