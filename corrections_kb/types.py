"""The `Correction` type: what an operator's utterance means, as typed slots.

`corrections_kb` imports only robot/ from the layers around it, so plan edits and skill
parameter changes are described here with plain strings and numbers.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

KINDS: tuple[str, ...] = (
    "stop", "resume", "motion", "rotate", "gripper", "speed", "object",
    "plan", "skill", "preference", "confirm", "unknown",
)
PLAN_OPS: tuple[str, ...] = ("insert", "skip", "reorder", "replace")
NUDGE_KINDS: tuple[str, ...] = ("motion", "rotate")  # corrections that shift the running skill
SKILL_LEVEL_KINDS: tuple[str, ...] = (*NUDGE_KINDS, "skill", "speed")  # corrections about how a skill runs

# ---- the documented range of every float `parse` puts in a Correction ----------------------
# The parser never lets inf/NaN out and saturates amounts beyond these limits (a 400-digit
# number of cm reads as MAX_DISTANCE_M); the agent then caps each correction far below them
# and says so ("that is more than the 25 cm I move on a correction; ..."). The property test
# (tests/faults/test_parser_fuzz.py) reads this table.
MAX_DISTANCE_M = 100.0  # any spoken length (motion distance, a skill's length amount)
MAX_ANGLE_RAD = 20 * math.pi  # ten turns either way
SPEED_SCALE_RANGE = (0.01, 100.0)
MAX_AMOUNT = 1e6  # a skill value/delta: a length (<= MAX_DISTANCE_M) or a count said in digits
FLOAT_RANGES: dict[str, tuple[float, float]] = {
    "direction": (-1.0, 1.0),  # each component of a unit vector
    "distance_m": (0.0, MAX_DISTANCE_M),  # a sign said ("-5 cm left") flips the direction instead
    "axis": (-1.0, 1.0),
    "angle_rad": (-MAX_ANGLE_RAD, MAX_ANGLE_RAD),
    "speed_scale": SPEED_SCALE_RANGE,
    "value": (-MAX_AMOUNT, MAX_AMOUNT),  # each component when a 3-tuple
    "delta": (-MAX_AMOUNT, MAX_AMOUNT),
}


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

    def out_of_range(self) -> list[str]:
        """The slots holding a number that is not finite or not within FLOAT_RANGES (empty when all are)."""
        bad = []
        for name, (lo, hi) in FLOAT_RANGES.items():
            v = getattr(self, name)
            if v is None:
                continue
            xs = v if isinstance(v, (tuple, list)) else (v,)
            try:
                ok = all(math.isfinite(float(x)) and lo <= float(x) <= hi for x in xs)
            except (TypeError, ValueError):
                ok = False
            if not ok:
                bad.append(name)
        return bad

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
