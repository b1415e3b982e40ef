"""The episode's goal as data: the final placements its task asks for.

A goal comes from the grounded task (`goal_from_plan`): a step that takes an object and a
later step that delivers it leave the object in or on the deliver step's target; opening or
closing a container leaves it open or closed (unless something is then put into it: that
opening is a means, not an end). A plan that moves nothing (go home, nudges) has no goal.
Corrections that change what the task is ("no, the green one", "put it in the basket
instead", a typed instruction that replaces the task's own step) give a new goal: the
correction handler computes it with the methods here, the loop sets it. `unmet` checks a
goal on the scene with the success predicates of `sim.tasks`.

Placements name scene objects by their unique `name`; only steps still to come are changed
by a correction (an object already delivered stays where the task put it).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Sequence

from robot.describe import resolve, short_name
from robot.errors import CorrigoError
from robot.lexicon import Lexicon
from robot.types import SceneObject
from skills.base import SkillCall

_STATE_OF_ROLE = {"open_container": "open", "close_container": "closed"}


@dataclass(frozen=True)
class Placement:
    """One final state: `object` in/on `target`, or the `target` container open/closed."""

    relation: str  # sim.tasks.RELATIONS: "in", "on", "open", "closed"
    target: str  # scene object name
    object: str | None = None  # scene object name of what is moved ("in", "on")

    @property
    def key(self) -> str:
        """What the placement is about: one final state per moved object, one per container's lid or drawer."""
        return self.object if self.object is not None else f"{self.target}#state"

    def describe(self, objects: Sequence[SceneObject], holds: bool | None = None) -> str:
        """'the red block in the blue bowl'; with `holds`: 'the red block is (not) in the blue bowl'."""
        verb = "" if holds is None else (" is" if holds else " is not")
        target = _say(self.target, objects)
        if self.object is None:
            return f"the {target}{verb} {self.relation}"
        return f"the {_say(self.object, objects)}{verb} {self.relation} the {target}"

    def to_dict(self) -> dict[str, Any]:
        return {"relation": self.relation, "object": self.object, "target": self.target}


@dataclass(frozen=True)
class Goal:
    """The placements a task asks for; no placements: nothing was left to do when it was grounded."""

    placements: tuple[Placement, ...] = ()

    def describe(self, objects: Sequence[SceneObject], holds: bool | None = None) -> str:
        return " and ".join(p.describe(objects, holds) for p in self.placements) or "nothing left to do"

    def to_dict(self, objects: Sequence[SceneObject]) -> dict[str, Any]:
        return {"text": self.describe(objects), "placements": [p.to_dict() for p in self.placements]}

    def unmet(self, objects: Sequence[SceneObject]) -> list[str]:
        """The placements that do not hold on `objects`, described ('the green block is not in the basket')."""
        from sim.tasks import placement_holds

        by_name = {o.name: o for o in objects}
        out = []
        for p in self.placements:
            target, obj = by_name.get(p.target), by_name.get(p.object) if p.object else None
            if target is None or (p.object is not None and obj is None):
                out.append(f"{p.describe(objects)}: not in the scene any more")
            elif not placement_holds(p.relation, obj, target):
                out.append(p.describe(objects, holds=False))
        return out

    # ----- corrections (pure: each returns a new goal) -----
    def replace_object(self, old: str, new: SceneObject, to_come: frozenset[str]) -> "Goal":
        """`old` becomes `new` (as moved object or as target) in the placements still to come."""
        out = []
        for p in self.placements:
            if p.key not in to_come:
                out.append(p)
            elif p.object == old:
                out.append(replace(p, object=new.name))
            elif p.target == old:
                out.append(replace(p, target=new.name, relation=_relation(p, new)))
            else:
                out.append(p)
        return _merged(out)

    def retarget(self, new: SceneObject, to_come: frozenset[str]) -> "Goal":
        """Everything still to be moved goes in/on `new` ("put it in the basket instead")."""
        return _merged([replace(p, target=new.name, relation=_relation(p, new))
                        if p.object is not None and p.key in to_come else p for p in self.placements])

    def set_state(self, container: str, state: str) -> "Goal":
        """The container ends `state` ("open" or "closed") instead, if the goal says how it ends."""
        return Goal(tuple(replace(p, relation=state) if p.object is None and p.target == container else p
                          for p in self.placements))


def _relation(p: Placement, target: SceneObject) -> str:
    from sim.tasks import relation_to

    return p.relation if p.object is None else relation_to(target)


def _merged(placements: list[Placement]) -> Goal:
    """One placement per key, the last one winning (two steps that move one object: where it ends)."""
    by_key: dict[str, Placement] = {}
    for p in placements:
        by_key.pop(p.key, None)
        by_key[p.key] = p
    return Goal(tuple(by_key.values()))


def _say(name: str, objects: Sequence[SceneObject]) -> str:
    obj = next((o for o in objects if o.name == name), None)
    return short_name(obj, list(objects)) if obj is not None else name.replace("_", " ")


def primary_object(call: SkillCall, objects: Sequence[SceneObject], lexicon: Lexicon) -> SceneObject | None:
    """The scene object in the call's primary slot, if it names exactly one."""
    slot = lexicon.primary_slot(call.skill)
    desc = call.args.get(slot) if slot else None
    if not isinstance(desc, str) or not desc:
        return None
    try:
        return resolve(desc, objects)
    except CorrigoError:
        return None


def goal_from_plan(plan: Sequence[SkillCall], objects: Sequence[SceneObject], lexicon: Lexicon,
                   held: SceneObject | None = None) -> Goal | None:
    """The final placements `plan` makes (starting with `held` in the hand); None when it moves nothing."""
    from sim.tasks import relation_to

    if not plan:
        return Goal()
    carried = held.name if held is not None else None
    placements: list[Placement] = []
    for call in plan:
        role = lexicon.role_of(call.skill)
        if role not in ("acquire", "deliver", *_STATE_OF_ROLE):
            continue
        obj = primary_object(call, objects, lexicon)
        if obj is None:
            continue
        if role == "acquire":
            carried = obj.name
        elif role == "deliver":
            if carried is not None:
                placements.append(Placement(relation_to(obj), obj.name, carried))
            carried = None
        else:
            placements.append(Placement(_STATE_OF_ROLE[role], obj.name))
    filled = {p.target for p in placements if p.object is not None}
    placements = [p for p in placements if p.object is not None or p.relation != "open" or p.target not in filled]
    return _merged(placements) if placements else None


def to_come(calls: Sequence[SkillCall], held: SceneObject | None, objects: Sequence[SceneObject],
            lexicon: Lexicon) -> frozenset[str]:
    """Keys of the placements still to come: the held object, and what steps still to run take, open or close."""
    keys = {held.name} if held is not None else set()
    for call in calls:
        role = lexicon.role_of(call.skill)
        if role == "acquire" or role in _STATE_OF_ROLE:
            obj = primary_object(call, objects, lexicon)
            if obj is not None:
                keys.add(obj.name if role == "acquire" else f"{obj.name}#state")
    return frozenset(keys)


def ground_goal(task: str, objects: Sequence[SceneObject], observation: dict[str, Any], knowledge: Sequence[Any],
                library: Any) -> Goal | None:
    """The goal of a task sentence, grounded as the rule-based planner grounds it (with task knowledge)."""
    from policies.base import PolicyError
    from policies.rule_based import RuleBasedPolicy, held_object

    objs = list(objects)
    try:
        plan = RuleBasedPolicy(library).ground(task, objs, observation, knowledge)
    except (PolicyError, CorrigoError):
        return None
    return goal_from_plan(plan, objs, library.lexicon(), held_object(observation, objs))
