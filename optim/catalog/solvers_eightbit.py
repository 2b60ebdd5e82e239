"""Catalog entries for the optimizers with 8-bit state: adam8bit, adamw8bit and lion8bit.

Each takes exactly the hyperparameters of the solver it quantizes (its entry in
``solvers_adam`` or ``solvers_paper``); only the state differs (``optim.quantization``).  They
are solvers of their own rather than a ``state_bits`` field of adam, adamw and lion: Adam and
AdamW keep torch's constructor signatures, which have no such argument.
"""

from optim.catalog import solvers_adam, solvers_paper
from optim.catalog.schema import SolverEntry

# the state layout, here so that torch-free code (the api's memory budget) reads it too: tensors of
# at least MIN_QUANTIZED_SIZE elements keep each moment as uint8 codes plus one float32 absmax per
# BLOCK_SIZE elements (optim.quantization); smaller ones keep float32 moments
BLOCK_SIZE = 2048
MIN_QUANTIZED_SIZE = 4096

_QUANTIZED = {e.name: e for e in (*solvers_adam.ENTRIES, *solvers_paper.ENTRIES)}
_REFERENCE = (
    "Dettmers, Lewis, Shleifer & Zettlemoyer, 8-bit Optimizers via Block-wise Quantization, ICLR 2022 "
    "(arXiv:2110.02861)"
)


def _eightbit(name: str, class_name: str, saving: str) -> SolverEntry:
    base = _QUANTIZED[name]
    return SolverEntry(
        name=f"{name}8bit",
        class_path=f"optim.{class_name}",
        family=base.family,
        summary=(
            f"{class_name.removesuffix('8bit')} with block-wise quantized 8-bit state: {saving} "
            "(tensors under 4096 elements stay 32-bit)."
        ),
        reference=f"{_REFERENCE}; {base.reference}",
        hyperparameters=base.hyperparameters,
    )


ENTRIES = (
    _eightbit("adam", "Adam8bit", "about 2 bytes per parameter instead of 8"),
    _eightbit("adamw", "AdamW8bit", "about 2 bytes per parameter instead of 8"),
    _eightbit("lion", "Lion8bit", "about 1 byte per parameter instead of 4"),
)
