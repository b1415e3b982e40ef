"""The instructions the learned policy chooses from, grounded in the scene it sees.

Every skill role with every plausible object (acquire X for graspable X; deliver to Y
for containers, blocks, plates and the drawer; open/close the drawer when there is a
cabinet; go home), a few motion nudges, and "done". Skills are found by role
(robot.lexicon), so the same policy runs on a library whose skills are named otherwise. Objects are named by their shortest
unique description, so every candidate parses with `SkillLibrary.parse` and resolves with
`robot.describe.resolve` to the object it was made for. Text outside this set (an
operator's "move 5 cm up") is scored the same way: `candidate_for_text`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from robot.describe import AmbiguousObjectError, UnknownObjectError, resolve, short_name
from robot.types import SceneObject
from skills.base import SkillCall
from skills.library import SkillLibrary

DONE_TEXT = "done"
# (direction, distance): the nudges offered at every step.
NUDGES: tuple[tuple[str, float], ...] = tuple((d, 0.02) for d in ("left", "right", "forward", "back", "up", "down"))
# What a candidate does, as a feature: the role of its skill (robot.lexicon.ROLES), "done", or "other".
SKILL_KINDS: tuple[str, ...] = ("acquire", "deliver", "open_container", "close_container", "home", "nudge", "done", "other")


@dataclass(frozen=True)
class Candidate:
    text: str  # the instruction, as the skill library renders it ("done" for the special one)
    skill: str  # a skill name, or "done"
    call: SkillCall | None  # None for "done"
    obj: str | None = None  # name of the scene object it acts on (the object, or the place target)
    role: str | None = None  # the role of its skill ("acquire", ...), "done" for done

    @property
    def kind(self) -> str:
        return self.role if self.role in SKILL_KINDS else "other"


def done_candidate() -> Candidate:
    return Candidate(DONE_TEXT, "done", None, None, "done")


def is_place_target(o: SceneObject) -> bool:
    return bool(o.attributes.get("container")) or o.category in ("block", "plate", "cabinet")


def _slot_object(call: SkillCall, objects: Sequence[SceneObject], library: SkillLibrary) -> str | None:
    words = library.lexicon().get(call.skill)
    for slot in words.object_slots if words else ():
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
    lexicon = library.lexicon()
    out: list[Candidate] = []
    seen: set[str] = set()

    def add(role: str, obj: SceneObject | None, args: dict[str, object] | None = None) -> None:
        words = lexicon.by_role(role)
        if words is None:
            return
        call = SkillCall(words.name, dict(args or {}))
        if obj is not None and words.primary_slot:
            call.args[words.primary_slot] = short_name(obj, objects)
        text = library.render(call)
        parsed = library.parse(text)
        if text in seen or parsed is None or parsed.skill != call.skill:
            return
        if obj is not None and _slot_object(parsed, objects, library) != obj.name:
            return  # the description does not name this object uniquely
        seen.add(text)
        out.append(Candidate(text, call.skill, call, obj.name if obj is not None else None, role))

    for o in objects:
        if o.attributes.get("graspable"):
            add("acquire", o)
    for o in objects:
        if is_place_target(o):
            add("deliver", o)
    for o in objects:
        if o.category == "cabinet":
            add("open_container", o)
            add("close_container", o)
    add("home", None)
    for d, dist in NUDGES:
        add("nudge", None, {"direction": d, "distance_m": dist})
    out.append(done_candidate())
    return out


def candidate_for_text(text: str, objects: Sequence[SceneObject], library: SkillLibrary) -> Candidate | None:
    """A candidate for any instruction the library can parse (None when it cannot)."""
    if text.strip().lower() == DONE_TEXT:
        return done_candidate()
    call = library.parse(text)
    if call is None:
        return None
    return Candidate(library.render(call), call.skill, call, _slot_object(call, objects, library),
                     library.lexicon().role_of(call.skill))


def match(target: Candidate, candidates: Sequence[Candidate]) -> int | None:
    """Index of the candidate that does what `target` does (same skill, object and text)."""
    for i, c in enumerate(candidates):
        if c.text == target.text:
            return i
    for i, c in enumerate(candidates):
        if c.skill == target.skill and c.obj is not None and c.obj == target.obj and c.kind != "nudge":
            return i
    return None
