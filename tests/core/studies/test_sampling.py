"""Optuna replay: proposals (grid, random, TPE) against the space's bounds, scale and branches;
pruning decisions computed by hand from the pruners' definitions; importance and the best trial."""

import math

import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from core.studies.grid import enumerate_grid
from core.studies.params import active_params
from core.studies.sampling import (
    TrialRecord,
    best,
    distributions,
    importance,
    next_params,
    rung_values,
    should_prune,
    spec_path,
)
from core.studies.space import StudySpec

ADAM_LR, SGD_LR = (1e-4, 1e-1), (1e-2, 1.0)
SPACE = {
    "solver.name": {"type": "categorical", "values": ["adam", "sgd", "lion"], "when": {
        "adam": {"solver.base_lr": {"type": "float", "low": ADAM_LR[0], "high": ADAM_LR[1], "log": True,
                                    "points": 3}},
        "sgd": {"solver.base_lr": {"type": "float", "low": SGD_LR[0], "high": SGD_LR[1], "log": True, "points": 2},
                "solver.nesterov": {"type": "categorical", "values": [False, True]}},
    }},
    "training.batch_size": {"type": "int", "low": 16, "high": 64, "step": 16},
    "architecture.width": {"type": "int", "low": 1, "high": 1024, "log": True, "points": 2},
}
BRANCH_KEYS = {"adam": {"solver.base_lr"}, "sgd": {"solver.base_lr", "solver.nesterov"}, "lion": set()}
TOP = {"solver.name", "training.batch_size", "architecture.width"}


def study(strategy="tpe", pruner=None, space=None, max_trials=10_000, seed=0, metric="val/loss"):
    return StudySpec(name="s", base={}, space=space or SPACE, objective={"metric": metric}, strategy=strategy,
                     pruner=pruner or {"name": "none"}, budget={"max_trials": max_trials}, seed=seed)


def loss(params):
    """A smooth made-up objective: best near lr 1e-2, wide batches slightly worse."""
    return abs(math.log10(params.get("solver.base_lr", 1e-3)) + 2) + params["training.batch_size"] / 640


def test_distributions_name_each_branch_apart():
    adam = {"solver.name": "adam", "solver.base_lr": 1e-3, "training.batch_size": 16, "architecture.width": 8}
    sgd = {**adam, "solver.name": "sgd", "solver.base_lr": 0.1, "solver.nesterov": True}
    a, s = distributions(study().space, adam), distributions(study().space, sgd)
    assert a["solver.base_lr[solver.name=adam]"] == FloatDistribution(*ADAM_LR, log=True)
    assert s["solver.base_lr[solver.name=sgd]"] == FloatDistribution(*SGD_LR, log=True)
    assert s["solver.nesterov[solver.name=sgd]"] == CategoricalDistribution([False, True])
    assert a["training.batch_size"] == IntDistribution(16, 64, step=16)
    assert a["solver.name"] == CategoricalDistribution(["adam", "sgd", "lion"])
    assert {spec_path(n) for n in s} == set(sgd)


def test_the_grid_never_proposes_a_point_twice_and_stops_when_done():
    spec = study("grid")
    grid, trials = enumerate_grid(spec.space), []
    states = ["complete", "failed", "running", "pruned"]
    while batch := next_params(spec, trials, 5):
        trials += [TrialRecord(len(trials) + i, p, states[(len(trials) + i) % 4]) for i, p in enumerate(batch)]
    assert len(grid) == (3 + 2 * 2 + 1) * 4 * 2  # solver settings x batch sizes x widths
    assert [t.params for t in trials] == grid
    assert next_params(spec, trials, 5) == []


def test_the_grid_skips_points_already_run_in_any_order_and_keeps_to_the_budget():
    spec = study("grid", max_trials=10)
    grid = enumerate_grid(spec.space)
    done = [TrialRecord(0, dict(reversed(list(grid[1].items()))), "complete", 1.0), TrialRecord(1, grid[3], "failed")]
    proposed = next_params(spec, done, 100)
    assert proposed == [grid[0], grid[2]] + grid[4:10]  # 10 trials in all


def _check_in_space(params):
    assert set(params) == TOP | BRANCH_KEYS[params["solver.name"]]
    low, high = {"adam": ADAM_LR, "sgd": SGD_LR}.get(params["solver.name"], (0, 0))
    if "solver.base_lr" in params:
        assert low <= params["solver.base_lr"] <= high
    assert params["training.batch_size"] in (16, 32, 48, 64)
    assert 1 <= params["architecture.width"] <= 1024 and isinstance(params["architecture.width"], int)


def _completed(spec, n):
    trials = []
    for _ in range(n):
        p = next_params(spec, trials, 1)[0]
        trials.append(TrialRecord(len(trials), p, "complete", loss(p), {1: loss(p) * 2, 2: loss(p)}))
    return trials


# TPE's first 10 proposals are random (Optuna's n_startup_trials), then model-based: slower
@pytest.mark.parametrize("strategy, n_done, n", [("random", 0, 200), ("tpe", 0, 200), ("tpe", 15, 100)])
def test_proposals_keep_to_bounds_log_scale_and_branches(strategy, n_done, n):
    spec = study(strategy)
    proposals = next_params(spec, _completed(spec, n_done), n)
    assert len(proposals) == n
    for p in proposals:
        _check_in_space(p)
    assert {p["solver.name"] for p in proposals} == {"adam", "sgd", "lion"}
    if strategy == "random":
        # log-uniform width in [1, 1024]: half below sqrt(1024) = 32 (uniform would put 3% there)
        below = sum(p["architecture.width"] < 32 for p in proposals) / len(proposals)
        assert 0.35 < below < 0.65
        adam = [math.log10(p["solver.base_lr"]) for p in proposals if p["solver.name"] == "adam"]
        assert 0.3 < sum(x < -2.5 for x in adam) / len(adam) < 0.7


@pytest.mark.parametrize("strategy", ["random", "tpe"])
def test_proposals_are_deterministic_given_the_seed_and_the_trials(strategy):
    trials = _completed(study(strategy), 12)
    running = trials + [TrialRecord(12, trials[0].params, "running", None, {1: 0.5})]
    first = next_params(study(strategy), running, 4)
    assert first == next_params(study(strategy), running, 4)
    assert first != next_params(study(strategy, seed=1), running, 4)
    assert len({repr(p) for p in first}) == 4


def test_the_budget_caps_the_proposals():
    trials = [TrialRecord(i, {"solver.name": "lion", "training.batch_size": 16, "architecture.width": 2},
                          "complete", 1.0) for i in range(3)]
    assert len(next_params(study("random", max_trials=5), trials, 10)) == 2
    assert next_params(study("tpe", max_trials=3), trials, 10) == []


# -- pruning ---------------------------------------------------------------------------------
P = {"solver.name": "lion", "training.batch_size": 16, "architecture.width": 2}


def done(number, curve, state="complete"):
    """A trial with per-epoch values ``curve`` (epochs 1, 2, ...)."""
    values = dict(enumerate(curve, start=1))
    return TrialRecord(number, P, state, curve[-1] if state == "complete" else None, values)


# three finished trials; at epoch 2 they stand at 0.2, 0.4, 0.6: the median is 0.4
FINISHED = [done(0, [0.9, 0.2, 0.1]), done(1, [0.9, 0.4, 0.3]), done(2, [0.9, 0.6, 0.5])]
MEDIAN = {"name": "median", "n_startup_trials": 3}


@pytest.mark.parametrize("pruner, others, curve, metric, prune", [
    (MEDIAN, FINISHED, [1.0, 0.5], "val/loss", True),            # 0.5 worse than the median 0.4
    (MEDIAN, FINISHED, [1.0, 0.3], "val/loss", False),           # better
    (MEDIAN, FINISHED, [1.0, 0.4], "val/loss", False),           # equal is not worse
    (MEDIAN, FINISHED, [0.3, 0.5], "val/loss", False),           # its best so far (0.3) is what counts
    ({**MEDIAN, "n_startup_trials": 4}, FINISHED, [1.0, 0.5], "val/loss", False),  # only 3 finished
    ({**MEDIAN, "n_warmup_steps": 3}, FINISHED, [1.0, 0.5], "val/loss", False),    # epoch 2 is warm-up
    (MEDIAN, FINISHED + [done(3, [0.9, 0.0], "running"), done(4, [0.9, 0.0], "pruned")], [1.0, 0.5],
     "val/loss", True),                                          # unfinished trials set no median
    (MEDIAN, FINISHED, [0.0, 0.5], "val/accuracy", False),       # higher is better: 0.5 beats 0.4
    (MEDIAN, FINISHED, [0.0, 0.3], "val/accuracy", True),
    ({"name": "none"}, FINISHED, [1.0, 9.0], "val/loss", False),
])
def test_median_pruning(pruner, others, curve, metric, prune):
    spec = study(pruner=pruner, metric=metric)
    assert should_prune(spec, others, 99, dict(enumerate(curve, start=1))) is prune


ASHA = {"name": "asha", "min_resource": 1, "reduction_factor": 3}  # rungs at epochs 1, 3, 9
# five trials past rung 0 with 0.1 ... 0.5 at epoch 1; two of them past rung 1 with 0.1 and 0.3 at epoch 3
RUNG0 = [done(i, [v]) for i, v in enumerate([0.3, 0.4, 0.5])] + [
    done(3, [0.1, 0.1, 0.1], "running"), done(4, [0.2, 0.2, 0.3], "complete")]


@pytest.mark.parametrize("others, curve, metric, prune", [
    # rung 0: 6 values with the trial's; it goes on if among the best 6 // 3 = 2
    (RUNG0, [0.15], "val/loss", False),     # 0.1, 0.15 | 0.2 ...
    (RUNG0, [0.25], "val/loss", True),      # 0.1, 0.2 | 0.25 ...
    (RUNG0, [0.2], "val/loss", False),      # ties with the 2nd best: kept
    (RUNG0, [0.45], "val/accuracy", False),  # maximising: 0.5, 0.45 | 0.4 ...
    (RUNG0, [0.35], "val/accuracy", True),
    (RUNG0, [0.15, 0.9], "val/loss", False),  # epoch 2 is no rung: no decision
    # rung 1 (epoch 3): its 0.05 against 0.1 and 0.3: best 3 // 3 = 1 goes on
    (RUNG0, [0.15, 0.9, 0.05], "val/loss", False),
    (RUNG0, [0.15, 0.9, 0.2], "val/loss", True),
    ([], [5.0], "val/loss", False),          # fewer than reduction_factor: only the best goes on (Optuna)
    ([done(0, [1.0])], [5.0], "val/loss", True),
])
def test_asha_pruning(others, curve, metric, prune):
    spec = study(pruner=ASHA, metric=metric)
    assert should_prune(spec, others, 99, dict(enumerate(curve, start=1))) is prune


def test_the_trial_itself_is_left_out_of_the_others():
    spec = study(pruner=ASHA)
    mine = done(7, [0.25], "running")
    assert should_prune(spec, RUNG0 + [mine], 7, {1: 0.25}) is True  # not 7 values with a copy of itself


@pytest.mark.parametrize("pruner, intermediate, records", [
    (ASHA, {1: 0.5, 2: 0.4, 3: 0.3}, {"completed_rung_0": 0.5, "completed_rung_1": 0.3}),
    (ASHA, {2: 0.5, 5: 0.3}, {"completed_rung_0": 0.5, "completed_rung_1": 0.3}),
    ({**ASHA, "min_resource": 2, "reduction_factor": 2}, {e: e / 10 for e in range(1, 9)},
     {"completed_rung_0": 0.2, "completed_rung_1": 0.4, "completed_rung_2": 0.8}),
    (MEDIAN, {1: 0.5}, {}),
    (ASHA, {}, {}),
])
def test_rung_values(pruner, intermediate, records):
    assert rung_values(study(pruner=pruner), intermediate) == records


# -- importance and the best trial -----------------------------------------------------------
IMP_SPACE = {"x": {"type": "float", "low": 0.0, "high": 1.0}, "y": {"type": "float", "low": 0.0, "high": 1.0}}


def _xy_trials(n, f):
    spec = study("random", space=IMP_SPACE)
    return [TrialRecord(i, p, "complete", f(p)) for i, p in enumerate(next_params(spec, [], n))]


def test_importance_ranks_the_parameter_the_objective_follows():
    trials = _xy_trials(30, lambda p: 10 * p["x"] + 0.01 * p["y"])
    got = importance(study(space=IMP_SPACE), trials)
    assert set(got) == {"x", "y"} and got["x"] > 0.9 and got == importance(study(space=IMP_SPACE), trials)


def test_importance_reads_conditional_names_back_as_spec_paths():
    trials = [TrialRecord(i, p, "complete", loss(p)) for i, p in enumerate(next_params(study("random"), [], 30))]
    got = importance(study(), trials)
    assert set(got) <= TOP and "solver.name" in got


@pytest.mark.parametrize("trials", [
    [],
    [TrialRecord(0, {"x": 0.1, "y": 0.2}, "complete", 1.0), TrialRecord(1, {"x": 0.3, "y": 0.2}, "running")],
    [TrialRecord(i, {"x": 0.5, "y": 0.5}, "complete", float(i)) for i in range(5)],  # nothing varies
])
def test_importance_is_empty_without_two_complete_trials_that_differ(trials):
    assert importance(study(space=IMP_SPACE), trials) == {}


@pytest.mark.parametrize("metric, expected", [("val/loss", 2), ("val/accuracy", 1)])
def test_best_by_the_objective_first_number_among_equals(metric, expected):
    trials = [TrialRecord(0, {}, "complete", 0.5), TrialRecord(1, {}, "complete", 0.9),
              TrialRecord(2, {}, "complete", 0.1), TrialRecord(3, {}, "complete", 0.1),
              TrialRecord(4, {}, "pruned", 0.0), TrialRecord(5, {}, "failed"), TrialRecord(6, {}, "running", 5.0)]
    assert best(study(metric=metric), trials).number == expected
    assert best(study(), trials[4:]) is None


def test_active_params_of_a_proposal_are_the_proposal():
    for p in next_params(study("random"), [], 20):
        assert active_params(study().space, p) == p


def test_optuna_is_quiet_only_during_a_call():
    import optuna

    before = optuna.logging.get_verbosity()
    next_params(study("tpe"), [], 2)
    assert optuna.logging.get_verbosity() == before


def _solver_trial(number, solver, curve, state="complete"):
    params = {**P, "solver.name": solver}
    return TrialRecord(number, params, state, curve[-1] if state == "complete" else None,
                       dict(enumerate(curve, start=1)))


# finished: two adam trials far better than the one sgd trial; the trial judged is an sgd one
GROUPED = [_solver_trial(0, "adam", [0.1, 0.1]), _solver_trial(1, "adam", [0.2, 0.2]),
           _solver_trial(2, "sgd", [0.9, 0.9])]


@pytest.mark.parametrize(("pruner", "curve", "prune"), [
    ({"name": "median", "n_startup_trials": 1}, [0.5], True),   # median of 0.1, 0.2, 0.9 is 0.2: pruned
    ({"name": "median", "n_startup_trials": 1, "group_by": "solver.name"}, [0.5], False),  # only sgd's 0.9
    ({"name": "median", "n_startup_trials": 1, "group_by": "solver.name"}, [0.95], True),
    ({**ASHA}, [0.5], True),                                     # rung 0: 4 values, the best 1 goes on
    ({**ASHA, "group_by": "solver.name"}, [0.5], False),        # against sgd's 0.9 alone: the best
])
def test_group_by_judges_a_trial_against_its_own_groups_trials(pruner, curve, prune):
    spec = study(pruner=pruner)
    mine = _solver_trial(9, "sgd", curve, "running")
    assert should_prune(spec, GROUPED + [mine], 9, dict(enumerate(curve, start=1))) is prune


def test_group_by_must_name_a_top_level_categorical():
    with pytest.raises(ValueError, match="pruner.group_by: 'solver.base_lr' is not a categorical"):
        study(pruner={"name": "asha", "group_by": "solver.base_lr"})
