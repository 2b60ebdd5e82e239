"""Shampoo: one preconditioner per tensor dimension, grafted onto a first-order step size."""

from __future__ import annotations

import torch

from optim._base import run_closure
from optim._validate import check_betas, check_ge, check_gt, check_int_ge

__all__ = ["Shampoo"]

GRAFTS = ("adagrad", "sgd", "adam")


class Shampoo(torch.optim.Optimizer):
    r"""Shampoo (Gupta, Koren & Singer 2018) with layer-wise grafting (Agarwal et al. 2020).

    For a parameter of order :math:`k` with gradient :math:`G_t` (plus ``weight_decay`` times the
    parameter), each dimension :math:`i` of size :math:`1 < d_i \le` ``max_preconditioner_dim``
    keeps a statistic over the mode-:math:`i` unfolding :math:`G_{(i)}` (:math:`d_i \times` the rest):

    .. math::
        H^{(i)}_t = \epsilon I + \sum_{s \le t} G_{s,(i)} G_{s,(i)}^\top, \qquad
        P_t = G_t \times_1 \big(H^{(1)}\big)^{-1/2k} \times_2 \cdots \times_k \big(H^{(k)}\big)^{-1/2k}

    (for a matrix, :math:`P = L^{-1/4} G R^{-1/4}`; for a vector, full-matrix AdaGrad), where
    :math:`k` counts the preconditioned dimensions and the inverse roots come from an
    eigendecomposition recomputed every ``update_freq`` steps.  The step takes its direction from
    :math:`P` and its size from the grafted first-order optimizer's step :math:`D_t`:

    .. math::
        U_t = \frac{\lVert D_t\rVert}{\lVert P_t\rVert} P_t, \qquad
        D_t = \begin{cases} G_t & \text{sgd} \\ G_t / (\sqrt{\textstyle\sum_s G_s^2} + \varepsilon) & \text{adagrad} \\
        \hat m_t / (\sqrt{\hat v_t} + \varepsilon) & \text{adam} \end{cases}

    then :math:`b \leftarrow \mu b + U` (with ``momentum`` :math:`\mu > 0`) and
    :math:`\theta \leftarrow \theta - \mathrm{lr}\, U` (or :math:`b`).  With ``precondition=False``,
    or for scalars and parameters with no preconditioned dimension, :math:`U = D` and the step is
    exactly the grafted optimizer's: ``torch.optim.Adagrad(lr, eps=graft_eps)``,
    ``torch.optim.SGD(lr, momentum)`` or ``torch.optim.Adam(lr, betas, eps=graft_eps)``.

    Args:
        params (iterable): parameters or dicts defining parameter groups.
        lr (float, optional): learning rate (default: 0.01).
        graft (str, optional): ``"adagrad"``, ``"sgd"`` or ``"adam"``, whose step size is used (default: "adagrad").
        momentum (float, optional): momentum factor applied to the final update (default: 0).
        betas (Tuple[float, float], optional): the Adam graft's moment decay rates (default: (0.9, 0.999)).
        graft_eps (float, optional): the grafted optimizer's denominator term (default: 1e-10, Adagrad's).
        epsilon (float, optional): initial diagonal :math:`\epsilon` of every statistic (default: 1e-6).
        update_freq (int, optional): steps between recomputations of the inverse roots (default: 10).
        max_preconditioner_dim (int, optional): dimensions larger than this are not preconditioned (default: 1024).
        weight_decay (float, optional): L2 penalty added to the gradient (default: 0).
        precondition (bool, optional): False turns Shampoo into its graft exactly (default: True).

    Example:
        >>> opt = Shampoo(model.parameters(), lr=0.01, graft="adagrad", update_freq=10)
        >>> loss_fn(model(x), y).backward()
        >>> opt.step()
        >>> opt.zero_grad()

    Reference:
        V. Gupta, T. Koren and Y. Singer, "Shampoo: Preconditioned Stochastic Tensor
        Optimization", ICML 2018, https://arxiv.org/abs/1802.09568; grafting: N. Agarwal, R. Anil,
        E. Hazan, T. Koren and C. Zhang, "Disentangling Adaptive Gradient Methods from Learning
        Rates", 2020, https://arxiv.org/abs/2002.11803.
    """

    def __init__(
        self,
        params,
        lr: float = 0.01,
        graft: str = "adagrad",
        momentum: float = 0.0,
        betas: tuple[float, float] = (0.9, 0.999),
        graft_eps: float = 1e-10,
        epsilon: float = 1e-6,
        update_freq: int = 10,
        max_preconditioner_dim: int = 1024,
        weight_decay: float = 0.0,
        precondition: bool = True,
    ):
        check_ge("lr", lr)
        if graft not in GRAFTS:
            raise ValueError(f"Invalid graft: {graft!r} (must be one of {list(GRAFTS)})")
        check_ge("momentum", momentum)
        check_betas(betas)
        check_ge("graft_eps", graft_eps)
        check_gt("epsilon", epsilon)
        check_int_ge("update_freq", update_freq, 1)
        check_int_ge("max_preconditioner_dim", max_preconditioner_dim, 1)
        check_ge("weight_decay", weight_decay)
        defaults = dict(
            lr=lr, graft=graft, momentum=momentum, betas=betas, graft_eps=graft_eps, epsilon=epsilon,
            update_freq=update_freq, max_preconditioner_dim=max_preconditioner_dim,
            weight_decay=weight_decay, precondition=precondition,
        )
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):
        loss = run_closure(closure)
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            states = [self._init_state(p, group) for p in params]
            _single_tensor_shampoo(params, [p.grad for p in params], states, group)
        return loss

    def _init_state(self, p: torch.Tensor, group) -> dict:
        if p.grad.is_sparse or p.is_complex():
            raise ValueError("Shampoo supports dense real parameters only")
        state = self.state[p]
        if not state:
            state["step"] = torch.tensor(0.0)
            if group["graft"] == "adagrad":
                state["sum"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            elif group["graft"] == "adam":
                state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            dims = preconditioned_dims(p.shape, group["max_preconditioner_dim"])
            eye = [torch.eye(p.shape[i], dtype=p.dtype, device=p.device) for i in dims]
            state["statistics"] = [e * group["epsilon"] for e in eye]
            state["inverse_roots"] = eye
        return state


def preconditioned_dims(shape: torch.Size, max_dim: int) -> list[int]:
    """Dimensions that get a preconditioner: size 1 needs none, very large ones cost too much."""
    return [i for i, n in enumerate(shape) if 1 < n <= max_dim]


def _single_tensor_shampoo(params, grads, states, group) -> None:
    lr, momentum, graft = group["lr"], group["momentum"], group["graft"]
    for p, grad, state in zip(params, grads, states):
        state["step"] += 1
        step = state["step"].item()
        if group["weight_decay"] != 0:
            grad = grad.add(p, alpha=group["weight_decay"])
        numerator, denominator, divisor = _graft_direction(graft, grad, state, step, group)

        statistics = state["statistics"]
        if not (group["precondition"] and statistics):
            if momentum == 0:
                # the grafted optimizer's own arithmetic, so precondition=False equals it bit for bit
                if denominator is None:
                    p.add_(numerator, alpha=-(lr / divisor))
                else:
                    p.addcdiv_(numerator, denominator, value=-(lr / divisor))
                continue
            update = numerator / divisor if denominator is None else numerator / denominator / divisor
        else:
            graft_step = numerator / divisor if denominator is None else numerator / denominator / divisor
            dims = preconditioned_dims(p.shape, group["max_preconditioner_dim"])
            for stat, i in zip(statistics, dims):
                unfolded = _unfold(grad, i)
                stat.addmm_(unfolded, unfolded.T)
            if (step - 1) % group["update_freq"] == 0:
                order = len(dims)
                state["inverse_roots"] = [inverse_root(s, 2 * order, group["epsilon"]) for s in statistics]
            preconditioned = grad
            for root, i in zip(state["inverse_roots"], dims):
                preconditioned = _mode_product(preconditioned, root, i)
            norm = preconditioned.norm()
            update = preconditioned * (graft_step.norm() / norm) if norm > 0 else graft_step

        if momentum != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = torch.clone(update).detach()
            else:
                buf.mul_(momentum).add_(update)
            update = buf
        p.add_(update, alpha=-lr)


def _graft_direction(graft: str, grad, state, step: float, group):
    """The grafted optimizer's step before the learning rate, as (numerator, denominator, divisor):
    direction = numerator / denominator / divisor (no denominator for SGD), kept in that form so the
    unpreconditioned update can use the grafted optimizer's own ``addcdiv_``."""
    if graft == "sgd":
        return grad, None, 1.0
    if graft == "adagrad":
        state["sum"].addcmul_(grad, grad, value=1)
        return grad, state["sum"].sqrt().add_(group["graft_eps"]), 1.0
    beta1, beta2 = group["betas"]
    state["exp_avg"].lerp_(grad, 1 - beta1)
    state["exp_avg_sq"].mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    bias_correction1 = 1 - beta1**step
    bias_correction2_sqrt = (1 - beta2**step) ** 0.5
    denominator = (state["exp_avg_sq"].sqrt() / bias_correction2_sqrt).add_(group["graft_eps"])
    return state["exp_avg"], denominator, bias_correction1


def inverse_root(matrix: torch.Tensor, p: int, epsilon: float) -> torch.Tensor:
    """matrix^(-1/p) of a symmetric positive definite matrix, by eigendecomposition in float64
    (eigenvalues spanning many decades lose their small end in float32)."""
    m = matrix.double()
    eigvals, eigvecs = torch.linalg.eigh((m + m.T) / 2)
    powered = eigvals.clamp_min(epsilon).pow(-1.0 / p)
    return ((eigvecs * powered) @ eigvecs.T).to(matrix.dtype)


def _unfold(tensor: torch.Tensor, dim: int) -> torch.Tensor:
    """Mode-``dim`` unfolding: (size of dim, product of the other sizes)."""
    return tensor.movedim(dim, 0).reshape(tensor.shape[dim], -1)


def _mode_product(tensor: torch.Tensor, matrix: torch.Tensor, dim: int) -> torch.Tensor:
    """``tensor`` multiplied along ``dim`` by ``matrix`` (symmetric here)."""
    moved = tensor.movedim(dim, 0)
    return (matrix @ moved.reshape(moved.shape[0], -1)).reshape(moved.shape).movedim(0, dim)
