"""Gradient tools: clipping (same contract as ``torch.nn.utils``), annealed gradient noise,
and central-difference gradients with a gradient checker."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch

from optim._base import default_foreach, group_tensors
from optim._validate import check_ge, check_gt

__all__ = ["clip_grad_norm_", "clip_grad_value_", "GradientNoise", "numeric_gradient", "gradcheck", "GradcheckError"]

Params = torch.Tensor | Iterable[torch.Tensor]


def _grads(parameters: Params) -> list[torch.Tensor]:
    if isinstance(parameters, torch.Tensor):
        parameters = [parameters]
    return [p.grad for p in parameters if p.grad is not None]


def _use_foreach(foreach: bool | None, grads: list[torch.Tensor]) -> bool:
    return foreach if foreach is not None else default_foreach(grads)


def clip_grad_norm_(
    parameters: Params,
    max_norm: float,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
    foreach: bool | None = None,
) -> torch.Tensor:
    """Scale the gradients so that their joint ``norm_type``-norm is at most ``max_norm``.

    The norm is taken over all gradients together, as if concatenated into one vector:
    :math:`\\lVert g \\rVert = \\lVert (\\lVert g_1 \\rVert, \\dots, \\lVert g_n \\rVert) \\rVert`.
    Every gradient is multiplied by :math:`\\min(1, \\text{max\\_norm} / (\\lVert g \\rVert + 10^{-6}))`
    (always, even by 1, to avoid a host-device sync).  Same signature and result as
    ``torch.nn.utils.clip_grad_norm_``.

    Args:
        parameters: a tensor or an iterable of tensors whose ``.grad`` is clipped in place.
        max_norm (float): largest allowed norm.
        norm_type (float): p of the p-norm; ``float("inf")`` for the largest absolute value.
        error_if_nonfinite (bool): raise ``RuntimeError`` if the total norm is NaN or infinite.
        foreach (bool, optional): use the ``torch._foreach_*`` kernels; ``None`` picks them when
            every gradient is on CUDA.

    Returns:
        The total norm of the gradients before clipping (a 0-dim tensor; ``tensor(0.)`` if no
        parameter has a gradient).

    Example:
        >>> loss.backward()
        >>> clip_grad_norm_(model.parameters(), max_norm=1.0)
        >>> opt.step()
    """
    grads = _grads(parameters)
    max_norm, norm_type = float(max_norm), float(norm_type)
    if not grads:
        return torch.tensor(0.0)
    first_device = grads[0].device
    norms: list[torch.Tensor] = []
    grouped = group_tensors(grads, grads).values()
    for device_grads, _ in grouped:
        if _use_foreach(foreach, device_grads):
            norms.extend(torch._foreach_norm(device_grads, norm_type))
        else:
            norms.extend(torch.linalg.vector_norm(g, norm_type) for g in device_grads)
    total_norm = torch.linalg.vector_norm(torch.stack([n.to(first_device) for n in norms]), norm_type)
    if error_if_nonfinite and not torch.isfinite(total_norm):
        raise RuntimeError(
            f"The total norm of order {norm_type} for gradients from `parameters` is non-finite, so it "
            "cannot be clipped. To disable this error and scale the gradients by the non-finite norm "
            "anyway, set `error_if_nonfinite=False`"
        )
    coefficient = torch.clamp(max_norm / (total_norm + 1e-6), max=1.0)
    for device_grads, _ in grouped:
        device_coefficient = coefficient.to(device_grads[0].device)
        if _use_foreach(foreach, device_grads):
            torch._foreach_mul_(device_grads, device_coefficient)
        else:
            for g in device_grads:
                g.mul_(device_coefficient)
    return total_norm


def clip_grad_value_(parameters: Params, clip_value: float, foreach: bool | None = None) -> None:
    """Clamp every gradient element into ``[-clip_value, clip_value]`` in place.

    Same signature and result as ``torch.nn.utils.clip_grad_value_``.

    Example:
        >>> loss.backward()
        >>> clip_grad_value_(model.parameters(), clip_value=0.5)
    """
    clip_value = float(clip_value)
    grads = _grads(parameters)
    for device_grads, _ in group_tensors(grads, grads).values():
        if _use_foreach(foreach, device_grads):
            torch._foreach_clamp_min_(device_grads, -clip_value)
            torch._foreach_clamp_max_(device_grads, clip_value)
        else:
            for g in device_grads:
                g.clamp_(min=-clip_value, max=clip_value)


class GradientNoise:
    """Annealed Gaussian gradient noise (Neelakantan et al., 2015).

    Before every optimizer step, each gradient element gets independent noise

    .. math::
        g_t \\leftarrow g_t + \\mathcal N(0, \\sigma_t^2), \\qquad \\sigma_t^2 = \\frac{\\eta}{(1 + t)^\\gamma}

    where :math:`t = 0, 1, \\dots` counts the calls.  The paper picks :math:`\\eta` from
    {0.01, 0.3, 1.0} and fixes :math:`\\gamma = 0.55`.

    Call the object after ``backward()`` and before ``step()``, or let the optimizer call it
    through a step pre-hook with :meth:`register`.  The noise comes from one
    ``torch.Generator`` per device, seeded with ``seed``; :meth:`state_dict` holds the counter
    and the generators' states, so a resumed run draws the same noise.

    Args:
        params (iterable): tensors, or param-group dicts, whose ``.grad`` gets the noise.
        eta (float): :math:`\\eta > 0` (default: 0.01).
        gamma (float): :math:`\\gamma \\ge 0` (default: 0.55).
        seed (int, optional): seed of the noise generators; ``None`` draws one from torch's global
            generator, so ``torch.manual_seed`` makes a run reproducible (default: None).

    Example:
        >>> noise = GradientNoise(model.parameters(), eta=0.3, seed=0)
        >>> handle = noise.register(opt)   # or call noise() between backward() and step()
        >>> loss.backward()
        >>> opt.step()

    Reference:
        A. Neelakantan, L. Vilnis, Q. V. Le, I. Sutskever et al., "Adding Gradient Noise Improves
        Learning for Very Deep Networks", arXiv:1511.06807, 2015.
    """

    def __init__(self, params, eta: float = 0.01, gamma: float = 0.55, *, seed: int | None = None):
        check_gt("eta", eta)
        check_ge("gamma", gamma)
        if seed is None:
            seed = int(torch.randint(0, 2**62, ()).item())
        elif isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"Invalid seed: {seed!r} (must be None or an integer >= 0)")
        self.params = [
            p for item in params for p in (item["params"] if isinstance(item, dict) else [item])
        ]
        self.eta, self.gamma, self.seed = eta, gamma, seed
        self.step = 0
        self._generators: dict[str, torch.Generator] = {}

    def variance(self, step: int | None = None) -> float:
        """:math:`\\sigma_t^2` at ``step`` (default: the next call's)."""
        t = self.step if step is None else step
        return self.eta / (1 + t) ** self.gamma

    def __call__(self) -> float:
        """Add this step's noise to every gradient; returns the standard deviation used."""
        std = self.variance() ** 0.5
        with torch.no_grad():
            for p in self.params:
                if p.grad is None:
                    continue
                generator = self._generator(p.grad.device)
                noise = torch.randn(p.grad.shape, generator=generator, dtype=p.grad.dtype, device=p.grad.device)
                p.grad.add_(noise, alpha=std)
        self.step += 1
        return std

    def register(self, optimizer: torch.optim.Optimizer):
        """Run before every ``optimizer.step()``; returns the hook handle (``.remove()`` undoes it)."""

        def add_noise(_optimizer, _args, _kwargs) -> None:  # a pre-hook returning a value replaces step's args
            self()

        return optimizer.register_step_pre_hook(add_noise)

    def state_dict(self) -> dict:
        return {
            "step": self.step,
            "seed": self.seed,
            "generators": {device: g.get_state() for device, g in self._generators.items()},
        }

    def load_state_dict(self, state: dict) -> None:
        self.step, self.seed = state["step"], state["seed"]
        self._generators = {}
        for device, generator_state in state["generators"].items():
            self._generator(torch.device(device)).set_state(generator_state)

    def _generator(self, device: torch.device) -> torch.Generator:
        key = str(device)
        if key not in self._generators:
            self._generators[key] = torch.Generator(device=device).manual_seed(self.seed)
        return self._generators[key]


def numeric_gradient(f: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Derivative of ``f`` at ``x`` by central differences, :math:`(f(x + \\epsilon e_i) - f(x - \\epsilon e_i)) / 2\\epsilon`.

    The truncation error is :math:`O(\\epsilon^2)` and the rounding error about
    :math:`\\text{ulp}(f) / \\epsilon`; use float64 (the default ``eps`` suits it).

    Returns:
        A tensor of shape ``f(x).shape + x.shape``: the gradient for a scalar ``f``, the
        Jacobian otherwise.  ``f`` is called ``2 * x.numel()`` times, without autograd, on a
        copy of ``x``.

    Example:
        >>> numeric_gradient(lambda x: (x**3).sum(), torch.tensor([1.0, 2.0], dtype=torch.float64))
        tensor([ 3., 12.], dtype=torch.float64)
    """
    check_gt("eps", eps)
    x = x.detach().clone()
    flat = x.view(-1)
    with torch.no_grad():
        out_shape = torch.as_tensor(f(x)).shape
        columns = []
        for i in range(flat.numel()):
            original = flat[i].item()
            flat[i] = original + eps
            plus = torch.as_tensor(f(x)).detach().clone()
            flat[i] = original - eps
            minus = torch.as_tensor(f(x)).detach().clone()
            flat[i] = original
            columns.append(((plus - minus) / (2 * eps)).reshape(-1))
        jacobian = torch.stack(columns, dim=-1) if columns else torch.zeros(out_shape.numel(), 0, dtype=x.dtype)
    return jacobian.reshape(*out_shape, *x.shape)


class GradcheckError(RuntimeError):
    """Autograd's gradient disagrees with the central-difference one."""


def gradcheck(
    f: Callable[..., torch.Tensor],
    inputs: torch.Tensor | Iterable[torch.Tensor],
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    raise_exception: bool = True,
) -> bool:
    """Compare the Jacobian autograd computes for ``f(*inputs)`` with :func:`numeric_gradient`.

    Every input with ``requires_grad=True`` is checked, element by element:
    :math:`|J_{autograd} - J_{numeric}| \\le \\text{atol} + \\text{rtol} \\, |J_{numeric}|`.
    Use float64 inputs; in float32 the central difference is too coarse for these tolerances.

    Returns:
        ``True`` if every element agrees.  Otherwise raises :class:`GradcheckError` naming the
        input and the worst element, or returns ``False`` with ``raise_exception=False``.

    Example:
        >>> x = torch.randn(3, dtype=torch.float64, requires_grad=True)
        >>> gradcheck(lambda x: torch.sin(x) * x, (x,))
        True
    """
    inputs = (inputs,) if isinstance(inputs, torch.Tensor) else tuple(inputs)
    checked = [i for i, x in enumerate(inputs) if isinstance(x, torch.Tensor) and x.requires_grad]
    if not checked:
        raise ValueError("gradcheck needs at least one input tensor with requires_grad=True")
    with torch.enable_grad():
        out = torch.as_tensor(f(*inputs)).reshape(-1)
    for i in checked:
        x = inputs[i]

        def f_of_x(xi, i=i):
            return f(*inputs[:i], xi, *inputs[i + 1 :])

        numeric = numeric_gradient(f_of_x, x, eps).reshape(out.numel(), x.numel())
        analytic = torch.zeros_like(numeric)
        if out.requires_grad:
            for j in range(out.numel()):
                (g,) = torch.autograd.grad(out[j], x, retain_graph=True, allow_unused=True)
                if g is not None:
                    analytic[j] = g.reshape(-1)
        error = (analytic - numeric).abs() - (atol + rtol * numeric.abs())
        if (error > 0).any():
            if not raise_exception:
                return False
            j, k = divmod(int(error.argmax()), x.numel())
            raise GradcheckError(
                f"Jacobian mismatch for input {i}, output element {j}, input element {k}: "
                f"autograd {analytic[j, k].item():.6g} vs numeric {numeric[j, k].item():.6g} "
                f"(atol={atol}, rtol={rtol})"
            )
    return True
