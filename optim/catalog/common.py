"""Hyperparameters that many solvers share, written once."""

from optim.catalog.schema import Hyperparameter


def lr(default: float, description: str = "Base learning rate (the step size).") -> Hyperparameter:
    return Hyperparameter(name="lr", type="float", default=default, minimum=0.0, description=description)


def weight_decay(default: float = 0.0, description: str = "L2 penalty added to the gradient.") -> Hyperparameter:
    return Hyperparameter(name="weight_decay", type="float", default=default, minimum=0.0, description=description)


def eps(default: float, description: str = "Added to the denominator for numerical stability.") -> Hyperparameter:
    return Hyperparameter(name="eps", type="float", default=default, minimum=0.0, description=description)


def betas(default: tuple[float, float], description: str = "Decay rates of the first and second moments.") -> Hyperparameter:
    return Hyperparameter(
        name="betas", type="float_tuple", length=2, default=default, minimum=0.0, maximum=1.0,
        exclusive_maximum=True, description=description,
    )


def momentum(default: float = 0.0, description: str = "Momentum factor.") -> Hyperparameter:
    return Hyperparameter(name="momentum", type="float", default=default, minimum=0.0, description=description)


def flag(name: str, description: str, default: bool = False) -> Hyperparameter:
    return Hyperparameter(name=name, type="bool", default=default, description=description)
