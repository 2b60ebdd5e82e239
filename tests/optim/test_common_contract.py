"""What every optimizer's constructor promises: a hyperparameter out of range (or a torch option
it does not support) is refused with a ValueError that names the argument at fault."""

import pytest
import torch

from optim import LAMB, LARS, AdaBound, AdaBoundW, Lion, RandomSearch
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

TWO_LRS = torch.tensor([0.1, 0.2])  # a tensor lr must have one element
ADABOUND = [
    ({"lr": 0.0}, "lr"),
    ({"lr": -1e-3}, "lr"),
    ({"betas": (1.0, 0.999)}, "beta parameter at index 0"),
    ({"betas": (0.9, 1.5)}, "beta parameter at index 1"),
    ({"final_lr": -0.1}, "final_lr"),
    ({"gamma": 0.0}, "gamma"),
    ({"gamma": 1.0}, "gamma"),
    ({"eps": -1e-8}, "eps"),
    ({"weight_decay": -1e-4}, "weight_decay"),
]
# class -> (constructor keywords, pattern the error message must match)
REJECTED = {
    Adam: [
        ({"lr": -1e-3}, "lr"),
        ({"lr": float("nan")}, "lr"),
        ({"lr": torch.tensor([1e-3, 1e-3])}, "lr"),
        ({"eps": -1e-8}, "eps"),
        ({"betas": (1.0, 0.999)}, r"betas\[0\]"),
        ({"betas": (-0.1, 0.999)}, r"betas\[0\]"),
        ({"betas": (0.9, 1.0)}, r"betas\[1\]"),
        ({"betas": (0.9, 0.99, 0.9)}, "betas"),
        ({"weight_decay": -0.1}, "weight_decay"),
        ({"capturable": True}, "capturable"),
        ({"differentiable": True}, "differentiable"),
        ({"fused": True, "foreach": True}, "fused"),  # fused alone is a path
    ],
    AdamW: [
        ({"lr": -1e-3}, "lr"),
        ({"eps": -1.0}, "eps"),
        ({"betas": (0.9, 1.5)}, r"betas\[1\]"),
        ({"weight_decay": -1e-2}, "weight_decay"),
        ({"capturable": True}, "capturable"),
        ({"fused": True, "foreach": True}, "fused"),  # fused alone is a path
    ],
    Adamax: [
        ({"lr": -1e-3}, "lr"),
        ({"eps": -1e-8}, "eps"),
        ({"betas": (1.0, 0.999)}, r"betas\[0\]"),
        ({"betas": (0.9, -0.5)}, r"betas\[1\]"),
        ({"weight_decay": -0.1}, "weight_decay"),
        ({"capturable": True}, "capturable"),
        ({"differentiable": True}, "differentiable"),
    ],
    NAdam: [
        ({"lr": -1e-3}, "lr"),
        ({"eps": -1e-8}, "eps"),
        ({"betas": (1.0, 0.999)}, r"betas\[0\]"),
        ({"betas": (0.9, 1.0)}, r"betas\[1\]"),
        ({"weight_decay": -0.1}, "weight_decay"),
        ({"momentum_decay": -4e-3}, "momentum_decay"),
        ({"capturable": True}, "capturable"),
        ({"differentiable": True}, "differentiable"),
    ],
    RAdam: [
        ({"lr": -1e-3}, "lr"),
        ({"eps": -1e-8}, "eps"),
        ({"betas": (1.0, 0.999)}, r"betas\[0\]"),
        ({"betas": (0.9, 1.0)}, r"betas\[1\]"),
        ({"weight_decay": -0.1}, "weight_decay"),
        ({"capturable": True}, "capturable"),
        ({"differentiable": True}, "differentiable"),
    ],
    Adadelta: [
        ({"lr": -1e-3}, "lr"),
        ({"lr": TWO_LRS}, "lr"),
        ({"rho": -0.1}, "rho"),
        ({"rho": 1.01}, "rho"),
        ({"eps": -1e-6}, "eps"),
        ({"weight_decay": -1e-4}, "weight_decay"),
        ({"capturable": True}, "capturable"),
        ({"differentiable": True}, "differentiable"),
    ],
    Rprop: [
        ({"lr": -1e-3}, "lr"),
        ({"lr": TWO_LRS}, "lr"),
        ({"etas": (0.0, 1.2)}, "etas"),
        ({"etas": (1.0, 1.2)}, "etas"),
        ({"etas": (0.5, 1.0)}, "etas"),
        ({"step_sizes": (-1e-6, 50)}, "step_sizes"),
        ({"step_sizes": (1e-6, -50)}, "step_sizes"),
        ({"capturable": True}, "capturable"),
        ({"differentiable": True}, "differentiable"),
    ],
    Adagrad: [
        ({"lr": -1e-3}, "lr"),
        ({"lr": TWO_LRS}, "lr"),
        ({"lr_decay": -0.1}, "lr_decay"),
        ({"weight_decay": -1e-4}, "weight_decay"),
        ({"initial_accumulator_value": -0.1}, "initial_accumulator_value"),
        ({"eps": -1e-10}, "eps"),
        ({"differentiable": True}, "differentiable"),
        ({"fused": True, "foreach": True}, "fused"),  # fused alone is a path
    ],
    RMSprop: [
        ({"lr": -1e-3}, "lr"),
        ({"lr": TWO_LRS}, "lr"),
        ({"alpha": -0.1}, "alpha"),
        ({"alpha": 1.1}, "alpha"),
        ({"eps": -1e-8}, "eps"),
        ({"weight_decay": -1e-4}, "weight_decay"),
        ({"momentum": -0.1}, "momentum"),
        ({"capturable": True}, "capturable"),
        ({"differentiable": True}, "differentiable"),
    ],
    ASGD: [
        ({"lr": -1e-3}, "lr"),
        ({"lr": TWO_LRS}, "lr"),
        ({"lambd": -1e-4}, "lambd"),
        ({"alpha": -0.5}, "alpha"),
        ({"t0": -1.0}, "t0"),
        ({"weight_decay": -1e-4}, "weight_decay"),
        ({"differentiable": True}, "differentiable"),
        ({"capturable": True}, "capturable"),
    ],
    SGD: [
        ({"lr": -1e-3}, "lr"),
        ({"lr": TWO_LRS}, "lr"),
        ({"momentum": -0.1}, "momentum"),
        ({"dampening": -0.1}, "dampening"),
        ({"weight_decay": -1e-4}, "weight_decay"),
        ({"nesterov": True}, "nesterov"),
        ({"nesterov": True, "momentum": 0.9, "dampening": 0.1}, "nesterov"),
        ({"differentiable": True}, "differentiable"),
        ({"fused": True, "foreach": True}, "fused"),  # fused alone is a path
    ],
    LAMB: [
        ({"lr": -1e-3}, "lr"),
        ({"betas": (-0.1, 0.999)}, "beta parameter at index 0"),
        ({"betas": (0.9, 1.0)}, "beta parameter at index 1"),
        ({"eps": -1e-6}, "eps"),
        ({"weight_decay": -0.01}, "weight_decay"),
    ],
    Lion: [
        ({"lr": -1e-4}, "lr"),
        ({"betas": (1.0, 0.99)}, "beta parameter at index 0"),
        ({"betas": (0.9, -0.01)}, "beta parameter at index 1"),
        ({"betas": (0.9, 0.99, 0.999)}, "betas"),
        ({"weight_decay": -1e-2}, "weight_decay"),
        ({"weight_decay": float("nan")}, "weight_decay"),
    ],
    LARS: [
        ({"lr": -1.0}, "lr"),
        ({"momentum": -0.1}, "momentum"),
        ({"momentum": 1.0}, "momentum"),
        ({"weight_decay": -1e-4}, "weight_decay"),
        ({"trust_coefficient": 0.0}, "trust_coefficient"),
        ({"eps": -1e-8}, "eps"),
    ],
    AdaBound: ADABOUND,
    AdaBoundW: ADABOUND,
    RandomSearch: [
        ({"lr": -1.0}, "lr"),
        ({"sigma": 0.0}, "sigma"),
        ({"n_samples": 0}, "n_samples"),
        ({"n_samples": 1.5}, "n_samples"),
        ({"decay": 0.0}, "decay"),
        ({"decay": 1.01}, "decay"),
        ({"seed": -1}, "seed"),
    ],
}


@pytest.mark.parametrize(
    "cls, kwargs, name",
    [pytest.param(cls, kwargs, name, id=f"{cls.__name__}-{kwargs}")
     for cls, rows in REJECTED.items() for kwargs, name in rows],
)
def test_rejects_bad_hyperparameters(cls, kwargs, name):
    with pytest.raises(ValueError, match=name):
        cls([torch.zeros(2, requires_grad=True)], **kwargs)
