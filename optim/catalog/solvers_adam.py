"""Catalog entries for the Adam family: adam, adamw, adamax, nadam, radam.

Defaults are the constructors' (torch's); every bound rejects exactly what the constructor
rejects (lr, eps, weight_decay, momentum_decay >= 0; betas in [0, 1)).
"""

from optim.catalog import common
from optim.catalog.schema import Hyperparameter, SolverEntry

_AMSGRAD = common.flag("amsgrad", "Use the running maximum of the second moment (AMSGrad).")


def _decoupled(what: str) -> Hyperparameter:
    return common.flag(
        "decoupled_weight_decay",
        f"Shrink the weights directly by lr * weight_decay ({what}) instead of adding the decay to the gradient.",
    )


def _adam_core(lr: float, weight_decay: Hyperparameter | None = None) -> tuple[Hyperparameter, ...]:
    return (
        common.lr(lr),
        common.betas((0.9, 0.999)),
        common.eps(1e-8),
        weight_decay or common.weight_decay(0.0),
    )


ENTRIES = (
    SolverEntry(
        name="adam",
        class_path="optim.Adam",
        family="adaptive",
        summary="Adam: per-parameter steps from bias-corrected first and second moment averages.",
        reference="Kingma & Ba, Adam: A Method for Stochastic Optimization, ICLR 2015 (arXiv:1412.6980)",
        hyperparameters=(*_adam_core(1e-3), _AMSGRAD, _decoupled("AdamW")),
    ),
    SolverEntry(
        name="adamw",
        class_path="optim.AdamW",
        family="adaptive",
        summary="AdamW: Adam with weight decay decoupled from the gradient moments.",
        reference="Loshchilov & Hutter, Decoupled Weight Decay Regularization, ICLR 2019 (arXiv:1711.05101)",
        hyperparameters=(
            *_adam_core(1e-3, common.weight_decay(1e-2, "Decoupled weight decay: the weights shrink by lr * it.")),
            _AMSGRAD,
        ),
    ),
    SolverEntry(
        name="adamax",
        class_path="optim.Adamax",
        family="adaptive",
        summary="Adamax: Adam with the second moment replaced by an exponentially weighted infinity norm.",
        reference="Kingma & Ba, Adam: A Method for Stochastic Optimization, ICLR 2015, sec. 7.1 (arXiv:1412.6980)",
        hyperparameters=_adam_core(2e-3),
    ),
    SolverEntry(
        name="nadam",
        class_path="optim.NAdam",
        family="adaptive",
        summary="NAdam: Adam with Nesterov momentum and a warming-up momentum schedule.",
        reference="Dozat, Incorporating Nesterov Momentum into Adam, ICLR 2016 workshop",
        hyperparameters=(
            *_adam_core(2e-3),
            Hyperparameter(
                name="momentum_decay", type="float", default=4e-3, minimum=0.0,
                description="How fast the momentum coefficient warms up to beta1 (psi).",
            ),
            _decoupled("NAdamW"),
        ),
    ),
    SolverEntry(
        name="radam",
        class_path="optim.RAdam",
        family="adaptive",
        summary="RAdam: Adam that uses momentum SGD until the adaptive step's variance is tractable.",
        reference="Liu et al., On the Variance of the Adaptive Learning Rate and Beyond, ICLR 2020 (arXiv:1908.03265)",
        hyperparameters=(*_adam_core(1e-3), _decoupled("RAdamW")),
    ),
)
