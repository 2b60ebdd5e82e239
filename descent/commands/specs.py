"""Experiment spec files for ``descent submit``: YAML or JSON, one spec or a list, and the
``split:`` block a spec may give instead of a ``split_id``."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from descent.client import Client


class SpecFileError(ValueError):
    """A spec file that cannot be read as specs, told as ``path:line:column: problem`` (as a
    compiler does), so an editor can jump to it."""


def load_specs(path: Path) -> list[dict[str, Any]]:
    """Experiment specs from a YAML or JSON file: one mapping, or a list of them."""
    text = path.read_text()
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SpecFileError(f"{path}:{exc.lineno}:{exc.colno}: {exc.msg}") from None
    else:
        data = _yaml(path, text)
    specs = data if isinstance(data, list) else [data]
    for i, spec in enumerate(specs):
        if not isinstance(spec, Mapping):
            where = f"experiment {i}" if isinstance(data, list) else "the file"
            raise SpecFileError(f"{path}: {where} is not a mapping of spec fields (name, split_id, solver, ...)")
    return [dict(s) for s in specs]


def _yaml(path: Path, text: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
        problem = getattr(exc, "problem", None) or str(exc)
        context = getattr(exc, "context", None)
        raise SpecFileError(f"{where}: {problem}" + (f" ({context})" if context else "")) from None


def resolve_split(client: Client, spec: dict[str, Any], cache: dict[str, int]) -> dict[str, Any]:
    """A spec may name its data as ``split: {dataset, strategy, fractions, seed}`` instead of a
    ``split_id``: the split is created once (per distinct block) and its id put in its place."""
    spec = dict(spec)
    block = spec.pop("split", None)
    if block is None:
        return spec
    if "split_id" in spec:
        raise ValueError("give either split_id or a split block, not both")
    if not isinstance(block, Mapping) or "dataset" not in block:
        raise ValueError("split must be a mapping with at least a dataset")
    key = json.dumps(block, sort_keys=True)
    if key not in cache:
        created = client.create_split(
            block["dataset"], strategy=block.get("strategy"), fractions=block.get("fractions"), seed=block.get("seed")
        )
        cache[key] = created["id"]
    spec["split_id"] = cache[key]
    return spec
