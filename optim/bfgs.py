"""BFGS: a dense inverse-Hessian quasi-Newton method driven by a closure, for small models."""

from __future__ import annotations

from collections.abc import Callable

import torch

from optim._base import to_scalar
from optim._validate import check_ge
from optim.lbfgs import (
    add_flat_,
    check_int_ge,
    check_line_search,
    clone_params,
    evaluate_along,
    flat_grad,
    flat_numel,
    loss_value,
)
from optim.line_search import strong_wolfe

__all__ = ["BFGS"]


class BFGS(torch.optim.Optimizer):
    r"""BFGS with a dense inverse Hessian over the flattened parameters and a strong-Wolfe line search.

    Each ``step(closure)`` runs up to ``max_iter`` iterations.  With
    :math:`s = x_{k+1} - x_k`, :math:`y = g_{k+1} - g_k` and :math:`\rho = 1/y^\top s`, the inverse
    Hessian approximation is updated (Nocedal & Wright eq. 6.17) only when
    :math:`y^\top s > 10^{-10}`, which keeps it positive definite:

    .. math::
        H_{k+1} = (I - \rho s y^\top) H_k (I - \rho y s^\top) + \rho s s^\top,

    where before the first update :math:`H_0 = \frac{y^\top s}{y^\top y} I` (eq. 6.20).  The step is
    :math:`x \leftarrow x + t d` with :math:`d = -H g` and :math:`t` found by the strong-Wolfe line
    search (:mod:`optim.line_search`) started at ``lr`` (the first iteration ever starts at
    :math:`\min(1, 1/\lVert g\rVert_1)\,\mathrm{lr}`, since :math:`H = I` knows no scale), or
    :math:`t` = ``lr`` with ``line_search_fn=None``.  Stopping rules are L-BFGS's.

    :math:`H` takes :math:`n^2` numbers for :math:`n` parameters, so construction refuses more
    than ``max_params`` parameters; use :class:`optim.LBFGS` for larger models.  One parameter
    group only.  The closure zeroes the gradients, computes the loss, calls ``backward()`` and
    returns the loss.

    Args:
        params (iterable): parameters to optimize (one group only).
        lr (float, optional): first trial step of the line search, or the fixed step (default: 1).
        max_iter (int, optional): iterations per ``step`` (default: 20).
        max_eval (int, optional): closure evaluations per ``step`` (default: ``max_iter * 5 // 4``).
        tolerance_grad (float, optional): stop when the largest gradient entry is below this (default: 1e-7).
        tolerance_change (float, optional): stop when the step or loss change is below this (default: 1e-9).
        line_search_fn (str, optional): ``"strong_wolfe"`` or ``None`` (default: "strong_wolfe").
        max_params (int, optional): largest parameter count accepted (default: 4096).

    Example:
        >>> opt = BFGS(model.parameters())
        >>> def closure():
        ...     opt.zero_grad()
        ...     loss = loss_fn(model(x), y)
        ...     loss.backward()
        ...     return loss
        >>> opt.step(closure)

    Reference:
        J. Nocedal and S. J. Wright, *Numerical Optimization*, 2nd ed., Springer 2006, ch. 6
        (after Broyden, Fletcher, Goldfarb and Shanno, 1970).
    """

    def __init__(
        self,
        params,
        lr: float = 1,
        max_iter: int = 20,
        max_eval: int | None = None,
        tolerance_grad: float = 1e-7,
        tolerance_change: float = 1e-9,
        line_search_fn: str | None = "strong_wolfe",
        max_params: int = 4096,
    ):
        check_ge("lr", lr)
        check_int_ge("max_iter", max_iter, 1)
        if max_eval is None:
            max_eval = max_iter * 5 // 4
        check_int_ge("max_eval", max_eval, 1)
        check_ge("tolerance_grad", tolerance_grad)
        check_ge("tolerance_change", tolerance_change)
        check_line_search(line_search_fn)
        check_int_ge("max_params", max_params, 1)
        defaults = dict(
            lr=lr, max_iter=max_iter, max_eval=max_eval, tolerance_grad=tolerance_grad,
            tolerance_change=tolerance_change, line_search_fn=line_search_fn, max_params=max_params,
        )
        super().__init__(params, defaults)
        if len(self.param_groups) != 1:
            raise ValueError("BFGS doesn't support per-parameter options (parameter groups)")
        self._params = self.param_groups[0]["params"]
        n = flat_numel(self._params)
        if n > max_params:
            raise ValueError(
                f"Invalid max_params: the model has {n} parameters but BFGS stores a dense {n}x{n} "
                f"inverse Hessian and max_params={max_params}; use LBFGS or raise max_params"
            )

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor]):  # type: ignore[override]
        """Run up to ``max_iter`` BFGS iterations; returns the loss at the starting point."""
        if closure is None:
            raise ValueError("BFGS needs a closure that re-evaluates the loss")
        closure = torch.enable_grad()(closure)
        group = self.param_groups[0]
        params = self._params
        state = self.state[params[0]]  # global state, kept under the first parameter
        state.setdefault("func_evals", 0)
        state.setdefault("n_iter", 0)

        first_loss = closure()
        loss = loss_value(first_loss)
        evals = 1
        state["func_evals"] += 1
        grad = flat_grad(params)
        if grad.abs().max() <= group["tolerance_grad"]:
            return first_loss

        lr = to_scalar(group["lr"])
        d, t, inv_hessian = state.get("d"), state.get("t"), state.get("inv_hessian")
        prev_grad, prev_loss = state.get("prev_flat_grad"), state.get("prev_loss")

        for iteration in range(1, group["max_iter"] + 1):
            state["n_iter"] += 1
            if state["n_iter"] > 1:
                inv_hessian = bfgs_update(inv_hessian, d.mul(t), grad.sub(prev_grad))
            d = -grad if inv_hessian is None else -(inv_hessian @ grad)
            prev_grad = grad.clone(memory_format=torch.contiguous_format)
            prev_loss = loss

            t = min(1.0, 1.0 / grad.abs().sum().item()) * lr if inv_hessian is None else lr
            gtd = grad.dot(d)
            if gtd > -group["tolerance_change"]:
                break

            if group["line_search_fn"] == "strong_wolfe":
                start = clone_params(params)

                def evaluate(step_length, start=start, d=d):
                    return evaluate_along(closure, params, start, step_length, d)

                loss, grad, t, ls_evals = strong_wolfe(
                    evaluate, d, t, loss, grad, gtd.item(), tolerance_change=group["tolerance_change"],
                    max_ls=group["max_eval"] - evals,
                )
                add_flat_(params, t, d)
            else:
                add_flat_(params, t, d)
                with torch.enable_grad():
                    loss = loss_value(closure())
                grad = flat_grad(params)
                ls_evals = 1
            evals += ls_evals
            state["func_evals"] += ls_evals

            converged = grad.abs().max() <= group["tolerance_grad"]
            if iteration == group["max_iter"] or evals >= group["max_eval"] or converged:
                break
            if d.mul(t).abs().max() <= group["tolerance_change"] or abs(loss - prev_loss) < group["tolerance_change"]:
                break

        state.update(d=d, t=t, inv_hessian=inv_hessian, prev_flat_grad=prev_grad, prev_loss=prev_loss)
        return first_loss


def bfgs_update(inv_hessian: torch.Tensor | None, s: torch.Tensor, y: torch.Tensor) -> torch.Tensor | None:
    """The BFGS inverse-Hessian update for the pair (s, y); ``None`` stands for the identity
    not yet scaled.  H is updated in place; pairs without positive curvature leave it unchanged."""
    ys = y.dot(s)
    if ys <= 1e-10:
        return inv_hessian
    if inv_hessian is None:
        inv_hessian = torch.eye(s.numel(), dtype=s.dtype, device=s.device).mul_(ys / y.dot(y))
    rho = (1.0 / ys).item()
    hy = inv_hessian @ y
    # (I - rho s y^T) H (I - rho y s^T) + rho s s^T expanded into three in-place rank-one updates
    # (no n x n temporaries): H - rho (s (Hy)^T + (Hy) s^T) + (rho^2 y^T H y + rho) s s^T
    ss_weight = (rho * rho * y.dot(hy) + rho).item()
    inv_hessian.addr_(s, hy, alpha=-rho).addr_(hy, s, alpha=-rho).addr_(s, s, alpha=ss_weight)
    return inv_hessian
