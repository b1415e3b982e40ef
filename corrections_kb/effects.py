"""Typed knowledge effects: what a `Knowledge` item changes when it is applied.

Each effect is a frozen dataclass tagged by its class's `type` and serialised as
`{"type": tag, **fields}` (None-valued fields omitted, tuples as lists). An `Effect` is
also a read-only Mapping of that dict, so `effect["value"]` and `effect.get("type")` work
for readers that dispatch on dicts.

`effect_from_dict` reads schema-v2 dicts and upgrades the v1 shapes (open dicts, see
`upgrade_v1`). A dict whose `type` is not known here is kept verbatim as a `RawEffect`
(never applied): an effect a newer corrigo or another tool wrote is not lost. A known
type with an unknown, missing or badly typed field is an `InvalidKnowledge`.
"""
from __future__ import annotations

import functools
import json
import math
import numbers
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, Callable, ClassVar, Iterator

import numpy as np

from corrections_kb.errors import InvalidKnowledge

__all__ = [
    "EFFECT_EXAMPLES", "EFFECT_SCHEMA", "EFFECT_TYPES", "Alias", "Effect", "GraspOffset", "InsertStep", "Note",
    "Order", "ParamChange", "PreferredContainer", "RawEffect", "SpeedScale", "effect_from_dict", "stored_v1_to_v2",
    "upgrade_v1",
]

EFFECT_SCHEMA: int = 2


class Effect(Mapping[str, Any]):
    """Base of every effect. Subclasses are frozen dataclasses whose field annotations name
    their checks (see `_CHECKS`); `__post_init__` validates and normalises the values."""

    type: ClassVar[str]

    def __post_init__(self) -> None:
        for f in _fields_of(type(self)):
            v = getattr(self, f.name)
            if v is not None or not f.optional:
                object.__setattr__(self, f.name, f.check(v, self.type, f.name))

    def to_dict(self) -> dict[str, Any]:
        """`{"type": tag, **fields}`, JSON-ready (None omitted, tuples as lists)."""
        out: dict[str, Any] = {"type": self.type}
        for f in _fields_of(type(self)):
            v = getattr(self, f.name)
            if v is not None:
                out[f.name] = list(v) if isinstance(v, tuple) else v
        return out

    def __getitem__(self, key: str) -> Any:
        return self.to_dict()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.to_dict())

    def __len__(self) -> int:
        return len(self.to_dict())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Effect):
            return self.to_dict() == other.to_dict()
        if isinstance(other, Mapping):
            return self.to_dict() == dict(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # equal to dicts, which are unhashable


# ----- field checks, keyed by the annotation text of a field -----
# A check takes (value, effect type, field name) and returns the normalised value; the
# names only go into the message of the InvalidKnowledge it raises.
def _bad(typ: str, name: str, must: str, v: Any) -> InvalidKnowledge:
    return InvalidKnowledge(f"{typ} effect: {name!r} must be {must}, got {v!r}")


def _text(v: Any, typ: str, name: str) -> str:
    if type(v) is not str or not v:
        raise _bad(typ, name, "a non-empty string", v)
    return v  # type: ignore[no-any-return]


def _real(v: Any, typ: str, name: str) -> float | int:
    if type(v) in (float, int):  # the common case, without the ABC checks below
        out = v
    elif isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real):
        raise _bad(typ, name, "a number", v)
    else:
        out = int(v) if isinstance(v, numbers.Integral) else float(v)
    if not math.isfinite(out):
        raise _bad(typ, name, "finite", v)
    return out  # type: ignore[no-any-return]


def _float(v: Any, typ: str, name: str) -> float:
    return float(_real(v, typ, name))


def _vector(v: Any, typ: str, name: str) -> tuple[float, ...]:
    if not isinstance(v, (list, tuple, np.ndarray)) or len(v) == 0:
        raise _bad(typ, name, "a non-empty list of numbers", v)
    return tuple(_float(x, typ, name) for x in v)


def _number_or_vector(v: Any, typ: str, name: str) -> float | int | tuple[float, ...]:
    return _vector(v, typ, name) if isinstance(v, (list, tuple, np.ndarray)) else _real(v, typ, name)


def _texts(v: Any, typ: str, name: str) -> tuple[str, ...]:
    if not isinstance(v, (list, tuple)) or not v or not all(type(x) is str and x for x in v):
        raise _bad(typ, name, "a non-empty list of strings", v)
    return tuple(v)


def _json_object(v: Any, what: str) -> dict[str, Any]:
    if not isinstance(v, Mapping):
        raise InvalidKnowledge(f"{what} must be a dict, got {type(v).__name__}")
    try:  # through JSON, so what is stored is exactly what reads back (tuples -> lists)
        return json.loads(json.dumps(dict(v), allow_nan=False))  # type: ignore[no-any-return]
    except (TypeError, ValueError) as e:
        raise InvalidKnowledge(f"{what} must be JSON-serialisable (finite numbers, str keys): {e}") from None


_CHECKS: dict[str, Callable[[Any, str, str], Any]] = {
    "str": _text, "str | None": _text, "float": _float, "tuple[str, ...]": _texts,
    "tuple[float, ...] | None": _vector, "float | int | tuple[float, ...] | None": _number_or_vector,
}


@dataclass(frozen=True)
class _Field:
    name: str
    check: Callable[[Any, str, str], Any]
    optional: bool  # None is a valid value (and is not checked)
    required: bool  # no default


@functools.cache
def _fields_of(cls: type) -> tuple[_Field, ...]:
    return tuple(_Field(f.name, _CHECKS[str(f.type)], f.default is None,
                        f.default is MISSING and f.default_factory is MISSING)
                 for f in fields(cls))  # type: ignore[arg-type]


# ----- the effects -----
@dataclass(frozen=True, eq=False)
class GraspOffset(Effect):
    """A skill's pose parameter, expressed in the manipulated object's frame (so it follows the
    object when it is moved or turned): an absolute `value` or a `delta` to the default."""

    type: ClassVar[str] = "grasp_offset"
    skill: str
    param: str
    value: tuple[float, ...] | None = None
    delta: tuple[float, ...] | None = None
    frame: str = "object"


@dataclass(frozen=True, eq=False)
class ParamChange(Effect):
    """A skill parameter set to `value` or changed by `delta`: a number (an int stays an int,
    e.g. a count of passes) or a vector."""

    type: ClassVar[str] = "param"
    skill: str | None = None
    param: str | None = None
    value: float | int | tuple[float, ...] | None = None
    delta: float | int | tuple[float, ...] | None = None


@dataclass(frozen=True, eq=False)
class SpeedScale(Effect):
    """Run a skill (None: every skill) at `scale` times its speed."""

    type: ClassVar[str] = "speed"
    skill: str | None = None
    scale: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.scale <= 0:
            raise _bad(self.type, "scale", "positive", self.scale)


@dataclass(frozen=True, eq=False)
class PreferredContainer(Effect):
    """Put things of category `applies_to` (None: anything) in `target`."""

    type: ClassVar[str] = "preference"
    target: str
    applies_to: str | None = None


@dataclass(frozen=True, eq=False)
class Alias(Effect):
    """When the user says `word`, they mean `means` (an object category)."""

    type: ClassVar[str] = "alias"
    word: str
    means: str


@dataclass(frozen=True, eq=False)
class Order(Effect):
    """Do `first` before `then` (None: before the rest)."""

    type: ClassVar[str] = "order"
    first: str
    then: str | None = None


@dataclass(frozen=True, eq=False)
class InsertStep(Effect):
    """Insert `steps` (instructions, in order) before the step that matches the anchor: a skill
    and object category, or (from hand-written v1 items) an instruction text."""

    type: ClassVar[str] = "insert_step"
    steps: tuple[str, ...]
    anchor_skill: str | None = None
    anchor_category: str | None = None
    anchor_text: str | None = None


@dataclass(frozen=True, eq=False)
class Note(Effect):
    """A standing remark with no structured effect: retrieved and shown, never applied."""

    type: ClassVar[str] = "note"


@dataclass(frozen=True, eq=False)
class RawEffect(Effect):
    """Any JSON dict of no known `type` (or none), kept verbatim and never applied."""

    type: ClassVar[str] = "raw"
    data: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "data", _json_object(self.data, "effect"))

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(self.data))  # type: ignore[no-any-return]  # a copy: data stays frozen


EFFECT_TYPES: dict[str, type[Effect]] = {cls.type: cls for cls in (
    GraspOffset, ParamChange, SpeedScale, PreferredContainer, Alias, Order, InsertStep, Note)}

EFFECT_EXAMPLES: tuple[Effect, ...] = (
    GraspOffset(skill="pick", param="grasp_offset", delta=(0.0, 0.02, 0.0)),
    ParamChange(skill="pick", param="grasp_yaw", value=0.35),
    SpeedScale(skill="pick", scale=0.5),
    PreferredContainer(target="basket", applies_to="fruit"),
    Alias(word="cup", means="mug"),
    Order(first="fruit", then="block"),
    InsertStep(steps=("pick up the lid",), anchor_text="pick up the mug"),
    Note(),
)


def upgrade_v1(d: Mapping[str, Any]) -> dict[str, Any]:
    """A v1 effect dict as its v2 dict; a shape that did not change comes back as a copy.

    v1 -> v2: `param` with a `frame` -> `grasp_offset`; `plan` `insert_before` (with `steps`
    or a single `step`, and a dict anchor {skill, object_category} or an instruction-text
    anchor) -> `insert_step`; `plan` `order` -> `order`. Other `plan` ops stay as they are
    (and so read as a RawEffect)."""
    d = dict(d)
    typ, op = d.get("type"), d.get("op")
    if typ == "param" and "frame" in d:
        return {**d, "type": GraspOffset.type}
    if typ == "plan" and op == "order":
        return {k: v for k, v in d.items() if k != "op"} | {"type": Order.type}
    if typ == "plan" and op == "insert_before":
        # Anything that does not map (both `step` and `steps`, other anchor keys) is left in
        # place, so that it reads as an unknown field instead of being dropped.
        out = {k: v for k, v in d.items() if k != "op"} | {"type": InsertStep.type}
        if "step" in out and "steps" not in out:
            out["steps"] = [out.pop("step")]
        anchor = out.get("anchor")
        if isinstance(anchor, Mapping) and set(anchor) <= {"skill", "object_category"}:
            del out["anchor"]
            out.update(anchor_skill=anchor.get("skill"), anchor_category=anchor.get("object_category"))
        elif isinstance(anchor, str):
            out["anchor_text"] = out.pop("anchor")
        return out
    return d


def stored_v1_to_v2(d: Any) -> dict[str, Any]:
    """The v2 dict of an effect a v1 store or export holds. Never raises: v1 accepted any JSON
    dict, so one that is not a valid v2 effect after `upgrade_v1` is kept whole, as a RawEffect
    `{"type": "invalid_v1", "error": why, "original": d}` (never applied, nothing lost)."""
    try:
        return effect_from_dict(d).to_dict()
    except InvalidKnowledge as e:
        return {"type": "invalid_v1", "error": str(e), "original": d}


def effect_from_dict(d: Mapping[str, Any]) -> Effect:
    """The typed effect of a v2 or v1 dict (see the module docstring); an Effect is returned as is."""
    if isinstance(d, Effect):
        return d
    if not isinstance(d, Mapping):
        raise InvalidKnowledge(f"effect must be a dict, got {type(d).__name__}")
    d = upgrade_v1(d)
    cls = EFFECT_TYPES.get(d["type"]) if isinstance(d.get("type"), str) else None
    if cls is None:
        return RawEffect(d)
    kw = {k: v for k, v in d.items() if k != "type"}
    _check_field_names(cls, kw)
    return cls(**kw)


def _check_field_names(cls: type[Effect], kw: Mapping[str, Any]) -> None:
    names = [f.name for f in _fields_of(cls)]
    unknown = sorted(set(kw) - set(names), key=str)
    if unknown:
        raise InvalidKnowledge(f"{cls.type} effect: unknown field(s) {', '.join(map(repr, unknown))}; "
                               f"known: {', '.join(names) or 'none'}")
    missing = [f.name for f in _fields_of(cls) if f.required and f.name not in kw]
    if missing:
        raise InvalidKnowledge(f"{cls.type} effect: missing field(s) {', '.join(map(repr, missing))}")
