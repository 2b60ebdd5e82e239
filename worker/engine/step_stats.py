"""The per-step gradient norm and update ratio (as squared norms), at a cost close to nothing.

When every parameter shares one device and dtype, the parameters and their gradients are made
views into two flat buffers (as apex and DeepSpeed do for their fused optimizers): then the
global gradient norm, the copy of the weights before the step, ‖θ_t − θ_{t−1}‖ and ‖θ_{t−1}‖ are
one kernel each, and zeroing the gradients is one ``zero_`` instead of one per tensor.
Backward accumulates into the existing ``.grad`` views in place, so the layout survives as long
as nothing sets the gradients to None: the closure-driven solvers do (their closures call
``zero_grad``), so they, and mixed-dtype models, take the per-tensor path."""

from __future__ import annotations

import torch


def _total_sq(tensors: list[torch.Tensor]) -> torch.Tensor:
    if not tensors:
        return torch.zeros(())
    return torch.stack(torch._foreach_norm(tensors)).square().sum()


def _sq(flat: torch.Tensor) -> torch.Tensor:
    # a BLAS dot is several times faster than torch's generic norm reduction on CPU
    return torch.dot(flat, flat)


class StepStats:
    def __init__(self, params: list[torch.Tensor], *, flat: bool):
        self.params = params
        self.detached = [p.detach() for p in params]
        same = len({(p.device, p.dtype) for p in params}) == 1
        self.flat = flat and same and bool(params)
        if self.flat:
            self.weights = torch.cat([p.detach().reshape(-1) for p in params])
            self.grads = torch.zeros_like(self.weights)
            offset = 0
            for p in params:
                n = p.numel()
                p.data = self.weights[offset:offset + n].view_as(p)
                p.grad = self.grads[offset:offset + n].view_as(p)
                offset += n
            self.before = torch.empty_like(self.weights)
        else:
            self.before_list = [torch.empty_like(p) for p in params]

    def zero_grad(self, optimizer: torch.optim.Optimizer) -> None:
        if self.flat:
            self.grads.zero_()
        else:
            optimizer.zero_grad(set_to_none=True)

    def grad_sq(self) -> torch.Tensor:
        """‖∇‖² over all parameters (as they are now: call before clipping for the raw norm)."""
        if self.flat:
            return _sq(self.grads)
        return _total_sq([p.grad for p in self.params if p.grad is not None])

    def snapshot(self) -> None:
        """Remember θ_{t−1}; call right before the optimizer step."""
        if self.flat:
            self.before.copy_(self.weights)
        else:
            torch._foreach_copy_(self.before_list, self.detached)

    def update_sq(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(‖θ_t − θ_{t−1}‖², ‖θ_{t−1}‖²); call after the step.  Squares, so the caller takes
        the square roots of many steps at once, off the training path."""
        if self.flat:
            weight = _sq(self.before)
            return _sq(self.before.sub_(self.weights)), weight
        weight = _total_sq(self.before_list)
        torch._foreach_sub_(self.before_list, self.detached)
        return _total_sq(self.before_list), weight
