"""Schedules against their closed forms: cosine, step decay, cyclic triangles, one cycle, plateau
reductions and the linear warm-up in front of each kind (step, epoch, metric interval)."""

from __future__ import annotations

import math

import pytest
import torch

from optim import catalog
from optim.factory import build_optimizer
from optim.schedulers import Constant, LinearWarmup, build_scheduler

BASE_LR = 0.1
EPOCHS = 12
PER_EPOCH = 5


def _optimizer(kind: str = "sgd") -> torch.optim.Optimizer:
    p = torch.nn.Parameter(torch.zeros(3))
    if kind == "adam":
        return torch.optim.Adam([p], lr=BASE_LR)
    return torch.optim.SGD([p], lr=BASE_LR, momentum=0.9)


def _lrs_per_step(sched: LinearWarmup, epochs=EPOCHS, per_epoch=PER_EPOCH, losses=None, key="lr"):
    """The value of ``key`` (lr or momentum) each optimizer step trained with, as (epoch, t, value)."""
    opt = sched.optimizer
    out = []
    t = 0
    for epoch in range(epochs):
        for _ in range(per_epoch):
            group = opt.param_groups[0]
            value = group["betas"][0] if key == "beta1" else group[key]
            out.append((epoch, t, value))
            for p in group["params"]:
                p.grad = torch.zeros_like(p)
            opt.step()
            sched.step_batch()
            t += 1
        sched.step_epoch(val_loss=None if losses is None else losses[epoch])
    return out


def _cosine(lo, hi, frac):
    return lo + (hi - lo) * (1 + math.cos(math.pi * frac)) / 2


def _triangle(t, half):
    """Smith (2017), eq. for the triangular policy: position in [0, 1] within the cycle's triangle."""
    cycle = math.floor(1 + t / (2 * half))
    x = abs(t / half - 2 * cycle + 1)
    return cycle, max(0.0, 1 - x)


def _one_cycle(t, total, max_lr, pct=0.3, div=25.0, final_div=1e4):
    initial = max_lr / div
    end_up = pct * total - 1
    if t <= end_up:
        return _cosine(max_lr, initial, t / end_up)
    return _cosine(initial / final_div, max_lr, (t - end_up) / (total - 1 - end_up))


# name, params, closed form lr(epoch, t) with no warm-up (E=12 epochs, S=5 steps per epoch)
CLOSED_FORMS = [
    ("constant", {}, lambda e, t: BASE_LR),
    ("steplr", {"step_size": 3, "gamma": 0.5}, lambda e, t: BASE_LR * 0.5 ** (e // 3)),
    ("steplr", {}, lambda e, t: BASE_LR * 0.1 ** (e // (EPOCHS // 3))),  # derived step_size E//3
    ("multisteplr", {"milestones": [2, 7], "gamma": 0.2},
     lambda e, t: BASE_LR * 0.2 ** sum(e >= m for m in (2, 7))),
    ("exponentiallr", {"gamma": 0.9}, lambda e, t: BASE_LR * 0.9**e),
    ("cosineannealinglr", {"T_max": 8, "eta_min": 0.01},
     lambda e, t: _cosine(0.01, BASE_LR, e / 8) if e <= 8 else None),
    ("cosineannealinglr", {}, lambda e, t: _cosine(0.0, BASE_LR, e / EPOCHS)),  # derived T_max = E
    ("cycliclr", {"base_lr": 0.01, "max_lr": 0.1, "step_size_up": 4},
     lambda e, t: 0.01 + 0.09 * _triangle(t, 4)[1]),
    ("cycliclr", {"base_lr": 0.01, "max_lr": 0.1, "step_size_up": 3, "mode": "triangular2"},
     lambda e, t: 0.01 + 0.09 * _triangle(t, 3)[1] / 2 ** (_triangle(t, 3)[0] - 1)),
    ("cycliclr", {"base_lr": 0.01, "max_lr": 0.1},  # derived step_size_up = 2 * S
     lambda e, t: 0.01 + 0.09 * _triangle(t, 2 * PER_EPOCH)[1]),
    ("cosineannealingwarmrestarts", {"T_0": 2, "T_mult": 2},
     lambda e, t: _cosine(0.0, BASE_LR, _restart_position(e, 2, 2))),
    ("onecyclelr", {"max_lr": 0.5, "total_steps": EPOCHS * PER_EPOCH},
     lambda e, t: _one_cycle(t, EPOCHS * PER_EPOCH, 0.5)),
    ("onecyclelr", {"max_lr": 0.5, "anneal_strategy": "linear", "pct_start": 0.25},
     lambda e, t: _linear_one_cycle(t, EPOCHS * PER_EPOCH, 0.5, 0.25)),
    ("linearlr", {"start_factor": 0.25, "end_factor": 1.0, "total_iters": 4},
     lambda e, t: BASE_LR * (0.25 + 0.75 * min(e, 4) / 4)),
    ("polynomiallr", {"total_iters": 10, "power": 2.0},
     lambda e, t: BASE_LR * (1 - min(e, 10) / 10) ** 2),
    ("constantlr", {"factor": 0.5, "total_iters": 3}, lambda e, t: BASE_LR * (0.5 if e < 3 else 1.0)),
]


def _restart_position(epoch, t0, t_mult):
    t_i, start = t0, 0
    while epoch >= start + t_i:
        start += t_i
        t_i *= t_mult
    return (epoch - start) / t_i


def _linear_one_cycle(t, total, max_lr, pct, div=25.0, final_div=1e4):
    initial = max_lr / div
    end_up = pct * total - 1
    if t <= end_up:
        return initial + (max_lr - initial) * t / end_up
    return max_lr + (initial / final_div - max_lr) * (t - end_up) / (total - 1 - end_up)


@pytest.mark.parametrize(("name", "params", "lr_at"), CLOSED_FORMS, ids=[f"{c[0]}-{i}" for i, c in enumerate(CLOSED_FORMS)])
def test_schedule_matches_closed_form(name, params, lr_at):
    sched = build_scheduler(_optimizer(), name, params, epochs=EPOCHS, steps_per_epoch=PER_EPOCH)
    for epoch, t, lr in _lrs_per_step(sched):
        want = lr_at(epoch, t)
        if want is not None:
            assert lr == pytest.approx(want, rel=1e-9, abs=1e-12), f"epoch {epoch} step {t}"


@pytest.mark.parametrize("warmup", [1, 7, 23])
@pytest.mark.parametrize("start", [0.0, 0.3])
def test_warmup_ramp_scales_an_epoch_cosine(warmup, start):
    """Warm-up longer than an epoch overlaps the cosine: lr = cosine(epoch) * ramp(t)."""
    sched = build_scheduler(
        _optimizer(), "cosineannealinglr", {"warmup_start_factor": start},
        warmup_steps=warmup, epochs=EPOCHS, steps_per_epoch=PER_EPOCH,
    )
    for epoch, t, lr in _lrs_per_step(sched):
        ramp = start + (1 - start) * t / warmup if t < warmup else 1.0
        assert lr == pytest.approx(_cosine(0.0, BASE_LR, epoch / EPOCHS) * ramp, rel=1e-9, abs=1e-15)


@pytest.mark.parametrize("warmup", [4, 11])
def test_step_schedule_starts_when_warmup_ends(warmup):
    """A step-interval one cycle follows the warm-up: derived total_steps = E*S - W ends it with training."""
    sched = build_scheduler(_optimizer(), "onecyclelr", {"max_lr": 0.5}, warmup_steps=warmup,
                            epochs=EPOCHS, steps_per_epoch=PER_EPOCH)
    total = EPOCHS * PER_EPOCH - warmup
    initial = 0.5 / 25
    for _epoch, t, lr in _lrs_per_step(sched):
        want = initial * t / warmup if t < warmup else _one_cycle(t - warmup, total, 0.5)
        assert lr == pytest.approx(want, rel=1e-9, abs=1e-15), f"step {t}"


def test_step_decay_during_warmup_is_not_compounded():
    """StepLR is chainable (multiplies the current lr): it must see its own lr, not the warmed one."""
    sched = build_scheduler(_optimizer(), "steplr", {"step_size": 1, "gamma": 0.5}, warmup_steps=20,
                            epochs=EPOCHS, steps_per_epoch=PER_EPOCH)
    for epoch, t, lr in _lrs_per_step(sched):
        assert lr == pytest.approx(BASE_LR * 0.5**epoch * min(1.0, t / 20), rel=1e-9, abs=1e-15)


def test_warmup_then_plateau_reductions():
    """ReduceLROnPlateau (patience 2, factor 0.5) behind a 6-step warm-up: the first loss sets the
    best, the lr halves after the third epoch in a row without improvement, then counting restarts."""
    losses = [1.0, 0.9, 0.8] + [0.8] * (EPOCHS - 3)
    sched = build_scheduler(_optimizer(), "reducelronplateau", {"patience": 2, "factor": 0.5}, warmup_steps=6)
    lr_in_epoch = {}
    # epochs 0-2 improve; 3,4,5 are bad -> reduce after epoch 5; 6,7,8 bad -> after 8; 9,10,11 -> after 11
    for epoch in range(EPOCHS):
        lr_in_epoch[epoch] = BASE_LR * 0.5 ** sum(epoch > r for r in (5, 8, 11))
    for epoch, t, lr in _lrs_per_step(sched, losses=losses):
        assert lr == pytest.approx(lr_in_epoch[epoch] * min(1.0, t / 6), rel=1e-12, abs=1e-15)


def test_metric_scheduler_needs_the_validation_loss():
    sched = build_scheduler(_optimizer(), "reducelronplateau", {})
    with pytest.raises(ValueError, match="val_loss"):
        sched.step_epoch()


@pytest.mark.parametrize(
    ("name", "params", "key"),
    [
        ("cycliclr", {"base_lr": 0.01, "max_lr": 0.1, "step_size_up": 4}, "momentum"),
        ("onecyclelr", {"max_lr": 0.5}, "momentum"),
    ],
)
def test_cyclic_momentum_moves_against_the_lr(name, params, key):
    """Smith: momentum max_m - (max_m - base_m) * triangle, i.e. linear in the lr between its bounds."""
    sched = build_scheduler(_optimizer(), name, params, epochs=EPOCHS, steps_per_epoch=PER_EPOCH)
    lrs = [v for *_, v in _lrs_per_step(sched)]
    sched = build_scheduler(_optimizer(), name, params, epochs=EPOCHS, steps_per_epoch=PER_EPOCH)
    moms = [v for *_, v in _lrs_per_step(sched, key=key)]
    entry = catalog.scheduler(name)
    lo_m, hi_m = entry.hyperparameter("base_momentum").default, entry.hyperparameter("max_momentum").default
    lo_lr, hi_lr = min(lrs), max(lrs)
    if name == "onecyclelr":
        lo_lr = params["max_lr"] / 25  # the annealing goes below the start; momentum tracks the rise
        lrs, moms = lrs[:18], moms[:18]
    for lr, m in zip(lrs, moms):
        assert m == pytest.approx(hi_m - (hi_m - lo_m) * (lr - lo_lr) / (hi_lr - lo_lr), rel=1e-9)


def _betas_solvers():
    """Catalog solvers with betas (Adam-likes) that build on plain parameters; torch's Adam as the anchor."""
    names = [
        e.name for e in catalog.SOLVERS.values()
        if "betas" in {h.name for h in e.hyperparameters} and not (e.needs_model or e.wraps or e.needs_closure)
    ]
    return ["torch-adam", *sorted(names)]


@pytest.mark.parametrize("solver", _betas_solvers())
def test_cyclic_momentum_drives_beta1(solver):
    p = torch.nn.Parameter(torch.zeros(3))
    opt = torch.optim.Adam([p], lr=BASE_LR) if solver == "torch-adam" else build_optimizer([p], solver, {})
    beta2 = opt.param_groups[0]["betas"][1]
    sched = build_scheduler(opt, "cycliclr", {"base_lr": 0.01, "max_lr": 0.1, "step_size_up": 4})
    for _, t, b1 in _lrs_per_step(sched, epochs=2, key="beta1"):
        assert b1 == pytest.approx(0.9 - 0.1 * _triangle(t, 4)[1], rel=1e-12)
    assert opt.param_groups[0]["betas"][1] == beta2


def test_resume_from_state_dicts_matches_an_uninterrupted_run():
    def build():
        opt = _optimizer("adam")
        return opt, build_scheduler(opt, "onecyclelr", {"max_lr": 0.5}, warmup_steps=7, epochs=EPOCHS,
                                    steps_per_epoch=PER_EPOCH)

    _, sched = build()
    full = [v for *_, v in _lrs_per_step(sched)]

    opt, sched = build()
    first = [v for *_, v in _lrs_per_step(sched, epochs=1)]  # stops inside the warm-up (5 < 7)
    saved_opt, saved_sched = opt.state_dict(), sched.state_dict()
    opt, sched = build()
    opt.load_state_dict(saved_opt)
    sched.load_state_dict(saved_sched)
    rest = [v for *_, v in _lrs_per_step(sched, epochs=EPOCHS - 1)]
    assert first + rest == pytest.approx(full, rel=1e-12)


def test_constant_keeps_the_lr():
    opt = _optimizer()
    sched = Constant(opt)
    for _ in range(3):
        opt.step()
        sched.step()
    assert opt.param_groups[0]["lr"] == BASE_LR


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"warmup_steps": -1}, "warmup_steps"),
        ({"warmup_steps": 2.5}, "warmup_steps"),
        ({"start_factor": 1.5}, "start_factor"),
        ({"start_factor": -0.1}, "start_factor"),
        ({"interval": "batch"}, "interval"),
    ],
)
def test_linear_warmup_rejects_bad_arguments(kwargs, field):
    with pytest.raises(ValueError, match=field):
        LinearWarmup(_optimizer(), **kwargs)


@pytest.mark.parametrize(
    ("name", "params", "kwargs", "field"),
    [
        ("nosuchschedule", {}, {}, "scheduler"),
        ("cosineannealinglr", {}, {}, "T_max"),  # derived, but no epochs given
        ("onecyclelr", {"max_lr": 0.1}, {"epochs": 3}, "total_steps"),  # needs steps_per_epoch too
        ("exponentiallr", {}, {}, "gamma"),  # required
        ("steplr", {"step_size": 0}, {}, "step_size"),
        ("steplr", {"warmup_steps": 3}, {"warmup_steps": 4, "epochs": 3}, "warmup_steps"),
        ("cycliclr", {"base_lr": 0.1, "max_lr": 0.2, "mode": "sawtooth"}, {"steps_per_epoch": 3}, "mode"),
    ],
)
def test_build_scheduler_errors_name_the_field(name, params, kwargs, field):
    with pytest.raises(ValueError, match=field):
        build_scheduler(_optimizer(), name, params, **kwargs)


@pytest.mark.parametrize(("name", "params", "field"), [
    ("onecyclelr", {"max_lr": 0.1, "total_steps": 5}, "total_steps"),  # the run takes 3 x 4 = 12 steps
    ("cycliclr", {"base_lr": 0.1, "max_lr": 0.01}, "max_lr"),
])
def test_build_scheduler_refuses_fields_that_would_fail_mid_run(name, params, field):
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1, momentum=0.9)
    with pytest.raises(ValueError, match=field):
        build_scheduler(opt, name, params, epochs=3, steps_per_epoch=4)
