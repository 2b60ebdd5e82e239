"""BFGS: a dense inverse-Hessian quasi-Newton method driven by a closure, for small models."""

from __future__ import annotations

import torch

from optim._base import single_group_params
from optim._quasi_newton import QuasiNewton, check_quasi_newton_args, flat_numel
from optim._validate import check_int_ge

__all__ = ["BFGS"]


class BFGS(QuasiNewton):
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

    _state_keys = ("d", "t", "inv_hessian", "prev_flat_grad", "prev_loss")

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
        max_eval = check_quasi_newton_args(lr, max_iter, max_eval, tolerance_grad, tolerance_change, line_search_fn)
        check_int_ge("max_params", max_params, 1)
        defaults = dict(
            lr=lr, max_iter=max_iter, max_eval=max_eval, tolerance_grad=tolerance_grad,
            tolerance_change=tolerance_change, line_search_fn=line_search_fn, max_params=max_params,
        )
        super().__init__(params, defaults)
        self._params = single_group_params(self)
        n = flat_numel(self._params)
        if n > max_params:
            raise ValueError(
                f"Invalid max_params: the model has {n} parameters but BFGS stores a dense {n}x{n} "
                f"inverse Hessian and max_params={max_params}; use LBFGS or raise max_params"
            )

    def _no_curvature_yet(self, state, memory):
        return memory["inv_hessian"] is None

    def _direction(self, state, memory, grad):
        if state["n_iter"] > 1:
            memory["inv_hessian"] = bfgs_update(
                memory["inv_hessian"], memory["d"].mul(memory["t"]), grad.sub(memory["prev_flat_grad"])
            )
        inv_hessian = memory["inv_hessian"]
        return -grad if inv_hessian is None else -(inv_hessian @ grad)


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
