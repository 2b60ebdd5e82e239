"""Argument text shared by the optimizers' docstrings, written once.

A docstring names a shared argument with a ``{name}`` placeholder at the start of a line (a
default may follow it), and the class is decorated with :func:`with_arg_docs`.  Placeholders are
replaced textually, not with ``str.format``, so LaTeX braces in the math need no escaping.
"""

from __future__ import annotations

import re

ARG_DOCS = {
    "params": "params (iterable): parameters or dicts defining parameter groups.",
    "lr": "lr (float, optional): learning rate.",
    "weight_decay": "weight_decay (float, optional): L2 penalty added to the gradient (default: 0).",
    "maximize": "maximize (bool, optional): maximize the objective instead of minimizing (default: False).",
    "foreach": (
        "foreach (bool, optional): use the multi-tensor ``torch._foreach_*`` path; ``None`` picks it "
        "when all parameters are on CUDA (or another device type with foreach kernels), like torch "
        "(default: None)."
    ),
    "eps": "eps (float, optional): term added to the denominator for numerical stability.",
    "betas": "betas (Tuple[float, float], optional): decay rates of the first and second moment averages.",
    "capturable": "capturable (bool, optional): accepted for torch compatibility; must be False.",
    "differentiable": "differentiable (bool, optional): accepted for torch compatibility; must be False.",
}

_PLACEHOLDER = re.compile(r"^( *)\{(\w+)\}", re.MULTILINE)


def fill_arg_docs(doc: str | None) -> str | None:
    """``doc`` with every ``{name}`` of :data:`ARG_DOCS` replaced by its text (``None`` under -OO)."""
    if doc is None:
        return None
    return _PLACEHOLDER.sub(lambda m: m.group(1) + ARG_DOCS.get(m.group(2), "{" + m.group(2) + "}"), doc)


def with_arg_docs(cls):
    """Class decorator: fill the shared argument text into ``cls.__doc__``."""
    cls.__doc__ = fill_arg_docs(cls.__doc__)
    return cls
