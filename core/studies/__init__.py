"""Studies: hyperparameter searches whose trials are ordinary experiments.  Torch-free and
SQL-free: the models of a study (``space``), the grid (``grid``), the spec a trial's parameters
make (``params``), Optuna replaying the stored trials to propose, prune and rank (``sampling``),
and the solver tournament preset (``tournament``)."""

from core.studies.grid import enumerate_grid, grid_points, grid_size
from core.studies.params import active_params, apply, label
from core.studies.sampling import TrialRecord, best, distributions, importance, next_params, should_prune
from core.studies.space import (
    Budget,
    CategoricalParam,
    FloatParam,
    IntParam,
    Objective,
    PrunerSpec,
    Space,
    Strategy,
    StudySpec,
    check_space,
    parse_space,
)
from core.studies.tournament import HASTY_SOLVERS, tournament

__all__ = [
    "HASTY_SOLVERS",
    "Budget",
    "CategoricalParam",
    "FloatParam",
    "IntParam",
    "Objective",
    "PrunerSpec",
    "Space",
    "Strategy",
    "StudySpec",
    "TrialRecord",
    "active_params",
    "apply",
    "best",
    "check_space",
    "distributions",
    "enumerate_grid",
    "grid_points",
    "grid_size",
    "importance",
    "label",
    "next_params",
    "parse_space",
    "should_prune",
    "tournament",
]
