"""The skill contract: a generator that yields one action per control tick.

Between any two ticks the agent may change the skill's context (shift its target,
rescale its speed, change a parameter) or stop pulling from it (interrupt).
"""
from __future__ import annotations

import abc
import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generator, Mapping

import numpy as np

from robot.errors import CorrigoError
from robot.robot import Robot
from robot.types import SceneObject


class SkillError(CorrigoError):
    pass


@dataclass
class SkillCall:
    """A skill name plus its language-level arguments ({"object": "red block"})."""

    skill: str
    args: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:  # the instruction, via the default library
        from skills.library import default_library

        return default_library().render(self)

    def to_dict(self) -> dict[str, Any]:
        return {"skill": self.skill, "args": dict(self.args)}


@dataclass
class SkillOutcome:
    ok: bool
    message: str = ""
    data: dict[str, Any] = field(default_factory=dict)


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

    def reset_for_call(self, params: Any) -> None:
        self.params = params
        self.offset = np.zeros(3)
        self.yaw_offset = 0.0


ActionGen = Generator[dict[str, Any], None, SkillOutcome]


class Skill(abc.ABC):
    """A named, parameterised, language-conditioned skill.

    `templates` are instruction patterns with slots ({object}, {target},
    {direction}, {distance}, {angle}); the first renders a call. `Params` is a
    dataclass of tunable parameters with defaults.
    """

    name: ClassVar[str]
    templates: ClassVar[tuple[str, ...]]
    slots: ClassVar[tuple[str, ...]] = ()

    @dataclass
    class Params:
        pass

    def default_params(self, overrides: Mapping[str, Any] | None = None) -> Any:
        p = self.Params()
        for k, v in (overrides or {}).items():
            set_param(p, k, v)
        return p

    @abc.abstractmethod
    def run(self, robot: Robot, call: SkillCall, ctx: SkillContext) -> ActionGen: ...


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
    elif isinstance(cur, float):
        value = float(value)
        if not np.isfinite(value):
            raise SkillError(f"parameter {name!r} must be finite")
    setattr(params, name, value)
