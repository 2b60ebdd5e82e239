"""The optimizers that mirror torch.optim, and the settings each is held to its torch twin under:
flag combinations, checkpoint runs, state-layout runs, complex and sparse parameters.  The checks
themselves are in test_torch_parity.py; each optimizer's own test file keeps what is its alone
(closed forms from the paper, special paths)."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
import torch

from optim.adadelta import Adadelta
from optim.adagrad import Adagrad
from optim.adam import Adam, AdamW
from optim.adamax import Adamax
from optim.asgd import ASGD
from optim.nadam import NAdam
from optim.radam import RAdam
from optim.rmsprop import RMSprop
from optim.rprop import Rprop
from optim.sgd import SGD


def flags(base: dict, group2: dict | None, variants: dict | None = None, **axes) -> list:
    """Every combination of the ``axes`` values (hyperparameter -> values to try) over ``base``,
    as ``pytest.param(kwargs, group2)``; ``variants`` (name -> (extra kwargs, second group))
    multiplies them by settings that travel together."""
    variants = variants or {"": ({}, group2)}
    cases = []
    for (name, (extra, g2)), values in itertools.product(variants.items(), itertools.product(*axes.values())):
        chosen = dict(zip(axes, values))
        tag = "-".join([*([name] if name else []), *(f"{k}{v}" for k, v in chosen.items())])
        cases.append(pytest.param({**base, **extra, **chosen}, g2, id=tag))
    return cases


@dataclass(frozen=True)
class Mirror:
    ours: type
    theirs: type
    cases: list  # pytest.param(kwargs, group2): every flag combination, each run with and without foreach
    resumes: list  # (kwargs, group2, splits): run, cut at each split, reload, continue
    checkpoints: list  # (kwargs, group2, split): a torch checkpoint continued by ours
    both_ways: bool = False  # ... and ours continued by torch (exactly as by ours)
    state_keys: frozenset | None = None  # the per-parameter state torch saves
    layouts: list = field(default_factory=list)  # (kwargs, group2, steps): state_dict compared with torch's
    complex: tuple | None = None  # (kwargs, problem, tol): complex parameters against torch
    sparse: tuple | None = None  # (kwargs, extra indices): a sparse embedding gradient against torch
    foreach_tol: float = 1e-12  # foreach path against the per-tensor loop
    torch_foreach: bool | None = None  # which torch path is the reference (None: the same as ours)
    averages: Callable | None = None  # derived state that must survive a checkpoint too

    @property
    def name(self) -> str:
        return self.ours.__name__


def _asgd_averages(opt) -> list[torch.Tensor]:
    if hasattr(opt, "averaged_parameters"):
        return opt.averaged_parameters()
    return [opt.state[p]["ax"] for g in opt.param_groups for p in g["params"]]


ADAM_GROUP2 = {"lr": 0.03, "betas": (0.8, 0.95), "eps": 1e-6}
NADAM_GROUP2 = {"lr": 0.03, "betas": (0.8, 0.95), "momentum_decay": 0.05}
ADAMW_GROUP2 = {"lr": 0.03, "betas": (0.8, 0.95), "weight_decay": 0.05}
# RAdam's second group: beta2 = 0.95 rectifies from step 6 on; beta2 = 0.6 gives rho_inf = 4, never rectified.
RADAM_GROUP2 = {
    "rectifying": {"lr": 0.03, "betas": (0.8, 0.95), "eps": 1e-6},
    "never-rectified": {"lr": 0.02, "betas": (0.9, 0.6)},
}
ADADELTA_GROUP2 = {"lr": 0.5, "rho": 0.95, "eps": 1e-5}
RPROP_GROUP2 = {"lr": 0.005, "etas": (0.4, 1.3)}
ADAGRAD_GROUP2 = {"lr": 0.05, "eps": 1e-6, "weight_decay": 0.02}
# RMSprop's second group adds momentum where the first has none, and changes it where it has some
RMSPROP_GROUP2 = {"lr": 0.005, "alpha": 0.9, "eps": 1e-6, "momentum": 0.5}
ASGD_GROUP2 = {"lr": 0.02, "lambd": 1e-3, "t0": 5}
SGD_VARIANTS = {  # name: (first group's momentum settings, second group's overrides)
    "plain": ({}, {}),
    "momentum": ({"momentum": 0.9}, {"momentum": 0.5}),
    "dampening": ({"momentum": 0.9, "dampening": 0.3}, {"dampening": 0.6}),
    "nesterov": ({"momentum": 0.9, "nesterov": True}, {"momentum": 0.7}),
}
NADAM_CHECKPOINT = {"lr": 0.01, "weight_decay": 0.01, "momentum_decay": 0.5}
BOOLS = (False, True)
DECAYS = (0.0, 0.1)

MIRRORS = [
    Mirror(
        Adam, torch.optim.Adam,
        cases=flags({"lr": 0.01}, ADAM_GROUP2, weight_decay=DECAYS, maximize=BOOLS, amsgrad=BOOLS,
                    decoupled_weight_decay=BOOLS),
        resumes=[({"lr": 0.01, "weight_decay": 0.01, "amsgrad": a}, ADAM_GROUP2, (5, 20)) for a in BOOLS],
        checkpoints=[({"lr": 0.01, "weight_decay": 0.01, "amsgrad": a}, ADAM_GROUP2, 15) for a in BOOLS],
        both_ways=True,
        layouts=[({"lr": 0.01, "amsgrad": True}, ADAM_GROUP2, 10)],
        complex=({"lr": 0.05, "weight_decay": 0.1, "amsgrad": True}, "random-targets", 1e-10),
    ),
    Mirror(
        AdamW, torch.optim.AdamW,
        cases=flags({"lr": 0.01}, ADAMW_GROUP2, weight_decay=(0.0, 1e-2, 0.3), maximize=BOOLS, amsgrad=BOOLS),
        resumes=[({"lr": 0.01, "amsgrad": True}, ADAMW_GROUP2, (12,))],
        checkpoints=[({"lr": 0.01, "weight_decay": 0.1, "amsgrad": True}, ADAMW_GROUP2, 15)],
        both_ways=True,
        layouts=[({"lr": 0.01, "amsgrad": True}, ADAMW_GROUP2, 10)],
    ),
    Mirror(
        Adamax, torch.optim.Adamax,
        cases=flags({"lr": 0.01}, ADAM_GROUP2, weight_decay=DECAYS, maximize=BOOLS),
        resumes=[({"lr": 0.01, "weight_decay": 0.01}, ADAM_GROUP2, (5, 20))],
        checkpoints=[({"lr": 0.01, "weight_decay": 0.01}, ADAM_GROUP2, 15)],
        both_ways=True,
        layouts=[({"lr": 0.01}, ADAM_GROUP2, 10)],
        complex=({"lr": 0.05, "weight_decay": 0.1}, "to-1j", 1e-10),
    ),
    Mirror(
        NAdam, torch.optim.NAdam,
        cases=flags({"lr": 0.01}, NADAM_GROUP2, weight_decay=DECAYS, maximize=BOOLS, decoupled_weight_decay=BOOLS,
                    momentum_decay=(4e-3, 0.5)),
        # bit-identical: mu_product stays in its float32 counter dtype across the reload
        resumes=[(NADAM_CHECKPOINT, NADAM_GROUP2, (3, 20))],
        # torch continuing ours is in test_nadam.py: torch's load recasts mu_product
        checkpoints=[(NADAM_CHECKPOINT, NADAM_GROUP2, 3)],
        layouts=[({"lr": 0.01}, NADAM_GROUP2, 10)],
        complex=({"lr": 0.05, "weight_decay": 0.1}, "to-1j", 1e-10),
    ),
    Mirror(
        RAdam, torch.optim.RAdam,
        cases=flags({"lr": 0.01}, None, {k: ({}, g2) for k, g2 in RADAM_GROUP2.items()},
                    weight_decay=DECAYS, maximize=BOOLS, decoupled_weight_decay=BOOLS),
        resumes=[({"lr": 0.01, "weight_decay": 0.01}, RADAM_GROUP2["rectifying"], (3, 20))],
        checkpoints=[({"lr": 0.01, "weight_decay": 0.01, "decoupled_weight_decay": True},
                      RADAM_GROUP2["rectifying"], 4)],
        both_ways=True,
        layouts=[({"lr": 0.01}, RADAM_GROUP2["rectifying"], 10)],
        complex=({"lr": 0.05, "betas": (0.9, 0.9), "weight_decay": 0.1}, "to-1j", 1e-10),
    ),
    Mirror(
        Adadelta, torch.optim.Adadelta,
        cases=flags({"lr": 1.0}, ADADELTA_GROUP2, rho=(0.9, 0.5), weight_decay=DECAYS, maximize=BOOLS),
        resumes=[({"weight_decay": 0.01}, ADADELTA_GROUP2, (5, 20))],
        checkpoints=[({"rho": 0.8, "weight_decay": 0.01}, ADADELTA_GROUP2, 15)],
        state_keys=frozenset({"step", "square_avg", "acc_delta"}),
        layouts=[({}, ADADELTA_GROUP2, 3)],
        complex=({"weight_decay": 0.01}, "fixed-point", 1e-12),
    ),
    Mirror(
        Rprop, torch.optim.Rprop,
        # inverted step_sizes pin every step size at the max, as torch.clamp does
        cases=flags({"lr": 0.01}, RPROP_GROUP2, etas=((0.5, 1.2), (0.3, 1.5)),
                    step_sizes=((1e-6, 50), (1e-3, 0.02), (0.02, 1e-3)), maximize=BOOLS),
        resumes=[({"lr": 0.01}, RPROP_GROUP2, (5, 20))],
        checkpoints=[({"lr": 0.01, "etas": (0.4, 1.3), "step_sizes": (1e-4, 1.0)}, RPROP_GROUP2, 15)],
        state_keys=frozenset({"step", "prev", "step_size"}),
        layouts=[({}, RPROP_GROUP2, 4)],
        complex=({"lr": 0.05}, "fixed-point", 1e-12),
        foreach_tol=0.0,
    ),
    Mirror(
        Adagrad, torch.optim.Adagrad,
        cases=flags({"lr": 0.1}, ADAGRAD_GROUP2, weight_decay=DECAYS, maximize=BOOLS, lr_decay=(0.0, 0.01),
                    initial_accumulator_value=(0.0, 0.1)),
        resumes=[({"lr": 0.1, "lr_decay": 0.01, "initial_accumulator_value": 0.1}, ADAGRAD_GROUP2, (5, 20))],
        checkpoints=[({"lr": 0.1, "lr_decay": 0.01, "initial_accumulator_value": 0.1, "weight_decay": 0.01},
                      ADAGRAD_GROUP2, 15)],
        state_keys=frozenset({"step", "sum"}),
        layouts=[({"lr": 0.1}, ADAGRAD_GROUP2, 3)],
        complex=({"lr": 0.1, "weight_decay": 0.01}, "fixed-point", 1e-12),
        sparse=({"lr": 0.1, "lr_decay": 0.01}, [3, 3]),
    ),
    Mirror(
        RMSprop, torch.optim.RMSprop,
        cases=flags({"lr": 0.01}, RMSPROP_GROUP2, weight_decay=DECAYS, maximize=BOOLS, momentum=(0.0, 0.9),
                    centered=BOOLS),
        resumes=[({"lr": 0.01, "momentum": 0.9, "centered": True, "weight_decay": 0.01}, RMSPROP_GROUP2, (5, 20))],
        checkpoints=[({"lr": 0.01, "momentum": 0.9, "centered": True, "weight_decay": 0.01}, RMSPROP_GROUP2, 15)],
        state_keys=frozenset({"step", "square_avg", "momentum_buffer", "grad_avg"}),
        layouts=[({}, {}, 4), ({"momentum": 0.9}, {}, 4), ({"centered": True}, {}, 4)],
        complex=({"lr": 0.05, "momentum": 0.5, "centered": True}, "fixed-point", 1e-12),
    ),
    Mirror(
        ASGD, torch.optim.ASGD,
        cases=flags({"lr": 0.05, "lambd": 0.01}, ASGD_GROUP2,
                    {"alpha0.75-t010": ({"alpha": 0.75, "t0": 10}, ASGD_GROUP2),
                     "alpha0.5-t01e6": ({"alpha": 0.5, "t0": 1e6}, ASGD_GROUP2)},
                    weight_decay=DECAYS, maximize=BOOLS),
        resumes=[({"lr": 0.05, "lambd": 0.01, "t0": 3}, ASGD_GROUP2, (5, 20))],
        checkpoints=[({"lr": 0.05, "lambd": 0.01, "t0": 3, "weight_decay": 0.01}, ASGD_GROUP2, 15)],
        state_keys=frozenset({"step", "eta", "mu", "ax"}),
        layouts=[({"t0": 1}, ASGD_GROUP2, 4)],
        complex=({"lr": 0.05, "t0": 3, "weight_decay": 0.01}, "fixed-point", 1e-12),
        # torch's own foreach path computes the next eta in tensor arithmetic in the scalar dtype
        # (float32 unless the default dtype is float64), so it drifts from torch's single-tensor
        # path by ~1e-5 relative over 50 steps.  Both of our paths compute eta in float64 like
        # torch's single-tensor path, which is therefore the reference (test_asgd.py matches
        # torch's foreach path where its scalars are float64 too).
        torch_foreach=False,
        averages=_asgd_averages,
    ),
    Mirror(
        SGD, torch.optim.SGD,
        cases=flags({"lr": 0.05}, None, {k: (v[0], {"lr": 0.02, **v[1]}) for k, v in SGD_VARIANTS.items()},
                    weight_decay=DECAYS, maximize=BOOLS),
        resumes=[({"lr": 0.05, "weight_decay": 0.01, **SGD_VARIANTS[k][0]}, SGD_VARIANTS[k][1], (5, 20))
                 for k in ("momentum", "nesterov", "dampening")],
        checkpoints=[({"lr": 0.05, "weight_decay": 0.01, **SGD_VARIANTS[k][0]}, SGD_VARIANTS[k][1], 15)
                     for k in ("momentum", "nesterov")],
        state_keys=frozenset({"momentum_buffer"}),
        sparse=({"lr": 0.1}, [3]),
    ),
]
BY_NAME = {m.name: m for m in MIRRORS}
