"""L-BFGS: limited-memory quasi-Newton steps driven by a closure, torch's drop-in."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from optim._base import to_scalar
from optim._validate import check_ge
from optim.line_search import strong_wolfe

__all__ = ["LBFGS"]

LINE_SEARCHES = (None, "strong_wolfe")


class LBFGS(torch.optim.Optimizer):
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
        if isinstance(lr, torch.Tensor) and lr.numel() != 1:
            raise ValueError("Invalid lr: a tensor lr must have one element")
        check_ge("lr", lr)
        check_int_ge("max_iter", max_iter, 1)
        if max_eval is None:
            max_eval = max_iter * 5 // 4
        check_int_ge("max_eval", max_eval, 1)
        check_ge("tolerance_grad", tolerance_grad)
        check_ge("tolerance_change", tolerance_change)
        check_int_ge("history_size", history_size, 1)
        check_line_search(line_search_fn)
        defaults = dict(
            lr=lr, max_iter=max_iter, max_eval=max_eval, tolerance_grad=tolerance_grad,
            tolerance_change=tolerance_change, history_size=history_size, line_search_fn=line_search_fn,
        )
        super().__init__(params, defaults)
        if len(self.param_groups) != 1:
            raise ValueError("LBFGS doesn't support per-parameter options (parameter groups)")
        self._params = self.param_groups[0]["params"]

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor]):  # type: ignore[override]
        """Run up to ``max_iter`` L-BFGS iterations; returns the loss at the starting point."""
        if closure is None:
            raise ValueError("LBFGS needs a closure that re-evaluates the loss")
        closure = torch.enable_grad()(closure)
        group = self.param_groups[0]
        params = self._params
        # all of L-BFGS's state is global; it lives under the first parameter so that
        # load_state_dict casts it with the parameters (torch's layout)
        state = self.state[params[0]]
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
        d, t = state.get("d"), state.get("t")
        old_dirs, old_stps, ro = state.get("old_dirs"), state.get("old_stps"), state.get("ro")
        h_diag, prev_grad, prev_loss = state.get("H_diag"), state.get("prev_flat_grad"), state.get("prev_loss")

        for iteration in range(1, group["max_iter"] + 1):
            state["n_iter"] += 1
            if state["n_iter"] == 1:
                d = grad.neg()
                old_dirs, old_stps, ro, h_diag = [], [], [], 1
            else:
                y = grad.sub(prev_grad)
                s = d.mul(t)
                ys = y.dot(s)
                if ys > 1e-10:  # keep only pairs with positive curvature, so H stays positive definite
                    if len(old_dirs) == group["history_size"]:
                        old_dirs.pop(0)
                        old_stps.pop(0)
                        ro.pop(0)
                    old_dirs.append(y)
                    old_stps.append(s)
                    ro.append(1.0 / ys)
                    h_diag = ys / y.dot(y)
                if "al" not in state:
                    state["al"] = [None] * group["history_size"]
                d = two_loop_direction(grad, old_dirs, old_stps, ro, h_diag, state["al"])

            if prev_grad is None:
                prev_grad = grad.clone(memory_format=torch.contiguous_format)
            else:
                prev_grad.copy_(grad)
            prev_loss = loss

            # the very first step is scaled down: the gradient's size says nothing about curvature yet
            t = min(1.0, 1.0 / grad.abs().sum().item()) * lr if state["n_iter"] == 1 else lr
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
                converged = grad.abs().max() <= group["tolerance_grad"]
            else:
                add_flat_(params, t, d)
                ls_evals, converged = 0, False
                # the last iteration skips the re-evaluation: with minibatches it would be wasted
                if iteration != group["max_iter"]:
                    with torch.enable_grad():
                        loss = loss_value(closure())
                    grad = flat_grad(params)
                    converged = grad.abs().max() <= group["tolerance_grad"]
                    ls_evals = 1
            evals += ls_evals
            state["func_evals"] += ls_evals

            if iteration == group["max_iter"] or evals >= group["max_eval"] or converged:
                break
            if d.mul(t).abs().max() <= group["tolerance_change"] or abs(loss - prev_loss) < group["tolerance_change"]:
                break

        state.update(
            d=d, t=t, old_dirs=old_dirs, old_stps=old_stps, ro=ro, H_diag=h_diag,
            prev_flat_grad=prev_grad, prev_loss=prev_loss,
        )
        return first_loss


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


# -- flat views of a parameter list, shared with BFGS -----------------------------------------


def flat_grad(params: Sequence[torch.Tensor]) -> torch.Tensor:
    """All gradients as one vector (zeros for a parameter without a gradient)."""
    views = []
    for p in params:
        if p.grad is None:
            view = p.new_zeros(p.numel())
        elif p.grad.is_sparse:
            view = p.grad.to_dense().view(-1)
        else:
            view = p.grad.view(-1)
        views.append(torch.view_as_real(view).view(-1) if view.is_complex() else view)
    return torch.cat(views, 0)


def flat_numel(params: Sequence[torch.Tensor]) -> int:
    return sum(2 * p.numel() if p.is_complex() else p.numel() for p in params)


def add_flat_(params: Sequence[torch.Tensor], step: float, direction: torch.Tensor) -> None:
    """``params += step * direction`` with ``direction`` laid out as ``flat_grad`` lays out gradients."""
    offset = 0
    for p in params:
        target = torch.view_as_real(p) if p.is_complex() else p
        n = target.numel()
        target.add_(direction[offset : offset + n].view_as(target), alpha=step)
        offset += n


def clone_params(params: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    return [p.clone(memory_format=torch.contiguous_format) for p in params]


def set_params_(params: Sequence[torch.Tensor], values: Sequence[torch.Tensor]) -> None:
    for p, v in zip(params, values, strict=True):
        p.copy_(v)


def evaluate_along(closure, params, start, step: float, direction) -> tuple[float, torch.Tensor]:
    """Loss and flat gradient at ``start + step * direction``; the parameters are put back to ``start``."""
    add_flat_(params, step, direction)
    loss = loss_value(closure())
    grad = flat_grad(params)
    set_params_(params, start)
    return loss, grad


def loss_value(loss) -> float:
    return loss.detach().item() if isinstance(loss, torch.Tensor) else float(loss)


def check_int_ge(name: str, value, bound: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < bound:
        raise ValueError(f"Invalid {name}: {value!r} (must be an integer >= {bound})")


def check_line_search(line_search_fn) -> None:
    if line_search_fn not in LINE_SEARCHES:
        raise ValueError(f"Invalid line_search_fn: {line_search_fn!r} (must be one of {list(LINE_SEARCHES)})")
