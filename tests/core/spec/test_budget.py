"""core.spec.budget against torch: the parameter shapes are those of the built model, the activation
count brackets what the forward pass allocates and keeps for backward, every solver's state formula
bounds what the real optimizer holds within a stated factor, and the budget refuses what exceeds
a queue's limits (and only that) with messages naming the field and the setting.

core.spec.compatibility against the worker: every combination it refuses fails in
``worker.engine.train`` and its near neighbours train."""

from __future__ import annotations

import contextlib
import weakref

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

import optim.kfac
from core.datasets.builtin import DatasetInfo
from core.settings import Settings
from core.spec import ExperimentSpec, resolve_spec
from core.spec.architectures import ARCHITECTURES
from core.spec.budget import (
    FLOAT_BYTES,
    PLANS,
    STATE_ELEMENTS,
    activation_elements,
    budget_errors,
    estimate,
    model_size,
    optimizer_state_elements,
    parameter_count,
    parameter_shapes,
)
from core.spec.compatibility import compatibility_errors
from core.splits import SplitArrays
from optim import catalog
from optim.factory import build_optimizer
from worker.architectures import build_model
from worker.data import prepare
from worker.engine import train
from worker.sink import ListSink

# (architecture, hyperparameters, feature shape, outputs): vectors, (C, H, W) and (H, W) images,
# square vectors for the image models, sequences of scalars and of vectors
ARCH_CASES = [
    ("linear", {}, (5,), 3),
    ("linear", {}, (3, 4, 4), 1),
    ("mlp", {}, (7,), 4),
    ("mlp", {"depth": 3, "width": 9, "activation": "gelu", "normalization": "layer"}, (2, 5), 3),
    ("mlp", {"depth": 2, "width": 16, "dropout": 0.5, "normalization": "batch"}, (5,), 1),
    ("mlp", {"depth": 1, "width": 6, "activation": "tanh"}, (3, 8, 8), 10),
    ("cnn1d", {}, (12,), 3),
    ("cnn1d", {"channels": 4, "depth": 3, "kernel_size": 4, "dropout": 0.2}, (3, 12), 2),
    ("cnn1d", {"channels": 5, "depth": 1, "kernel_size": 1, "activation": "sigmoid"}, (2, 7), 1),
    ("cnn2d", {"channels": 4, "hidden": 8}, (16,), 3),
    ("cnn2d", {"channels": 3, "hidden": 10, "dropout": 0.2}, (3, 12, 13), 5),
    ("cnn2d", {}, (9, 11), 2),
    ("resnet", {"width": 4, "blocks": 2, "stages": 2}, (8, 8), 3),
    ("resnet", {"width": 4, "blocks": 1, "stages": 3}, (3, 9, 9), 2),
    ("resnet", {"width": 3, "blocks": 1, "stages": 1}, (64,), 4),
    ("transformer", {"d_model": 8, "heads": 2, "layers": 2, "ff": 16}, (10,), 3),
    ("transformer", {"d_model": 8, "heads": 2, "layers": 1, "ff": 16, "dropout": 0.1}, (10, 3), 2),
    ("transformer", {"d_model": 12, "heads": 3, "layers": 1, "ff": 5}, (4, 2, 3), 1),
]


def _arch_id(case) -> str:
    name, hp, shape, n_out = case
    return f"{name}-{'-'.join(f'{k}={v}' for k, v in hp.items())}-{'x'.join(map(str, shape))}-{n_out}"


def test_every_architecture_has_a_plan_and_cases():
    assert set(PLANS) == set(ARCHITECTURES)
    assert {case[0] for case in ARCH_CASES} == set(ARCHITECTURES)


@pytest.mark.parametrize("case", ARCH_CASES, ids=_arch_id)
def test_parameter_shapes_are_those_of_the_built_model(case):
    name, hp, shape, n_out = case
    model = build_model(name, hp, shape, n_out)
    expected = [tuple(p.shape) for p in model.parameters() if p.requires_grad]
    assert parameter_shapes(name, hp, shape, n_out) == expected
    assert parameter_count(name, hp, shape, n_out) == sum(p.numel() for p in model.parameters())


# -- memory, measured by torch ---------------------------------------------------------------------


def _storage(t: torch.Tensor):
    return t.untyped_storage()


class Allocations(TorchDispatchMode):
    """Bytes of every storage an operation creates while ``counting`` (not views of its inputs, not
    in-place results): ``allocated`` in all, ``live`` now (a storage leaves when collected) and
    ``peak`` since :meth:`reset`."""

    def __init__(self):
        super().__init__()
        self.counting = True
        self.allocated = self.live = self.peak = 0

    def reset(self) -> None:
        self.allocated = self.live = self.peak = 0

    @contextlib.contextmanager
    def switched(self, on: bool):
        before, self.counting = self.counting, on
        try:
            yield
        finally:
            self.counting = before

    def _freed(self, n: int) -> None:
        self.live -= n

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if self.counting:
            known = {_storage(t).data_ptr() for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)}
            for t in tree_flatten(out)[0]:
                if not isinstance(t, torch.Tensor) or _storage(t).data_ptr() in known or _storage(t).nbytes() == 0:
                    continue
                storage = _storage(t)
                known.add(storage.data_ptr())
                self.allocated += storage.nbytes()
                self.live += storage.nbytes()
                self.peak = max(self.peak, self.live)
                weakref.finalize(storage, self._freed, storage.nbytes())
        return out


def _forward_bytes(model: nn.Module, shape, batch: int) -> tuple[int, int]:
    """(bytes the training forward pass allocates, bytes of the tensors autograd saves for backward),
    parameters and input excluded."""
    torch.manual_seed(0)
    x = torch.randn(batch, *shape)
    skip = {_storage(p).data_ptr() for p in model.parameters()} | {_storage(x).data_ptr()}
    saved: dict[int, int] = {}

    def pack(t):
        if _storage(t).data_ptr() not in skip:
            saved[_storage(t).data_ptr()] = _storage(t).nbytes()
        return t

    with Allocations() as allocations, torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(x)
    return allocations.allocated, sum(saved.values())


@pytest.mark.parametrize("case", ARCH_CASES, ids=_arch_id)
def test_activation_elements_bracket_what_the_forward_pass_allocates_and_keeps(case):
    """Per sample (the difference of batches of 4 and 2): the count is within 25% of the float32
    values the forward pass allocates, and at least what autograd keeps for backward."""
    name, hp, shape, n_out = case
    model = build_model(name, hp, shape, n_out).train()
    (alloc4, saved4), (alloc2, saved2) = _forward_bytes(model, shape, 4), _forward_bytes(model, shape, 2)
    allocated, kept = (alloc4 - alloc2) / 2 / FLOAT_BYTES, (saved4 - saved2) / 2 / FLOAT_BYTES
    count = activation_elements(name, hp, shape, n_out)
    assert allocated / 1.25 <= count <= 1.25 * allocated, (count, allocated)
    assert kept <= count, (count, kept)


# Models for the solver checks: a small MLP (P = 467), a small 1-D CNN (3-D conv weights) and others
MLP = ("mlp", {"depth": 2, "width": 16}, (8,), 3)
WIDE_MLP = ("mlp", {"depth": 2, "width": 128}, (64,), 10)
CNN = ("cnn1d", {"channels": 4, "depth": 2, "kernel_size": 3}, (2, 10), 3)
TINY = ("mlp", {"depth": 1, "width": 4}, (5,), 3)  # P = 39: natural gradient's Fisher branch P <= B
RESNET = ("resnet", {"width": 2, "blocks": 1, "stages": 2}, (16,), 3)
IMAGE = ("cnn2d", {"channels": 1, "hidden": 4}, (16,), 3)
SEQUENCE = ("transformer", {"d_model": 8, "heads": 2, "layers": 1, "ff": 8}, (6,), 3)

# (solver, hyperparameters, model, batch, measure, factor): "state" sums the tensors the optimizer
# holds after backward and after each step (first-order solvers; their elementwise temporaries are
# not counted), "peak" adds the most a step allocates on top (outside the loss closure; for K-FAC
# also inside its hooks).  Asserted: measured <= estimate <= factor * measured.
SOLVER_CASES = [
    ("sgd", {}, MLP, 16, "state", 1.0),
    ("sgd", {"momentum": 0.9}, MLP, 16, "state", 1.0),
    ("adagrad", {}, MLP, 16, "state", 1.0),
    ("adadelta", {}, MLP, 16, "state", 1.0),
    ("asgd", {}, MLP, 16, "state", 1.0),
    ("rprop", {}, MLP, 16, "state", 1.0),
    ("rmsprop", {}, MLP, 16, "state", 1.0),
    ("rmsprop", {"momentum": 0.9, "centered": True}, MLP, 16, "state", 1.0),
    ("adam", {}, MLP, 16, "state", 1.0),
    ("adam", {"amsgrad": True}, CNN, 16, "state", 1.0),
    ("adamw", {}, MLP, 16, "state", 1.0),
    ("adamax", {}, MLP, 16, "state", 1.0),
    ("nadam", {}, MLP, 16, "state", 1.0),
    ("radam", {}, MLP, 16, "state", 1.0),
    ("lion", {}, MLP, 16, "state", 1.0),
    ("adabound", {"amsbound": True}, MLP, 16, "state", 1.0),
    ("adaboundw", {}, MLP, 16, "state", 1.0),
    ("lamb", {}, MLP, 16, "state", 1.0),
    ("lars", {}, MLP, 16, "state", 1.0),
    ("lars", {"momentum": 0.0}, MLP, 16, "state", 1.0),
    ("lookahead", {"base": "adam", "k": 2}, MLP, 16, "state", 1.0),
    ("lookahead", {"base": "rmsprop", "k": 2}, CNN, 16, "state", 1.0),
    ("randomsearch", {"n_samples": 4}, MLP, 16, "peak", 1.5),
    ("lbfgs", {"history_size": 3, "max_iter": 5}, MLP, 16, "peak", 1.5),
    ("lbfgs", {"history_size": 3, "max_iter": 5, "line_search_fn": "strong_wolfe"}, CNN, 16, "peak", 1.5),
    ("lbfgs", {"history_size": 2, "max_iter": 4, "line_search_fn": "strong_wolfe"}, SEQUENCE, 8, "peak", 1.5),
    ("bfgs", {"max_iter": 5}, MLP, 16, "peak", 1.5),
    # the batched double backward behind Newton's Hessian rows and Hessian-free's products, and
    # natural gradient's vmapped per-sample passes, keep less than the activation count bounds
    ("newton", {}, MLP, 4, "peak", 3.0),
    ("newton", {}, MLP, 32, "peak", 3.0),
    ("newton", {"adaptive_damping": False}, CNN, 16, "peak", 3.0),
    ("hessianfree", {"cg_max_iter": 5}, MLP, 4, "peak", 3.0),
    ("hessianfree", {"cg_max_iter": 5}, CNN, 64, "peak", 3.0),
    ("hessianfree", {"cg_max_iter": 5}, IMAGE, 16, "peak", 3.0),
    ("naturalgradient", {}, MLP, 16, "peak", 3.0),
    ("naturalgradient", {"momentum": 0.9}, MLP, 128, "peak", 3.0),
    ("naturalgradient", {}, TINY, 64, "peak", 3.0),
    ("naturalgradient", {}, SEQUENCE, 8, "peak", 3.0),
    ("kfac", {"inv_update_freq": 2}, MLP, 16, "peak", 2.0),
    ("kfac", {"inv_update_freq": 2, "momentum": 0.0}, CNN, 16, "peak", 2.0),
    ("kfac", {"inv_update_freq": 2}, RESNET, 8, "peak", 2.0),
    ("kfac", {"inv_update_freq": 2}, SEQUENCE, 8, "peak", 2.0),
    ("shampoo", {"update_freq": 2}, MLP, 16, "peak", 2.0),
    ("shampoo", {"update_freq": 2, "graft": "adam", "momentum": 0.9}, CNN, 16, "peak", 2.0),
    ("shampoo", {"graft": "sgd", "max_preconditioner_dim": 8}, CNN, 16, "peak", 2.0),
    ("shampoo", {"update_freq": 2}, RESNET, 8, "peak", 2.0),
    # 8-bit state: the 16-wide MLP's tensors all stay 32-bit, the 128-wide one's 64x128 and 128x128 do not
    ("adam8bit", {}, MLP, 16, "state", 1.0),
    ("adam8bit", {"amsgrad": True}, WIDE_MLP, 16, "state", 1.0),
    ("adamw8bit", {}, WIDE_MLP, 16, "state", 1.0),
    ("lion8bit", {}, WIDE_MLP, 16, "state", 1.0),
]


def test_every_solver_has_a_state_formula_and_cases():
    assert set(STATE_ELEMENTS) == set(catalog.SOLVERS)
    assert {case[0] for case in SOLVER_CASES} == set(catalog.SOLVERS)


def _tensor_bytes(obj, skip: set[int], found: dict[int, int], seen: set[int]) -> None:
    """Every tensor reachable from ``obj`` through containers and plain objects (not modules: the
    model), keyed by storage so a tensor held twice counts once."""
    if id(obj) in seen or isinstance(obj, nn.Module | torch.Generator | type):
        return
    seen.add(id(obj))
    if isinstance(obj, torch.Tensor):
        if _storage(obj).data_ptr() not in skip:
            found[_storage(obj).data_ptr()] = _storage(obj).nbytes()
    elif isinstance(obj, dict):
        for key, value in obj.items():
            _tensor_bytes(key, skip, found, seen)
            _tensor_bytes(value, skip, found, seen)
    elif isinstance(obj, list | tuple | set):
        for value in obj:
            _tensor_bytes(value, skip, found, seen)
    elif hasattr(obj, "__dict__"):
        _tensor_bytes(vars(obj), skip, found, seen)


def _held_bytes(optimizer, params, x) -> int:
    """Bytes of the tensors in the optimizer's state and attributes (a wrapped optimizer's included),
    not the parameters, their gradients or the batch."""
    skip = {_storage(t).data_ptr() for t in [*params, *(p.grad for p in params if p.grad is not None), x]}
    found: dict[int, int] = {}
    _tensor_bytes({k: v for k, v in vars(optimizer).items() if k not in ("param_groups", "defaults")},
                  skip, found, set())
    return sum(found.values())


def _measured_bytes(name, hparams, arch, batch, measure, steps=3) -> tuple[int, int]:
    """(what the optimizer held at its most over ``steps`` steps, the model's parameter count)."""
    arch_name, arch_hp, shape, n_out = arch
    torch.manual_seed(0)
    model = build_model(arch_name, arch_hp, shape, n_out).train()
    params = [p for p in model.parameters() if p.requires_grad]
    entry = catalog.solver(name)
    optimizer = build_optimizer(params, name, hparams, model=model if entry.needs_model else None)
    x, y = torch.randn(batch, *shape), torch.randint(0, n_out, (batch,))
    counter = Allocations()
    counter.counting = False

    def forward_backward():
        with counter.switched(False):
            optimizer.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x), y)
            loss.backward()
        return loss.detach()

    def counted(function):  # K-FAC's hooks form the batch's factors: count what they allocate
        def wrapper(*args, **kwargs):
            with counter.switched(True):
                return function(*args, **kwargs)
        return wrapper

    most = 0
    with contextlib.ExitStack() as stack:
        stack.enter_context(counter)
        if name == "kfac":
            mp = stack.enter_context(pytest.MonkeyPatch.context())
            mp.setattr(optim.kfac, "activation_factor", counted(optim.kfac.activation_factor))
            mp.setattr(optim.kfac, "gradient_factor", counted(optim.kfac.gradient_factor))
        for _ in range(steps):
            before = _held_bytes(optimizer, params, x)
            counter.reset()
            if entry.needs_closure:
                with counter.switched(True):
                    optimizer.step(forward_backward)
            else:
                forward_backward()
                most = max(most, _held_bytes(optimizer, params, x))
                with counter.switched(True):
                    optimizer.step()
            most = max(most, _held_bytes(optimizer, params, x))
            if measure == "peak":
                most = max(most, before + counter.peak)
    return most, sum(p.numel() for p in params)


@pytest.mark.parametrize("name, hparams, arch, batch, measure, factor", SOLVER_CASES,
                         ids=[f"{c[0]}-{c[1]}-{c[2][0]}-B{c[3]}" for c in SOLVER_CASES])
def test_state_formula_bounds_what_the_optimizer_holds(name, hparams, arch, batch, measure, factor):
    measured, n_params = _measured_bytes(name, hparams, arch, batch, measure)
    size = model_size(*arch)
    assert size.params == n_params
    estimated = FLOAT_BYTES * optimizer_state_elements(name, hparams, size, batch)
    assert measured <= estimated <= factor * measured, (estimated / max(measured, 1), measured, estimated)


# -- the budget ------------------------------------------------------------------------------------

CPU = {"max_params": Settings.model_fields["cpu_max_params"].default,
       "max_memory_bytes": Settings.model_fields["cpu_max_memory_mb"].default * 2**20, "queue": "cpu"}
GPU = {"max_params": Settings.model_fields["gpu_max_params"].default,
       "max_memory_bytes": Settings.model_fields["gpu_max_memory_mb"].default * 2**20, "queue": "gpu"}


def _spec(architecture, solver=None, **training) -> ExperimentSpec:
    return ExperimentSpec.model_validate({
        "name": "t", "split_id": 1, "architecture": architecture, "solver": solver or {"name": "adam"},
        "training": training,
    })


def test_a_billion_parameter_mlp_is_refused_at_the_cpu_defaults_with_its_numbers():
    spec = _spec({"name": "mlp", "depth": 16, "width": 8192})
    n_params = parameter_count("mlp", spec.architecture_hparams(), (64,), 10)
    assert n_params > 10**9
    errors = budget_errors(spec, (64,), 10, 1000, **CPU)
    assert [loc for loc, _ in errors] == [("architecture",)]
    message = errors[0][1]
    for part in (f"{n_params:,}", f"{CPU['max_params']:,}", "DESCENT_CPU_MAX_PARAMS", f"~{n_params / 1e9:.1f} B",
                 "weights+gradients", "optimizer state"):
        assert part in message, (part, message)


def test_newton_on_a_67843_parameter_mlp_is_refused_naming_the_solvers_max_params():
    spec = _spec({"name": "mlp", "depth": 2, "width": 256}, {"name": "newton"})  # iris: 4 features, 3 classes
    assert parameter_count("mlp", spec.architecture_hparams(), (4,), 3) == 67_843
    errors = budget_errors(spec, (4,), 3, 90, **CPU)
    assert [loc for loc, _ in errors] == [("solver", "newton")]
    assert "at most 2000 parameters" in errors[0][1] and "67843" in errors[0][1]


@pytest.mark.parametrize("solver", sorted(catalog.SOLVERS))
def test_a_small_model_passes_with_every_solver(solver):
    body = {"name": solver, **({"base": "adam"} if catalog.solver(solver).wraps else {})}
    spec = _spec({"name": "mlp", "depth": 1, "width": 8}, body, batch_size=32)
    assert budget_errors(spec, (4,), 3, 90, **CPU) == []


@pytest.mark.parametrize("batch_size", [1 << 20, None])
def test_a_batch_too_large_for_memory_names_training_batch_size_and_the_largest_that_fits(batch_size):
    spec = _spec({"name": "mlp", "depth": 4, "width": 1024}, batch_size=batch_size)
    n_train = 1 << 20
    errors = budget_errors(spec, (3, 32, 32), 10, n_train, **CPU)
    assert [loc for loc, _ in errors] == [("training", "batch_size")]
    message = errors[0][1]
    fits = int(message.rsplit("at most ", 1)[1])
    assert estimate(spec, (3, 32, 32), 10, fits).total_bytes <= CPU["max_memory_bytes"]
    assert estimate(spec, (3, 32, 32), 10, fits + 1).total_bytes > CPU["max_memory_bytes"]
    assert "DESCENT_CPU_MAX_MEMORY_MB=4096" in message and "4.0 GiB" in message
    assert budget_errors(spec.model_copy(update={"training": spec.training.model_copy(
        update={"batch_size": fits})}), (3, 32, 32), 10, n_train, **CPU) == []


def test_state_beyond_memory_at_any_batch_names_the_solver():
    spec = _spec({"name": "mlp", "depth": 4, "width": 2048}, {"name": "lbfgs", "history_size": 1000})
    errors = budget_errors(spec, (3, 32, 32), 10, 1000, **GPU)
    assert [loc for loc, _ in errors] == [("solver", "lbfgs")]
    assert "DESCENT_GPU_MAX_MEMORY_MB=65536" in errors[0][1]


def test_estimate_adds_weights_gradients_state_and_one_batch_of_activations():
    spec = _spec({"name": "mlp", "depth": 16, "width": 8192})
    size = model_size("mlp", spec.architecture_hparams(), (64,), 10)
    found = estimate(spec, (64,), 10, 64)
    assert found.params == size.params
    assert found.weights_and_grads_bytes == 2 * FLOAT_BYTES * size.params
    assert found.optimizer_state_bytes == FLOAT_BYTES * (2 * size.params + size.tensors)  # adam
    assert found.activation_bytes == FLOAT_BYTES * 64 * size.activations
    gib = [f"{n / 2**30:.1f} GiB" for n in (found.total_bytes, found.weights_and_grads_bytes,
                                             found.optimizer_state_bytes)]
    assert found.describe() == (
        f"~{size.params / 1e9:.1f} B parameters, ~{gib[0]} (weights+gradients {gib[1]}, optimizer state {gib[2]}, "
        f"activations {found.activation_bytes / 2**20:.1f} MiB)"
    )


# -- combinations the worker cannot train ----------------------------------------------------------


def _split(shape, n_train, classes=3) -> SplitArrays:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n_train, *shape)).astype(np.float32)
    y = np.arange(n_train) % classes
    info = DatasetInfo(name="t", source="builtin", n_samples=n_train + 8, feature_shape=shape,
                       task="classification", n_classes=classes)
    return SplitArrays(x, y, x[:4], y[:4], x[:4], y[:4], info)


# (solver, architecture, feature shape, train samples, batch size, where a refusal points, or None
# when the worker trains it)
COMBINATIONS = [
    ("naturalgradient", {"name": "mlp", "depth": 1, "width": 4, "dropout": 0.5}, (5,), 16, 8,
     ("architecture", "mlp", "dropout")),
    ("naturalgradient", {"name": "cnn1d", "channels": 2, "depth": 1, "dropout": 0.3}, (2, 6), 16, 8,
     ("architecture", "cnn1d", "dropout")),
    ("naturalgradient", {"name": "cnn2d", "channels": 1, "hidden": 4, "dropout": 0.3}, (16,), 16, 8,
     ("architecture", "cnn2d", "dropout")),
    ("naturalgradient", {"name": "transformer", "d_model": 4, "heads": 2, "layers": 1, "ff": 4, "dropout": 0.2},
     (3, 2), 16, 8, ("architecture", "transformer", "dropout")),
    ("naturalgradient", {"name": "mlp", "depth": 1, "width": 4, "normalization": "batch"}, (5,), 16, 8,
     ("architecture", "mlp", "normalization")),
    ("naturalgradient", {"name": "resnet", "width": 2, "blocks": 1, "stages": 2}, (16,), 16, 8,
     ("solver", "naturalgradient")),
    ("naturalgradient", {"name": "mlp", "depth": 1, "width": 4, "normalization": "layer"}, (5,), 16, 8, None),
    ("naturalgradient", {"name": "transformer", "d_model": 4, "heads": 2, "layers": 1, "ff": 4}, (5,), 16, 8, None),
    ("kfac", {"name": "mlp", "depth": 1, "width": 4, "dropout": 0.5, "normalization": "batch"}, (5,), 16, 8, None),
    ("kfac", {"name": "resnet", "width": 2, "blocks": 1, "stages": 2}, (16,), 16, 8, None),
    ("kfac", {"name": "transformer", "d_model": 4, "heads": 2, "layers": 1, "ff": 4, "dropout": 0.2}, (3, 2), 16, 8,
     None),
    ("newton", {"name": "transformer", "d_model": 4, "heads": 2, "layers": 1, "ff": 4}, (5,), 16, 8,
     ("solver", "newton")),
    ("hessianfree", {"name": "transformer", "d_model": 4, "heads": 2, "layers": 1, "ff": 4}, (5,), 16, 8,
     ("solver", "hessianfree")),
    ("newton", {"name": "resnet", "width": 2, "blocks": 1, "stages": 2}, (16,), 16, 8, None),
    ("adam", {"name": "mlp", "depth": 1, "width": 4, "normalization": "batch"}, (5,), 17, 8,
     ("training", "batch_size")),
    ("adam", {"name": "mlp", "depth": 1, "width": 4, "normalization": "batch"}, (5,), 16, 1,
     ("training", "batch_size")),
    ("adam", {"name": "resnet", "width": 2, "blocks": 1, "stages": 3}, (4, 4), 17, 8, ("training", "batch_size")),
    ("adam", {"name": "mlp", "depth": 1, "width": 4, "normalization": "batch"}, (5,), 16, 8, None),
    ("adam", {"name": "resnet", "width": 2, "blocks": 1, "stages": 2}, (4, 4), 17, 8, None),
    ("adam", {"name": "mlp", "depth": 1, "width": 4, "normalization": "layer"}, (5,), 17, 8, None),
]


@pytest.mark.parametrize("solver, architecture, shape, n_train, batch_size, refused_at", COMBINATIONS,
                         ids=[f"{c[0]}-{'-'.join(map(str, c[1].values()))}-n{c[3]}-b{c[4]}" for c in COMBINATIONS])
def test_refused_combinations_are_those_the_worker_cannot_train(solver, architecture, shape, n_train, batch_size,
                                                                refused_at):
    split = _split(shape, n_train)
    spec = resolve_spec(_spec(architecture, {"name": solver}, epochs=1, batch_size=batch_size),
                        split.info, n_train)
    errors = compatibility_errors(spec, shape, n_train)
    assert [loc for loc, _ in errors] == ([refused_at] if refused_at else [])
    assert all(msg for _, msg in errors)
    assert errors == [e for e in budget_errors(spec, shape, 3, n_train, **CPU) if e in errors]
    if refused_at is None:
        assert train(spec, prepare(split), sink=ListSink()).status == "succeeded"
    else:
        with pytest.raises((RuntimeError, ValueError)):
            train(spec, prepare(split), sink=ListSink())


def test_a_suggested_batch_size_leaves_no_single_sample_batch():
    spec = _spec({"name": "mlp", "depth": 1, "width": 4, "normalization": "batch"}, batch_size=8)
    (_, message), = compatibility_errors(spec, (5,), 17)
    suggested = int(message.split("such as ", 1)[1].split(",", 1)[0])
    assert 17 % suggested != 1 and suggested != 8
    assert compatibility_errors(_spec(spec.architecture.model_dump(), batch_size=suggested), (5,), 17) == []
