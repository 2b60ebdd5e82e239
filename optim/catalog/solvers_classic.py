"""Catalog entries for the classic torch-named solvers: sgd, adagrad, adadelta, asgd, rprop, rmsprop.

Defaults are the constructors' (torch's).  Every bound rejects exactly what the constructor
rejects; two constraints tie hyperparameters together or differ per element, which the schema's
bounds cannot say, so they are left to the constructor and stated in the descriptions: Nesterov
needs momentum > 0 and zero dampening, and Rprop's etas need 0 < etaminus < 1 < etaplus.
"""

from optim.catalog import common
from optim.catalog.schema import Hyperparameter, SolverEntry


def _nonnegative(name: str, default: float, description: str) -> Hyperparameter:
    return Hyperparameter(name=name, type="float", default=default, minimum=0.0, description=description)


def _unit_interval(name: str, default: float, description: str) -> Hyperparameter:
    return Hyperparameter(
        name=name, type="float", default=default, minimum=0.0, maximum=1.0, description=description
    )


ENTRIES = (
    SolverEntry(
        name="sgd",
        class_path="optim.SGD",
        family="sgd",
        summary=(
            "Stochastic gradient descent: full-batch GD, mini-batch SGD, momentum or Nesterov momentum, "
            "depending on the batch size and the momentum settings."
        ),
        reference=(
            "Robbins & Monro, A Stochastic Approximation Method, Ann. Math. Stat. 1951; Sutskever et al., "
            "On the importance of initialization and momentum in deep learning, ICML 2013 (Nesterov)"
        ),
        hyperparameters=(
            common.lr(1e-3),
            common.momentum(0.0, "Momentum factor; 0 is plain SGD."),
            _nonnegative("dampening", 0.0, "Dampening of the gradient entering the momentum buffer."),
            common.weight_decay(0.0),
            common.flag("nesterov", "Nesterov momentum; needs momentum > 0 and dampening = 0."),
        ),
    ),
    SolverEntry(
        name="adagrad",
        class_path="optim.Adagrad",
        family="adaptive",
        summary="Adagrad: per-coordinate steps shrinking with the root of the summed squared gradients.",
        reference=(
            "Duchi, Hazan & Singer, Adaptive Subgradient Methods for Online Learning and Stochastic "
            "Optimization, JMLR 2011"
        ),
        hyperparameters=(
            common.lr(1e-2),
            _nonnegative("lr_decay", 0.0, "The rate at step t is lr / (1 + (t - 1) * lr_decay)."),
            common.weight_decay(0.0),
            _nonnegative("initial_accumulator_value", 0.0, "Starting value of the sum of squared gradients."),
            common.eps(1e-10),
        ),
    ),
    SolverEntry(
        name="adadelta",
        class_path="optim.Adadelta",
        family="adaptive",
        summary="Adadelta: steps scaled by the ratio of running RMS of past updates to running RMS of gradients.",
        reference="Zeiler, ADADELTA: An Adaptive Learning Rate Method, arXiv:1212.5701, 2012",
        hyperparameters=(
            common.lr(1.0, "Factor on the step (the paper has none: 1)."),
            _unit_interval("rho", 0.9, "Decay of the running averages of squared gradients and updates."),
            common.eps(1e-6, "Added inside both square roots."),
            common.weight_decay(0.0),
        ),
    ),
    SolverEntry(
        name="asgd",
        class_path="optim.ASGD",
        family="sgd",
        summary="Averaged SGD: SGD with a decaying step whose iterates are averaged after t0 steps.",
        reference=(
            "Polyak & Juditsky, Acceleration of Stochastic Approximation by Averaging, SIAM J. Control "
            "Optim. 1992; Xu, Towards Optimal One Pass Large Scale Learning with Averaged SGD, arXiv:1107.2490"
        ),
        hyperparameters=(
            common.lr(1e-2, "Initial step size."),
            _nonnegative("lambd", 1e-4, "Decay term: the step at t is lr / (1 + lambd * lr * t) ** alpha."),
            _nonnegative("alpha", 0.75, "Power of the step-size decay."),
            _nonnegative("t0", 1e6, "Step after which averaging starts."),
            common.weight_decay(0.0),
        ),
    ),
    SolverEntry(
        name="rprop",
        class_path="optim.Rprop",
        family="adaptive",
        summary="Rprop: sign-based steps, each coordinate's step growing while its gradient sign holds.",
        reference=(
            "Riedmiller & Braun, A Direct Adaptive Method for Faster Backpropagation Learning: "
            "The RPROP Algorithm, ICNN 1993"
        ),
        hyperparameters=(
            common.lr(1e-2, "Initial step size of every coordinate."),
            Hyperparameter(
                name="etas", type="float_tuple", length=2, default=(0.5, 1.2),
                description="(etaminus, etaplus): step-size factors on a sign flip and on a kept sign; "
                "0 < etaminus < 1 < etaplus.",
            ),
            Hyperparameter(
                name="step_sizes", type="float_tuple", length=2, default=(1e-6, 50), minimum=0.0,
                description="(min, max) bounds of the per-coordinate step sizes.",
            ),
        ),
    ),
    SolverEntry(
        name="rmsprop",
        class_path="optim.RMSprop",
        family="adaptive",
        summary="RMSprop: gradients divided by a running root mean square of recent gradients.",
        reference=(
            "Hinton, Srivastava & Swersky, Neural Networks for Machine Learning, lecture 6e, 2012; "
            "Graves, Generating Sequences With Recurrent Neural Networks, arXiv:1308.0850 (centered)"
        ),
        hyperparameters=(
            common.lr(1e-2),
            _unit_interval("alpha", 0.99, "Smoothing constant of the running averages."),
            common.eps(1e-8),
            common.weight_decay(0.0),
            common.momentum(0.0),
            common.flag("centered", "Normalise by the estimated gradient variance instead of its second moment."),
        ),
    ),
)
