"""Block-wise quantization (optim.quantization) against independent oracles: the dynamic tree map
decoded bit pattern by bit pattern from the paper's description, nearest codes by brute force,
and the round-trip error bound derived from the map's own gaps."""

from __future__ import annotations

import pytest
import torch

from optim import quantization as q


def _decode_dynamic(pattern: int, signed: bool) -> float:
    """One 8-bit pattern of the dynamic tree map (Dettmers 2016, sec. 3; 2022, fig. 2): an
    optional sign bit, ``e`` zero bits for the decimal exponent 10^-e, an indicator 1 bit, then
    the fraction bits ``k`` of a linear bin of [0.1, 1], valued at the bin's middle.  The
    pattern with no indicator bit is 0, and its signed twin (``-0``) is 1."""
    bits = format(pattern, "08b")
    sign, body = (bits[0], bits[1:]) if signed else ("0", bits)
    if "1" not in body:
        return 1.0 if sign == "1" else 0.0
    if not signed and body == "00000001":
        return 1.0  # unsigned: the exponent past the smallest decade plays -0's part
    e = body.index("1")
    fraction = body[e + 1:]
    n = len(fraction)
    k = int(fraction, 2) if fraction else 0
    value = 10.0 ** (-e) * (0.1 + 0.9 * (k + 0.5) / 2**n)
    return -value if sign == "1" else value


@pytest.mark.parametrize("signed", [True, False], ids=["signed", "unsigned"])
def test_dynamic_map_is_the_papers_bit_layout(signed):
    decoded = torch.tensor(sorted(_decode_dynamic(p, signed) for p in range(256)), dtype=torch.float64)
    built = q.dynamic_map(signed)
    assert built.dtype == torch.float32 and built.shape == (256,)
    assert torch.unique(built).numel() == 256, "256 distinct codes"
    assert torch.all(built[1:] > built[:-1]), "sorted"
    torch.testing.assert_close(built.double(), decoded, rtol=1e-6, atol=0)
    assert 0.0 in built.tolist() and 1.0 in built.tolist()
    low = -1.0 if signed else 0.0
    assert built.min() >= low and built.max() == 1.0
    if signed:  # the most negative code is the top decade's last bin middle, not -1
        assert built.min().item() == pytest.approx(-(1 - 0.9 / 128))
    else:
        assert built.min() == 0.0


@pytest.mark.parametrize("signed", [True, False], ids=["signed", "unsigned"])
def test_linear_map_is_evenly_spaced(signed):
    built = q.linear_map(signed)
    low = -1.0 if signed else 0.0
    expected = torch.tensor([low + (1.0 - low) * i / 255 for i in range(256)], dtype=torch.float64)
    torch.testing.assert_close(built.double(), expected, rtol=0, atol=1e-7)


def _bound(values: torch.Tensor, signed: bool) -> float:
    """The worst round-trip error of a value in [-1, 1] (or [0, 1]) as a fraction of its block's
    absmax: half the widest gap between neighbouring codes, or the distance from an end of the
    interval to the nearest code."""
    v = values.double()
    half_gap = ((v[1:] - v[:-1]).max() / 2).item()
    ends = [1.0 - v.max().item(), (v.min() - (-1.0 if signed else 0.0)).item()]
    return max(half_gap, *ends)


def _sample(kind: str, n: int, signed: bool, generator) -> torch.Tensor:
    if kind == "normal":
        x = torch.randn(n, generator=generator)
    else:  # magnitudes over eight decades, as Adam's second moment has
        x = torch.exp(torch.empty(n).uniform_(-18.0, 0.0, generator=generator))
        x *= torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0)
    return x if signed else x.abs()


ROUND_TRIPS = [
    pytest.param(kind, signed, block, dist, n, id=f"{kind}-{'s' if signed else 'u'}-{block}-{dist}-{n}")
    for kind in q.MAP_KINDS
    for signed in (True, False)
    for block in q.BLOCK_SIZES
    for dist, n in (("normal", 10_000), ("log-uniform", 5_000), ("normal", 2048))
]


@pytest.mark.parametrize("kind, signed, block, dist, n", ROUND_TRIPS)
def test_round_trip_error_is_within_the_maps_bound(kind, signed, block, dist, n):
    g = torch.Generator().manual_seed(n + block)
    x = _sample(dist, n, signed, g).reshape(-1, 10) if n % 10 == 0 else _sample(dist, n, signed, g)
    codes, absmax = q.quantize(x, signed=signed, kind=kind, block_size=block)
    assert codes.dtype == torch.uint8 and codes.shape == x.shape
    assert absmax.dtype == torch.float32 and absmax.shape == (-(-n // block),)

    flat = x.reshape(-1)
    padded = torch.cat([flat, flat.new_zeros(absmax.numel() * block - n)]).view(-1, block)
    expected_absmax = torch.stack([row.abs().max() for row in padded])
    assert torch.equal(absmax, expected_absmax)

    restored = q.dequantize(codes, absmax, signed=signed, kind=kind, block_size=block)
    per_element_absmax = expected_absmax.repeat_interleave(block)[:n].double()
    error = (restored.reshape(-1).double() - flat.double()).abs()
    bound = _bound(q.code_map(kind, signed), signed) * per_element_absmax
    assert torch.all(error <= bound * (1 + 1e-5) + 1e-12), (error - bound).max()


@pytest.mark.parametrize("kind", q.MAP_KINDS)
@pytest.mark.parametrize("signed", [True, False], ids=["signed", "unsigned"])
def test_every_value_takes_the_nearest_code(kind, signed):
    g = torch.Generator().manual_seed(3)
    x = _sample("log-uniform", 3000, signed, g)
    codes, absmax = q.quantize(x, signed=signed, kind=kind, block_size=256)
    values = q.code_map(kind, signed).double()
    normalized = x.double() / absmax.repeat_interleave(256)[:3000].double()
    distance_to_chosen = (values[codes.long()] - normalized).abs()
    distance_to_nearest = (values[None, :] - normalized[:, None]).abs().min(dim=1).values
    torch.testing.assert_close(distance_to_chosen, distance_to_nearest, rtol=0, atol=1e-7)


@pytest.mark.parametrize("kind", q.MAP_KINDS)
@pytest.mark.parametrize("signed", [True, False], ids=["signed", "unsigned"])
def test_the_prefix_table_search_is_torch_bucketize(kind, signed):
    """The table lookup against torch.bucketize over the midpoints, on random values over every
    decade, the codes themselves, the midpoints exactly, their float32 neighbours, 0, -0 and
    subnormals."""
    values = q.code_map(kind, signed)
    midpoints = (values[1:] + values[:-1]) / 2
    low = -1.0 if signed else 0.0
    g = torch.Generator().manual_seed(11)
    random = _sample("log-uniform", 200_000, signed, g).clamp(values[0], values[-1])
    edges = torch.cat([values, midpoints, torch.nextafter(midpoints, torch.tensor(2.0)),
                       torch.nextafter(midpoints, torch.tensor(-2.0)), torch.tensor([0.0, -0.0, 1e-40, -1e-40, low, 1.0])])
    x = torch.cat([random, edges.clamp(values[0], values[-1])])
    assert torch.equal(q.nearest_codes(x, signed=signed, kind=kind), torch.bucketize(x, midpoints))


def test_dynamic_map_keeps_small_values_that_a_linear_map_loses():
    """The paper's reason for the dynamic map: relative precision across decades.  A block whose
    absmax is 1 and whose other values are near 1e-3 keeps them within 10% with the dynamic map;
    the linear map's smallest non-zero step (2/255) rounds them to 0."""
    x = torch.cat([torch.ones(1), torch.full((255,), 1.234e-3)])
    dyn = q.dequantize(*q.quantize(x, kind="dynamic", block_size=256), kind="dynamic", block_size=256)
    lin = q.dequantize(*q.quantize(x, kind="linear", block_size=256), kind="linear", block_size=256)
    assert torch.all((dyn[1:] / x[1:] - 1).abs() < 0.1)
    assert torch.all((lin[1:] - x[1:]).abs() >= 0.9 * x[1:])


def test_all_zero_blocks_and_zero_state_round_trip_to_exact_zeros():
    x = torch.zeros(5000)
    x[4500] = 2.0
    codes, absmax = q.quantize(x)
    assert absmax.tolist() == [0.0, 0.0, 2.0]  # blocks of 2048: the value sits in the third
    restored = q.dequantize(codes, absmax)
    assert torch.equal(restored == 0, x == 0) and restored[4500] == 2.0
    for signed in (True, False):
        codes, absmax = q.zero_state(torch.empty(5000), signed=signed)
        assert codes.dtype == torch.uint8 and torch.count_nonzero(q.dequantize(codes, absmax, signed=signed)) == 0
        assert torch.all(q.code_map("dynamic", signed)[codes.long()] == 0)


def test_unknown_map_kind_is_rejected_by_name():
    with pytest.raises(ValueError, match="map kind"):
        q.code_map("quantile", True)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA; run where a GPU is lent")
@pytest.mark.parametrize("signed", [True, False], ids=["signed", "unsigned"])
def test_cuda_codes_equal_the_cpu_codes(signed):
    x = _sample("log-uniform", 50_000, signed, torch.Generator().manual_seed(9))
    cpu = q.quantize(x, signed=signed)
    gpu = q.quantize(x.cuda(), signed=signed)
    assert torch.equal(gpu[1].cpu(), cpu[1])
    # a value on a midpoint may round either way on a different device's arithmetic
    assert (gpu[0].cpu() != cpu[0]).float().mean() < 1e-3
    torch.testing.assert_close(q.dequantize(*gpu, signed=signed).cpu(), q.dequantize(*cpu, signed=signed),
                               rtol=0, atol=float(_bound(q.dynamic_map(signed), signed) * cpu[1].max()) * 2)
