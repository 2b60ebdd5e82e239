"""The catalog's vocabulary: a hyperparameter, a solver entry, a scheduler entry.

Pure pydantic, no torch: the api validates experiment definitions and renders forms from
these, the worker builds optimizers from them.  One entry per solver or scheduler is the only
place its hyperparameters (type, default, bounds, description) are written down.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

HyperType = Literal["float", "int", "bool", "choice", "float_tuple", "int_list", "str"]


class Hyperparameter(BaseModel):
    """One hyperparameter of a solver or scheduler.

    Bounds apply to every element of a ``float_tuple``/``int_list``.  ``minimum``/``maximum``
    are the constructor's; ``service_maximum`` is a tighter upper bound an experiment spec must
    also keep (a loop knob of an inner loop: it bounds what one optimizer step may cost).  ``derived_from`` marks a
    scheduler length field that the api fills from the training section when it is left out
    (``"epochs"``, ``"total_steps"``, ``"steps_per_epoch"``...)."""

    model_config = ConfigDict(frozen=True)

    name: str
    type: HyperType
    default: Any = None
    description: str
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    exclusive_maximum: bool = False
    choices: tuple[Any, ...] | None = None
    length: int | None = None  # for float_tuple
    nullable: bool = False
    derived_from: str | None = None
    required: bool = False
    # the most a service run may ask of a knob that drives a loop (iterations, candidates,
    # history): the constructor takes more, an experiment spec does not
    service_maximum: float | None = None

    # -- validation ------------------------------------------------------------------------
    def check(self, value: Any, path: str = "") -> Any:
        """Return ``value`` coerced to this hyperparameter's type, or raise ``ValueError``
        whose message names the field and the problem."""
        where = path or self.name
        if value is None:
            if self.nullable:
                return None
            raise ValueError(f"{where}: must not be null")
        t = self.type
        if t == "bool":
            if not isinstance(value, bool):
                raise ValueError(f"{where}: expected true or false, got {value!r}")
            return value
        if t == "str":
            if not isinstance(value, str):
                raise ValueError(f"{where}: expected a string, got {value!r}")
            return value
        if t == "choice":
            if value not in (self.choices or ()):
                raise ValueError(f"{where}: must be one of {list(self.choices or ())}, got {value!r}")
            return value
        if t in ("float", "int"):
            return self._check_number(value, where, integer=(t == "int"))
        if t in ("float_tuple", "int_list"):
            if not isinstance(value, list | tuple):
                raise ValueError(f"{where}: expected a list, got {value!r}")
            if self.length is not None and len(value) != self.length:
                raise ValueError(f"{where}: expected {self.length} values, got {len(value)}")
            items = [
                self._check_number(v, f"{where}[{i}]", integer=(t == "int_list")) for i, v in enumerate(value)
            ]
            return tuple(items) if t == "float_tuple" else items
        raise ValueError(f"{where}: unknown type {t}")  # pragma: no cover - Literal guards it

    def _check_number(self, value: Any, where: str, *, integer: bool) -> float | int:
        if isinstance(value, bool) or not isinstance(value, int | float):
            kind = "an integer" if integer else "a number"
            raise ValueError(f"{where}: expected {kind}, got {value!r}")
        if integer and isinstance(value, float):
            if not value.is_integer():
                raise ValueError(f"{where}: expected an integer, got {value!r}")
            value = int(value)
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"{where}: must be finite, got {value!r}")
        lo, hi = self.minimum, self.maximum
        if lo is not None and (value <= lo if self.exclusive_minimum else value < lo):
            op = ">" if self.exclusive_minimum else ">="
            raise ValueError(f"{where}: must be {op} {lo}, got {value!r}")
        if hi is not None and (value >= hi if self.exclusive_maximum else value > hi):
            op = "<" if self.exclusive_maximum else "<="
            raise ValueError(f"{where}: must be {op} {hi}, got {value!r}")
        return int(value) if integer else float(value)

    # -- JSON Schema -----------------------------------------------------------------------
    def json_schema(self) -> dict[str, Any]:
        """This hyperparameter as a JSON Schema fragment (for forms and OpenAPI)."""

        def number(integer: bool) -> dict[str, Any]:
            s: dict[str, Any] = {"type": "integer" if integer else "number"}
            if self.minimum is not None:
                s["exclusiveMinimum" if self.exclusive_minimum else "minimum"] = self.minimum
            if self.maximum is not None:
                s["exclusiveMaximum" if self.exclusive_maximum else "maximum"] = self.maximum
            if self.service_maximum is not None and (self.maximum is None or self.service_maximum < self.maximum):
                s.pop("exclusiveMaximum", None)
                s["maximum"] = self.service_maximum  # what an experiment may ask (see the field's comment)
            return s

        t = self.type
        if t in ("float", "int"):
            schema = number(t == "int")
        elif t == "bool":
            schema = {"type": "boolean"}
        elif t == "str":
            schema = {"type": "string"}
        elif t == "choice":
            schema = {"enum": list(self.choices or ())}
        else:
            schema = {"type": "array", "items": number(t == "int_list")}
            if self.length is not None:
                schema["minItems"] = schema["maxItems"] = self.length
        if self.nullable:
            schema = {"anyOf": [schema, {"type": "null"}]}
        schema["title"] = self.name
        schema["description"] = self.description
        if self.default is not None or self.nullable:
            schema["default"] = list(self.default) if isinstance(self.default, tuple) else self.default
        if self.derived_from:
            schema["x-derived-from"] = self.derived_from

        return schema


class CatalogEntry(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str = Field(description="lowercase class name, the key users write")
    class_path: str = Field(description="dotted import path of the class, e.g. 'optim.Adam'")
    family: str
    summary: str
    reference: str
    hyperparameters: tuple[Hyperparameter, ...]

    def hyperparameter(self, name: str) -> Hyperparameter:
        for h in self.hyperparameters:
            if h.name == name:
                return h
        raise KeyError(name)

    def defaults(self) -> dict[str, Any]:
        return {h.name: h.default for h in self.hyperparameters if not h.derived_from and not h.required}

    def validate_params(self, params: dict[str, Any], path: str = "") -> dict[str, Any]:
        """Fill defaults and check every value; unknown names and bad values raise ``ValueError``
        naming ``path.field``.  Derived fields left out stay out (the caller fills them)."""
        known = {h.name: h for h in self.hyperparameters}
        prefix = f"{path}." if path else ""
        for key in params:
            if key not in known:
                raise ValueError(f"{prefix}{key}: unknown hyperparameter for {self.name!r}; known: {sorted(known)}")
        out: dict[str, Any] = {}
        for h in self.hyperparameters:
            if h.name in params:
                out[h.name] = h.check(params[h.name], f"{prefix}{h.name}")
            elif h.required:
                raise ValueError(f"{prefix}{h.name}: required for {self.name!r}")
            elif not h.derived_from:
                out[h.name] = h.default
        return out

    def json_schema(self) -> dict[str, Any]:
        """The entry's hyperparameters as one JSON Schema object (a client renders a form from it)."""
        return {
            "type": "object",
            "title": self.name,
            "description": self.summary,
            "properties": {h.name: h.json_schema() for h in self.hyperparameters},
            "required": [h.name for h in self.hyperparameters if h.required],
            "additionalProperties": False,
        }

    def public(self) -> dict[str, Any]:
        data = self.model_dump(exclude={"hyperparameters"})
        data["hyperparameters"] = self.json_schema()
        return data


SolverFamily = Literal["sgd", "adaptive", "sign", "layerwise", "wrapper", "second_order", "zeroth_order"]


class SolverEntry(CatalogEntry):
    """A solver.  ``needs_closure``: ``step`` must be given a closure that re-evaluates the loss
    (L-BFGS family, Newton, random search).  ``needs_model``: the constructor takes the
    ``model`` (module hooks or torch.func), passed by the engine as ``model=``.  ``wraps``: it
    wraps another optimizer built from the ``base`` hyperparameter (Lookahead)."""

    family: SolverFamily
    needs_closure: bool = False
    needs_model: bool = False
    wraps: bool = False
    max_params: int | None = Field(default=None, description="largest parameter count it is meant for")


class SchedulerEntry(CatalogEntry):
    """A learning-rate scheduler.  ``interval``: when the engine calls ``step()`` — after every
    optimizer step, after every epoch, or after every epoch with the validation loss
    (ReduceLROnPlateau)."""

    family: Literal["decay", "cyclic", "warmup", "adaptive", "constant"]
    interval: Literal["step", "epoch", "metric"]
