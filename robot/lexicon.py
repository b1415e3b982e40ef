"""The skill lexicon: what each skill's words mean, as plain data.

Each skill declares its language next to its code (skills/); `SkillLibrary.lexicon()`
exports it as a `Lexicon` that the correction parser, the correction handler, the
distiller and the policies are handed. Nothing outside skills/ names a skill: it asks the
lexicon for the skill that plays a role ("acquire", "deliver", ...) or reads a skill's
declared slot, phases and parameters.

The types live in robot/ (the leaf every layer may import) and hold data only: no
callables, so a lexicon can be compared, hashed, cached and sent over the wire.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, Union

Number = Union[float, int]
Amount = Union[float, int, tuple[float, ...]]

# Jobs the loop and the planners ask a skill to do, whatever it is called.
ROLES: tuple[str, ...] = (
    "acquire",          # take hold of its primary object ("pick up the red block")
    "deliver",          # put what is held on/in its primary object ("put it in the bowl")
    "open_container",   # open its primary object ("open the drawer")
    "close_container",  # close it
    "nudge",            # move the gripper by a vector: args {"vector": [dx, dy, dz]} (also direction, distance_m)
    "turn",             # rotate the gripper about the vertical: args {"angle_rad": a}
    "release",          # open the gripper
    "grip",             # close the gripper
    "home",             # go to the rest pose
)
# Slots that hold a value, not an object description; every other slot names an object.
VALUE_SLOTS: tuple[str, ...] = ("direction", "distance", "angle", "turn", "count")
# How an adjustment's amount is scaled by what the operator said.
SCALES: tuple[str, ...] = (
    "fixed",      # the amount as declared
    "magnitude",  # "a bit" halves it, "much" doubles it, an explicit distance replaces it
    "count",      # the number said replaces it ("twice more" -> 2); none said -> the amount
)


@dataclass(frozen=True)
class ParamSpec:
    """A tunable parameter of a skill: its name, default and kind ("float", "int", "vector")."""

    name: str
    default: Amount
    kind: str = "float"


@dataclass(frozen=True)
class Adjustment:
    """Words that change one parameter of a skill.

    `patterns` are regular expressions matched against the parser's lexed clause, where
    amounts appear as symbols (#small, #large, #too, #len) and these macros expand:
    {OBJ} an optional object ("it", "the mug"), {MAG} optional magnitudes, {COUNT} an
    optional count (#count: "twice", "3 times"), {GRASP} a grasping verb, {RELEASE} a
    releasing verb, {CUE} a time cue ("before moving"). E.g. Pick declares
    Adjustment("grasp_offset", (r"{GRASP} {OBJ}{MAG}lower",), amount=(0, 0, -0.01), scale="magnitude").
    """

    param: str
    patterns: tuple[str, ...]
    amount: Amount = 0.0
    mode: str = "delta"  # "delta" (relative) or "value" (absolute)
    scale: str = "fixed"

    def __post_init__(self) -> None:
        if self.mode not in ("delta", "value"):
            raise ValueError(f"adjustment of {self.param!r}: mode must be 'delta' or 'value', got {self.mode!r}")
        if self.scale not in SCALES:
            raise ValueError(f"adjustment of {self.param!r}: scale must be one of {', '.join(SCALES)}, got {self.scale!r}")


@dataclass(frozen=True)
class SkillWords:
    """One skill's language and the facts about it that other layers need."""

    name: str
    templates: tuple[str, ...]  # instruction patterns with {slot}s; the first renders a call
    slots: tuple[str, ...] = ()
    primary_slot: str | None = None  # the object it acts on: object corrections retarget it, knowledge is scoped by it
    role: str | None = None  # one of ROLES, or None
    params: tuple[ParamSpec, ...] = ()
    adjustments: tuple[Adjustment, ...] = ()
    phases: tuple[str, ...] = ()  # in the order the skill goes through them
    contact_phase: str | None = None  # from this phase on the primary object is touched or held
    offset_param: str | None = None  # where a nudge during the skill is remembered, in its primary object's frame
    yaw_param: str | None = None  # where a rotation during the skill is remembered
    offset_verbs: tuple[str, ...] = ()  # "place it a bit to the left": verbs that make a nudge an offset_param change
    verbs: tuple[str, ...] = field(default=())  # first words of the templates (filled in by the library)

    @property
    def object_slots(self) -> tuple[str, ...]:
        """The slots that name objects ("object", "target", "surface", ...)."""
        return tuple(s for s in self.slots if s not in VALUE_SLOTS)

    def param(self, name: str) -> ParamSpec | None:
        return next((p for p in self.params if p.name == name), None)

    def after_contact(self, phase: str | None) -> bool:
        """True if `phase` is the contact phase or later (the object is already touched or held)."""
        if self.contact_phase is None or phase not in self.phases:
            return False
        return self.phases.index(phase) >= self.phases.index(self.contact_phase)


@dataclass(frozen=True)
class Lexicon:
    """Every skill of a library, by name; lookups by role."""

    skills: tuple[SkillWords, ...] = ()

    def __iter__(self) -> Iterator[SkillWords]:
        return iter(self.skills)

    def __contains__(self, name: object) -> bool:
        return any(s.name == name for s in self.skills)

    def get(self, name: str | None) -> SkillWords | None:
        return next((s for s in self.skills if s.name == name), None)

    def names(self) -> list[str]:
        return sorted(s.name for s in self.skills)

    def by_role(self, role: str) -> SkillWords | None:
        """The skill that plays `role` (the first registered one), or None."""
        return next((s for s in self.skills if s.role == role), None)

    def role_of(self, name: str | None) -> str | None:
        s = self.get(name)
        return s.role if s else None

    def name_for(self, role: str) -> str | None:
        s = self.by_role(role)
        return s.name if s else None

    def primary_slot(self, name: str | None) -> str | None:
        s = self.get(name)
        return s.primary_slot if s else None

    @property
    def verbs(self) -> frozenset[str]:
        return frozenset(v for s in self.skills for v in s.verbs)


EMPTY_LEXICON = Lexicon()
