"""K-FAC: Kronecker-factored approximate curvature for Linear and Conv layers, from module hooks."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from optim._base import default_foreach, group_tensors, run_closure
from optim._validate import check_ge, check_gt, check_int_ge, check_range

__all__ = ["KFAC", "activation_factor", "gradient_factor"]


@dataclass
class _Layer:
    """A layer K-FAC preconditions: its kind, weight, bias (or None), and the factors of the
    current step summed over forward/backward passes (several with gradient accumulation)."""

    module: nn.Module
    weight: torch.Tensor
    bias: torch.Tensor | None
    a_sum: torch.Tensor | None = None
    a_count: int = 0
    g_sum: torch.Tensor | None = None
    g_count: int = 0


class KFAC(torch.optim.Optimizer):
    r"""K-FAC (Martens & Grosse 2015) for ``nn.Linear``, ``nn.Conv1d`` and ``nn.Conv2d`` layers,
    SGD with momentum on every other parameter.

    The constructor registers a forward hook on each supported layer of
    ``model`` whose weight is among ``params``; it records the layer inputs :math:`a` and hooks
    the output tensor for the output gradients :math:`\partial L/\partial s` (what a full backward
    hook would see), so K-FAC works in the ordinary loop
    ``loss.backward(); opt.step(); opt.zero_grad()`` without a closure.  For a batch of
    :math:`B` samples, :math:`T` positions per sample (1 for a Linear layer on
    :math:`(B, d)` inputs; the output pixels of a convolution, whose inputs are the unfolded
    patches as in Grosse & Martens 2016), :math:`\bar a = (a, 1)` when the layer has a bias and
    :math:`g = B\,\partial L/\partial s` (the per-sample gradient, undoing the loss's batch mean):

    .. math::
        A = \frac1B \sum_{i,t} \bar a_{it} \bar a_{it}^\top, \qquad
        G = \frac{1}{BT} \sum_{i,t} g_{it} g_{it}^\top, \qquad
        \hat A \leftarrow \epsilon \hat A + (1 - \epsilon) A, \quad \hat G \leftarrow \epsilon \hat G + (1-\epsilon) G

    with :math:`\epsilon` = ``factor_decay`` (the first step takes :math:`A`, :math:`G` as they
    are).  This is the empirical Fisher (gradients of the training loss, not of samples from the
    model's predictive distribution).  Every ``inv_update_freq`` steps the eigendecompositions
    :math:`\hat A = Q_A \Lambda_A Q_A^\top`, :math:`\hat G = Q_G \Lambda_G Q_G^\top` are recomputed; the
    gradient :math:`M = [\nabla_W, \nabla_b]` of each layer becomes the Tikhonov-damped
    :math:`(\hat G \otimes \hat A + \lambda I)^{-1} \mathrm{vec}(M)`:

    .. math::
        V = Q_G \big[(Q_G^\top M Q_A) \oslash (\mathrm{diag}\Lambda_G\, \mathrm{diag}\Lambda_A^\top + \lambda)\big] Q_A^\top .

    All :math:`V` are scaled by :math:`\nu = \min\big(1, \sqrt{\kappa / (\mathrm{lr}^2 \sum \langle V, M\rangle)}\big)`
    with :math:`\kappa` = ``kl_clip`` (Ba et al. 2017), and then, like every other parameter's
    plain gradient, go through SGD with momentum :math:`\mu` and weight decay:
    :math:`b \leftarrow \mu b + V + \mathrm{wd}\,\theta`, :math:`\theta \leftarrow \theta - \mathrm{lr}\, b`.

    Assumes the loss is a mean over the batch (torch's default reduction); a summed loss only
    rescales :math:`G`, as damping does.  Grouped convolutions and non-zero padding modes are
    left to the SGD fallback.  A step without a fresh forward/backward through a layer keeps
    its factors and, before its first eigendecomposition, gives it the plain gradient.

    Args:
        params (iterable): parameters to optimize, usually ``model.parameters()``.
        model (nn.Module): the module whose Linear/Conv layers get hooks.
        lr (float, optional): learning rate (default: 0.01).
        damping (float, optional): Tikhonov damping :math:`\lambda` (default: 1e-3).
        factor_decay (float, optional): running-average factor :math:`\epsilon` of A and G (default: 0.95).
        inv_update_freq (int, optional): steps between eigendecompositions (default: 10).
        momentum (float, optional): momentum factor (default: 0.9).
        weight_decay (float, optional): L2 penalty added to the update (default: 0).
        kl_clip (float, optional): bound on the update's squared Fisher norm; ``None`` disables (default: 1e-3).
        foreach (bool, optional): use ``torch._foreach_*`` for the momentum step (default: None).

    Example:
        >>> opt = KFAC(model.parameters(), model=model, lr=0.01)
        >>> loss = F.cross_entropy(model(x), y)
        >>> loss.backward()
        >>> opt.step()
        >>> opt.zero_grad()

    Reference:
        J. Martens and R. Grosse, "Optimizing neural networks with Kronecker-factored approximate
        curvature", ICML 2015, https://arxiv.org/abs/1503.05671; R. Grosse and J. Martens, "A
        Kronecker-factored approximate Fisher matrix for convolution layers", ICML 2016,
        https://arxiv.org/abs/1602.01407; J. Ba, R. Grosse and J. Martens, "Distributed
        second-order optimization using Kronecker-factored approximations", ICLR 2017.
    """

    def __init__(
        self,
        params,
        model: nn.Module,
        lr: float = 0.01,
        damping: float = 1e-3,
        factor_decay: float = 0.95,
        inv_update_freq: int = 10,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        kl_clip: float | None = 1e-3,
        foreach: bool | None = None,
    ):
        if not isinstance(model, nn.Module):
            raise ValueError(f"Invalid model: {model!r} (KFAC needs the nn.Module to hook)")
        check_ge("lr", lr)
        check_gt("damping", damping)
        check_range("factor_decay", factor_decay, 0.0, 1.0)
        check_int_ge("inv_update_freq", inv_update_freq, 1)
        check_ge("momentum", momentum)
        check_ge("weight_decay", weight_decay)
        if kl_clip is not None:
            check_gt("kl_clip", kl_clip)
        defaults = dict(
            lr=lr, damping=damping, factor_decay=factor_decay, inv_update_freq=inv_update_freq,
            momentum=momentum, weight_decay=weight_decay, kl_clip=kl_clip, foreach=foreach,
        )
        super().__init__(params, defaults)
        self._layers: dict[nn.Module, _Layer] = {}
        self._hooks = []
        self._hook_layers(model)

    # -- hooks -----------------------------------------------------------------------------------
    def _hook_layers(self, model: nn.Module) -> None:
        optimized = {id(p) for group in self.param_groups for p in group["params"]}
        for module in model.modules():
            if not _supported(module) or id(module.weight) not in optimized:
                continue
            bias = module.bias if module.bias is not None and id(module.bias) in optimized else None
            self._layers[module] = _Layer(module, module.weight, bias)
            self._hooks.append(module.register_forward_hook(self._capture))

    def _capture(self, module, inputs, output) -> None:
        """Forward hook: A from the layer's input, and a hook on the output tensor for G.

        A hook on the output tensor receives exactly a full backward hook's ``grad_output``,
        without wrapping the module's inputs (which warns when they need no gradient, as the
        first layer's do, and breaks on in-place activations after the layer)."""
        if not (module.training and torch.is_grad_enabled() and output.requires_grad):
            return
        layer = self._layers[module]
        with torch.no_grad():
            a = activation_factor(module, inputs[0].detach(), with_bias=layer.bias is not None)
        layer.a_sum = a if layer.a_sum is None else layer.a_sum.add_(a)
        layer.a_count += 1
        output.register_hook(lambda grad_output: self._capture_output_grad(layer, grad_output))

    @staticmethod
    def _capture_output_grad(layer: _Layer, grad_output: torch.Tensor) -> None:
        with torch.no_grad():
            g = gradient_factor(layer.module, grad_output.detach())
        layer.g_sum = g if layer.g_sum is None else layer.g_sum.add_(g)
        layer.g_count += 1

    def remove_hooks(self) -> None:
        """Detach K-FAC from the model (after this, ``step`` is SGD with momentum)."""
        for handle in self._hooks:
            handle.remove()
        self._hooks.clear()
        self._layers.clear()

    # -- step ------------------------------------------------------------------------------------
    @torch.no_grad()
    def step(self, closure=None):
        loss = run_closure(closure)
        for group in self.param_groups:
            directions = self._preconditioned_directions(group)
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            grads = [directions.get(p, p.grad) for p in params]
            bufs = [self.state[p].get("momentum_buffer") for p in params]
            foreach = group["foreach"] if group["foreach"] is not None else default_foreach(params)
            step_fn = _multi_tensor_kfac if foreach else _single_tensor_kfac
            step_fn(params, grads, bufs, lr=group["lr"], momentum=group["momentum"], weight_decay=group["weight_decay"])
            for p, buf in zip(params, bufs):
                if buf is not None:
                    self.state[p]["momentum_buffer"] = buf
        return loss

    def _preconditioned_directions(self, group) -> dict[torch.Tensor, torch.Tensor]:
        """The K-FAC direction of each hooked layer's weight and bias in this group (KL-clipped)."""
        members = {id(p) for p in group["params"]}
        directions: dict[torch.Tensor, torch.Tensor] = {}
        fisher_norm = 0.0
        for layer in self._layers.values():
            if id(layer.weight) not in members or layer.weight.grad is None:
                continue
            state = self.state[layer.weight]
            self._update_factors(layer, state, group)
            if "eigvecs_A" not in state:
                continue
            grad = _grad_matrix(layer)
            v = precondition(grad, state, group["damping"])
            fisher_norm += (v * grad).sum().item()
            directions[layer.weight] = v[:, : grad.shape[1] - (layer.bias is not None)].reshape_as(layer.weight)
            if layer.bias is not None:
                directions[layer.bias] = v[:, -1].reshape_as(layer.bias)
        kl_clip = group["kl_clip"]
        if kl_clip is not None and fisher_norm > 0:
            nu = min(1.0, math.sqrt(kl_clip / (group["lr"] ** 2 * fisher_norm))) if group["lr"] > 0 else 1.0
            for v in directions.values():
                v.mul_(nu)
        return directions

    def _update_factors(self, layer: _Layer, state: dict, group) -> None:
        if layer.a_count and layer.g_count:
            a, g = layer.a_sum / layer.a_count, layer.g_sum / layer.g_count
            if "A" not in state:
                state["A"], state["G"], state["factor_steps"] = a, g, 0
            else:
                decay = group["factor_decay"]
                state["A"].mul_(decay).add_(a, alpha=1 - decay)
                state["G"].mul_(decay).add_(g, alpha=1 - decay)
            if state["factor_steps"] % group["inv_update_freq"] == 0:
                state["eigvals_A"], state["eigvecs_A"] = _eigh(state["A"])
                state["eigvals_G"], state["eigvecs_G"] = _eigh(state["G"])
            state["factor_steps"] += 1
        layer.a_sum = layer.g_sum = None
        layer.a_count = layer.g_count = 0


# -- factors (pure functions; the tests compare them with per-sample sums) -----------------------


def activation_factor(module: nn.Module, x: torch.Tensor, with_bias: bool) -> torch.Tensor:
    """A = (1/B) sum over samples and positions of a a^T, with a = (input patch, 1 if bias)."""
    batch = x.shape[0]
    a = _patches(module, x)
    if with_bias:
        a = torch.cat([a, a.new_ones(a.shape[0], 1)], dim=1)
    return a.T @ (a / batch)


def gradient_factor(module: nn.Module, grad_output: torch.Tensor) -> torch.Tensor:
    """G = (1/(B T)) sum over samples and positions of g g^T with g = B dL/ds (per-sample gradients)."""
    batch = grad_output.shape[0]
    if isinstance(module, nn.Linear):
        g = grad_output.reshape(-1, grad_output.shape[-1])
    else:  # (B, C_out, *spatial) -> (B * positions, C_out)
        g = grad_output.flatten(2).transpose(1, 2).reshape(-1, grad_output.shape[1])
    g = g * batch
    return g.T @ (g / g.shape[0])


def _patches(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The layer's input as rows (batch * positions, features) so that output = rows @ W^T (+ b)."""
    if isinstance(module, nn.Linear):
        return x.reshape(-1, x.shape[-1])
    if isinstance(module, nn.Conv1d):  # a Conv1d is a Conv2d over (length, 1)
        x = x.unsqueeze(-1)
        kernel, dilation = (module.kernel_size[0], 1), (module.dilation[0], 1)
        padding, stride = (module.padding[0], 0), (module.stride[0], 1)
    else:
        kernel, dilation, padding, stride = module.kernel_size, module.dilation, module.padding, module.stride
    cols = F.unfold(x, kernel, dilation=dilation, padding=padding, stride=stride)  # (B, C*k, positions)
    return cols.transpose(1, 2).reshape(-1, cols.shape[1])


def _supported(module: nn.Module) -> bool:
    if isinstance(module, nn.Linear):
        return True
    if isinstance(module, nn.Conv1d | nn.Conv2d):
        return module.groups == 1 and module.padding_mode == "zeros" and not isinstance(module.padding, str)
    return False


def _grad_matrix(layer: _Layer) -> torch.Tensor:
    """[dL/dW, dL/db] as an (out, in) matrix matching A's and G's layout."""
    grad = layer.weight.grad.reshape(layer.weight.shape[0], -1)
    if layer.bias is not None:
        bias_grad = layer.bias.grad if layer.bias.grad is not None else torch.zeros_like(layer.bias)
        grad = torch.cat([grad, bias_grad.reshape(-1, 1)], dim=1)
    return grad


def precondition(grad: torch.Tensor, state: dict, damping: float) -> torch.Tensor:
    """(G (x) A + damping I)^{-1} vec(grad) in the factors' eigenbases."""
    qa, qg = state["eigvecs_A"], state["eigvecs_G"]
    v = qg.T @ grad @ qa
    v = v / (torch.outer(state["eigvals_G"], state["eigvals_A"]) + damping)
    return qg @ v @ qa.T


def _eigh(matrix: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    # symmetrised and clamped: the factors are PSD, rounding can make tiny eigenvalues negative
    eigvals, eigvecs = torch.linalg.eigh((matrix + matrix.T) / 2)
    return eigvals.clamp_min(0.0), eigvecs


# -- the momentum step, shared by preconditioned and fallback parameters --------------------------


def _single_tensor_kfac(params, directions, bufs, *, lr, momentum, weight_decay):
    for i, p in enumerate(params):
        d = directions[i]
        if weight_decay != 0:
            d = d.add(p, alpha=weight_decay)
        if momentum != 0:
            if bufs[i] is None:
                bufs[i] = d.detach().clone()
            else:
                bufs[i].mul_(momentum).add_(d)
            d = bufs[i]
        p.add_(d, alpha=-lr)


def _multi_tensor_kfac(params, directions, bufs, *, lr, momentum, weight_decay):
    index = {id(p): i for i, p in enumerate(params)}
    for (group_params, group_dirs, group_bufs) in group_tensors(params, directions, bufs).values():
        if weight_decay != 0:
            group_dirs = torch._foreach_add(group_dirs, group_params, alpha=weight_decay)
        if momentum != 0:
            fresh = [j for j, b in enumerate(group_bufs) if b is None]
            for j in fresh:
                group_bufs[j] = group_dirs[j].detach().clone()
            old = [j for j in range(len(group_bufs)) if j not in set(fresh)]
            if old:
                old_bufs = [group_bufs[j] for j in old]
                torch._foreach_mul_(old_bufs, momentum)
                torch._foreach_add_(old_bufs, [group_dirs[j] for j in old])
            for p, b in zip(group_params, group_bufs):
                bufs[index[id(p)]] = b
            group_dirs = group_bufs
        torch._foreach_add_(group_params, group_dirs, alpha=-lr)
