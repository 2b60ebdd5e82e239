"""Catalog entries for the learning-rate schedulers; needs no torch.

Every scheduler but ``constant`` is torch's own (``torch.optim.lr_scheduler``); the entries list
its constructor arguments with torch's defaults, less ``optimizer``/``last_epoch`` and the
options a service user cannot express (``scale_fn``).  Every entry also carries the two common
warm-up fields of :class:`optim.schedulers.LinearWarmup`: ``warmup_steps`` (default 0, no
warm-up) and ``warmup_start_factor``.

``interval`` says when the engine steps the scheduler: ``"step"`` after every optimizer step,
``"epoch"`` after every epoch, ``"metric"`` after every epoch with the validation loss.

Fields the user may leave out (``derived_from``) are filled by
:func:`optim.factory.derive_scheduler_params` from the training section and the solver, with
``E`` the number of epochs, ``S`` the optimizer steps per epoch, ``W`` the warm-up steps and
``L`` the solver's base learning rate:

=============================  ==============  =========================================================
field                          derived_from    value when left out
=============================  ==============  =========================================================
steplr.step_size               epochs          ``max(1, E // 3)``: three decays over the run
multisteplr.milestones         epochs          ``[E // 2, 3 * E // 4]`` (at least 1 each, increasing)
exponentiallr.gamma            epochs          ``0.01 ** (1 / E)``: the last epoch trains at 1% of ``L``
cosineannealinglr.T_max        epochs          ``E``: one half-cosine over the run
cosineannealingwarmrestarts.T_0 epochs          ``max(1, E // (1 + T_mult + T_mult**2))``: three cycles
cycliclr.base_lr               base_lr         ``L``: the cycle's lower bound is the solver's lr
cycliclr.max_lr                base_lr         ``4 * base_lr`` (Smith 2017, 3.3: the range spans 3-4x)
cycliclr.step_size_up          steps_per_epoch ``2 * S``: half a cycle is two epochs (Smith 2017: 2-10)
onecyclelr.max_lr              base_lr         ``L``: the cycle peaks at the solver's lr
onecyclelr.total_steps         total_steps     ``max(1, E * S - W)``: the cycle ends with training
linearlr.total_iters           epochs          ``E``
polynomiallr.total_iters       epochs          ``E``
=============================  ==============  =========================================================

Given values are checked against each other and the run by
:func:`optim.factory.check_scheduler_params`: ``onecyclelr.total_steps`` must cover ``E * S - W``
(torch's OneCycleLR cannot step past it) and ``cycliclr.max_lr`` must not be below ``base_lr``.

A step-interval schedule starts when the warm-up ends (hence ``- W``); epoch and metric
schedules run on their own clock and the warm-up scales their learning rate while it lasts.
``constantlr.total_iters`` is not a run length (it is how long the constant factor holds) and
keeps torch's default of 5.
"""

from __future__ import annotations

from optim.catalog.schema import Hyperparameter, SchedulerEntry

_TORCH = "torch.optim.lr_scheduler."


def _warmup_fields() -> tuple[Hyperparameter, ...]:
    return (
        Hyperparameter(
            name="warmup_steps", type="int", default=0, minimum=0,
            description="Optimizer steps of linear warm-up before the schedule (0: none).",
        ),
        Hyperparameter(
            name="warmup_start_factor", type="float", default=0.0, minimum=0.0, maximum=1.0,
            description="Fraction of the scheduled learning rate the warm-up starts from.",
        ),
    )


def _int(name: str, default, description: str, minimum: float = 1, **kw) -> Hyperparameter:
    return Hyperparameter(name=name, type="int", default=default, minimum=minimum, description=description, **kw)


def _float(name: str, default, description: str, **kw) -> Hyperparameter:
    return Hyperparameter(name=name, type="float", default=default, description=description, **kw)


def _gamma(default, description: str = "Multiplicative factor of learning-rate decay.", **kw) -> Hyperparameter:
    return _float("gamma", default, description, minimum=0.0, exclusive_minimum=True, **kw)


def _eta_min() -> Hyperparameter:
    return _float("eta_min", 0.0, "Minimum learning rate.", minimum=0.0)


def _momentum_cycle(base: float, high: float) -> tuple[Hyperparameter, ...]:
    return (
        Hyperparameter(
            name="cycle_momentum", type="bool", default=True,
            description="Cycle momentum (or beta1 for Adam-like solvers) inversely to the learning rate.",
        ),
        _float("base_momentum", base, "Lowest momentum (at the peak learning rate).", minimum=0.0, maximum=1.0),
        _float("max_momentum", high, "Highest momentum (at the lowest learning rate).", minimum=0.0, maximum=1.0),
    )


def _entry(name, cls, family, interval, summary, reference, *hyperparameters) -> SchedulerEntry:
    return SchedulerEntry(
        name=name, class_path=cls if "." in cls else _TORCH + cls, family=family, interval=interval,
        summary=summary, reference=reference, hyperparameters=(*hyperparameters, *_warmup_fields()),
    )


_TORCH_DOCS = "https://pytorch.org/docs/stable/optim.html#how-to-adjust-learning-rate"

ENTRIES: tuple[SchedulerEntry, ...] = (
    _entry(
        "constant", "optim.schedulers.Constant", "constant", "epoch",
        "Keep the learning rate fixed (after the optional warm-up).", _TORCH_DOCS,
    ),
    _entry(
        "steplr", "StepLR", "decay", "epoch",
        "Multiply the learning rate by gamma every step_size epochs.", _TORCH_DOCS,
        _int("step_size", None, "Epochs between decays.", derived_from="epochs"),
        _gamma(0.1),
    ),
    _entry(
        "multisteplr", "MultiStepLR", "decay", "epoch",
        "Multiply the learning rate by gamma at each milestone epoch.", _TORCH_DOCS,
        Hyperparameter(
            name="milestones", type="int_list", minimum=1, derived_from="epochs",
            description="Epochs at which to decay (increasing).",
        ),
        _gamma(0.1),
    ),
    _entry(
        "exponentiallr", "ExponentialLR", "decay", "epoch",
        "Multiply the learning rate by gamma every epoch.", _TORCH_DOCS,
        _gamma(None, "Multiplicative factor of learning-rate decay per epoch.", derived_from="epochs"),
    ),
    _entry(
        "cosineannealinglr", "CosineAnnealingLR", "decay", "epoch",
        "Half a cosine from the base learning rate down to eta_min over T_max epochs.",
        "Loshchilov & Hutter, SGDR: Stochastic Gradient Descent with Warm Restarts, ICLR 2017",
        _int("T_max", None, "Epochs of the half cosine.", derived_from="epochs"),
        _eta_min(),
    ),
    _entry(
        "cycliclr", "CyclicLR", "cyclic", "step",
        "Cycle the learning rate between base_lr and max_lr (triangular policies), momentum inversely.",
        "Smith, Cyclical Learning Rates for Training Neural Networks, WACV 2017",
        _float("base_lr", None, "Lower learning-rate bound of the cycle.", minimum=0.0, derived_from="base_lr"),
        _float("max_lr", None, "Upper learning-rate bound of the cycle.", minimum=0.0, derived_from="base_lr"),
        _int("step_size_up", None, "Optimizer steps in the rising half of a cycle.", derived_from="steps_per_epoch"),
        _int("step_size_down", None, "Steps in the falling half (null: same as step_size_up).", nullable=True),
        Hyperparameter(
            name="mode", type="choice", default="triangular", choices=("triangular", "triangular2", "exp_range"),
            description="Amplitude policy: constant, halved every cycle, or scaled by gamma**iterations.",
        ),
        _gamma(1.0, "Amplitude decay per iteration in exp_range mode.", maximum=1.0),
        *_momentum_cycle(0.8, 0.9),
    ),
    _entry(
        "reducelronplateau", "ReduceLROnPlateau", "adaptive", "metric",
        "Multiply the learning rate by factor when the validation loss stops improving.", _TORCH_DOCS,
        Hyperparameter(
            name="mode", type="choice", default="min", choices=("min", "max"),
            description="Whether the monitored value should decrease (min) or increase (max).",
        ),
        _float("factor", 0.1, "Multiplier applied on a plateau.", minimum=0.0, maximum=1.0,
               exclusive_minimum=True, exclusive_maximum=True),
        _int("patience", 10, "Epochs without improvement before reducing.", minimum=0),
        _float("threshold", 1e-4, "Smallest change that counts as an improvement.", minimum=0.0),
        Hyperparameter(
            name="threshold_mode", type="choice", default="rel", choices=("rel", "abs"),
            description="Whether threshold is relative to the best value or absolute.",
        ),
        _int("cooldown", 0, "Epochs to wait after a reduction before counting again.", minimum=0),
        _float("min_lr", 0.0, "Lower bound on the learning rate.", minimum=0.0),
        _float("eps", 1e-8, "Reductions smaller than eps are skipped.", minimum=0.0),
    ),
    _entry(
        "cosineannealingwarmrestarts", "CosineAnnealingWarmRestarts", "cyclic", "epoch",
        "Cosine annealing restarted every T_i epochs, T_i growing by T_mult.",
        "Loshchilov & Hutter, SGDR: Stochastic Gradient Descent with Warm Restarts, ICLR 2017",
        _int("T_0", None, "Epochs of the first cycle.", derived_from="epochs"),
        _int("T_mult", 1, "Factor by which each cycle is longer than the previous."),
        _eta_min(),
    ),
    _entry(
        "onecyclelr", "OneCycleLR", "cyclic", "step",
        "One cycle: rise from max_lr/div_factor to max_lr, then anneal far below the start.",
        "Smith & Topin, Super-Convergence: Very Fast Training of Neural Networks Using Large Learning Rates, 2019",
        _float("max_lr", None, "Peak learning rate.", minimum=0.0, derived_from="base_lr"),
        _int("total_steps", None, "Optimizer steps in the cycle.", derived_from="total_steps"),
        _float("pct_start", 0.3, "Fraction of the cycle spent rising.", minimum=0.0, maximum=1.0),
        Hyperparameter(
            name="anneal_strategy", type="choice", default="cos", choices=("cos", "linear"),
            description="Shape of the annealing.",
        ),
        *_momentum_cycle(0.85, 0.95),
        _float("div_factor", 25.0, "Initial lr = max_lr / div_factor.", minimum=0.0, exclusive_minimum=True),
        _float("final_div_factor", 1e4, "Final lr = initial lr / final_div_factor.", minimum=0.0,
               exclusive_minimum=True),
        Hyperparameter(
            name="three_phase", type="bool", default=False,
            description="Mirror the rise before the final annealing (fast.ai's three phases).",
        ),
    ),
    _entry(
        "linearlr", "LinearLR", "warmup", "epoch",
        "Scale the learning rate linearly from start_factor to end_factor over total_iters epochs.", _TORCH_DOCS,
        _float("start_factor", 1.0 / 3, "Factor in the first epoch.", minimum=0.0, maximum=1.0, exclusive_minimum=True),
        _float("end_factor", 1.0, "Factor from total_iters on.", minimum=0.0, maximum=1.0),
        _int("total_iters", None, "Epochs of the linear change.", derived_from="epochs"),
    ),
    _entry(
        "polynomiallr", "PolynomialLR", "decay", "epoch",
        "Decay the learning rate to zero as (1 - t / total_iters) ** power.", _TORCH_DOCS,
        _int("total_iters", None, "Epochs until the learning rate reaches zero.", derived_from="epochs"),
        _float("power", 1.0, "Power of the polynomial.", minimum=0.0),
    ),
    _entry(
        "constantlr", "ConstantLR", "warmup", "epoch",
        "Scale the learning rate by factor for the first total_iters epochs.", _TORCH_DOCS,
        _float("factor", 1.0 / 3, "Factor applied until total_iters.", minimum=0.0, maximum=1.0),
        _int("total_iters", 5, "Epochs at the reduced learning rate.", minimum=0),
    ),
)
