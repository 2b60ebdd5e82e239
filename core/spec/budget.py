"""How big an experiment is before it runs, without torch: its parameters, the memory a training
step needs, and the refusals a queue's budget implies.

Every architecture has a *plan* (:func:`model_size`): its layers in the order
``worker.architectures.build_model`` creates their parameters, each with the shapes of those
parameters and, for the layers K-FAC preconditions, the width of their input and output rows,
and the per-sample count of activation values the forward pass allocates.  Every solver has a
formula (:data:`STATE_ELEMENTS`) for the most float32 values it holds at once over a run.  An
:class:`Estimate` adds them up for one batch size; :func:`budget_errors` compares it with a
queue's limits (the ``DESCENT_{CPU,GPU}_MAX_PARAMS`` and ``..._MAX_MEMORY_MB`` settings) and
with each solver's own ``max_params``, and adds the combinations the worker cannot train
(:mod:`core.spec.compatibility`), so the api refuses them at submission rather than the worker
failing later.

Memory counts float32 values (4 bytes); a value of another type counts as its bytes / 4 (a
max-pooling's int64 indices are 2).  The totals are estimates meant to bound a run from above
within a small factor; tests/core/spec/test_budget.py holds them against torch itself.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from core.spec.architectures import ARCHITECTURES, image_shape
from core.spec.compatibility import compatibility_errors
from optim import catalog
from optim.catalog.solvers_eightbit import BLOCK_SIZE, MIN_QUANTIZED_SIZE

FLOAT_BYTES = 4
Shape = tuple[int, ...]
Location = tuple[str | int, ...]


# -- architectures ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Layer:
    """One module's trainable parameters (``shapes``, in creation order).

    For a Linear or Conv layer K-FAC hooks, ``fan_in`` is the width of its input rows (input
    features, or input channels times the kernel's size), ``fan_out`` its output features or
    channels, ``positions`` the rows one sample contributes (1 for a vector, the tokens of a
    sequence, a convolution's output positions) and ``bias`` whether the row gets a 1 appended;
    ``positions == 0`` marks a layer K-FAC never sees run (normalisation, position embeddings,
    the attention projections ``MultiheadAttention`` applies functionally)."""

    shapes: tuple[Shape, ...]
    fan_in: int = 0
    fan_out: int = 0
    positions: int = 0
    bias: bool = False


@dataclass(frozen=True)
class ModelSize:
    """An architecture's layers and the activation values one sample's forward pass allocates."""

    layers: tuple[Layer, ...]
    activations: int

    @property
    def shapes(self) -> list[Shape]:
        return [s for layer in self.layers for s in layer.shapes]

    @property
    def params(self) -> int:
        return sum(math.prod(s) for s in self.shapes)

    @property
    def tensors(self) -> int:
        return len(self.shapes)


def _linear(n_in: int, n_out: int, positions: int = 1, bias: bool = True) -> Layer:
    shapes = ((n_out, n_in), (n_out,)) if bias else ((n_out, n_in),)
    return Layer(shapes, n_in, n_out, positions, bias)


def _conv(c_in: int, c_out: int, kernel: Shape, positions: int, bias: bool = True) -> Layer:
    shapes = ((c_out, c_in, *kernel), (c_out,)) if bias else ((c_out, c_in, *kernel),)
    return Layer(shapes, c_in * math.prod(kernel), c_out, positions, bias)


def _affine(width: int) -> Layer:
    """A normalisation's weight and bias (BatchNorm's running statistics are buffers)."""
    return Layer(((width,), (width,)))


def _dropout(p: float) -> int:
    """Values dropout allocates per output value: the mask and the output (none when off)."""
    return 2 if p > 0 else 0


def _plan_linear(feature_shape: Shape, n_outputs: int) -> ModelSize:
    return ModelSize((_linear(math.prod(feature_shape), n_outputs),), n_outputs)


def _plan_mlp(feature_shape: Shape, n_outputs: int, *, depth: int, width: int, activation: str,
              dropout: float, normalization: str) -> ModelSize:
    """Per hidden layer: linear, normalisation (batch: its output; layer: its output and each row's
    mean and 1/std), activation, dropout; then the output layer."""
    layers, fan_in = [], math.prod(feature_shape)
    norm = {"batch": width, "layer": width + 2, "none": 0}[normalization]
    for _ in range(depth):
        layers.append(_linear(fan_in, width))
        if normalization != "none":
            layers.append(_affine(width))
        fan_in = width
    layers.append(_linear(fan_in, n_outputs))
    per_layer = width + norm + width + _dropout(dropout) * width
    return ModelSize(tuple(layers), depth * per_layer + n_outputs)


def _plan_cnn1d(feature_shape: Shape, n_outputs: int, *, channels: int, depth: int, kernel_size: int,
                activation: str, dropout: float) -> ModelSize:
    """Per block a padded convolution (length L -> L + 2 floor(k/2) - k + 1), activation, dropout;
    then the mean over positions and the head."""
    c_in = feature_shape[0] if len(feature_shape) == 2 else 1
    length = feature_shape[-1]
    layers, values = [], 0
    for _ in range(depth):
        length = length + 2 * (kernel_size // 2) - kernel_size + 1
        layers.append(_conv(c_in, channels, (kernel_size,), length))
        values += (2 + _dropout(dropout)) * channels * length
        c_in = channels
    layers.append(_linear(channels, n_outputs))
    return ModelSize(tuple(layers), values + channels + n_outputs)


def _plan_cnn2d(feature_shape: Shape, n_outputs: int, *, channels: int, hidden: int, activation: str,
                dropout: float) -> ModelSize:
    """Two (5x5 same-size convolution, activation, 2x2 max-pool keeping int64 indices) stages, then
    three dense layers (activation and dropout after the first two)."""
    c, h, w = _image(feature_shape, "cnn2d")
    hidden2 = max(1, int(hidden * 0.7))
    flat = 2 * channels * (h // 4) * (w // 4)
    layers = (
        _conv(c, channels, (5, 5), h * w),
        _conv(channels, 2 * channels, (5, 5), (h // 2) * (w // 2)),
        _linear(flat, hidden), _linear(hidden, hidden2), _linear(hidden2, n_outputs),
    )
    pooled = 3  # the pooled value and its int64 index
    values = (2 * channels * h * w + pooled * channels * (h // 2) * (w // 2)
              + 2 * 2 * channels * (h // 2) * (w // 2) + pooled * flat
              + (2 + _dropout(dropout)) * (hidden + hidden2) + n_outputs)
    return ModelSize(layers, values)


def _plan_resnet(feature_shape: Shape, n_outputs: int, *, width: int, blocks: int, stages: int) -> ModelSize:
    """Stem (3x3 convolution, batch norm, ReLU), then basic blocks: convolution, batch norm, ReLU,
    convolution, batch norm (a 1x1 convolution and batch norm on the shortcut when the shape
    changes), sum, ReLU; a stride-2 block maps H to floor((H - 1) / 2) + 1."""
    c, h, w = _image(feature_shape, "resnet")
    layers = [_conv(c, width, (3, 3), h * w, bias=False), _affine(width)]
    values = 3 * width * h * w
    c_in = width
    for stage in range(stages):
        c_out = width * 2**stage
        for b in range(blocks):
            if stage > 0 and b == 0:
                h, w = (h - 1) // 2 + 1, (w - 1) // 2 + 1
            shortcut = (stage > 0 and b == 0) or c_in != c_out  # _BasicBlock: stride 2, or new width
            layers += [_conv(c_in, c_out, (3, 3), h * w, bias=False), _affine(c_out),
                       _conv(c_out, c_out, (3, 3), h * w, bias=False), _affine(c_out)]
            if shortcut:
                layers += [_conv(c_in, c_out, (1, 1), h * w, bias=False), _affine(c_out)]
            values += (9 if shortcut else 7) * c_out * h * w
            c_in = c_out
    layers.append(_linear(c_in, n_outputs))
    return ModelSize(tuple(layers), values + c_in + n_outputs)


def _plan_transformer(feature_shape: Shape, n_outputs: int, *, d_model: int, heads: int, layers: int, ff: int,
                      dropout: float) -> ModelSize:
    """A pre-norm encoder over L tokens of width d (h heads, feed-forward width f).

    Parameters: the position embedding (L, d) first (the model's own), the token embedding, per
    layer attention's in-projection (3d, d) and bias, its out-projection, the two feed-forward
    layers and two LayerNorms; the final LayerNorm and the head.  Values per layer, as torch's
    kernels allocate them: LayerNorms 2 (Ld + 2L), in-projection and bias 6Ld, attention
    5Ld + hL with the fused kernel or, with dropout (the reference kernel on CPU; CUDA's fused
    kernels keep O(L) per head), 8Ld + 4hL^2 (scores, probabilities, dropout mask and output);
    out-projection, residual sums and the second feed-forward layer 4Ld, the first feed-forward
    layer and its activation 2Lf, dropouts 4Ld + 2Lf."""
    d, h, f = d_model, heads, ff
    if len(feature_shape) >= 2:
        length, token = feature_shape[0], math.prod(feature_shape[1:])
    else:
        length, token = math.prod(feature_shape), 1
    ld = length * d
    encoder = [
        Layer(((3 * d, d), (3 * d,))),  # in_proj weight and bias: used functionally by attention
        Layer(((d, d), (d,))),  # out_proj: a Linear, but attention multiplies by its weight directly
        _linear(d, f, length), _linear(f, d, length), _affine(d), _affine(d),
    ]
    plan = (Layer(((length, d),)), _linear(token, d, length), *encoder * layers, _affine(d), _linear(d, n_outputs))
    attention = 8 * ld + 4 * h * length * length if dropout > 0 else 5 * ld + h * length
    per_layer = 2 * (ld + 2 * length) + 6 * ld + attention + 4 * ld + 2 * length * f
    if dropout > 0:
        per_layer += 4 * ld + 2 * length * f
    values = 2 * ld + layers * per_layer + ld + 2 * length + d + n_outputs
    return ModelSize(plan, values)


def _image(feature_shape: Shape, name: str) -> tuple[int, int, int]:
    shape = image_shape(tuple(feature_shape))
    if shape is None:
        raise ValueError(f"{name} needs images; got samples of shape {list(feature_shape)}")
    return shape


PLANS: dict[str, Callable[..., ModelSize]] = {
    "linear": _plan_linear,
    "mlp": _plan_mlp,
    "cnn1d": _plan_cnn1d,
    "cnn2d": _plan_cnn2d,
    "resnet": _plan_resnet,
    "transformer": _plan_transformer,
}


def model_size(arch_name: str, hparams: dict[str, Any], feature_shape: Shape, n_outputs: int) -> ModelSize:
    """The plan of architecture ``arch_name`` with ``hparams`` (defaults filled as ``build_model``
    fills them) for samples of ``feature_shape`` and ``n_outputs`` outputs."""
    if arch_name not in PLANS:
        raise KeyError(f"no size formula for architecture {arch_name!r}; add one to core.spec.budget.PLANS")
    full = ARCHITECTURES[arch_name].validate_params(dict(hparams), path="architecture")
    return PLANS[arch_name](tuple(feature_shape), n_outputs, **full)


def parameter_shapes(arch_name: str, hparams: dict[str, Any], feature_shape: Shape, n_outputs: int) -> list[Shape]:
    """The shapes of ``build_model(...).parameters()``, in that order."""
    return model_size(arch_name, hparams, feature_shape, n_outputs).shapes


def parameter_count(arch_name: str, hparams: dict[str, Any], feature_shape: Shape, n_outputs: int) -> int:
    """:math:`\\sum_i \\prod_j s_{ij}` over the parameter shapes."""
    return model_size(arch_name, hparams, feature_shape, n_outputs).params


def activation_elements(arch_name: str, hparams: dict[str, Any], feature_shape: Shape, n_outputs: int) -> int:
    """Values the training forward pass allocates per sample: every operation's output (layers,
    activations, normalisations with their per-row statistics, dropout's masks, max-pooling's
    indices, residual sums, attention maps), not the parameters nor the input.  Autograd keeps a
    subset of these for the backward pass, so this bounds the activation memory of a step from
    above (the backward pass frees them as it goes)."""
    return model_size(arch_name, hparams, feature_shape, n_outputs).activations


# -- solvers -----------------------------------------------------------------------------------------

# A solver's formula: (hyperparameters with defaults filled, the model, batch size) -> values held.
StateFormula = Callable[[dict[str, Any], ModelSize, int], int]

# torch.Generator().get_state() of the CPU generator random search keeps: 5056 bytes
GENERATOR_STATE = 5056 // FLOAT_BYTES


def _moments(n: int, counters: int = 1) -> StateFormula:
    """``n`` buffers the size of the parameters and ``counters`` 0-dim counters per tensor."""
    return lambda hp, m, batch: n * m.params + counters * m.tensors


def _sgd(hp, m, batch):
    return m.params if hp["momentum"] != 0 else 0


def _rmsprop(hp, m, batch):
    return (1 + (hp["momentum"] > 0) + bool(hp["centered"])) * m.params + m.tensors


def _amsgrad(flag: str) -> StateFormula:
    return lambda hp, m, batch: (2 + bool(hp[flag])) * m.params + m.tensors


def _eightbit(moments: int, flag: str | None = None, counters: int = 1) -> StateFormula:
    """``moments`` (one more when ``flag`` is set) held 8-bit (``optim.quantization``): a tensor of
    ``n >= MIN_QUANTIZED_SIZE`` elements keeps each as n uint8 codes and a float32 absmax per block
    of ``BLOCK_SIZE`` (n / 4 + blocks values), a smaller one as n float32 values."""

    def elements(hp, m, batch):
        held = moments + (bool(hp[flag]) if flag else 0)
        total = counters * m.tensors
        for shape in m.shapes:
            n = math.prod(shape)
            total += held * (math.ceil(n / 4) + math.ceil(n / BLOCK_SIZE) if n >= MIN_QUANTIZED_SIZE else n)
        return total

    return elements


def _lookahead(hp, m, batch):
    """The slow weights, plus the base solver's state (built with its defaults, lr and weight_decay)."""
    base = catalog.solver(hp["base"])
    base_hp = {**base.defaults(), **{k: hp[k] for k in ("lr", "weight_decay") if k in hp}}
    return m.params + STATE_ELEMENTS[base.name](base_hp, m, batch)


def _random_search(hp, m, batch):
    """The starting point, the best candidate's noise and the noise being drawn while the previous
    one is still referenced: 4P, and the generator's state."""
    return 4 * m.params + GENERATOR_STATE


def _lbfgs(hp, m, batch):
    """``history_size`` m pairs (s, y): 2mP, their curvatures and the two-loop's alphas 2m; the
    direction, previous gradient, flat gradient, difference, the two-loop's q and r and the line
    search's start and trial gradients: 12P, and a few dozen scalars."""
    history = hp["history_size"]
    return (2 * history + 12) * m.params + 2 * history + 64


def _bfgs(hp, m, batch):
    """The dense inverse Hessian P^2 and L-BFGS's 12P of vectors and scalars."""
    return m.params**2 + 12 * m.params + 64


def _newton(hp, m, batch):
    """The identity, the batched Hessian rows, the Hessian and its symmetrised copy while they are
    formed, then the Hessian, identity, damped matrix and Cholesky factor: 5P^2; the batched double
    backward behind the rows takes up to 2 values per activation value per row: 2 P B a."""
    p = m.params
    return 5 * p * p + 2 * p * batch * m.activations + 8 * p


def _hessian_free(hp, m, batch):
    """Conjugate gradient's vectors (solution, residual, search, product, gradient, mask, start...):
    10P; each Hessian-vector product runs a backward pass through the gradient's graph: 2Ba."""
    return 10 * m.params + 2 * batch * m.activations


def _natural_gradient(hp, m, batch):
    """Per-sample gradients U (B x P) and the per-parameter rows they are concatenated from, with the
    vmapped forward and backward: 2BP + 2Ba; then U and the damped Fisher U^T U / B (P <= B) or
    Gram matrix U U^T (B < P) with its factorisation: BP + 3 min(B, P)^2; the gradient, direction
    and momentum buffer: 4P (+P)."""
    p = m.params
    per_sample = max(2 * batch * p + 2 * batch * m.activations, batch * p + 3 * min(batch, p) ** 2)
    return per_sample + 4 * p + (p if hp["momentum"] != 0 else 0)


def _kfac(hp, m, batch):
    """Per layer it sees, with rows of a = fan_in (+1 with a bias) and g = fan_out values: the
    running factors A, G, their eigenvectors and the current batch's sums, 3(a^2 + g^2), and the
    eigenvalues a + g; the momentum buffer P and the step's directions P; one layer's
    eigendecomposition (the symmetrised factor, new and old eigenvectors) and preconditioning,
    3 max(a, g)^2 + 3ag + a + g; while the hooks form one layer's factors, its T rows per sample
    copied and extended by the bias' 1, B T (2a + 1), or its output gradients reshaped and
    scaled, 3 B T g."""
    seen = [(layer.fan_in + layer.bias, layer.fan_out, layer.positions) for layer in m.layers if layer.positions]
    factors = sum(3 * (a * a + g * g) + a + g for a, g, _ in seen)
    step = max((3 * max(a, g) ** 2 + 3 * a * g + a + g for a, g, _ in seen), default=0)
    hooks = max((batch * t * max(2 * a + 1, 3 * g) for a, g, t in seen), default=0)
    momentum = m.params if hp["momentum"] != 0 else 0
    return factors + momentum + m.params + step + hooks


def _shampoo(hp, m, batch):
    """Per parameter: a counter, the graft's state (adagrad P_i, adam 2P_i, sgd none), a statistic
    and an inverse root d^2 for every dimension 1 < d <= max_preconditioner_dim, the momentum
    buffer; the float64 eigendecomposition of the largest statistic 10 d^2 and one parameter's
    update temporaries 4 P_i."""
    graft = {"adagrad": 1, "adam": 2, "sgd": 0}[hp["graft"]]
    momentum = 1 if hp["momentum"] != 0 else 0
    total, largest_dim, largest = 0, 0, 0
    for shape in m.shapes:
        numel = math.prod(shape)
        dims = [d for d in shape if 1 < d <= hp["max_preconditioner_dim"]]
        total += 1 + (graft + momentum) * numel + sum(2 * d * d for d in dims)
        largest_dim, largest = max([largest_dim, *dims]), max(largest, numel)
    return total + 10 * largest_dim**2 + 4 * largest


STATE_ELEMENTS: dict[str, StateFormula] = {
    "sgd": _sgd,
    "adagrad": _moments(1),  # sum
    "adadelta": _moments(2),  # square_avg, acc_delta
    "asgd": _moments(1, counters=3),  # ax; step, eta, mu
    "rprop": _moments(2),  # prev, step_size
    "rmsprop": _rmsprop,  # square_avg (+ momentum_buffer, grad_avg)
    "adam": _amsgrad("amsgrad"),  # exp_avg, exp_avg_sq (+ max_exp_avg_sq)
    "adamw": _amsgrad("amsgrad"),
    "adamax": _moments(2),  # exp_avg, exp_inf
    "nadam": _moments(2, counters=2),  # exp_avg, exp_avg_sq; step, mu_product
    "radam": _moments(2),
    "lion": _moments(1, counters=0),  # exp_avg
    "adam8bit": _eightbit(2, "amsgrad"),  # exp_avg, exp_avg_sq (+ max_exp_avg_sq), 8-bit
    "adamw8bit": _eightbit(2, "amsgrad"),
    "lion8bit": _eightbit(1, counters=0),
    "adabound": _amsgrad("amsbound"),
    "adaboundw": _amsgrad("amsbound"),
    "lamb": _moments(2),
    "lars": _sgd,  # momentum_buffer
    "lookahead": _lookahead,
    "randomsearch": _random_search,
    "lbfgs": _lbfgs,
    "bfgs": _bfgs,
    "newton": _newton,
    "hessianfree": _hessian_free,
    "naturalgradient": _natural_gradient,
    "kfac": _kfac,
    "shampoo": _shampoo,
}


def optimizer_state_elements(solver_name: str, solver_hparams: dict[str, Any], model: ModelSize,
                             batch_size: int) -> int:
    """An upper bound of the float32 values solver ``solver_name`` holds at once over a run: its
    state at its largest, and for the solvers whose step forms something beyond elementwise
    temporaries (the quasi-Newton and Newton methods, natural gradient, K-FAC, Shampoo, random
    search) the working tensors of a step.  The elementwise temporaries of a first-order update
    (at most about one parameter-sized buffer in torch's foreach kernels) are not counted.
    ``solver_hparams`` are catalog names (``lr``, not ``base_lr``); left-out ones take the
    catalog's defaults."""
    if solver_name not in STATE_ELEMENTS:
        raise KeyError(f"no state formula for solver {solver_name!r}; add one to core.spec.budget.STATE_ELEMENTS")
    hp = {**catalog.solver(solver_name).defaults(), **solver_hparams}
    return STATE_ELEMENTS[solver_name](hp, model, batch_size)


# -- the estimate ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Estimate:
    """The memory one training step needs, in bytes: weights and their gradients, the optimizer's
    state, and the activations of one batch of ``batch_size`` samples."""

    params: int
    batch_size: int
    weights_and_grads_bytes: int
    optimizer_state_bytes: int
    activation_bytes: int

    @property
    def total_bytes(self) -> int:
        return self.weights_and_grads_bytes + self.optimizer_state_bytes + self.activation_bytes

    def describe(self) -> str:
        """E.g. "~1.0 B parameters, ~15.1 GiB (weights+gradients 7.5 GiB, optimizer state 7.5 GiB,
        activations 120.0 MiB)"."""
        return f"~{human_count(self.params)} parameters, ~{human_bytes(self.total_bytes)} ({self.breakdown()})"

    def breakdown(self) -> str:
        return (f"weights+gradients {human_bytes(self.weights_and_grads_bytes)}, optimizer state "
                f"{human_bytes(self.optimizer_state_bytes)}, activations {human_bytes(self.activation_bytes)}")


def estimate(spec: Any, feature_shape: Shape, n_outputs: int, batch_size: int) -> Estimate:
    """The :class:`Estimate` of ``spec`` (a ``core.spec.ExperimentSpec``) on samples of
    ``feature_shape`` with ``n_outputs`` outputs, for batches of ``batch_size`` (already resolved:
    full batch is the number of train samples)."""
    size = model_size(spec.architecture.name, spec.architecture_hparams(), feature_shape, n_outputs)
    return _estimate(size, spec.solver.name, spec.solver_hparams(), batch_size)


def n_outputs_of(info: Any) -> int:
    """The model's outputs for a dataset (a ``core.datasets.DatasetInfo``): one per class, one for regression."""
    return (info.n_classes or 1) if info.task == "classification" else 1


def run_estimate(spec: Any, info: Any, n_train: int) -> Estimate:
    """The :func:`estimate` of ``spec`` trained on the dataset ``info`` describes with ``n_train``
    training samples (a batch is at most all of them; none means full batch)."""
    batch = n_train if spec.training.batch_size is None else min(spec.training.batch_size, n_train)
    return estimate(spec, info.feature_shape, n_outputs_of(info), max(1, batch))


def _estimate(size: ModelSize, solver_name: str, solver_hparams: dict[str, Any], batch_size: int) -> Estimate:
    state = optimizer_state_elements(solver_name, solver_hparams, size, batch_size)
    return Estimate(
        params=size.params, batch_size=batch_size,
        weights_and_grads_bytes=2 * FLOAT_BYTES * size.params,
        optimizer_state_bytes=FLOAT_BYTES * state,
        activation_bytes=FLOAT_BYTES * batch_size * size.activations,
    )


# -- refusals ----------------------------------------------------------------------------------------------


def budget_errors(spec: Any, feature_shape: Shape, n_outputs: int, n_train: int, *, max_params: int,
                  max_memory_bytes: int, queue: str) -> list[tuple[Location, str]]:
    """Why ``spec`` may not run on ``queue`` ("cpu" or "gpu"), as ``(location, message)`` pairs
    like :class:`core.spec.experiment.SpecError`'s; empty if it may.

    * More parameters than ``max_params`` (the queue's ``DESCENT_<QUEUE>_MAX_PARAMS``): at
      ``architecture``.
    * More parameters than the solver's own ``max_params`` (what the engine would refuse when it
      builds the optimizer): at ``solver.<name>``.
    * An :func:`estimate` above ``max_memory_bytes`` (``DESCENT_<QUEUE>_MAX_MEMORY_MB``): at
      ``training.batch_size`` when a smaller batch fits (the message names the largest), else at
      ``solver.<name>`` when the optimizer's state is the larger part, else at ``architecture``.
    * The solver, architecture and batching the worker cannot train together
      (:func:`core.spec.compatibility.compatibility_errors`).

    ``n_train`` is the number of train samples (the full batch, and the bound of a batch)."""
    errors: list[tuple[Location, str]] = []
    size = model_size(spec.architecture.name, spec.architecture_hparams(), feature_shape, n_outputs)
    solver, hparams = spec.solver.name, spec.solver_hparams()
    batch = n_train if spec.training.batch_size is None else min(spec.training.batch_size, n_train)
    batch = max(1, batch)
    setting = f"DESCENT_{queue.upper()}"
    found = _estimate(size, solver, hparams, batch)
    if size.params > max_params:
        errors.append((("architecture",), (
            f"the model has {size.params:,} parameters (~{human_count(size.params)}; training it with {solver} needs "
            f"~{human_bytes(found.total_bytes)}: {found.breakdown()}), more than the {queue} queue allows "
            f"({max_params:,}, {setting}_MAX_PARAMS); choose a smaller architecture (fewer or narrower layers)"
        )))
    entry = catalog.solver(solver)
    if entry.max_params is not None and size.params > entry.max_params:
        errors.append((("solver", solver), (
            f"{solver} is meant for at most {entry.max_params} parameters and this model has {size.params}; "
            "choose a smaller architecture or a first-order solver"
        )))
    if not errors and found.total_bytes > max_memory_bytes:
        errors.append(_memory_error(found, size, solver, hparams, spec.training.batch_size is None,
                                    max_memory_bytes, queue, setting))
    errors += compatibility_errors(spec, feature_shape, n_train)
    return errors


def _memory_error(found: Estimate, size: ModelSize, solver: str, hparams: dict[str, Any], full_batch: bool,
                  limit: int, queue: str, setting: str) -> tuple[Location, str]:
    over = (f"needs ~{human_bytes(found.total_bytes)} by estimate with batches of {found.batch_size} "
            f"(~{human_count(found.params)} parameters; {found.breakdown()}), more than the {queue} queue's "
            f"{human_bytes(limit)} ({setting}_MAX_MEMORY_MB={limit // 2**20})")
    fits = largest_batch_within(size, solver, hparams, found.batch_size - 1, limit)
    if fits:
        given = f"null trains full batch: {found.batch_size} samples" if full_batch else f"now {found.batch_size}"
        return ("training", "batch_size"), f"{over}; lower training.batch_size ({given}) to at most {fits}"
    if found.optimizer_state_bytes > found.weights_and_grads_bytes:
        return ("solver", solver), (
            f"{over}, even one sample per batch; {solver}'s state is the larger part: choose a solver that keeps "
            "less state (sgd keeps none, adam twice the weights) or a smaller architecture"
        )
    return ("architecture",), f"{over}, even one sample per batch; choose a smaller architecture"


def largest_batch_within(size: ModelSize, solver: str, hparams: dict[str, Any], most: int, limit: int) -> int:
    """The largest batch size in [1, ``most``] whose estimate fits ``limit`` bytes, or 0 if none
    does (the estimate grows with the batch size, so a bisection finds it)."""
    lo, hi = 0, most
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if _estimate(size, solver, hparams, mid).total_bytes <= limit:
            lo = mid
        else:
            hi = mid - 1
    return lo


# -- numbers for people ------------------------------------------------------------------------------------

_UNITS = (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10))


def human_bytes(n_bytes: int) -> str:
    """``n_bytes`` in the largest of GiB, MiB, KiB that it reaches (else KiB), one decimal."""
    name, size = next((unit for unit in _UNITS if n_bytes >= unit[1]), _UNITS[-1])
    return f"{n_bytes / size:.1f} {name}"


def human_count(n: int) -> str:
    """1234 -> "1.2 K", 67843 -> "67.8 K", 1_006_000_000 -> "1.0 B"."""
    for suffix, size in (("B", 10**9), ("M", 10**6), ("K", 10**3)):
        if n >= size:
            return f"{n / size:.1f} {suffix}"
    return str(n)


__all__ = [
    "Estimate", "Layer", "ModelSize", "PLANS", "STATE_ELEMENTS", "activation_elements", "budget_errors",
    "estimate", "largest_batch_within", "model_size", "optimizer_state_elements", "parameter_count",
    "parameter_shapes",
]
