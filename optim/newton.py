"""Newton's method with Levenberg-Marquardt damping, and Hessian-free (truncated Newton-CG).

Both take second derivatives of the closure's loss by double backward.  The closure is the
ordinary one (zero the gradients, compute the loss, ``loss.backward()``, return the loss):
``step`` runs it under :class:`keep_graph`, a ``TorchFunctionMode`` that turns that
``loss.backward()`` into ``loss.backward(create_graph=True)``, so the gradients it leaves in
``.grad`` can be differentiated once more.  ``step`` detaches them again before returning.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import torch
from torch.overrides import TorchFunctionMode

from optim._base import single_group_params, to_scalar
from optim._quasi_newton import flat_numel, loss_value
from optim._validate import check_ge, check_gt, check_int_ge

__all__ = ["Newton", "HessianFree", "keep_graph"]

_MAX_DAMPING_TRIES = 10  # rejected steps per ``step`` before giving up and staying put
_MIN_DAMPING = 1e-12  # damping shrinks towards this, so that it can grow again by multiplication


class keep_graph(TorchFunctionMode):
    """Inside this mode ``Tensor.backward`` builds the graph of the gradient (``create_graph=True``);
    ``backward_calls`` counts the calls it saw."""

    def __init__(self):
        super().__init__()
        self.backward_calls = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = dict(kwargs or {})
        if func is torch.Tensor.backward:
            self.backward_calls += 1
            kwargs["create_graph"] = True
            with warnings.catch_warnings():
                # the parameter<->gradient reference cycle it warns about is broken by _release_graph
                warnings.filterwarnings("ignore", message="Using backward\\(\\) with create_graph=True")
                return func(*args, **kwargs)
        return func(*args, **kwargs)


class Newton(torch.optim.Optimizer):
    r"""Newton's method on the exact Hessian, with adaptive Levenberg-Marquardt damping.

    Each ``step(closure)`` evaluates the loss :math:`f`, its gradient :math:`g` and Hessian
    :math:`H` over the flattened parameters (by double backward of the closure's loss,
    see :class:`keep_graph`) and solves

    .. math::
        (H + \lambda I)\, d = -g, \qquad x \leftarrow x + \mathrm{lr}\; d

    by Cholesky.  If :math:`H + \lambda I` is not positive definite, or (with
    ``adaptive_damping``) the new loss is not lower than :math:`f`, the step is undone and
    :math:`\lambda \leftarrow \lambda \cdot` ``damping_factor``; an accepted step divides
    :math:`\lambda` by ``damping_factor`` (Levenberg 1944, Marquardt 1963).  Near a minimum with
    positive definite Hessian :math:`\lambda \to 0` and convergence is quadratic.  Adaptive damping
    costs one more closure evaluation per step.

    The Hessian has :math:`n^2` entries and takes :math:`n` Hessian-vector products, so
    construction refuses more than ``max_params`` parameters (see :class:`HessianFree`).  One
    parameter group.  The closure zeroes the gradients, computes the loss, calls
    ``loss.backward()`` and returns the loss.

    Args:
        params (iterable): parameters to optimize (one group only).
        lr (float, optional): multiplies the Newton step (default: 1.0).
        damping (float, optional): initial Levenberg-Marquardt damping :math:`\lambda` (default: 1e-4).
        damping_factor (float, optional): factor by which :math:`\lambda` grows after a rejected step
            and shrinks after an accepted one (default: 10.0).
        adaptive_damping (bool, optional): test each step and adapt :math:`\lambda`; if False,
            :math:`\lambda` only grows while :math:`H + \lambda I` is not positive definite (default: True).
        max_params (int, optional): largest parameter count accepted (default: 2000).

    Example:
        >>> opt = Newton(model.parameters(), damping=1e-4)
        >>> def closure():
        ...     opt.zero_grad()
        ...     loss = loss_fn(model(x), y)
        ...     loss.backward()
        ...     return loss
        >>> opt.step(closure)

    Reference:
        J. Nocedal and S. J. Wright, *Numerical Optimization*, 2nd ed., Springer 2006, ch. 3.4
        and 10.3; D. W. Marquardt, "An algorithm for least-squares estimation of nonlinear
        parameters", SIAM J. Appl. Math. 11(2), 1963.
    """

    def __init__(
        self,
        params,
        lr: float = 1.0,
        damping: float = 1e-4,
        damping_factor: float = 10.0,
        adaptive_damping: bool = True,
        max_params: int = 2000,
    ):
        check_gt("lr", lr)
        check_ge("damping", damping)
        check_gt("damping_factor", damping_factor, 1.0)
        check_int_ge("max_params", max_params, 1)
        defaults = dict(
            lr=lr, damping=damping, damping_factor=damping_factor, adaptive_damping=adaptive_damping,
            max_params=max_params,
        )
        super().__init__(params, defaults)
        self._params = single_group_params(self)
        n = flat_numel(self._params)
        if n > max_params:
            raise ValueError(
                f"Invalid max_params: the model has {n} parameters but Newton builds a dense {n}x{n} "
                f"Hessian and max_params={max_params}; use HessianFree or LBFGS, or raise max_params"
            )
        if any(p.is_complex() for p in self._params):
            raise ValueError("Newton supports real parameters only")

    def step(self, closure: Callable[[], torch.Tensor]):  # type: ignore[override]
        """One damped Newton step; returns the loss before it."""
        if closure is None:
            raise ValueError("Newton needs a closure that re-evaluates the loss")
        group = self.param_groups[0]
        params = self._params
        state = self.state[params[0]]
        damping = state.get("damping", group["damping"])

        loss, grad, hessian, live = _loss_grad_hessian(closure, params)
        # a parameter without a gradient this step stays put, as torch's optimizers skip it: its rows
        # and columns become the identity's and its gradient is zero, so its direction is exactly 0
        frozen = ~live
        hessian[frozen, :] = 0
        hessian[:, frozen] = 0
        hessian[frozen, frozen] = 1
        f0 = loss_value(loss)
        start = [p.detach().clone() for p in params]
        eye = torch.eye(grad.numel(), dtype=grad.dtype, device=grad.device)
        for _ in range(_MAX_DAMPING_TRIES):
            factor, info = torch.linalg.cholesky_ex(hessian + damping * eye)
            if info.item() != 0:  # not positive definite: not a descent direction yet
                damping = max(damping * group["damping_factor"], _MIN_DAMPING)
                continue
            direction = torch.cholesky_solve(-grad.unsqueeze(1), factor).squeeze(1)
            _add_flat_(params, group["lr"], direction)
            if not group["adaptive_damping"]:
                break
            with torch.enable_grad():
                f_new = loss_value(closure())
            if f_new - f0 <= _rounding(f0, grad.dtype):
                damping = max(damping / group["damping_factor"], _MIN_DAMPING)
                break
            _set_(params, start)
            damping = max(damping * group["damping_factor"], _MIN_DAMPING)
        if group["adaptive_damping"]:  # otherwise any growth was for this step's Hessian only
            state["damping"] = damping
        state["step"] = state.get("step", 0) + 1
        return loss


class HessianFree(torch.optim.Optimizer):
    r"""Hessian-free optimization (truncated Newton-CG) with Levenberg-Marquardt damping.

    Each ``step(closure)`` evaluates the loss :math:`f` and gradient :math:`g` keeping the
    gradient's graph, then runs conjugate gradient from :math:`d = 0` on

    .. math::
        (H + \lambda I)\, d = -g,

    using Hessian-vector products :math:`Hv` by double backward (never forming :math:`H`),
    for at most ``cg_max_iter`` iterations, until the residual falls below
    ``cg_tol`` :math:`\lVert g\rVert`, or until a direction of non-positive curvature appears
    (then CG stops with what it has; on its first iteration it returns the residual
    :math:`-g`).  The step :math:`x \leftarrow x + \mathrm{lr}\, d` is then checked against the
    quadratic model :math:`q(s) = g^\top s + \tfrac12 s^\top (H + \lambda I) s`: with the reduction
    ratio :math:`\rho = (f(x + s) - f(x)) / q(s)`, :math:`\lambda` grows by 3/2 when
    :math:`\rho < 1/4` and shrinks by 2/3 when :math:`\rho > 3/4`, and a step that raises the
    loss is undone (Martens 2010, sec. 4.1).  That check costs one more closure evaluation.

    Memory is a few copies of the parameters; each CG iteration costs about two backward passes.
    One parameter group.  The closure zeroes the gradients, computes the loss, calls
    ``loss.backward()`` and returns the loss.

    Args:
        params (iterable): parameters to optimize (one group only).
        lr (float, optional): multiplies the CG solution (default: 1.0).
        damping (float, optional): initial damping :math:`\lambda` (default: 0.1).
        cg_max_iter (int, optional): conjugate-gradient iterations per step (default: 50).
        cg_tol (float, optional): relative residual at which CG stops (default: 1e-4).
        adaptive_damping (bool, optional): adapt :math:`\lambda` and undo bad steps (default: True).

    Example:
        >>> opt = HessianFree(model.parameters(), damping=0.1, cg_max_iter=50)
        >>> def closure():
        ...     opt.zero_grad()
        ...     loss = loss_fn(model(x), y)
        ...     loss.backward()
        ...     return loss
        >>> opt.step(closure)

    Reference:
        J. Martens, "Deep learning via Hessian-free optimization", ICML 2010.
        https://www.cs.toronto.edu/~jmartens/docs/Deep_HessianFree.pdf
    """

    def __init__(
        self,
        params,
        lr: float = 1.0,
        damping: float = 0.1,
        cg_max_iter: int = 50,
        cg_tol: float = 1e-4,
        adaptive_damping: bool = True,
    ):
        check_gt("lr", lr)
        check_ge("damping", damping)
        check_int_ge("cg_max_iter", cg_max_iter, 1)
        check_ge("cg_tol", cg_tol)
        defaults = dict(lr=lr, damping=damping, cg_max_iter=cg_max_iter, cg_tol=cg_tol, adaptive_damping=adaptive_damping)
        super().__init__(params, defaults)
        self._params = single_group_params(self)
        if any(p.is_complex() for p in self._params):
            raise ValueError("HessianFree supports real parameters only")

    def step(self, closure: Callable[[], torch.Tensor]):  # type: ignore[override]
        """One truncated-Newton step; returns the loss before it."""
        if closure is None:
            raise ValueError("HessianFree needs a closure that re-evaluates the loss")
        group = self.param_groups[0]
        params = self._params
        state = self.state[params[0]]
        damping = state.get("damping", group["damping"])

        loss, grads, live = _loss_and_graph_grads(closure, params)
        try:
            grad = torch.cat([g.detach().reshape(-1) for g in grads])
            mask = live.to(grad.dtype)

            def damped_hvp(v: torch.Tensor) -> torch.Tensor:
                # parameters without a gradient this step are held fixed (their entries stay 0)
                return _hvp(grads, params, v * mask).mul_(mask).add_(v, alpha=damping)

            direction, model_reduction_unit = conjugate_gradient(damped_hvp, grad, group["cg_max_iter"], group["cg_tol"])
        finally:
            _release_graph(params)
        f0 = loss_value(loss)
        lr = to_scalar(group["lr"])
        start = [p.detach().clone() for p in params]
        _add_flat_(params, lr, direction)
        if group["adaptive_damping"]:
            with torch.enable_grad():
                f_new = loss_value(closure())
            # q(lr d) = lr g.d + lr^2/2 d.A d, from the two numbers CG returns
            g_dot_d, d_a_d = model_reduction_unit
            predicted = lr * g_dot_d + 0.5 * lr * lr * d_a_d
            rho = (f_new - f0) / predicted if predicted < 0 else -1.0
            if rho < 0.25:
                damping *= 1.5
            elif rho > 0.75:
                damping *= 2.0 / 3.0
            if not f_new <= f0:
                _set_(params, start)
        state["damping"] = damping
        state["step"] = state.get("step", 0) + 1
        return loss


def conjugate_gradient(
    matvec: Callable[[torch.Tensor], torch.Tensor], grad: torch.Tensor, max_iter: int, tol: float
) -> tuple[torch.Tensor, tuple[float, float]]:
    """Approximately solve ``A d = -grad`` for symmetric ``A`` given by ``matvec``.

    Stops on a direction of non-positive curvature (where A is not positive definite).  Returns
    ``d`` and ``(grad.d, d.A d)``, from which the quadratic model's value at any multiple of d follows."""
    d = torch.zeros_like(grad)
    residual = -grad  # -grad - A d at d = 0
    steepest_descent = False
    search = residual.clone()
    rr = residual.dot(residual)
    threshold = tol * grad.norm()
    for iteration in range(max_iter):
        a_search = matvec(search)
        curvature = search.dot(a_search)
        if curvature <= 0:
            if iteration == 0:  # nothing solved yet: fall back to steepest descent
                d, steepest_descent = residual.clone(), True
            break
        alpha = rr / curvature
        d.add_(search, alpha=alpha.item())
        residual.add_(a_search, alpha=-alpha.item())
        rr_new = residual.dot(residual)
        if rr_new.sqrt() <= threshold:
            break
        search.mul_(rr_new / rr).add_(residual)
        rr = rr_new
    # A d = -grad - residual holds along the CG iterates, so d.A d needs no extra product
    g_dot_d = grad.dot(d).item()
    d_a_d = matvec(d).dot(d).item() if steepest_descent else (-grad - residual).dot(d).item()
    return d, (g_dot_d, d_a_d)


# -- second derivatives of the closure's loss ----------------------------------------------------


def _loss_and_graph_grads(closure, params: Sequence[torch.Tensor]):
    """Run the closure keeping the gradient's graph.  Returns the loss, the per-parameter gradients
    still attached to it (zeros where a parameter got none) and a flat mask of the entries whose
    parameter got a gradient."""
    mode = keep_graph()
    with torch.enable_grad(), mode:
        loss = closure()
    if mode.backward_calls == 0:
        _release_graph(params)
        raise RuntimeError(
            "the closure must call loss.backward() (Tensor.backward, which step makes keep the graph "
            "for second derivatives); torch.autograd.backward/grad cannot be intercepted"
        )
    live = torch.cat([
        torch.full((p.numel(),), p.grad is not None, dtype=torch.bool, device=p.device) for p in params
    ])
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    return loss, grads, live


def _loss_grad_hessian(closure, params: Sequence[torch.Tensor]):
    """Loss, flat gradient, dense Hessian and the mask of parameters that got a gradient."""
    loss, grads, live = _loss_and_graph_grads(closure, params)
    try:
        flat = torch.cat([g.reshape(-1) for g in grads])
        n = flat.numel()
        eye = torch.eye(n, dtype=flat.dtype, device=flat.device)
        if not flat.requires_grad:  # the loss is linear (or constant) in every parameter
            return loss, flat.detach(), torch.zeros_like(eye), live
        try:
            rows = torch.autograd.grad(flat, params, eye, is_grads_batched=True, allow_unused=True, retain_graph=True)
            hessian = _flatten_rows(rows, params, n)
        except RuntimeError:  # an op without a batching rule: one Hessian-vector product per row
            hessian = torch.stack([_hvp(grads, params, e) for e in eye])
        return loss, flat.detach(), (hessian + hessian.T).mul_(0.5), live
    finally:
        _release_graph(params)


def _hvp(grads, params, v: torch.Tensor) -> torch.Tensor:
    """H v, differentiating only the gradients that have a graph (the rest are constants)."""
    pieces = _split_like(v, params)
    attached = [i for i, g in enumerate(grads) if g.requires_grad]
    if not attached:
        return torch.zeros_like(v)
    products = torch.autograd.grad(
        [grads[i] for i in attached], params, [pieces[i] for i in attached], retain_graph=True, allow_unused=True
    )
    return torch.cat([
        (h if h is not None else torch.zeros_like(p)).reshape(-1) for h, p in zip(products, params)
    ]).detach()


def _flatten_rows(rows, params, n: int) -> torch.Tensor:
    return torch.cat([
        (r if r is not None else p.new_zeros((n, *p.shape))).reshape(n, -1) for r, p in zip(rows, params)
    ], dim=1)


def _split_like(v: torch.Tensor, params) -> list[torch.Tensor]:
    out, offset = [], 0
    for p in params:
        out.append(v[offset : offset + p.numel()].view_as(p))
        offset += p.numel()
    return out


def _release_graph(params) -> None:
    """Detach the gradients so the graph (and the parameter<->gradient cycle) can be freed."""
    for p in params:
        if p.grad is not None and p.grad.requires_grad:
            p.grad = p.grad.detach()


def _rounding(loss: float, dtype: torch.dtype) -> float:
    """Loss changes this small are rounding, not an increase: near the minimum a full Newton step
    lands within a few ulps of the loss, where rejecting it would only inflate the damping."""
    return 4 * torch.finfo(dtype).eps * abs(loss)


@torch.no_grad()
def _add_flat_(params, step: float, direction: torch.Tensor) -> None:
    for p, piece in zip(params, _split_like(direction, params)):
        p.add_(piece, alpha=step)


@torch.no_grad()
def _set_(params, values) -> None:
    for p, v in zip(params, values):
        p.copy_(v)
