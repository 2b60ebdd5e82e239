"""Catalog entries for the solvers taken from their papers: lion, adabound, adaboundw, lamb, lars,
lookahead, randomsearch.

Defaults are the constructors' (the papers' where they give one); every bound rejects exactly
what the constructor rejects.  Lookahead's ``lr`` and ``weight_decay`` are not its own: the
factory hands them to the ``base`` solver it wraps.
"""

from optim.catalog import common
from optim.catalog.schema import Hyperparameter, SolverEntry

# Solvers Lookahead may wrap (first-order, no closure), as catalog names.
LOOKAHEAD_BASES = ("sgd", "adam", "adamw", "radam", "nadam", "rmsprop", "lion")


def _float(name: str, default: float, description: str, **bounds) -> Hyperparameter:
    return Hyperparameter(name=name, type="float", default=default, description=description, **bounds)


def _int(name: str, default: int, minimum: int, description: str) -> Hyperparameter:
    return Hyperparameter(name=name, type="int", default=default, minimum=minimum, description=description)


def _open_unit_interval(name: str, default: float, description: str) -> Hyperparameter:
    return _float(
        name, default, description, minimum=0.0, maximum=1.0, exclusive_minimum=True, exclusive_maximum=True
    )


def _adabound(name: str, class_name: str, summary: str, weight_decay: Hyperparameter) -> SolverEntry:
    return SolverEntry(
        name=name,
        class_path=f"optim.{class_name}",
        family="adaptive",
        summary=summary,
        reference=(
            "Luo, Xiong, Liu & Sun, Adaptive Gradient Methods with Dynamic Bound of Learning Rate, ICLR 2019 "
            "(arXiv:1902.09843)"
        ),
        hyperparameters=(
            _float(
                "lr", 1e-3, "Adam step size at the start; final_lr is scaled by lr / (initial lr) as lr changes.",
                minimum=0.0, exclusive_minimum=True,
            ),
            common.betas((0.9, 0.999)),
            _float("final_lr", 0.1, "The SGD step size the bounds converge to.", minimum=0.0),
            _open_unit_interval("gamma", 1e-3, "Convergence speed of the bounds: final_lr * (1 -+ 1/(gamma t (+1)))."),
            common.eps(1e-8),
            weight_decay,
            common.flag("amsbound", "Bound the running maximum of the second moment (AMSBound)."),
        ),
    )


ENTRIES = (
    SolverEntry(
        name="lion",
        class_path="optim.Lion",
        family="sign",
        summary="Lion: steps of size lr along the sign of an interpolated momentum; use a 3-10x smaller lr than AdamW.",
        reference=(
            "Chen, Liang, Huang, Real et al., Symbolic Discovery of Optimization Algorithms, NeurIPS 2023 "
            "(arXiv:2302.06675)"
        ),
        hyperparameters=(
            common.lr(1e-4),
            common.betas((0.9, 0.99), "beta1 interpolates the update direction, beta2 tracks the momentum."),
            common.weight_decay(0.0, "Decoupled weight decay: the weights shrink by lr * it."),
        ),
    ),
    _adabound(
        "adabound", "AdaBound", "AdaBound: Adam whose per-coordinate step is clipped into bounds converging to final_lr.",
        common.weight_decay(0.0),
    ),
    _adabound(
        "adaboundw", "AdaBoundW", "AdaBoundW: AdaBound with decoupled weight decay.",
        common.weight_decay(0.0, "Decoupled weight decay: the weights shrink by it every step (not scaled by lr)."),
    ),
    SolverEntry(
        name="lamb",
        class_path="optim.LAMB",
        family="layerwise",
        summary="LAMB: bias-corrected Adam steps rescaled per layer by the trust ratio ||w|| / ||step||.",
        reference=(
            "You, Li, Reddi, Hseu et al., Large Batch Optimization for Deep Learning: Training BERT in 76 "
            "minutes, ICLR 2020 (arXiv:1904.00962)"
        ),
        hyperparameters=(
            common.lr(1e-3),
            common.betas((0.9, 0.999)),
            common.eps(1e-6),
            common.weight_decay(0.0, "Decoupled weight decay, added to the Adam step before the trust ratio."),
        ),
    ),
    SolverEntry(
        name="lars",
        class_path="optim.LARS",
        family="layerwise",
        summary="LARS: momentum SGD with a per-layer rate trust_coefficient * ||w|| / (||g|| + wd ||w||).",
        reference="You, Gitman & Ginsburg, Large Batch Training of Convolutional Networks, 2017 (arXiv:1708.03888)",
        hyperparameters=(
            common.lr(1.0, "Global learning rate; the layer-wise rate already carries trust_coefficient."),
            _float("momentum", 0.9, "Momentum factor.", minimum=0.0, maximum=1.0, exclusive_maximum=True),
            common.weight_decay(0.0),
            _float(
                "trust_coefficient", 1e-3, "The LARS coefficient eta of the layer-wise rate.",
                minimum=0.0, exclusive_minimum=True,
            ),
            common.eps(1e-8, "Added to the denominator of the layer-wise rate."),
            common.flag("exclude_1d", "No layer-wise adaptation for biases and other tensors with at most one dim."),
        ),
    ),
    SolverEntry(
        name="lookahead",
        class_path="optim.Lookahead",
        family="wrapper",
        wraps=True,
        summary="Lookahead: k steps of the base solver, then the slow weights move alpha of the way to them.",
        reference=(
            "Zhang, Lucas, Hinton & Ba, Lookahead Optimizer: k steps forward, 1 step back, NeurIPS 2019 "
            "(arXiv:1907.08610)"
        ),
        hyperparameters=(
            Hyperparameter(
                name="base", type="choice", default="adam", choices=LOOKAHEAD_BASES,
                description="The solver taking the fast steps (built with its own defaults, lr and weight_decay).",
            ),
            common.lr(1e-3, "Learning rate of the base solver."),
            common.weight_decay(
                0.0, "Weight decay of the base solver, of its own kind (L2 or decoupled); 0 whatever the base's default."
            ),
            _int("k", 5, 1, "Fast steps per slow step."),
            _float("alpha", 0.5, "Slow step size.", minimum=0.0, maximum=1.0),
        ),
    ),
    SolverEntry(
        name="randomsearch",
        class_path="optim.RandomSearch",
        family="zeroth_order",
        needs_closure=True,
        max_params=10_000,
        summary=(
            "Random search: tries Gaussian perturbations of the weights and keeps one only if it lowers the "
            "loss; a gradient-free baseline for small models."
        ),
        reference=(
            "Rastrigin, The convergence of the random search method in the extremal control of a many "
            "parameter system, Automation and Remote Control 24(11), 1963"
        ),
        hyperparameters=(
            common.lr(1.0, "Step scale: perturbations have standard deviation lr * sigma * decay^t."),
            _float("sigma", 0.1, "Perturbation standard deviation relative to lr.", minimum=0.0, exclusive_minimum=True),
            Hyperparameter(
                name="n_samples", type="int", default=1, minimum=1, service_maximum=1000,
                description="Candidates tried per step (each costs a forward pass).",
            ),
            _float(
                "decay", 1.0, "Per-step factor of the perturbation scale (1: none).",
                minimum=0.0, maximum=1.0, exclusive_minimum=True,
            ),
            Hyperparameter(
                name="seed", type="int", default=None, nullable=True, minimum=0,
                description="Seed of the perturbations; null: drawn from the run's seed.",
            ),
        ),
    ),
)
