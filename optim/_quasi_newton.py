"""The outer loop BFGS and L-BFGS share, and flat views of a parameter list.

A quasi-Newton ``step(closure)`` runs up to ``max_iter`` iterations on the flattened parameters
:math:`x`: a direction :math:`d = -H g` from the subclass's curvature memory, a first trial step
``lr`` (:math:`\\min(1, 1/\\lVert g\rVert_1)\\,\\mathrm{lr}` while there is no curvature yet), then
either a strong-Wolfe line search or the fixed step, until the gradient, the step, the loss
change or the slope :math:`g^\top d` falls below its tolerance or the evaluation budget is spent.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from optim._base import to_scalar
from optim._validate import check_choice, check_ge, check_int_ge, check_lr
from optim.line_search import strong_wolfe

LINE_SEARCHES = (None, "strong_wolfe")


def check_quasi_newton_args(lr, max_iter, max_eval, tolerance_grad, tolerance_change, line_search_fn) -> int:
    """The checks BFGS and L-BFGS share; returns ``max_eval`` with its default filled in."""
    check_lr(lr)
    check_int_ge("max_iter", max_iter, 1)
    if max_eval is None:
        max_eval = max_iter * 5 // 4
    check_int_ge("max_eval", max_eval, 1)
    check_ge("tolerance_grad", tolerance_grad)
    check_ge("tolerance_change", tolerance_change)
    check_choice("line_search_fn", line_search_fn, LINE_SEARCHES)
    return max_eval


class QuasiNewton(torch.optim.Optimizer):
    """One parameter group, driven by a closure; the subclass keeps the curvature memory.

    It names the state entries saved after each step in ``_state_keys`` (``d``, ``t``,
    ``prev_flat_grad``, ``prev_loss`` and its own memory, in the order they are first stored),
    updates its memory and returns the new direction in ``_direction``, and says in ``_no_curvature_yet`` when the first
    step must be scaled down.  With ``_reevaluate_last`` False the fixed-step path skips the
    closure on the last iteration (torch's L-BFGS: with minibatches it would be wasted)."""

    _state_keys: tuple[str, ...] = ()
    _reevaluate_last = True

    def _direction(self, state: dict, memory: dict, grad: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _no_curvature_yet(self, state: dict, memory: dict) -> bool:
        raise NotImplementedError

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor]):  # type: ignore[override]
        """Run up to ``max_iter`` iterations; returns the loss at the starting point."""
        if closure is None:
            raise ValueError(f"{type(self).__name__} needs a closure that re-evaluates the loss")
        closure = torch.enable_grad()(closure)
        group = self.param_groups[0]
        # all the state is global; it lives under the first parameter so that load_state_dict
        # casts it with the parameters (torch's layout)
        state = self.state[self._params[0]]
        state.setdefault("func_evals", 0)
        state.setdefault("n_iter", 0)

        first_loss = closure()
        state["func_evals"] += 1
        grad = flat_grad(self._params)
        if grad.abs().max() <= group["tolerance_grad"]:
            return first_loss
        memory = {key: state.get(key) for key in self._state_keys}
        self._iterate(closure, group, state, memory, loss_value(first_loss), grad)
        state.update(memory)
        return first_loss

    def _iterate(self, closure, group, state, memory, loss, grad) -> None:
        lr, tolerance_change, evals = to_scalar(group["lr"]), group["tolerance_change"], 1
        for iteration in range(1, group["max_iter"] + 1):
            state["n_iter"] += 1
            d = memory["d"] = self._direction(state, memory, grad)
            prev_grad = memory["prev_flat_grad"]
            if prev_grad is None:
                memory["prev_flat_grad"] = grad.clone(memory_format=torch.contiguous_format)
            else:
                prev_grad.copy_(grad)
            prev_loss = memory["prev_loss"] = loss

            # the first step is scaled down: the gradient's size says nothing about curvature yet
            t = min(1.0, 1.0 / grad.abs().sum()) * lr if self._no_curvature_yet(state, memory) else lr
            memory["t"] = t
            gtd = grad.dot(d)
            if gtd > -tolerance_change:
                break

            last = iteration == group["max_iter"]
            loss, grad, t, ls_evals, converged = self._move(closure, group, d, t, loss, grad, gtd, evals, last)
            memory["t"] = t
            evals += ls_evals
            state["func_evals"] += ls_evals

            if last or evals >= group["max_eval"] or converged:
                break
            if d.mul(t).abs().max() <= tolerance_change or abs(loss - prev_loss) < tolerance_change:
                break

    def _move(self, closure, group, d, t, loss, grad, gtd, evals, last):
        """Step along ``d``: (loss, flat gradient, step length, closure calls, converged)."""
        params = self._params
        if group["line_search_fn"] == "strong_wolfe":
            start = clone_params(params)

            def evaluate(step_length):
                return evaluate_along(closure, params, start, step_length, d)

            loss, grad, t, ls_evals = strong_wolfe(
                evaluate, d, t, loss, grad, gtd, tolerance_change=group["tolerance_change"],
                max_ls=group["max_eval"] - evals,
            )
            add_flat_(params, t, d)
        else:
            add_flat_(params, t, d)
            if last and not self._reevaluate_last:
                return loss, grad, t, 0, False
            with torch.enable_grad():
                loss = loss_value(closure())
            grad = flat_grad(params)
            ls_evals = 1
        return loss, grad, t, ls_evals, grad.abs().max() <= group["tolerance_grad"]


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
