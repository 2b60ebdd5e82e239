"""Catalog entries for the second-order and curvature-aware solvers: lbfgs, bfgs, newton,
hessianfree, naturalgradient, kfac, shampoo.

Defaults are the constructors'; every bound rejects exactly what the constructor rejects, and a
``service_maximum`` caps the loop knobs an experiment may set (one step's cost stays bounded).  The
constructors' ``max_params`` is the entry's ``max_params`` field (the engine refuses larger
models before building the solver), not a hyperparameter.  How the engine drives each one
(``needs_closure``, ``needs_model``) is written up in docs/solvers.md.
"""

from optim.catalog import common
from optim.catalog.schema import Hyperparameter, SolverEntry


def _int(name: str, default: int, description: str, minimum: int = 1, nullable: bool = False,
         service_maximum: int | None = None) -> Hyperparameter:
    return Hyperparameter(
        name=name, type="int", default=default, minimum=minimum, nullable=nullable, description=description,
        service_maximum=service_maximum,
    )


def _nonnegative(name: str, default: float, description: str) -> Hyperparameter:
    return Hyperparameter(name=name, type="float", default=default, minimum=0.0, description=description)


def _positive(name: str, default: float, description: str, nullable: bool = False) -> Hyperparameter:
    return Hyperparameter(
        name=name, type="float", default=default, minimum=0.0, exclusive_minimum=True, nullable=nullable,
        description=description,
    )


def _quasi_newton(line_search_default: str | None) -> tuple[Hyperparameter, ...]:
    return (
        common.lr(1.0, "Step length, or the line search's first trial step."),
        _int("max_iter", 20, "Iterations per optimizer step (each may evaluate the closure several times).",
             service_maximum=1000),
        _int(
            "max_eval", None, "Closure evaluations per optimizer step; null means max_iter * 5 // 4.", nullable=True,
            service_maximum=2000,
        ),
        _nonnegative("tolerance_grad", 1e-7, "Stop a step's iterations when the largest gradient entry is below this."),
        _nonnegative("tolerance_change", 1e-9, "Stop when the step, the loss change or the slope is below this."),
        Hyperparameter(
            name="line_search_fn", type="choice", choices=("strong_wolfe",), nullable=True,
            default=line_search_default, description="'strong_wolfe' line search, or null for the fixed step lr.",
        ),
    )


_ADAPTIVE_DAMPING = common.flag(
    "adaptive_damping", "Check each step's loss and adapt the damping (one more closure evaluation per step).", True
)

ENTRIES = (
    SolverEntry(
        name="lbfgs",
        class_path="optim.LBFGS",
        family="second_order",
        needs_closure=True,
        summary="L-BFGS: quasi-Newton steps from the last history_size gradient differences (torch's LBFGS).",
        reference="Liu & Nocedal, On the limited memory BFGS method for large scale optimization, "
        "Mathematical Programming 45, 1989",
        hyperparameters=(
            *_quasi_newton(None),
            _int("history_size", 100, "Number of (step, gradient change) pairs kept.", service_maximum=1000),
        ),
    ),
    SolverEntry(
        name="bfgs",
        class_path="optim.BFGS",
        family="second_order",
        needs_closure=True,
        max_params=4096,
        summary="BFGS: dense inverse-Hessian quasi-Newton with a strong-Wolfe line search, for small models.",
        reference="Nocedal & Wright, Numerical Optimization, 2nd ed., Springer 2006, ch. 6",
        hyperparameters=_quasi_newton("strong_wolfe"),
    ),
    SolverEntry(
        name="newton",
        class_path="optim.Newton",
        family="second_order",
        needs_closure=True,
        max_params=2000,
        summary="Newton's method on the exact Hessian (double backward) with Levenberg-Marquardt damping.",
        reference="Marquardt, An algorithm for least-squares estimation of nonlinear parameters, "
        "SIAM J. Appl. Math. 11(2), 1963; Nocedal & Wright, Numerical Optimization, ch. 3.4",
        hyperparameters=(
            Hyperparameter(
                name="lr", type="float", default=1.0, minimum=0.0, exclusive_minimum=True,
                description="Multiplies the Newton step.",
            ),
            _nonnegative("damping", 1e-4, "Initial Levenberg-Marquardt damping added to the Hessian's diagonal."),
            Hyperparameter(
                name="damping_factor", type="float", default=10.0, minimum=1.0, exclusive_minimum=True,
                description="Damping grows by this after a rejected step and shrinks by it after an accepted one.",
            ),
            _ADAPTIVE_DAMPING,
        ),
    ),
    SolverEntry(
        name="hessianfree",
        class_path="optim.HessianFree",
        family="second_order",
        needs_closure=True,
        summary="Hessian-free: conjugate gradient on damped Hessian-vector products (truncated Newton).",
        reference="Martens, Deep learning via Hessian-free optimization, ICML 2010",
        hyperparameters=(
            Hyperparameter(
                name="lr", type="float", default=1.0, minimum=0.0, exclusive_minimum=True,
                description="Multiplies the conjugate-gradient solution.",
            ),
            _nonnegative("damping", 0.1, "Initial damping added to the Hessian's diagonal."),
            _int("cg_max_iter", 50, "Conjugate-gradient iterations per step.", service_maximum=1000),
            _nonnegative("cg_tol", 1e-4, "Relative residual at which conjugate gradient stops."),
            _ADAPTIVE_DAMPING,
        ),
    ),
    SolverEntry(
        name="naturalgradient",
        class_path="optim.NaturalGradient",
        family="second_order",
        needs_model=True,
        max_params=10_000,
        summary="Natural gradient: the gradient preconditioned by the damped Fisher of per-sample gradients.",
        reference="Amari, Natural gradient works efficiently in learning, Neural Computation 10(2), 1998",
        hyperparameters=(
            common.lr(0.1),
            _positive("damping", 1e-3, "Tikhonov damping added to the Fisher's diagonal."),
            Hyperparameter(
                name="fisher", type="choice", choices=("empirical", "sampled"), default="empirical",
                description="Per-sample gradients of the training loss, or of labels sampled from the model.",
            ),
            Hyperparameter(
                name="likelihood", type="choice", choices=("categorical", "gaussian"), default="categorical",
                description="The model's predictive distribution for the sampled Fisher.",
            ),
            common.momentum(0.0),
        ),
    ),
    SolverEntry(
        name="kfac",
        class_path="optim.KFAC",
        family="second_order",
        needs_model=True,
        summary="K-FAC: Kronecker-factored Fisher blocks for Linear and Conv layers, SGD with momentum elsewhere.",
        reference="Martens & Grosse, Optimizing neural networks with Kronecker-factored approximate curvature, "
        "ICML 2015 (arXiv:1503.05671); Grosse & Martens, ICML 2016 (arXiv:1602.01407)",
        hyperparameters=(
            common.lr(0.01),
            _positive("damping", 1e-3, "Tikhonov damping of the Kronecker-factored Fisher."),
            Hyperparameter(
                name="factor_decay", type="float", default=0.95, minimum=0.0, maximum=1.0, exclusive_maximum=True,
                description="Running-average decay of the Kronecker factors.",
            ),
            _int("inv_update_freq", 10, "Steps between eigendecompositions of the factors."),
            common.momentum(0.9),
            common.weight_decay(0.0),
            _positive("kl_clip", 1e-3, "Bound on the update's squared Fisher norm; null disables.", nullable=True),
        ),
    ),
    SolverEntry(
        name="shampoo",
        class_path="optim.Shampoo",
        family="second_order",
        summary="Shampoo: one preconditioner per tensor dimension, step size grafted from a first-order method.",
        reference="Gupta, Koren & Singer, Shampoo: Preconditioned Stochastic Tensor Optimization, ICML 2018 "
        "(arXiv:1802.09568)",
        hyperparameters=(
            common.lr(0.01),
            Hyperparameter(
                name="graft", type="choice", choices=("adagrad", "sgd", "adam"), default="adagrad",
                description="First-order optimizer whose step size (per layer) Shampoo's direction takes.",
            ),
            common.momentum(0.0),
            common.betas((0.9, 0.999), "The Adam graft's moment decay rates."),
            _nonnegative("graft_eps", 1e-10, "The grafted optimizer's denominator term."),
            _positive("epsilon", 1e-6, "Initial diagonal of every preconditioner statistic."),
            _int("update_freq", 10, "Steps between recomputations of the inverse roots."),
            _int("max_preconditioner_dim", 1024, "Dimensions larger than this are not preconditioned.",
                 service_maximum=8192),
            common.weight_decay(0.0),
            common.flag("precondition", "False makes Shampoo exactly its grafted optimizer.", True),
        ),
    ),
)
