"""The skill contract: a generator that yields one action per control tick.

Between any two ticks the agent may change the skill's context (shift its target,
rescale its speed, change a parameter) or stop pulling from it (interrupt).

A skill also brings its language (`SkillWords`, see robot.lexicon): its templates, the
slot its object lives in, the role it plays, its phases, its parameters and the words
that adjust them. The library exports these as the lexicon every other layer reads.
"""
from __future__ import annotations

import abc
import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generator, Mapping

import numpy as np

from robot.errors import CorrigoError
from robot.lexicon import Adjustment, ParamSpec, SkillWords
from robot.robot import Robot
from robot.types import SceneObject


class SkillError(CorrigoError):
    pass


@dataclass
class SkillCall:
    """A skill name plus its language-level arguments ({"object": "red block"})."""

    skill: str
    args: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"skill": self.skill, "args": dict(self.args)}


@dataclass
class SkillOutcome:
    ok: bool
    message: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    phase: str | None = None  # the phase a failure came in; None for a refusal before moving


@dataclass
class SkillContext:
    """Mutable state shared by the loop and the running skill.

    `offset` (m, base frame) and `yaw_offset` (rad) shift every target of the
    running skill; `speed_scale` rescales its speed; `params` are the skill's
    tunable parameters (defaults, then knowledge, then live corrections).
    """

    objects: Any  # callable returning list[SceneObject] (see skills.perception)
    dt: float = 0.05
    params: Any = None
    offset: np.ndarray = field(default_factory=lambda: np.zeros(3))
    yaw_offset: float = 0.0
    speed_scale: float = 1.0
    observation: dict[str, Any] = field(default_factory=dict)
    held: SceneObject | None = None
    last_command: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    phase: str | None = None  # the phase the running skill is in (one of its `phases`)

    def reset_for_call(self, params: Any) -> None:
        self.params = params
        self.offset = np.zeros(3)
        self.yaw_offset = 0.0
        self.phase = None


ActionGen = Generator[dict[str, Any], None, SkillOutcome]


class Skill(abc.ABC):
    """A named, parameterised, language-conditioned skill.

    `templates` are instruction patterns with slots ({object}, {target},
    {direction}, {distance}, {angle}, {count}); the first renders a call. `Params` is a
    dataclass of tunable parameters with defaults. The other class attributes are the
    skill's language, exported through `words()` (see robot.lexicon.SkillWords).
    """

    name: ClassVar[str]
    templates: ClassVar[tuple[str, ...]]
    slots: ClassVar[tuple[str, ...]] = ()
    default_args: ClassVar[dict[str, Any]] = {}
    primary_slot: ClassVar[str | None] = None
    role: ClassVar[str | None] = None
    phases: ClassVar[tuple[str, ...]] = ()
    contact_phase: ClassVar[str | None] = None
    offset_param: ClassVar[str | None] = None
    yaw_param: ClassVar[str | None] = None
    offset_verbs: ClassVar[tuple[str, ...]] = ()
    adjustments: ClassVar[tuple[Adjustment, ...]] = ()

    @dataclass
    class Params:
        pass

    def words(self) -> SkillWords:
        """This skill's language as data (checked: every name it mentions exists)."""
        params = tuple(ParamSpec(f.name, _default_of(f), _kind_of(f)) for f in dataclasses.fields(self.Params))
        names = {p.name for p in params}
        for ref in (self.offset_param, self.yaw_param, *(a.param for a in self.adjustments)):
            if ref is not None and ref not in names:
                raise SkillError(f"skill {self.name!r} refers to parameter {ref!r}, which its Params lack")
        for t in self.templates:
            unknown = set(re.findall(r"\{([a-z]+)\}", t)) - set(self.slots)
            if unknown:
                raise SkillError(f"skill {self.name!r}: template {t!r} uses {', '.join(sorted(unknown))}, not in its slots")
        if self.primary_slot is not None and self.primary_slot not in self.slots:
            raise SkillError(f"skill {self.name!r}: primary slot {self.primary_slot!r} is not one of its slots")
        if self.contact_phase is not None and self.contact_phase not in self.phases:
            raise SkillError(f"skill {self.name!r}: contact phase {self.contact_phase!r} is not one of its phases")
        verbs = tuple(dict.fromkeys(t.split()[0] for t in self.templates if t.split()))
        return SkillWords(self.name, tuple(self.templates), tuple(self.slots), self.primary_slot, self.role, params,
                          tuple(self.adjustments), tuple(self.phases), self.contact_phase, self.offset_param,
                          self.yaw_param, tuple(self.offset_verbs), verbs)

    def default_params(self, overrides: Mapping[str, Any] | None = None) -> Any:
        p = self.Params()
        for k, v in (overrides or {}).items():
            set_param(p, k, v)
        return p

    @abc.abstractmethod
    def run(self, robot: Robot, call: SkillCall, ctx: SkillContext) -> ActionGen: ...


def _default_of(f: dataclasses.Field) -> Any:  # type: ignore[type-arg]
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return None


def _kind_of(f: dataclasses.Field) -> str:  # type: ignore[type-arg]
    d = _default_of(f)
    if isinstance(d, tuple):
        return "vector"
    return "int" if isinstance(d, int) and not isinstance(d, bool) else "float"


def param(default: Any, lo: float, hi: float) -> Any:
    """A skill parameter with the range it may take (each component, for a vector): a correction
    or a stored lesson that would set it outside is refused in one line instead of run."""
    return field(default=default, metadata={"range": (float(lo), float(hi))})


def param_range(params: Any, name: str) -> tuple[float, float] | None:
    for f in dataclasses.fields(params):
        if f.name == name:
            return f.metadata.get("range")
    return None


def param_names(params: Any) -> list[str]:
    return [f.name for f in dataclasses.fields(params)]


def set_param(params: Any, name: str, value: Any) -> None:
    """Set a parameter with a type check; one-line error for unknown names."""
    names = param_names(params)
    if name not in names:
        raise SkillError(f"unknown parameter {name!r} (known: {', '.join(names)})")
    cur = getattr(params, name)
    if isinstance(cur, tuple):
        value = tuple(float(v) for v in value)
        if len(value) != len(cur):
            raise SkillError(f"parameter {name!r} needs {len(cur)} numbers")
        if not all(np.isfinite(value)):
            raise SkillError(f"parameter {name!r} must be finite")
    elif isinstance(cur, int) and not isinstance(cur, bool):
        value = float(value)
        if not np.isfinite(value) or value != round(value):
            raise SkillError(f"parameter {name!r} must be a whole number")
        value = int(value)
    elif isinstance(cur, float):
        value = float(value)
        if not np.isfinite(value):
            raise SkillError(f"parameter {name!r} must be finite")
    bounds = param_range(params, name)
    if bounds is not None:
        lo, hi = bounds
        if not all(lo <= v <= hi for v in (value if isinstance(value, tuple) else (value,))):
            shown = ", ".join(f"{v:.3g}" for v in value) if isinstance(value, tuple) else f"{value:.3g}"
            raise SkillError(f"parameter {name!r} must be within {lo:.3g} to {hi:.3g}"
                             f"{' (each number)' if isinstance(value, tuple) else ''}, got {shown}")
    setattr(params, name, value)
