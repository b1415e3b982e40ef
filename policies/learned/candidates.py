"""The instructions the learned policy chooses from, grounded in the scene it sees.

Every skill with every plausible object (pick X for graspable X; place it in/on Y for
containers, blocks, plates and the drawer; open/close the drawer when there is a
cabinet; go home), a few motion nudges, and "done". Objects are named by their shortest
unique description, so every candidate parses with `SkillLibrary.parse` and resolves with
`robot.describe.resolve` to the object it was made for. Text outside this set (an
operator's "move 5 cm up") is scored the same way: `candidate_for_text`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from robot.describe import AmbiguousObjectError, UnknownObjectError, resolve
from robot.types import SceneObject
from policies.rule_based import _name_for
from skills.base import SkillCall
from skills.library import SkillLibrary

DONE_TEXT = "done"
# (direction, distance): the nudges offered at every step.
NUDGES: tuple[tuple[str, float], ...] = tuple((d, 0.02) for d in ("left", "right", "forward", "back", "up", "down"))
SKILL_KINDS: tuple[str, ...] = ("pick", "place", "open_drawer", "close_drawer", "go_home", "move", "done", "other")


@dataclass(frozen=True)
class Candidate:
    text: str  # the instruction, as the skill library renders it ("done" for the special one)
    skill: str  # a skill name, or "done"
    call: SkillCall | None  # None for "done"
    obj: str | None = None  # name of the scene object it acts on (the object, or the place target)

    @property
    def kind(self) -> str:
        return self.skill if self.skill in SKILL_KINDS else "other"


def is_place_target(o: SceneObject) -> bool:
    return bool(o.attributes.get("container")) or o.category in ("block", "plate", "cabinet")


def _slot_object(call: SkillCall, objects: Sequence[SceneObject]) -> str | None:
    for slot in ("object", "target"):
        desc = call.args.get(slot)
        if desc:
            try:
                return resolve(str(desc), objects).name
            except (UnknownObjectError, AmbiguousObjectError):
                return None
    return None


def generate(objects: Sequence[SceneObject], library: SkillLibrary) -> list[Candidate]:
    """The grounded candidate set for a scene (each one checked to parse back to itself)."""
    objects = list(objects)
    out: list[Candidate] = []
    seen: set[str] = set()

    def add(call: SkillCall, obj: SceneObject | None) -> None:
        if call.skill not in library:
            return
        text = library.render(call)
        parsed = library.parse(text)
        if text in seen or parsed is None or parsed.skill != call.skill:
            return
        if obj is not None and _slot_object(parsed, objects) != obj.name:
            return  # the description does not name this object uniquely
        seen.add(text)
        out.append(Candidate(text, call.skill, call, obj.name if obj is not None else None))

    for o in objects:
        if o.attributes.get("graspable"):
            add(SkillCall("pick", {"object": _name_for(o, objects)}), o)
    for o in objects:
        if is_place_target(o):
            add(SkillCall("place", {"target": _name_for(o, objects)}), o)
    for o in objects:
        if o.category == "cabinet":
            add(SkillCall("open_drawer", {"object": "drawer"}), o)
            add(SkillCall("close_drawer", {"object": "drawer"}), o)
    add(SkillCall("go_home", {}), None)
    for d, dist in NUDGES:
        add(SkillCall("move", {"direction": d, "distance_m": dist}), None)
    out.append(Candidate(DONE_TEXT, "done", None, None))
    return out


def candidate_for_text(text: str, objects: Sequence[SceneObject], library: SkillLibrary) -> Candidate | None:
    """A candidate for any instruction the library can parse (None when it cannot)."""
    if text.strip().lower() == DONE_TEXT:
        return Candidate(DONE_TEXT, "done", None, None)
    call = library.parse(text)
    if call is None:
        return None
    return Candidate(library.render(call), call.skill, call, _slot_object(call, objects))


def match(target: Candidate, candidates: Sequence[Candidate]) -> int | None:
    """Index of the candidate that does what `target` does (same skill, object and text)."""
    for i, c in enumerate(candidates):
        if c.text == target.text:
            return i
    for i, c in enumerate(candidates):
        if c.skill == target.skill and c.obj is not None and c.obj == target.obj and c.skill != "move":
            return i
    return None
