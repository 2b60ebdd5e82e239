"""A trial's parameters, and the experiment spec they make: pure functions over dicts.

:func:`apply` sets each dotted path on a deep copy of the base spec.  Switching a section's
``name`` (``solver.name``, ``scheduler.name``, ``architecture.name``) to another solver,
scheduler or architecture than the base's starts that section afresh as ``{"name": new}``, and
keeps only the base's keys that the new one's model in ``core.spec.experiment`` accepts: Adam's
``betas`` do not reach SGD, but ``base_lr`` and ``weight_decay`` (every solver section has one:
an L2 penalty stands in where the solver has none) carry over, then the trial's own parameters
of that section are set over them."""

from __future__ import annotations

import copy
import json
from typing import Any

from core.spec.experiment import ARCHITECTURE_MODELS, SCHEDULER_MODELS, SOLVER_MODELS
from core.studies.space import CategoricalParam, Space

SECTION_MODELS = {"solver": SOLVER_MODELS, "scheduler": SCHEDULER_MODELS, "architecture": ARCHITECTURE_MODELS}
# how label() shortens a path's last part
_SHORT = {"base_lr": "lr", "weight_decay": "wd", "batch_size": "bs"}


def _model(section: str, name: Any) -> Any:
    for model in SECTION_MODELS.get(section, ()):
        if model.model_fields["name"].annotation.__args__ == (name,):
            return model
    return None


def accepted_keys(section: str, name: Any) -> set[str] | None:
    """The keys a spec's ``section`` accepts when its ``name`` is ``name``; None where unknown
    (the spec validation reports that name)."""
    model = _model(section, name)
    return None if model is None else set(model.model_fields)


def _fill_list_default(spec: dict[str, Any], path: str) -> None:
    """Before ``solver.betas.0`` is set on a section without ``betas``: the section's default list."""
    parts = path.split(".")
    if len(parts) != 3 or not parts[2].isdigit() or not isinstance(spec.get(parts[0]), dict):
        return
    section = spec[parts[0]]
    model = _model(parts[0], section.get("name"))
    field = model.model_fields.get(parts[1]) if model is not None else None
    if parts[1] not in section and field is not None and isinstance(field.default, list | tuple):
        section[parts[1]] = list(field.default)


def _parts(path: str) -> list[str | int]:
    return [int(p) if p.isdigit() else p for p in path.split(".")]


def _set(spec: dict[str, Any], path: str, value: Any) -> None:
    node: Any = spec
    parts = _parts(path)
    for part in parts[:-1]:
        if isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
            continue
        if isinstance(node, list):
            raise ValueError(f"{path}: index {part} is past the end of a list of {len(node)}")
        if not isinstance(node.get(str(part)), dict | list):
            node[str(part)] = {}
        node = node[str(part)]
    last = parts[-1]
    if isinstance(node, list) and isinstance(last, int) and last < len(node):
        node[last] = value
    elif isinstance(node, list):
        raise ValueError(f"{path}: index {last} is past the end of a list of {len(node)}")
    else:
        node[str(last)] = value


def apply(base: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """The experiment spec of a trial: ``base`` with every ``params`` path set (a copy)."""
    spec = copy.deepcopy(base)
    for section in SECTION_MODELS:
        new = params.get(f"{section}.name")
        old = spec.get(section) if isinstance(spec.get(section), dict) else {}
        if f"{section}.name" in params and new != old.get("name"):
            keep = accepted_keys(section, new) or {"name"}
            spec[section] = {"name": new, **{k: v for k, v in old.items() if k in keep and k != "name"}}
    for path, value in params.items():
        _fill_list_default(spec, path)
        _set(spec, path, value)
    return spec


def active_params(space: Space, params: dict[str, Any]) -> dict[str, Any]:
    """The parameters a trial has given the conditional structure, in the space's order: those
    of the top level and of the ``when`` subspaces of the values it picked; others dropped."""
    active: dict[str, Any] = {}
    for path, param in space.items():
        if path not in params:
            continue
        active[path] = params[path]
        if isinstance(param, CategoricalParam):
            active |= active_params(param.subspace(params[path]), params)
    return active


def _show(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return value if isinstance(value, str) else json.dumps(value)


def label(params: dict[str, Any]) -> str:
    """A short human label: string values as they are, others ``name=value`` with the path's
    last part (``base_lr`` as ``lr``) and 3 significant digits, e.g. ``adam lr=0.001``."""
    words = []
    for path, value in params.items():
        if isinstance(value, str):
            words.append(value)
        else:
            last = path.rsplit(".", 1)[-1]
            if last.isdigit() and "." in path:
                last = f"{path.rsplit('.', 2)[-2]}[{last}]"
            words.append(f"{_SHORT.get(last, last)}={_show(value)}")
    return " ".join(words)
