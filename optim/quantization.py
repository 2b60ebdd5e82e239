r"""8-bit optimizer state: block-wise quantization of a moment to uint8 codes (Dettmers et al. 2022).

A state tensor :math:`x` is cut into blocks of ``block_size`` consecutive elements (the last one
padded with zeros); each block :math:`b` keeps its absolute maximum :math:`N_b = \max_{i\in b}|x_i|`
in float32 and each element the index of the code nearest to :math:`x_i / N_b` in a sorted map
:math:`Q` of 256 values in [-1, 1]:

.. math::
    c_i = \arg\min_j |Q_j - x_i / N_b|, \qquad \tilde x_i = Q_{c_i} N_b

so a round trip errs by at most half the widest gap between adjacent codes times :math:`N_b`,
or, for an element of magnitude :math:`N_b`, the distance from ±1 to the end code of its sign.  Per element that is 1 byte plus
``4 / block_size`` bytes of absmax: with the default block of 2048, 8-bit Adam keeps 2.004 bytes
per parameter instead of 8.

Two maps, as in the paper (sec. 2 and appendix):

* **dynamic tree** (:func:`dynamic_map`): a sign bit, then ``e`` zero bits giving the decimal
  exponent :math:`10^{-e}`, a one bit that ends the exponent, and the remaining bits a linear
  fraction in [0.1, 1] (the mean of each of its :math:`2^k` bins); the all-zero pattern is 0 and
  its redundant sign twin is 1.  Values from about 1e-7 to 1 keep their relative precision.  The
  unsigned map (for Adam's second moment, which is never negative) spends the sign bit as one
  more fraction bit.  The signed map holds 0 and 1 but not -1: its most negative code is
  ``-(1 - 0.9/128)``, the construction's (and bitsandbytes') choice.
* **linear** (:func:`linear_map`): 256 evenly spaced values from -1 (or 0) to 1.

Tensors with fewer than :data:`MIN_QUANTIZED_SIZE` elements (biases, norms) keep 32-bit state, as
the paper does: they cost little and are where quantization error hurts most.  The paper's
*stable embedding* layer (a layer-norm'd embedding for NLP models) is not implemented here.

Reference: T. Dettmers, M. Lewis, S. Shleifer, L. Zettlemoyer, "8-bit Optimizers via Block-wise
Quantization", ICLR 2022 (arXiv:2110.02861); the dynamic tree map: T. Dettmers, "8-Bit
Approximations for Parallelism in Deep Learning", ICLR 2016 (arXiv:1511.04561).
"""

from __future__ import annotations

import torch

# the optimizers' block (2048) and the size under which a tensor's state stays 32-bit (4096, the
# paper's), declared with the 8-bit solvers' catalog entries
from optim.catalog.solvers_eightbit import BLOCK_SIZE, MIN_QUANTIZED_SIZE

STATE_BITS = (32, 8)
BLOCK_SIZES = (256, 2048)
MAP_KINDS = ("dynamic", "linear")
ABSMAX_SUFFIX = "_absmax"

_EXPONENT_BITS = 7  # the dynamic map's decimal exponents 10^-6 .. 10^0


def dynamic_map(signed: bool = True) -> torch.Tensor:
    """The 256 sorted values of the dynamic tree map (float32), built from its bit layout: for each
    exponent ``e`` in 0..6 the fraction bins ``linspace(0.1, 1, 2**k + 1)`` (``k`` = fraction bits
    left after the sign, ``e`` zeros and the indicator; one more when unsigned), their means
    scaled by ``10**-e``, mirrored when signed; then 0 and 1."""
    values: list[float] = [0.0, 1.0]
    for e in range(_EXPONENT_BITS):
        fraction_bits = _EXPONENT_BITS - 1 - e + (0 if signed else 1)
        edges = torch.linspace(0.1, 1.0, 2**fraction_bits + 1, dtype=torch.float64)
        means = ((edges[:-1] + edges[1:]) / 2 * 10.0 ** (-e)).tolist()
        values += means + ([-m for m in means] if signed else [])
    return torch.tensor(sorted(values), dtype=torch.float32)


def linear_map(signed: bool = True) -> torch.Tensor:
    """256 evenly spaced values on [-1, 1] (signed) or [0, 1] (float32)."""
    return torch.linspace(-1.0 if signed else 0.0, 1.0, 256, dtype=torch.float32)


def code_map(kind: str, signed: bool) -> torch.Tensor:
    if kind not in MAP_KINDS:
        raise ValueError(f"Invalid map kind: {kind!r} (must be one of {list(MAP_KINDS)})")
    return dynamic_map(signed) if kind == "dynamic" else linear_map(signed)


_MAPS: dict[tuple[str, bool, torch.device], tuple[torch.Tensor, torch.Tensor]] = {}


def _map_and_midpoints(kind: str, signed: bool, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The map on ``device`` and the midpoints between its neighbours (the rounding thresholds), cached."""
    key = (kind, signed, device)
    if key not in _MAPS:
        values = code_map(kind, signed).to(device)
        _MAPS[key] = values, (values[1:] + values[:-1]) / 2
    return _MAPS[key]


_TABLES: dict[tuple[str, bool, torch.device], tuple[torch.Tensor, torch.Tensor] | None] = {}


def _prefix_table(kind: str, signed: bool, device: torch.device) -> tuple[torch.Tensor, torch.Tensor] | None:
    """A lookup table for the nearest code, indexed by a float32's top 16 bits (sign, exponent, 7
    mantissa bits): the code of the smallest value with that prefix, and the midpoints (padded
    with +inf) to step past the one midpoint the prefix's interval may hold.  None when some
    interval in [-1, 1] holds two midpoints (a map finer than 1/128 relative); then the search is
    ``torch.bucketize``.  Cached per map and device."""
    key = (kind, signed, device)
    if key not in _TABLES:
        _, midpoints = _map_and_midpoints(kind, signed, torch.device("cpu"))
        prefix = torch.arange(65536, dtype=torch.int64)
        low_bits = torch.where(prefix < 32768, prefix << 16, (prefix << 16) | 0xFFFF)
        high_bits = torch.where(prefix < 32768, (prefix << 16) | 0xFFFF, prefix << 16)
        low = low_bits.to(torch.int32).view(torch.float32)
        high = high_bits.to(torch.int32).view(torch.float32)
        first, last = torch.bucketize(low, midpoints), torch.bucketize(high, midpoints)
        inside = (low.abs() <= 1) & (high.abs() <= 1)
        table = None
        if bool(((last - first)[inside] <= 1).all()):
            padded = torch.cat([midpoints, midpoints.new_full((1,), float("inf"))])
            table = first.to(torch.int16).to(device), padded.to(device)
        _TABLES[key] = table
    return _TABLES[key]


def nearest_codes(normalized: torch.Tensor, *, signed: bool = True, kind: str = "dynamic") -> torch.Tensor:
    """The index of the nearest code to each float32 value in [-1, 1] (a tie to the smaller), as
    ``torch.bucketize(normalized, midpoints)`` gives it, about 6x faster on CPU through
    :func:`_prefix_table`."""
    table = _prefix_table(kind, signed, normalized.device)
    if table is None:
        return torch.bucketize(normalized, _map_and_midpoints(kind, signed, normalized.device)[1])
    first, padded = table
    codes = first[((normalized.contiguous().view(torch.int32) >> 16) & 0xFFFF).long()].long()
    return codes + (normalized > padded[codes])


def n_blocks(numel: int, block_size: int = BLOCK_SIZE) -> int:
    return -(-numel // block_size)


def _blocks(x: torch.Tensor, block_size: int) -> torch.Tensor:
    flat = x.reshape(-1)
    pad = n_blocks(flat.numel(), block_size) * block_size - flat.numel()
    if pad:
        flat = torch.cat([flat, flat.new_zeros(pad)])
    return flat.view(-1, block_size)


def quantize(
    x: torch.Tensor, *, signed: bool = True, kind: str = "dynamic", block_size: int = BLOCK_SIZE,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(codes, absmax)``: uint8 codes shaped like ``x`` and one float32 absmax per block.  Each
    element takes the nearest code (a tie goes to the smaller one); an all-zero block has absmax 0."""
    values, _ = _map_and_midpoints(kind, signed, x.device)
    blocks = _blocks(x.detach().float(), block_size)
    absmax = blocks.abs().amax(dim=1)
    scale = torch.where(absmax > 0, absmax, torch.ones_like(absmax))
    normalized = (blocks / scale[:, None]).clamp_(values[0], values[-1])
    codes = nearest_codes(normalized, signed=signed, kind=kind).to(torch.uint8)
    return codes.view(-1)[: x.numel()].view(x.shape), absmax


def dequantize(
    codes: torch.Tensor, absmax: torch.Tensor, *, signed: bool = True, kind: str = "dynamic",
    block_size: int = BLOCK_SIZE,
) -> torch.Tensor:
    """A float32 tensor shaped like ``codes``: each code's map value times its block's absmax."""
    values, _ = _map_and_midpoints(kind, signed, codes.device)
    blocks = _blocks(values[codes.long()], block_size) * absmax.float()[:, None]
    return blocks.view(-1)[: codes.numel()].view(codes.shape)


def quantize_into(x: torch.Tensor, codes: torch.Tensor, absmax: torch.Tensor, *, signed: bool) -> None:
    """:func:`quantize` ``x`` and write the result over an existing state pair."""
    new_codes, new_absmax = quantize(x, signed=signed)
    codes.copy_(new_codes)
    absmax.copy_(new_absmax)


def state_bits_default(state_bits: int) -> dict:
    """The ``defaults`` entry for ``state_bits``: none for 32, so a 32-bit optimizer's param_groups
    (and state_dict) keep torch's keys exactly; a group may still set its own."""
    return {} if state_bits == 32 else {"state_bits": state_bits}


def wants_quantized_state(p: torch.Tensor, group: dict) -> bool:
    """Whether a parameter's new state is 8-bit: its group asks for it (``state_bits`` 8), and it
    is real floating point and not small."""
    bits = group.get("state_bits", 32)
    if bits not in STATE_BITS:
        raise ValueError(f"Invalid state_bits: {bits!r} (must be one of {list(STATE_BITS)})")
    return bits == 8 and p.is_floating_point() and p.numel() >= MIN_QUANTIZED_SIZE


def zero_state(p: torch.Tensor, *, signed: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Codes and absmax of an all-zero moment for ``p`` (absmax 0 makes every value 0; the codes
    point at the map's 0 all the same)."""
    values, _ = _map_and_midpoints("dynamic", signed, p.device)
    zero_code = int((values == 0).nonzero()[0])
    codes = torch.full_like(p, zero_code, dtype=torch.uint8, memory_format=torch.contiguous_format)
    return codes, torch.zeros(n_blocks(p.numel()), dtype=torch.float32, device=p.device)


def init_moment(state: dict, name: str, p: torch.Tensor, *, signed: bool) -> None:
    """Put an all-zero 8-bit moment ``name`` (codes) and ``name + "_absmax"`` into ``state``."""
    state[name], state[name + ABSMAX_SUFFIX] = zero_state(p, signed=signed)


def is_quantized(state: dict, name: str) -> bool:
    return name + ABSMAX_SUFFIX in state


def load_moment(state: dict, name: str, *, signed: bool) -> torch.Tensor:
    """The float32 value of the 8-bit moment ``name`` of ``state``."""
    return dequantize(state[name], state[name + ABSMAX_SUFFIX], signed=signed)


def store_moment(state: dict, name: str, value: torch.Tensor, *, signed: bool) -> None:
    quantize_into(value, state[name], state[name + ABSMAX_SUFFIX], signed=signed)


def restore_dtypes(states) -> None:
    """Undo ``torch.optim.Optimizer.load_state_dict``'s cast of every state tensor of a floating
    parameter to the parameter's dtype: codes back to uint8 (their values are exact small
    integers), absmax back to float32.  Called from the optimizers' ``__setstate__``."""
    for state in states:
        for key in [k for k in state if k.endswith(ABSMAX_SUFFIX)]:
            name = key[: -len(ABSMAX_SUFFIX)]
            state[key] = state[key].float()
            if name in state:
                state[name] = state[name].to(torch.uint8)


def quantized_members(optimizer: torch.optim.Optimizer, group: dict, name: str):
    """``(params, grads, states)`` of the parameters of ``group`` that have a gradient and whose
    moment ``name`` is 8-bit (their state exists: the group's ``_init_group`` has run)."""
    params = [p for p in group["params"] if p.grad is not None and is_quantized(optimizer.state[p], name)]
    return params, [p.grad for p in params], [optimizer.state[p] for p in params]


class QuantizedState:
    """Mixin for an optimizer whose moment ``exp_avg`` may be 8-bit (``state_bits``): its step
    runs the 32-bit parameters through the update paths ``foreach``/``fused`` pick (the base
    class's step), then the 8-bit ones through :meth:`_eightbit_step`; loading a state_dict
    gives the codes back their dtypes.  ``_state_bits`` is every group's unless it says otherwise."""

    _state_bits = 32

    def __setstate__(self, state):
        super().__setstate__(state)
        restore_dtypes(self.state.values())

    @torch.no_grad()
    def step(self, closure=None):
        loss = super().step(closure)
        for group in self.param_groups:
            params, grads, states = quantized_members(self, group, "exp_avg")
            if params:
                self._eightbit_step(params, grads, states, **self._hyperparameters(group))
        return loss

    def _eightbit_step(self, params, grads, states, **hyperparameters) -> None:
        raise NotImplementedError


STATE_BITS_DOC = (
    "state_bits (int, optional): 32, or 8 to keep the moments of every tensor of at least 4096 "
    "elements as block-wise quantized uint8 codes (``optim.quantization``; Dettmers et al. 2022); "
    "smaller tensors keep 32-bit moments (default: 32)."
)


def with_state_bits_doc(cls):
    """Class decorator: fill :data:`STATE_BITS_DOC` into the ``{state_bits}`` line of the docstring."""
    if cls.__doc__ is not None:
        cls.__doc__ = cls.__doc__.replace("{state_bits}", STATE_BITS_DOC)
    return cls


def state_bytes(optimizer: torch.optim.Optimizer) -> int:
    """Bytes held by the optimizer's state tensors (the sum of ``nbytes``; counters included), a
    wrapper's (Lookahead's ``base_optimizer``) included."""
    own = sum(
        value.nbytes for state in optimizer.state.values() for value in state.values() if torch.is_tensor(value)
    )
    inner = getattr(optimizer, "base_optimizer", None)
    return own + (state_bytes(inner) if isinstance(inner, torch.optim.Optimizer) else 0)
