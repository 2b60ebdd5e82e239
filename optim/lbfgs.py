"""L-BFGS: limited-memory quasi-Newton steps driven by a closure, torch's drop-in."""

from __future__ import annotations

import torch

from optim._base import single_group_params
from optim._quasi_newton import QuasiNewton, check_quasi_newton_args
from optim._validate import check_int_ge

__all__ = ["LBFGS"]


class LBFGS(QuasiNewton):
    r"""L-BFGS (Liu & Nocedal 1989), with the same arguments, steps and state as ``torch.optim.LBFGS``.

    Each ``step(closure)`` runs up to ``max_iter`` iterations on the flattened parameters
    :math:`x`.  With the last :math:`m` = ``history_size`` pairs
    :math:`s_i = x_{i+1} - x_i`, :math:`y_i = g_{i+1} - g_i` (kept only when
    :math:`y_i^\top s_i > 10^{-10}`), the direction :math:`d = -H g` comes from the two-loop
    recursion with :math:`\rho_i = 1 / y_i^\top s_i` and initial scaling
    :math:`H_0 = \frac{y^\top s}{y^\top y} I` (Nocedal & Wright, Algorithm 7.4):

    .. math::
        q \leftarrow -g;\quad \alpha_i = \rho_i s_i^\top q,\ q \leftarrow q - \alpha_i y_i
        \ (i = k-1 \dots k-m);\quad r \leftarrow H_0 q;\quad
        r \leftarrow r + s_i(\alpha_i - \rho_i y_i^\top r)\ (i = k-m \dots k-1);\quad d = r

    then :math:`x \leftarrow x + t d` with :math:`t` = ``lr`` (the first iteration ever uses
    :math:`\min(1, 1/\lVert g\rVert_1)\,\mathrm{lr}`), or :math:`t` from a strong-Wolfe line search
    started at that value.  Iterations stop early when :math:`\max|g| \le` ``tolerance_grad``, or
    the step, the loss change or the slope :math:`g^\top d` fall below ``tolerance_change``.

    Only one parameter group is supported, and all parameters live on one device.  The closure
    must zero the gradients, compute the loss, call ``backward()`` and return the loss; it is
    evaluated up to ``max_eval`` times per step.

    Args:
        params (iterable): parameters to optimize (one group only).
        lr (float, optional): step length, or the line search's first trial (default: 1).
        max_iter (int, optional): iterations per ``step`` (default: 20).
        max_eval (int, optional): closure evaluations per ``step`` (default: ``max_iter * 5 // 4``).
        tolerance_grad (float, optional): stop when the largest gradient entry is below this (default: 1e-7).
        tolerance_change (float, optional): stop when the step or loss change is below this (default: 1e-9).
        history_size (int, optional): number of (s, y) pairs kept (default: 100).
        line_search_fn (str, optional): ``None`` (fixed step ``lr``) or ``"strong_wolfe"`` (default: None).

    Example:
        >>> opt = LBFGS(model.parameters(), line_search_fn="strong_wolfe")
        >>> def closure():
        ...     opt.zero_grad()
        ...     loss = loss_fn(model(x), y)
        ...     loss.backward()
        ...     return loss
        >>> opt.step(closure)

    Reference:
        D. C. Liu and J. Nocedal, "On the limited memory BFGS method for large scale
        optimization", Mathematical Programming 45, 1989.  https://doi.org/10.1007/BF01589116
    """

    _state_keys = ("d", "t", "old_dirs", "old_stps", "ro", "H_diag", "prev_flat_grad", "prev_loss")
    _reevaluate_last = False

    def __init__(
        self,
        params,
        lr: float = 1,
        max_iter: int = 20,
        max_eval: int | None = None,
        tolerance_grad: float = 1e-7,
        tolerance_change: float = 1e-9,
        history_size: int = 100,
        line_search_fn: str | None = None,
    ):
        max_eval = check_quasi_newton_args(lr, max_iter, max_eval, tolerance_grad, tolerance_change, line_search_fn)
        check_int_ge("history_size", history_size, 1)
        defaults = dict(
            lr=lr, max_iter=max_iter, max_eval=max_eval, tolerance_grad=tolerance_grad,
            tolerance_change=tolerance_change, history_size=history_size, line_search_fn=line_search_fn,
        )
        super().__init__(params, defaults)
        self._params = single_group_params(self)

    def _no_curvature_yet(self, state, memory):
        return state["n_iter"] == 1

    def _direction(self, state, memory, grad):
        if state["n_iter"] == 1:
            memory.update(old_dirs=[], old_stps=[], ro=[], H_diag=1)
            return grad.neg()
        history_size = self.param_groups[0]["history_size"]
        old_dirs, old_stps, ro = memory["old_dirs"], memory["old_stps"], memory["ro"]
        y = grad.sub(memory["prev_flat_grad"])
        s = memory["d"].mul(memory["t"])
        ys = y.dot(s)
        if ys > 1e-10:  # keep only pairs with positive curvature, so H stays positive definite
            if len(old_dirs) == history_size:
                old_dirs.pop(0)
                old_stps.pop(0)
                ro.pop(0)
            old_dirs.append(y)
            old_stps.append(s)
            ro.append(1.0 / ys)
            memory["H_diag"] = ys / y.dot(y)
        if "al" not in state:
            state["al"] = [None] * history_size
        return two_loop_direction(grad, old_dirs, old_stps, ro, memory["H_diag"], state["al"])


def two_loop_direction(grad, old_dirs, old_stps, ro, h_diag, alphas) -> torch.Tensor:
    """The L-BFGS direction -H g by the two-loop recursion over the stored (s, y) pairs.

    ``alphas`` is a scratch list at least as long as the history (kept in state like torch)."""
    q = grad.neg()
    for i in range(len(old_dirs) - 1, -1, -1):
        alphas[i] = old_stps[i].dot(q) * ro[i]
        q.add_(old_dirs[i], alpha=-alphas[i])
    r = torch.mul(q, h_diag)
    for i in range(len(old_dirs)):
        beta = old_dirs[i].dot(r) * ro[i]
        r.add_(old_stps[i], alpha=alphas[i] - beta)
    return r
