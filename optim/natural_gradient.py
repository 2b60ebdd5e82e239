"""Natural gradient descent with a per-sample Fisher matrix, for small models."""

from __future__ import annotations

import torch
from torch import nn
from torch.func import functional_call, grad, vmap

from optim._base import run_closure
from optim._validate import check_ge, check_gt, check_int_ge

__all__ = ["NaturalGradient"]

FISHERS = ("empirical", "sampled")
LIKELIHOODS = ("categorical", "gaussian")


class NaturalGradient(torch.optim.Optimizer):
    r"""Natural gradient descent (Amari 1998): precondition the gradient by the damped Fisher matrix.

    A forward hook on ``model`` records the inputs :math:`x_i` and outputs :math:`z_i` of the
    last training forward pass (batch dimension first), and a hook on the output records
    :math:`\partial L/\partial z`.  At ``step`` the per-sample gradients of the loss's
    terms through the output,

    .. math::
        u_i = J_i^\top e_i,\qquad J_i = \partial z_i / \partial\theta,\qquad
        e_i = \begin{cases} B\, \partial L/\partial z_i & \text{empirical (the training loss' own per-sample gradient)} \\
        \partial(-\log p(\hat y_i \mid z_i))/\partial z_i,\ \hat y_i \sim p(\cdot \mid z_i) & \text{sampled} \end{cases}

    are computed with ``torch.func`` (``vmap`` over samples of a ``functional_call``), giving
    :math:`F = \frac1B \sum_i u_i u_i^\top` over the flattened parameters, and the update is

    .. math::
        d = (F + \lambda I)^{-1} g, \qquad b \leftarrow \mu b + d, \qquad \theta \leftarrow \theta - \mathrm{lr}\, b

    with :math:`g` the gradient in ``.grad`` (solved densely when :math:`n \le B`, else through the
    Woodbury identity :math:`(U^\top U/B + \lambda I)^{-1} = \lambda^{-1}(I - U^\top (B\lambda I + U U^\top)^{-1} U)`,
    so the cost is :math:`O(B^2 n)`).  The predictive distribution for ``fisher="sampled"`` is
    ``likelihood="categorical"`` (softmax over the last output dimension) or ``"gaussian"`` (unit
    variance around the output); there the sampled Fisher equals the Gauss-Newton matrix in
    expectation.  ``empirical`` assumes the loss is a batch mean of per-sample terms (torch's
    default reduction).  Samples must be independent in ``model`` (no BatchNorm in training mode).

    Args:
        params (iterable): parameters of ``model`` to optimize (one group).
        model (nn.Module): the model whose per-sample gradients define the Fisher.
        lr (float, optional): learning rate; the empirical Fisher's small eigenvalues make large
            rates unstable (Kunstner et al. 2019) (default: 0.1).
        damping (float, optional): Tikhonov damping :math:`\lambda` (default: 1e-3).
        fisher (str, optional): ``"empirical"`` or ``"sampled"`` (default: "empirical").
        likelihood (str, optional): the sampled Fisher's ``"categorical"`` or ``"gaussian"`` model (default: "categorical").
        momentum (float, optional): momentum factor :math:`\mu` (default: 0).
        max_params (int, optional): largest parameter count accepted (default: 10000).

    Example:
        >>> opt = NaturalGradient(model.parameters(), model=model, lr=0.1, damping=1e-3)
        >>> F.cross_entropy(model(x), y).backward()
        >>> opt.step()
        >>> opt.zero_grad()

    Reference:
        S. Amari, "Natural gradient works efficiently in learning", Neural Computation 10(2), 1998;
        J. Martens, "New insights and perspectives on the natural gradient method", JMLR 21, 2020,
        https://arxiv.org/abs/1412.1193 (empirical vs. true Fisher); F. Kunstner, L. Balles and
        P. Hennig, "Limitations of the empirical Fisher approximation for natural gradient
        descent", NeurIPS 2019, https://arxiv.org/abs/1905.12558.
    """

    def __init__(
        self,
        params,
        model: nn.Module,
        lr: float = 0.1,
        damping: float = 1e-3,
        fisher: str = "empirical",
        likelihood: str = "categorical",
        momentum: float = 0.0,
        max_params: int = 10_000,
    ):
        if not isinstance(model, nn.Module):
            raise ValueError(f"Invalid model: {model!r} (NaturalGradient needs the nn.Module)")
        check_ge("lr", lr)
        check_gt("damping", damping)
        if fisher not in FISHERS:
            raise ValueError(f"Invalid fisher: {fisher!r} (must be one of {list(FISHERS)})")
        if likelihood not in LIKELIHOODS:
            raise ValueError(f"Invalid likelihood: {likelihood!r} (must be one of {list(LIKELIHOODS)})")
        check_ge("momentum", momentum)
        check_int_ge("max_params", max_params, 1)
        defaults = dict(lr=lr, damping=damping, fisher=fisher, likelihood=likelihood, momentum=momentum, max_params=max_params)
        super().__init__(params, defaults)
        if len(self.param_groups) != 1:
            raise ValueError("NaturalGradient doesn't support per-parameter options (parameter groups)")
        self._params = self.param_groups[0]["params"]
        names = {id(p): name for name, p in model.named_parameters()}
        missing = [i for i, p in enumerate(self._params) if id(p) not in names]
        if missing:
            raise ValueError(f"Invalid params: parameters at positions {missing} are not parameters of model")
        self._names = [names[id(p)] for p in self._params]
        n = sum(p.numel() for p in self._params)
        if n > max_params:
            raise ValueError(
                f"Invalid max_params: the model has {n} parameters and NaturalGradient keeps a batch x {n} "
                f"matrix of per-sample gradients; max_params={max_params}"
            )
        self._model = model
        self._batch: tuple | None = None
        self._hook = model.register_forward_hook(self._capture)

    def _capture(self, module, inputs, output) -> None:
        if not (module.training and torch.is_grad_enabled() and isinstance(output, torch.Tensor)):
            return
        record = {"inputs": tuple(x.detach() for x in inputs), "output": output.detach(), "output_grad": None}
        self._batch = record
        if output.requires_grad:
            output.register_hook(lambda g: record.__setitem__("output_grad", g.detach()))

    def remove_hooks(self) -> None:
        self._hook.remove()

    @torch.no_grad()
    def per_sample_grads(self) -> torch.Tensor:
        """The rows :math:`u_i` (batch x parameters) of the last recorded batch."""
        if self._batch is None:
            raise RuntimeError("NaturalGradient saw no training forward pass of its model since the last step")
        group = self.param_groups[0]
        output = self._batch["output"]
        cotangents = _output_cotangents(group["fisher"], group["likelihood"], output, self._batch["output_grad"])
        return _per_sample_grads(self._model, self._params, self._names, self._batch["inputs"], cotangents)

    def fisher_matrix(self) -> torch.Tensor:
        """:math:`F = U^\\top U / B` of the last recorded batch (for inspection; ``step`` never forms it when n > B)."""
        u = self.per_sample_grads()
        return u.T @ u / u.shape[0]

    @torch.no_grad()
    def step(self, closure=None):
        loss = run_closure(closure)
        group = self.param_groups[0]
        params = self._params
        if all(p.grad is None for p in params):
            return loss
        u = self.per_sample_grads()
        g = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in params])
        direction = solve_damped_gram(u, g, group["damping"])
        if group["momentum"] != 0:
            state = self.state[params[0]]
            if "momentum_buffer" not in state:
                state["momentum_buffer"] = direction.clone()
            else:
                state["momentum_buffer"].mul_(group["momentum"]).add_(direction)
            direction = state["momentum_buffer"]
        offset = 0
        for p in params:
            p.add_(direction[offset : offset + p.numel()].view_as(p), alpha=-group["lr"])
            offset += p.numel()
        self._batch = None
        return loss


def solve_damped_gram(u: torch.Tensor, g: torch.Tensor, damping: float) -> torch.Tensor:
    """``(u^T u / B + damping I)^{-1} g`` for ``u`` of shape (B, n), in whichever of n or B is smaller."""
    batch, n = u.shape
    if n <= batch:
        matrix = u.T @ u / batch
        matrix.diagonal().add_(damping)
        return torch.linalg.solve(matrix, g)
    small = u @ u.T
    small.diagonal().add_(batch * damping)
    return (g - u.T @ torch.linalg.solve(small, u @ g)) / damping


def _output_cotangents(fisher: str, likelihood: str, output: torch.Tensor, output_grad: torch.Tensor | None):
    """Per-sample gradients of the per-sample loss w.r.t. the model output (one row per sample)."""
    if fisher == "empirical":
        if output_grad is None:
            raise RuntimeError("NaturalGradient(fisher='empirical') needs loss.backward() before step()")
        return output_grad * output.shape[0]
    if likelihood == "categorical":
        probs = torch.softmax(output, dim=-1)
        labels = torch.distributions.Categorical(probs=probs).sample()
        return probs - nn.functional.one_hot(labels, output.shape[-1]).to(probs.dtype)
    # gaussian with unit variance: -log p(y|z) = |y - z|^2 / 2 + const, y = z + noise
    return -torch.randn_like(output)


def _per_sample_grads(model, params, names, inputs, cotangents) -> torch.Tensor:
    """Row i: d(z_i . e_i)/d(params) for the model evaluated on sample i alone."""
    fixed = {name: t.detach() for name, t in model.named_parameters()}
    fixed.update({name: b for name, b in model.named_buffers()})
    trainable = {name: p.detach() for name, p in zip(names, params)}

    def contracted_output(values, sample_inputs, cotangent):
        batch_of_one = tuple(x.unsqueeze(0) for x in sample_inputs)
        z = functional_call(model, {**fixed, **values}, batch_of_one)
        return (z.squeeze(0) * cotangent).sum()

    with torch.enable_grad():
        rows = vmap(grad(contracted_output), in_dims=(None, 0, 0))(trainable, inputs, cotangents)
    return torch.cat([rows[name].reshape(cotangents.shape[0], -1) for name in names], dim=1)
