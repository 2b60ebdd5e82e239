"""Filter-normalised random directions in weight space and the projection of a point onto them
(Li et al. 2018, "Visualizing the Loss Landscape of Neural Nets", §4 and §7).

A direction d has the shape of the weights θ, one tensor per parameter.  It is drawn from a
standard Gaussian and then, filter by filter, rescaled to the norm of the weights' filter:

    d_{i,j} ← d_{i,j} / ‖d_{i,j}‖ · ‖θ_{i,j}‖

where d_{i,j} is the j-th filter (output slice along dimension 0) of layer i: a convolution's
output channel, a linear layer's row (the paper treats a dense layer as a 1×1 convolution), a
Transformer position embedding's row.  One-dimensional parameters (biases, BatchNorm and
LayerNorm scales and shifts) get a zero direction, as the paper does for its plots (its code's
``ignore='biasbn'``): moving along d changes only the weight matrices and kernels, and a filter
whose weights are all zero gets a zero direction too.  Buffers (BatchNorm's running statistics)
are not parameters and never move."""

from __future__ import annotations

import torch
from torch import nn

# guards ‖d_{i,j}‖ (a Gaussian filter is never exactly zero; this keeps a 0/0 out all the same)
EPS = 1e-10

Direction = list[torch.Tensor]


def weights(model: nn.Module) -> Direction:
    """The model's parameters, detached copies in ``model.parameters()`` order."""
    return [p.detach().clone() for p in model.parameters()]


def normalise_filters(direction: Direction, theta: Direction) -> Direction:
    """``direction`` rescaled filter by filter to the norms of ``theta``'s filters; 1-D tensors zero."""
    out = []
    for d, w in zip(direction, theta, strict=True):
        if w.dim() <= 1:
            out.append(torch.zeros_like(w))
            continue
        d_norm = d.flatten(1).norm(dim=1)
        w_norm = w.flatten(1).norm(dim=1)
        scale = (w_norm / (d_norm + EPS)).reshape(-1, *([1] * (w.dim() - 1)))
        out.append(d * scale)
    return out


def random_direction(theta: Direction, generator: torch.Generator) -> Direction:
    """A Gaussian direction shaped like ``theta`` (drawn on the CPU, so a seed gives the same
    direction on every machine), filter-normalised to it."""
    drawn = [torch.randn(w.shape, generator=generator, dtype=w.dtype).to(w.device) for w in theta]
    return normalise_filters(drawn, theta)


def flat(tensors: Direction) -> torch.Tensor:
    return torch.cat([t.reshape(-1).double() for t in tensors])


def project(delta: Direction, directions: list[Direction]) -> tuple[list[float], float]:
    """Coordinates c of ``delta`` in the span of ``directions`` (least squares, ‖delta − Σ c_k d_k‖
    smallest; one direction: c = ⟨delta, d⟩ / ‖d‖²), and the share of ‖delta‖ the span leaves
    out, ‖delta − Σ c_k d_k‖ / ‖delta‖ (0 when delta is zero).

    With θ = θ* + Σ c_k d_k this places a point of the trajectory (the initial weights, with
    delta = θ_0 − θ*) on the landscape's axes.  Random directions in a space of many dimensions
    are nearly orthogonal to any fixed delta, so the share left out is usually close to 1 and the
    projected start lands near the centre (the paper's §7)."""
    target = flat(delta)
    basis = torch.stack([flat(d) for d in directions], dim=1)
    coords = torch.linalg.lstsq(basis, target.unsqueeze(1)).solution.squeeze(1)
    residual = target - basis @ coords
    norm = target.norm().item()
    return coords.tolist(), (residual.norm().item() / norm if norm > 0 else 0.0)


@torch.no_grad()
def place(model: nn.Module, theta: Direction, directions: list[Direction], coords: tuple[float, ...]) -> None:
    """Set the model's parameters to θ* + Σ_k coords[k] · directions[k]."""
    for index, (p, w) in enumerate(zip(model.parameters(), theta, strict=True)):
        value = w.clone()
        for c, d in zip(coords, directions, strict=True):
            if c:
                value.add_(d[index], alpha=c)
        p.copy_(value)
