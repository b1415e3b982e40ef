"""Rule-based grounding: task sentences -> plans of skill calls over the perceived scene."""
from __future__ import annotations

import re
from typing import Any, Sequence

import numpy as np

from robot.describe import AmbiguousObjectError, UnknownObjectError, match_objects, parse_description, resolve
from robot.geometry import quat_conj, rotate
from robot.types import SceneObject
from policies.base import Done, HighLevelPolicy, PlanEdit, PolicyError, Step
from skills.base import SkillCall
from skills.library import SkillLibrary, default_library, normalize

_PUT = r"(?:put|place|move|drop|store|sort|collect|bring|transfer|set)"
_IN = r"(?:in|into|inside|on top of|onto|on|to)"
# (pattern, kind) tried in order on the normalised sentence
GRAMMAR: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(rx), kind)
    for rx, kind in (
        (r"^open (?P<y>[a-z ]+?) and (?:put|place) (?P<x>[a-z ]+?) (?:in|into|inside) it$", "put"),
        (r"^(?:pick up|grab|take|pick) (?P<x>[a-z ]+?)(?: up)? and (?:put|place|drop|stack) it " + _IN + r" (?P<y>[a-z ]+)$", "put"),
        (r"^stack (?P<x>[a-z ]+?) " + _IN + r" (?P<y>[a-z ]+)$", "put"),
        (r"^" + _PUT + r" (?P<x>[a-z ]+?) " + _IN + r" (?P<y>[a-z ]+)$", "put"),
        (r"^(?:put away|tidy up|tidy away|clear away|clean up) (?P<x>[a-z ]+?)$", "away"),
        (r"^(?:put|tidy|clear) (?P<x>[a-z ]+?) away$", "away"),
        (r"^(?:open up|open|pull out|slide out) (?P<y>[a-z ]+?)$", "open"),
        (r"^(?:pull|slide) (?P<y>[a-z ]+?) (?:open|out)$", "open"),
        (r"^(?:close|shut) (?P<y>[a-z ]+?)$", "close"),
        (r"^(?:push|slide) (?P<y>[a-z ]+?) (?:closed|shut|in)$", "close"),
    )
)
_PLURAL = {"all", "every", "each", "everything"}


def _is_group(desc: str) -> bool:
    ws = set(desc.split())
    colours, cats, groups, _ = parse_description(desc)
    plural = any(w.endswith("s") and w[:-1] in ("block", "apple", "banana", "lemon", "orange", "cube", "fruit") for w in ws)
    return bool(ws & _PLURAL) or bool(groups - {"*"}) or plural


def already_in(obj: SceneObject, target: SceneObject) -> bool:
    """A cheap, perception-level test that `obj` is already on/in `target`."""
    local = rotate(quat_conj(target.quat_xyzw), obj.position - target.position)
    if target.category == "cabinet":
        return False
    half = 0.5 * float(min(target.size[0], target.size[1]))
    return bool(np.hypot(local[0], local[1]) < half and 0.0 <= local[2] < target.size[2] + 0.03)


def held_object(observation: dict[str, Any], objects: list[SceneObject]) -> SceneObject | None:
    """The object between the fingers, judged from the gripper state and object poses."""
    state = observation.get("observation.state")
    if state is None:
        return None
    ee, grip = np.asarray(state[:3], float), float(state[7])
    if not 0.05 < grip < 0.97:  # open, or closed on nothing
        return None
    for o in objects:
        if o.attributes.get("graspable") and o.position[2] > 0.02:
            centre = o.position + np.array([0.0, 0.0, float(o.attributes.get("grasp_height", 0.02))])
            if np.linalg.norm(centre - ee) < 0.04:
                return o
    return None


class RuleBasedPolicy(HighLevelPolicy):
    """Grounds a task sentence into a plan once, then hands out its steps.

    Failed steps are retried by replanning from the perceived scene (at most
    `max_retries` times per task).
    """

    name = "rule_based"
    version = "rule_based-1"

    def __init__(self, library: SkillLibrary | None = None, max_retries: int = 2) -> None:
        self.library = library or default_library()
        self.max_retries = max_retries
        self.reset()

    def reset(self) -> None:
        self._task: str | None = None
        self._plan: list[SkillCall] = []
        self._retries = 0
        self._seen_history = 0
        self._target_override: str | None = None
        self._used: list[Any] = []
        self._knowledge: list[Any] = []

    # ----- grounding -----
    def ground(self, task: str, objects: list[SceneObject], observation: dict[str, Any] | None = None,
               knowledge: Sequence[Any] = ()) -> list[SkillCall]:
        self._held = held_object(observation or {}, objects)
        task = self._apply_aliases(task, objects, knowledge)
        plan = self._ground_text(task, objects, knowledge)
        plan = self._apply_order(plan, objects, knowledge)
        return self._apply_inserts(plan, objects, knowledge)

    def _ground_text(self, task: str, objects: list[SceneObject], knowledge: Sequence[Any]) -> list[SkillCall]:
        text = normalize(task)
        single = self.library.parse(task)
        for rx, kind in GRAMMAR:
            m = rx.match(text)
            if not m:
                continue
            if kind == "put":
                return self._ground_put(m["x"], m["y"], objects)
            if kind == "away":
                return self._ground_away(m["x"], objects, knowledge)
            cab = self._resolve(m["y"], objects)
            if cab.category != "cabinet":
                if single is not None:
                    return [single]
                raise PolicyError(f"the {cab.description} has no drawer to {kind}")
            opened = cab.state.get("drawer_open", 0.0)
            if kind == "open":
                return [] if opened >= 0.1 else [SkillCall("open_drawer", {"object": "drawer"})]
            return [] if opened <= 0.02 else [SkillCall("close_drawer", {"object": "drawer"})]
        if single is not None:
            for slot in ("object", "target"):
                if slot in single.args and single.args[slot] != "drawer":
                    self._resolve(single.args[slot], objects)
            return [single]
        raise PolicyError(f"cannot ground the task {task!r}: no rule matches (try 'put the red block in the blue bowl')")

    def _resolve(self, desc: str, objects: list[SceneObject], exclude: Sequence[str] = ()) -> SceneObject:
        try:
            return resolve(desc, objects, exclude)
        except (UnknownObjectError, AmbiguousObjectError) as e:
            raise PolicyError(str(e)) from None

    def _ground_put(self, x: str, y: str, objects: list[SceneObject]) -> list[SkillCall]:
        target = self._resolve(y, objects)
        tname = _name_for(target, objects)
        if _is_group(x):
            items = [o for o in match_objects(x, objects) if o.attributes.get("graspable") and o.name != target.name]
            if not items:
                raise PolicyError(f"no object matches {x!r}; the scene has: {', '.join(o.description for o in objects)}")
        else:
            items = [self._resolve(x, objects, exclude=[target.name])]
        items = [o for o in items if not already_in(o, target)]
        plan: list[SkillCall] = []
        if target.category == "cabinet" and items and target.state.get("drawer_open", 0.0) < 0.1:
            plan.append(SkillCall("open_drawer", {"object": "drawer"}))
        held = getattr(self, "_held", None)
        for o in sorted(items, key=lambda o: (held is None or o.name != held.name, float(np.hypot(*o.position[:2])))):
            if held is None or o.name != held.name:  # an object already in the hand needs no pick
                plan.append(SkillCall("pick", {"object": _name_for(o, objects)}))
            plan.append(SkillCall("place", {"target": tname}))
        return plan

    # ----- task-level knowledge -----
    def _use(self, item: Any) -> None:
        if all(getattr(u, "id", u) != getattr(item, "id", item) for u in self._used):
            self._used.append(item)

    def _apply_aliases(self, task: str, objects: list[SceneObject], knowledge: Sequence[Any]) -> str:
        cats = {o.category for o in objects}
        for item in knowledge:
            e = getattr(item, "effect", {})
            if e.get("type") == "alias" and e.get("means") in cats:
                new = re.sub(rf"\b{re.escape(e['word'])}\b", e["means"], task, flags=re.IGNORECASE)
                if new != task:
                    task = new
                    self._use(item)
        return task

    def _ground_away(self, x: str, objects: list[SceneObject], knowledge: Sequence[Any]) -> list[SkillCall]:
        """'put away the apple': where it goes is a preference, else the nearest container."""
        items = match_objects(x, objects) if _is_group(x) else [self._resolve(x, objects)]
        items = [o for o in items if o.attributes.get("graspable")]
        if not items:
            raise PolicyError(f"nothing to put away matches {x!r}")
        plan: list[SkillCall] = []
        containers = [o for o in objects if o.attributes.get("container") and o.category != "cabinet"]
        if not containers:
            raise PolicyError("there is no container to put things away in")
        for o in sorted(items, key=lambda o: float(np.hypot(*o.position[:2]))):
            target = None
            for item in knowledge:
                e = getattr(item, "effect", {})
                if e.get("type") == "preference" and e.get("applies_to") in (o.category, o.attributes.get("group")):
                    try:
                        target = resolve(str(e["target"]), objects)
                    except (UnknownObjectError, AmbiguousObjectError):
                        continue
                    self._use(item)
                    break
            if target is None:
                target = min(containers, key=lambda c: float(np.linalg.norm(c.position[:2] - o.position[:2])))
            if not already_in(o, target):
                plan += [SkillCall("pick", {"object": _name_for(o, objects)}),
                         SkillCall("place", {"target": _name_for(target, objects)})]
        return plan

    def _apply_order(self, plan: list[SkillCall], objects: list[SceneObject], knowledge: Sequence[Any]) -> list[SkillCall]:
        for item in knowledge:
            e = getattr(item, "effect", {})
            if e.get("type") != "plan" or e.get("op") != "order":
                continue
            pairs, i = [], 0
            while i < len(plan):  # group pick+place pairs so they move together
                n = 2 if plan[i].skill == "pick" and i + 1 < len(plan) and plan[i + 1].skill == "place" else 1
                pairs.append(plan[i:i + n])
                i += n

            def first(pair: list[SkillCall]) -> int:
                desc = pair[0].args.get("object", "") if pair[0].skill == "pick" else ""
                _, cats, _, _ = parse_description(desc)
                return 0 if e.get("first") in cats else 1

            ordered = sorted(pairs, key=first)  # stable: the rest keep their order
            if ordered != pairs:
                self._use(item)
            plan = [c for pair in ordered for c in pair]
        return plan

    def _apply_inserts(self, plan: list[SkillCall], objects: list[SceneObject], knowledge: Sequence[Any]) -> list[SkillCall]:
        for item in knowledge:
            e = getattr(item, "effect", {})
            if e.get("type") != "plan" or e.get("op") != "insert_before":
                continue
            anchor = e.get("anchor") or {}
            for i, c in enumerate(plan):
                _, cats, _, _ = parse_description(" ".join(str(v) for v in c.args.values()))
                if c.skill == anchor.get("skill") and (not anchor.get("object_category") or anchor["object_category"] in cats):
                    steps = [self.library.parse(t) for t in e.get("steps", [])]
                    steps = [s for s in steps if s is not None and not self._already_done(s, objects)
                             and all(p.skill != s.skill or p.args != s.args for p in plan[:i])]
                    if steps:
                        plan[i:i] = steps
                        self._use(item)
                    break
        return plan

    @staticmethod
    def _already_done(call: SkillCall, objects: list[SceneObject]) -> bool:
        cab = next((o for o in objects if o.category == "cabinet"), None)
        if call.skill == "open_drawer":
            return cab is None or cab.state.get("drawer_open", 0.0) >= 0.1
        if call.skill == "close_drawer":
            return cab is None or cab.state.get("drawer_open", 0.0) <= 0.02
        return False

    def knowledge_used(self) -> list[Any]:
        return list(self._used)

    # ----- the contract -----
    def next_step(self, observation: dict[str, Any], task: str, history: Sequence[Step], knowledge: Sequence[Any]) -> SkillCall | Done:
        objects = observation.get("perception.objects", [])
        if task != self._task:
            self._knowledge = list(knowledge)
            self._task, self._plan, self._retries, self._seen_history = (
                task, self.ground(task, objects, observation, self._knowledge), 0, len(history))
            if self._target_override:
                self._apply_target(self._target_override)
        new = list(history[self._seen_history :])
        self._seen_history = len(history)
        # Only the policy's own failures trigger a retry; operator steps are the operator's call.
        failed = [s for s in new if s.source == "policy" and s.outcome is not None and not s.outcome.ok and not s.interrupted]
        if failed:
            if self._retries >= self.max_retries:
                return Done(f"giving up after {self._retries} retries: {failed[-1].outcome.message}", ok=False)
            self._retries += 1
            self.replan(observation, task)
        if not self._plan:
            return Done()
        return self._plan.pop(0)

    def replan(self, observation: dict[str, Any], task: str, reason: str = "") -> None:
        objects = observation.get("perception.objects", [])
        self._plan = self.ground(task, objects, observation, getattr(self, "_knowledge", []))
        if self._target_override:
            self._apply_target(self._target_override)
        self._task = task

    def remaining(self) -> list[SkillCall]:
        return list(self._plan)

    def edit_plan(self, edit: PlanEdit, observation: dict[str, Any]) -> str:
        if edit.op == "insert":
            self._plan[0:0] = list(edit.calls)
            return "will first " + " and ".join(self.library.render(c) for c in edit.calls)
        if edit.op == "skip":
            if not self._plan:
                return "nothing left to skip"
            dropped = self._plan.pop(0)
            # skipping a pick also drops the place that goes with it
            if dropped.skill == "pick" and self._plan and self._plan[0].skill == "place":
                self._plan.pop(0)
            return f"skipped: {self.library.render(dropped)}"
        if edit.op == "reorder" and edit.before:
            idx = [i for i, c in enumerate(self._plan) if c.skill == "pick" and _desc_match(c.args.get("object", ""), edit.before)]
            if not idx:
                raise PolicyError(f"no remaining step picks {edit.before!r}")
            i = idx[0]
            pair = self._plan[i : i + 2] if i + 1 < len(self._plan) and self._plan[i + 1].skill == "place" else self._plan[i : i + 1]
            del self._plan[i : i + len(pair)]
            # a leading place belongs to the object already in the hand: it stays first
            at = 1 if self._plan and self._plan[0].skill == "place" else 0
            self._plan[at:at] = pair
            return f"will do the {edit.before} first"
        if edit.op == "replace" and edit.target:
            self._target_override = edit.target
            n = self._apply_target(edit.target)
            return f"will put it in the {edit.target} instead" if n else f"noted: {edit.target} (no placing step left)"
        raise PolicyError(f"cannot apply plan edit {edit.op!r}")

    def _apply_target(self, target: str) -> int:
        n = 0
        for c in self._plan:
            if c.skill == "place":
                c.args["target"] = target
                n += 1
        return n

    def retarget(self, old: str | None, new: str, slot: str | None = None) -> int:
        """Re-ground the remaining steps: replace `old` by `new` (an `object` correction)."""
        n = 0
        for c in self._plan:
            for s in ("object", "target"):
                if slot not in (None, s) or s not in c.args:
                    continue
                if old is None or _desc_match(c.args[s], old):
                    c.args[s] = new
                    n += 1
        return n


def _desc_match(a: str, b: str) -> bool:
    ca, ka, ga, _ = parse_description(a)
    cb, kb, gb, _ = parse_description(b)
    if kb and ka and not (ka & kb):
        return False
    if cb and ca and not (ca & cb):
        return False
    return bool((ka & kb) or (ca & cb) or a == b)


def _name_for(obj: SceneObject, objects: list[SceneObject]) -> str:
    """The shortest description that names `obj` uniquely."""
    if obj.category == "cabinet":
        return "drawer"
    for d in (obj.category, obj.description):
        if len(match_objects(d, objects)) == 1:
            return d
    return obj.name.replace("_", " ")
