"""Filter-normalised directions against Li et al. 2018's definition, computed here filter by filter
as the paper's reference code does (``normalize_direction``: each d_{i,j} scaled by
‖θ_{i,j}‖ / ‖d_{i,j}‖; biases and BatchNorm parameters zero under ``ignore='biasbn'``), and the
projection of a point onto the directions against points built from known coordinates."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from worker.lab import directions as dirs


def _small_model() -> nn.Module:
    torch.manual_seed(3)
    return nn.Sequential(nn.Conv2d(2, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 4 * 4, 3))


def _paper_normalised(direction: list[torch.Tensor], theta: list[torch.Tensor]) -> list[torch.Tensor]:
    out = []
    for d, w in zip(direction, theta):
        if w.dim() <= 1:
            out.append(torch.zeros_like(w))
            continue
        filters = [d[j] * (w[j].norm() / d[j].norm()) for j in range(w.shape[0])]
        out.append(torch.stack(filters))
    return out


def test_filter_normalisation_is_the_papers_definition():
    theta = dirs.weights(_small_model())
    generator = torch.Generator().manual_seed(0)
    raw = [torch.randn(w.shape, generator=generator) * 5 for w in theta]
    got = dirs.normalise_filters(raw, theta)
    expected = _paper_normalised(raw, theta)
    for g, e in zip(got, expected, strict=True):
        torch.testing.assert_close(g, e, rtol=1e-6, atol=1e-7)


def test_a_random_direction_matches_every_filters_norm_and_leaves_biases_and_batchnorm_still():
    model = _small_model()
    theta = dirs.weights(model)
    d = dirs.random_direction(theta, torch.Generator().manual_seed(1))
    names = [name for name, _ in model.named_parameters()]
    for name, dt, w in zip(names, d, theta, strict=True):
        if w.dim() == 1:  # conv and linear biases, BatchNorm's weight and bias
            assert torch.count_nonzero(dt) == 0, name
            continue
        for j in range(w.shape[0]):
            assert dt[j].norm().item() == pytest.approx(w[j].norm().item(), rel=1e-5), (name, j)
        # a random direction, not the weights rescaled
        cosine = torch.nn.functional.cosine_similarity(dt.flatten(), w.flatten(), dim=0)
        assert abs(cosine.item()) < 0.9, name
    again = dirs.random_direction(theta, torch.Generator().manual_seed(1))
    other = dirs.random_direction(theta, torch.Generator().manual_seed(2))
    assert all(torch.equal(a, b) for a, b in zip(d, again))
    assert not all(torch.equal(a, b) for a, b in zip(d, other))


def test_projection_recovers_known_coordinates_and_reports_what_the_plane_leaves_out():
    theta = dirs.weights(_small_model())
    generator = torch.Generator().manual_seed(4)
    d1, d2 = (dirs.random_direction(theta, generator) for _ in range(2))
    inside = [0.3 * a - 0.7 * b for a, b in zip(d1, d2)]
    coords, left_out = dirs.project(inside, [d1, d2])
    assert coords == pytest.approx([0.3, -0.7], abs=1e-6) and left_out == pytest.approx(0.0, abs=1e-6)

    # one direction: c = <delta, d> / ||d||^2, and the rest of delta is what the line leaves out
    c, left_out = dirs.project(inside, [d1])
    flat_delta, flat_d = dirs.flat(inside), dirs.flat(d1)
    expected = (flat_delta @ flat_d / (flat_d @ flat_d)).item()
    assert c == pytest.approx([expected], rel=1e-9)
    rest = flat_delta - expected * flat_d
    assert left_out == pytest.approx((rest.norm() / flat_delta.norm()).item(), rel=1e-9)
    assert dirs.project([torch.zeros_like(w) for w in theta], [d1]) == ([0.0], 0.0)


def test_place_sets_the_weights_to_the_grid_point_and_back():
    model = _small_model()
    theta = dirs.weights(model)
    generator = torch.Generator().manual_seed(5)
    d1, d2 = (dirs.random_direction(theta, generator) for _ in range(2))
    dirs.place(model, theta, [d1, d2], (0.5, -2.0))
    for p, w, a, b in zip(model.parameters(), theta, d1, d2):
        torch.testing.assert_close(p.detach(), w + 0.5 * a - 2.0 * b)
    dirs.place(model, theta, [d1, d2], (0.0, 0.0))
    assert all(torch.equal(p.detach(), w) for p, w in zip(model.parameters(), theta))
