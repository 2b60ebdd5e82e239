"""Lookahead: k fast steps of any optimizer, then one interpolation step of slow weights
(Zhang et al., 2019)."""

from __future__ import annotations

import torch
from torch.optim import Optimizer

from optim._base import default_foreach, group_tensors
from optim._docs import with_arg_docs
from optim._validate import check_range

__all__ = ["Lookahead"]

_COUNTER = "lookahead"  # key of the non-parameter state entry holding the step counter


@with_arg_docs
class Lookahead(Optimizer):
    r"""Lookahead around any ``torch.optim.Optimizer``, Algorithm 1 of the paper.

    The wrapped (inner) optimizer :math:`A` moves the fast weights :math:`\theta`; every ``k``
    steps the slow weights :math:`\phi` move part of the way towards them and the fast weights
    restart from there:

    .. math::
        \theta_{t,0} &= \phi_{t-1} \\
        \theta_{t,i} &= \theta_{t,i-1} + A(L, \theta_{t,i-1}), \quad i = 1, \dots, k \\
        \phi_t &= \phi_{t-1} + \alpha (\theta_{t,k} - \phi_{t-1})

    :math:`\phi_0` is the parameters' value at the first ``step()``.

    The wrapper shares the inner optimizer's ``param_groups`` (the same list of the same
    dicts), so ``torch.optim.lr_scheduler`` schedulers, gradient scalers and ``add_param_group``
    act on the inner optimizer.  ``state`` holds the slow weights (``slow_param``) and the step
    counter; the inner optimizer's state stays in ``base_optimizer.state``.  ``state_dict()``
    holds both, and ``load_state_dict`` restores both.

    Args:
        base_optimizer (torch.optim.Optimizer): the inner optimizer :math:`A`, already built.
        k (int, optional): synchronisation period, fast steps per slow step (default: 5).
        alpha (float, optional): slow step size :math:`\alpha` in [0, 1] (default: 0.5).
        {foreach}

    Example:
        >>> inner = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        >>> opt = Lookahead(inner, k=5, alpha=0.5)
        >>> sched = torch.optim.lr_scheduler.StepLR(opt, step_size=30)
        >>> loss_fn(model(x), y).backward()
        >>> opt.step()
        >>> opt.zero_grad()

    Reference:
        M. R. Zhang, J. Lucas, G. Hinton, J. Ba, "Lookahead Optimizer: k steps forward, 1 step
        back", NeurIPS 2019, arXiv:1907.08610.
    """

    def __init__(self, base_optimizer: Optimizer, k: int = 5, alpha: float = 0.5, *, foreach: bool | None = None):
        if not isinstance(base_optimizer, Optimizer):
            raise TypeError(f"base_optimizer must be a torch.optim.Optimizer, got {type(base_optimizer).__name__}")
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"Invalid k: {k!r} (must be an integer >= 1)")
        check_range("alpha", alpha, 0.0, 1.0, high_open=False)
        # Optimizer.__init__ (hooks, step profiling) gets copies of the base's group dicts, since
        # it rewrites their 'params' lists; then the base's own list is shared.
        super().__init__([dict(group) for group in base_optimizer.param_groups], {})
        self.param_groups = base_optimizer.param_groups
        self.defaults = base_optimizer.defaults
        self.base_optimizer = base_optimizer
        self.k = k
        self.alpha = alpha
        self.foreach = foreach

    def add_param_group(self, param_group: dict) -> None:
        base = self.__dict__.get("base_optimizer")
        if base is None:  # Optimizer.__init__ registering the copies of the base's groups
            super().add_param_group(param_group)
        else:  # the list is shared: the group shows up here too
            base.add_param_group(param_group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.base_optimizer.zero_grad(set_to_none=set_to_none)

    def step(self, closure=None):
        """One step of the inner optimizer, then, every ``k``-th call, the slow-weight update."""
        params = [p for group in self.param_groups for p in group["params"]]
        with torch.no_grad():
            for p in params:
                state = self.state[p]
                if "slow_param" not in state:
                    state["slow_param"] = p.detach().clone(memory_format=torch.preserve_format)
        loss = self.base_optimizer.step() if closure is None else self.base_optimizer.step(closure)
        counter = self.state[_COUNTER]
        counter["step"] = counter.get("step", 0) + 1
        if counter["step"] % self.k == 0:
            slow = [self.state[p]["slow_param"] for p in params]
            foreach = self.foreach if self.foreach is not None else default_foreach(params)
            with torch.no_grad():
                (_multi_tensor_lookahead if foreach else _single_tensor_lookahead)(params, slow, alpha=self.alpha)
        return loss

    def state_dict(self) -> dict:
        """``{"base": base_optimizer.state_dict(), "state": slow weights and counter,
        "lookahead": {"k": ..., "alpha": ...}}``; slow weights are indexed like the base's state."""
        own = super().state_dict()
        return {"base": self.base_optimizer.state_dict(), "state": own["state"],
                "lookahead": {"k": self.k, "alpha": self.alpha}}

    def load_state_dict(self, state_dict: dict) -> None:
        self.base_optimizer.load_state_dict(state_dict["base"])
        # Optimizer.load_state_dict maps the saved indices onto our params and casts the slow
        # weights to each param's dtype and device; it also rebinds param_groups, so share again.
        super().load_state_dict({"state": state_dict["state"], "param_groups": state_dict["base"]["param_groups"]})
        self.param_groups = self.base_optimizer.param_groups
        self.k = state_dict["lookahead"]["k"]
        self.alpha = state_dict["lookahead"]["alpha"]

    def __getstate__(self):
        # Optimizer.__getstate__ keeps only defaults, state and param_groups (pickle, deepcopy).
        return {**super().__getstate__(), "base_optimizer": self.base_optimizer, "k": self.k,
                "alpha": self.alpha, "foreach": self.foreach}

    def __repr__(self) -> str:
        return f"Lookahead(k={self.k}, alpha={self.alpha}, base_optimizer={self.base_optimizer!r})"


def _single_tensor_lookahead(params, slow_params, *, alpha):
    for param, slow in zip(params, slow_params):
        slow.add_(param.sub(slow), alpha=alpha)
        param.copy_(slow)


def _multi_tensor_lookahead(params, slow_params, *, alpha):
    for device_params, device_slow in group_tensors(params, slow_params).values():
        differences = torch._foreach_sub(device_params, device_slow)
        torch._foreach_add_(device_slow, differences, alpha=alpha)
        torch._foreach_copy_(device_params, device_slow)
