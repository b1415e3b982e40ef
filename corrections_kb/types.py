"""The `Correction` type: what an operator's utterance means, as typed slots.

`corrections_kb` imports only robot/ from the layers around it, so plan edits and skill
parameter changes are described here with plain strings and numbers.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

KINDS: tuple[str, ...] = (
    "stop", "resume", "motion", "rotate", "gripper", "speed", "object",
    "plan", "skill", "preference", "confirm", "unknown",
)
PLAN_OPS: tuple[str, ...] = ("insert", "skip", "reorder", "replace")
NUDGE_KINDS: tuple[str, ...] = ("motion", "rotate")  # corrections that shift the running skill
SKILL_LEVEL_KINDS: tuple[str, ...] = (*NUDGE_KINDS, "skill", "speed")  # corrections about how a skill runs


@dataclass
class Correction:
    """A parsed correction. Only the slots of its `kind` are set.

    motion:     direction (unit 3-vector, robot base frame: +x forward, +y left, +z up), distance_m
                (`relative` True for "more"/"a bit more": repeat the last motion's direction)
    rotate:     axis (unit 3-vector, base frame), angle_rad (right-handed about axis;
                clockwise seen from above is negative about +z)
    gripper:    gripper = "open" | "close"
    speed:      speed_scale (< 1 slower, > 1 faster)
    object:     target (the description the operator meant, e.g. "red block", "red one"),
                negated (the description that was wrong, e.g. "mug"), other (True for "the other X")
    plan:       plan_op in PLAN_OPS; instructions (insert: what to do first, in order);
                before / after (reorder: `before` goes first); target (replace: the new target)
    skill:      skill ("pick", "place", ...), param (a parameter name of that skill),
                value (absolute) or delta (relative), each a float or a 3-tuple
    preference: statement (the standing rule, cleaned up), target / negated when it names objects
    any kind:   once (True for "just this once", "only this time": act on it now, never learn from it)
    """

    text: str
    kind: str = "unknown"
    direction: tuple[float, float, float] | None = None
    distance_m: float | None = None
    relative: bool = False
    axis: tuple[float, float, float] | None = None
    angle_rad: float | None = None
    gripper: str | None = None
    speed_scale: float | None = None
    target: str | None = None
    negated: str | None = None
    other: bool = False
    plan_op: str | None = None
    instructions: list[str] = field(default_factory=list)
    before: str | None = None
    after: str | None = None
    skill: str | None = None
    param: str | None = None
    value: float | tuple[float, float, float] | None = None
    delta: float | tuple[float, float, float] | None = None
    statement: str | None = None
    once: bool = False  # "just this once": act on it, learn nothing from it

    def to_dict(self) -> dict[str, Any]:
        """Only the slots that are set (plus text and kind), JSON-ready."""
        d = asdict(self)
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()
                if k in ("text", "kind") or (v not in (None, False, []))}

    @staticmethod
    def from_dict(d: dict[str, Any]) -> "Correction":
        known = Correction.__dataclass_fields__
        kw = {k: (tuple(v) if isinstance(v, list) and k in ("direction", "axis", "value", "delta") else v)
              for k, v in d.items() if k in known}
        return Correction(**kw)

    def summary(self) -> str:
        """A short human-readable rendering of the parsed slots."""
        d = self.to_dict()
        d.pop("text")
        kind = d.pop("kind")
        slots = ", ".join(f"{k}={_fmt(v)}" for k, v in d.items())
        return f"{kind}({slots})"


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3g}"
    if isinstance(v, list):
        return "[" + ", ".join(_fmt(x) for x in v) + "]"
    return repr(v) if isinstance(v, str) else str(v)
