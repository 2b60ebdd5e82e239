"""RandomSearch: a zeroth-order baseline that keeps a Gaussian perturbation only if it lowers the loss."""

from __future__ import annotations

import torch
from torch.optim import Optimizer

from optim._base import default_foreach, group_tensors
from optim._docs import with_arg_docs
from optim._validate import check_ge, check_gt

__all__ = ["RandomSearch"]

_SEARCH = "search"  # key of the non-parameter state entry: generator state and step counter


@with_arg_docs
class RandomSearch(Optimizer):
    r"""Greedy random search (a (1+n) evolution strategy with a fixed step scale).

    Each ``step(closure)`` evaluates the loss at the current point, then at ``n_samples``
    candidates

    .. math::
        \theta'_j = \theta_t + \eta \, \sigma \, \delta^t \, z_j, \qquad z_j \sim \mathcal N(0, I),

    per param group (:math:`\eta` = ``lr``, :math:`\delta` = ``decay``, :math:`t` the number of
    steps taken), and moves to the best candidate only if its loss is strictly lower:
    :math:`\theta_{t+1} = \arg\min(L(\theta_t), L(\theta'_1), \dots)`, ties and NaN losses
    keeping :math:`\theta_t`.  ``lr`` is the step scale an lr scheduler acts on; ``sigma`` is the
    perturbation's standard deviation relative to it, ``decay`` its own geometric decay per step.

    Gradients are never used, but the closure is called under ``torch.enable_grad()`` so the
    usual ``zero_grad(); loss = ...; loss.backward(); return loss`` closure works (a closure
    without ``backward`` is cheaper).  ``step`` returns the loss at the point it started from,
    like every torch optimizer; it costs ``1 + n_samples`` closure calls.

    The noise comes from a ``torch.Generator`` whose state is kept in ``state["search"]``, so a
    run is reproducible from ``seed`` and resumes exactly from ``state_dict()``.  The noise is
    drawn on the CPU (in parameter order, in each parameter's dtype) and copied to the
    parameter's device, so a run is the same on every device.

    Args:
        {params}
        lr (float, optional): step scale :math:`\eta` (default: 1.0).
        sigma (float, optional): standard deviation of the perturbation, relative to ``lr``
            (default: 0.1).
        n_samples (int, optional): candidates evaluated per step (default: 1).
        decay (float, optional): per-step factor :math:`\delta` in (0, 1] of the perturbation
            scale (default: 1.0, no decay).
        seed (int, optional): seed of the noise generator; ``None`` draws one from torch's
            global generator, so ``torch.manual_seed`` makes a run reproducible (default: None).
        {maximize} A candidate is then kept if its value is strictly higher.
        {foreach}

    Example:
        >>> opt = RandomSearch(model.parameters(), lr=1.0, sigma=0.05, n_samples=4, seed=0)
        >>> def closure():
        ...     with torch.no_grad():
        ...         return loss_fn(model(x), y)
        >>> opt.step(closure)

    Reference:
        L. A. Rastrigin, "The convergence of the random search method in the extremal control of
        a many parameter system", Automation and Remote Control 24(11), 1963; as a baseline for
        deep learning: H. Mania, A. Guy, B. Recht, "Simple random search provides a competitive
        approach to reinforcement learning", NeurIPS 2018, arXiv:1803.07055.
    """

    def __init__(
        self,
        params,
        lr: float = 1.0,
        sigma: float = 0.1,
        n_samples: int = 1,
        decay: float = 1.0,
        *,
        seed: int | None = None,
        maximize: bool = False,
        foreach: bool | None = None,
    ):
        check_ge("lr", lr)
        check_gt("sigma", sigma)
        if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 1:
            raise ValueError(f"Invalid n_samples: {n_samples!r} (must be an integer >= 1)")
        if not 0.0 < decay <= 1.0:
            raise ValueError(f"Invalid decay: {decay} (must be in (0, 1])")
        if seed is None:
            seed = int(torch.randint(0, 2**62, ()).item())
        elif isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"Invalid seed: {seed!r} (must be None or an integer >= 0)")
        defaults = dict(lr=lr, sigma=sigma, decay=decay, maximize=maximize, foreach=foreach)
        super().__init__(params, defaults)
        self.n_samples = n_samples
        self.state[_SEARCH] = {"generator": torch.Generator().manual_seed(seed).get_state(), "step": 0}

    @torch.no_grad()
    def step(self, closure=None):
        """Evaluate the loss, try ``n_samples`` perturbations, keep the best if it is lower.

        Returns the loss at the starting point."""
        if closure is None:
            raise RuntimeError("RandomSearch.step needs a closure that returns the loss")
        closure = torch.enable_grad()(closure)
        search = self.state[_SEARCH]
        generator = torch.Generator().set_state(search["generator"])
        groups = [
            (group["params"], group["lr"] * group["sigma"] * group["decay"] ** search["step"], group["foreach"])
            for group in self.param_groups
        ]
        origins = [[p.detach().clone() for p in params] for params, _, _ in groups]

        # one direction for the whole step: maximize when every group asks for it (torch's
        # per-group flag; a search over all parameters at once cannot mix directions)
        directions = {bool(group.get("maximize", False)) for group in self.param_groups}
        if len(directions) > 1:
            raise ValueError("maximize: RandomSearch needs the same maximize in every param group")
        sign = -1.0 if directions.pop() else 1.0
        loss = closure()
        best_loss, best_noises = sign * _value(loss), None
        for _ in range(self.n_samples):
            noises = [
                [torch.randn(p.shape, generator=generator, dtype=p.dtype).to(p.device) for p in params]
                for params, _, _ in groups
            ]
            _move_to(groups, origins, noises)
            candidate_loss = sign * _value(closure())
            if candidate_loss < best_loss:
                best_loss, best_noises = candidate_loss, noises
        if best_noises is None:
            for (params, _, _), origin in zip(groups, origins):
                for param, start in zip(params, origin):
                    param.copy_(start)
        else:
            _move_to(groups, origins, best_noises)

        search["generator"] = generator.get_state()
        search["step"] += 1
        return loss


def _value(loss) -> float:
    return float(loss.detach()) if isinstance(loss, torch.Tensor) else float(loss)


def _move_to(groups, origins, noises):
    """Set every group's params to ``origin + scale * noise``."""
    for (params, scale, foreach), origin, noise in zip(groups, origins, noises):
        foreach = foreach if foreach is not None else default_foreach(params)
        (_multi_tensor_random_search if foreach else _single_tensor_random_search)(
            params, origin, noise, scale=scale
        )


def _single_tensor_random_search(params, origins, noises, *, scale):
    for param, origin, noise in zip(params, origins, noises):
        param.copy_(origin).add_(noise, alpha=scale)


def _multi_tensor_random_search(params, origins, noises, *, scale):
    for device_params, device_origins, device_noises in group_tensors(params, origins, noises).values():
        torch._foreach_copy_(device_params, device_origins)
        torch._foreach_add_(device_params, device_noises, alpha=scale)
