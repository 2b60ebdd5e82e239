""""Did you mean": a hint for the names a request gets wrong, added to pydantic's error messages.

An unknown solver, scheduler or architecture (a discriminated union's tag), an unknown choice
(a ``Literal``) and an unknown field (``extra="forbid"``) get the closest allowed name
(``difflib``), or the name a torch user is likely to have meant (``lr`` is ``base_lr`` here,
``optimizer`` is ``solver``, a scheduler ``cosine`` is ``cosineannealinglr``).  A field given
one level too high (``epochs`` beside ``name``) is pointed to its section (``training.epochs``).

Pure functions over pydantic's error list and the model the input was validated against; the
api adds them to its 422 answers (``api.errors``)."""

from __future__ import annotations

import re
import types
from collections.abc import Iterable, Mapping, Sequence
from difflib import get_close_matches
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel

# field names a torch (or Keras, Lightning) user types -> the name the field has here
FIELD_ALIASES = {
    "lr": "base_lr", "learning_rate": "base_lr", "base_learning_rate": "base_lr",
    "wd": "weight_decay", "l2": "weight_decay", "decay": "weight_decay",
    "batchsize": "batch_size", "bs": "batch_size",
    "epoch": "epochs", "n_epochs": "epochs", "num_epochs": "epochs", "max_epochs": "epochs",
    "optimizer": "solver", "optim": "solver", "opt": "solver",
    "model": "architecture", "arch": "architecture", "network": "architecture", "net": "architecture",
    "lr_scheduler": "scheduler", "schedule": "scheduler", "sched": "scheduler",
    "clip_grad_norm": "grad_clip_norm", "max_grad_norm": "grad_clip_norm", "gradient_clip_val": "grad_clip_norm",
    "clip_grad_value": "grad_clip_value",
    "split": "split_id", "tag": "tags", "desc": "description", "notes": "description",
    "dtype": "precision", "amp": "precision", "criterion": "loss", "loss_fn": "loss",
    "n_layers": "depth", "num_layers": "depth", "hidden_size": "width", "hidden_dim": "width",
    "nhead": "heads", "num_heads": "heads",
}
# catalog names typed in torch's or everyday words -> the catalog's name
NAME_ALIASES = {
    "cosine": "cosineannealinglr", "cosineannealing": "cosineannealinglr", "cosine_annealing": "cosineannealinglr",
    "cosine_restarts": "cosineannealingwarmrestarts", "warmrestarts": "cosineannealingwarmrestarts",
    "step": "steplr", "multistep": "multisteplr", "exponential": "exponentiallr", "exp": "exponentiallr",
    "onecycle": "onecyclelr", "one_cycle": "onecyclelr", "cyclic": "cycliclr", "plateau": "reducelronplateau",
    "polynomial": "polynomiallr", "poly": "polynomiallr", "none": "constant", "gpu": "cuda",
    "l-bfgs": "lbfgs", "l_bfgs": "lbfgs", "gd": "sgd", "momentum": "sgd",
    "conv1d": "cnn1d", "conv2d": "cnn2d", "cnn": "cnn2d", "perceptron": "mlp", "logistic": "linear",
}
# how a discriminated union's tag is named in a message, by the field that holds it
SECTION_NOUN = {"solver": "solver", "scheduler": "scheduler", "architecture": "architecture"}

Loc = Sequence[str | int]


# no name is longer; a longer input gets no hint (the spelling distance costs len(typed) × len(name))
MAX_TYPED = 100


def closest(typed: str, allowed: Iterable[str], aliases: Mapping[str, str] = FIELD_ALIASES) -> str | None:
    """The allowed name ``typed`` most likely meant: its alias, else the closest by spelling
    (case-insensitive), else None (also for an input over ``MAX_TYPED`` characters)."""
    if len(typed) > MAX_TYPED:
        return None
    allowed = list(dict.fromkeys(allowed))
    key = typed.strip().lower()
    alias = aliases.get(key) or aliases.get(key.replace("-", "_"))
    if alias in allowed:
        return alias
    by_lower = {a.lower(): a for a in allowed}
    if key in by_lower:
        return by_lower[key]
    # a slip of one or two keys (``adma``) before the longest common run (which would say ``adamax``)
    slips = sorted((typo_distance(key, a), a) for a in by_lower)
    if slips and slips[0][0] <= max(1, len(key) // 4):
        return by_lower[slips[0][1]]
    close = get_close_matches(key, list(by_lower), n=1, cutoff=0.6)
    return by_lower[close[0]] if close else None


def typo_distance(a: str, b: str) -> int:
    """Edits from ``a`` to ``b``: insertions, deletions, substitutions and swaps of neighbours
    (the optimal string alignment distance)."""
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        row = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = a[i - 1] != b[j - 1]
            row[j] = min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                row[j] = min(row[j], prev2[j - 2] + 1)
        prev2, prev = prev, row
    return prev[-1]


def _quoted(text: Any) -> list[str]:
    """The quoted names in a pydantic ``ctx`` list (``"'sgd', 'adam'"``, ``"'a' or 'b'"``)."""
    return re.findall(r"'([^']*)'", str(text or ""))


def _unwrap(annotation: Any) -> list[Any]:
    """The member types of an annotation, through ``Annotated``, unions, type aliases and lists."""
    value = getattr(annotation, "__value__", None)  # a TypeAliasType
    if value is not None:
        return _unwrap(value)
    origin = get_origin(annotation)
    if origin is Annotated:
        return _unwrap(get_args(annotation)[0])
    if origin in (Union, types.UnionType, list, tuple):
        return [m for arg in get_args(annotation) for m in _unwrap(arg)]
    return [annotation]


def _models(annotation: Any) -> list[type[BaseModel]]:
    return [m for m in _unwrap(annotation) if isinstance(m, type) and issubclass(m, BaseModel)]


def _tag_of(model: type[BaseModel]) -> Any:
    field = model.model_fields.get("name")
    if field is None or get_origin(field.annotation) is not Literal:
        return None
    return get_args(field.annotation)[0]


def model_at(root: type[BaseModel], loc: Loc) -> type[BaseModel] | None:
    """The model whose fields are at ``loc`` under ``root`` (a discriminated union's member is
    picked by the tag that follows it in the path, as pydantic writes it), or None."""
    model, i = root, 0
    while i < len(loc):
        part = loc[i]
        if isinstance(part, int):  # an item of a list
            i += 1
            continue
        field = model.model_fields.get(part)
        if field is None:
            return None
        members = _models(field.annotation)
        if not members:
            return None
        if len(members) > 1:
            tagged = {_tag_of(m): m for m in members}
            i += 1
            if i >= len(loc) or loc[i] not in tagged:
                return None
            members = [tagged[loc[i]]]
        model = members[0]
        i += 1
    return model


def _section_of(root: type[BaseModel], name: str) -> str | None:
    """The section of ``root`` (``training``, ``solver``...) that has a field ``name``."""
    for section, field in root.model_fields.items():
        if any(name in m.model_fields for m in _models(field.annotation)):
            return section
    return None


def hint(error: Mapping[str, Any], root: type[BaseModel] | None = None) -> str | None:
    """"did you mean ..." for one of pydantic's errors (its ``loc`` relative to ``root``), or None."""
    kind, loc, ctx = error.get("type"), tuple(error.get("loc") or ()), error.get("ctx") or {}
    if kind == "union_tag_invalid" and ctx.get("tag") is not None:
        found = closest(str(ctx["tag"]), _quoted(ctx.get("expected_tags")), NAME_ALIASES)
        return f"did you mean {found!r}?" if found else None
    if kind in ("literal_error", "enum") and isinstance(error.get("input"), str):
        found = closest(error["input"], _quoted(ctx.get("expected")), NAME_ALIASES)
        return f"did you mean {found!r}?" if found else None
    if kind != "extra_forbidden" or root is None or not loc or not isinstance(loc[-1], str):
        return None
    model = model_at(root, loc[:-1])
    if model is None:
        return None
    typed = loc[-1]
    found = closest(typed, model.model_fields)
    if found is not None:
        return f"did you mean {found!r}?"
    target = FIELD_ALIASES.get(typed.lower(), typed)
    section = _section_of(model, target)
    return f"did you mean {section}.{target}?" if section else None


def with_hints(errors: Iterable[Mapping[str, Any]], root: type[BaseModel] | None = None,
               prefix: Loc = ()) -> list[dict[str, Any]]:
    """``errors`` with a hint appended to each message that has one; locations start with
    ``prefix`` (``("body",)`` in a request) before the path into ``root``."""
    out = []
    for error in errors:
        error = dict(error)
        loc = tuple(error.get("loc") or ())
        relative = loc[len(prefix):] if loc[:len(prefix)] == tuple(prefix) else None
        found = hint({**error, "loc": relative or ()}, root if relative is not None else None)
        if found:
            error["msg"] = f"{_short(error)}; {found}"
        out.append(error)
    return out


def _short(error: Mapping[str, Any]) -> str:
    """The message a hint is appended to; an unknown tag's names the tag and lists the choices."""
    ctx = error.get("ctx") or {}
    if error.get("type") == "union_tag_invalid":
        section = next((str(p) for p in reversed(error.get("loc") or ()) if isinstance(p, str)), "name")
        noun = SECTION_NOUN.get(section, section)
        return f"no {noun} named {ctx.get('tag')!r} (the {noun}s: {', '.join(_quoted(ctx.get('expected_tags')))})"
    return str(error.get("msg", ""))
