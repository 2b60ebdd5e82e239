"""Descent's optimizer library: drop-in ``torch.optim.Optimizer`` subclasses and schedulers.

``optim.catalog`` (hyperparameters, defaults, bounds, docs) imports without torch; the
optimizer classes are loaded lazily on first attribute access so that importing the
catalog never pulls torch in.

    >>> from optim import Lion
    >>> opt = Lion(model.parameters(), lr=1e-4, weight_decay=1e-2)
"""

from importlib import import_module

# public name -> module that defines it
_EXPORTS = {
    # torch-named first-order solvers
    "SGD": "optim.sgd",
    "Adagrad": "optim.adagrad",
    "Adadelta": "optim.adadelta",
    "ASGD": "optim.asgd",
    "Rprop": "optim.rprop",
    "RMSprop": "optim.rmsprop",
    "Adam": "optim.adam",
    "AdamW": "optim.adam",
    "Adam8bit": "optim.adam",
    "AdamW8bit": "optim.adam",
    "Adamax": "optim.adamax",
    "NAdam": "optim.nadam",
    "RAdam": "optim.radam",
    # from their papers
    "Lion": "optim.lion",
    "Lion8bit": "optim.lion",
    "AdaBound": "optim.adabound",
    "AdaBoundW": "optim.adabound",
    "LAMB": "optim.lamb",
    "LARS": "optim.lars",
    "Lookahead": "optim.lookahead",
    "RandomSearch": "optim.random_search",
    # second order and curvature aware
    "LBFGS": "optim.lbfgs",
    "BFGS": "optim.bfgs",
    "Newton": "optim.newton",
    "HessianFree": "optim.newton",
    "NaturalGradient": "optim.natural_gradient",
    "KFAC": "optim.kfac",
    "Shampoo": "optim.shampoo",
    # gradient tools
    "clip_grad_norm_": "optim.grad_tools",
    "clip_grad_value_": "optim.grad_tools",
    "GradientNoise": "optim.grad_tools",
    "numeric_gradient": "optim.grad_tools",
    "gradcheck": "optim.grad_tools",
    # schedulers torch lacks
    "LinearWarmup": "optim.schedulers",
    "build_scheduler": "optim.schedulers",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'optim' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
