"""Rule-based grounding: task sentences -> plans of skill calls over the perceived scene.

Skills are found by the role they play (robot.lexicon: "acquire", "deliver",
"open_container", ...), so a library whose skills have other names plans the same way.
"""
from __future__ import annotations

import re
from typing import Any, Sequence

import numpy as np

from corrections_kb.effects import Alias, InsertStep, Order, PreferredContainer
from robot.describe import AmbiguousObjectError, UnknownObjectError, match_objects, parse_description, resolve, short_name
from robot.geometry import quat_conj, rotate
from robot.types import SceneObject
from robot.vocab import CATEGORY_WORDS, KIND_GROUP_WORDS
from policies.base import Done, HighLevelPolicy, PlanEdit, PolicyError, Step
from skills.arm import held_object
from skills.base import SkillCall
from skills.library import SkillLibrary, default_library
from skills.text import normalize

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
    plural = any(w.endswith("s") and (w[:-1] in CATEGORY_WORDS or w[:-1] in KIND_GROUP_WORDS) for w in ws)
    return bool(ws & _PLURAL) or bool(groups - {"*"}) or plural


def already_in(obj: SceneObject, target: SceneObject) -> bool:
    """A cheap, perception-level test that `obj` is already on/in `target`."""
    local = rotate(quat_conj(target.quat_xyzw), obj.position - target.position)
    if target.category == "cabinet":
        return False
    half = 0.5 * float(min(target.size[0], target.size[1]))
    return bool(np.hypot(local[0], local[1]) < half and 0.0 <= local[2] < target.size[2] + 0.03)


class RuleBasedPolicy(HighLevelPolicy):
    """Grounds a task sentence into a plan once, then hands out its steps.

    Failed steps are retried by replanning from the perceived scene (at most
    `max_retries` times per task). A pick (the `acquire` role) that failed, the
    policy's or the operator's, is tried `acquire_retries` more times from a fresh
    approach before anything that was to follow it; then the policy stops and asks.
    """

    name = "rule_based"
    version = "rule_based-1"

    def __init__(self, library: SkillLibrary | None = None, max_retries: int = 2, acquire_retries: int = 1) -> None:
        self.library = library or default_library()
        self.lexicon = self.library.lexicon()
        self.max_retries = max_retries
        self.acquire_retries = acquire_retries
        self.reset()

    # ----- skills by role -----
    def _call(self, role: str, desc: str | None = None) -> SkillCall:
        """A call of the skill that plays `role`, with `desc` in its primary slot."""
        words = self.lexicon.by_role(role)
        if words is None:
            raise PolicyError(f"the skill library has no skill for the role {role!r} (skills: {', '.join(self.lexicon.names())})")
        return SkillCall(words.name, {words.primary_slot: desc} if desc is not None and words.primary_slot else {})

    def _is(self, call: SkillCall, role: str) -> bool:
        return self.lexicon.role_of(call.skill) == role

    def _primary(self, call: SkillCall) -> str:
        slot = self.lexicon.primary_slot(call.skill)
        value = call.args.get(slot, "") if slot else ""
        return value if isinstance(value, str) else ""

    def _pairs(self, plan: list[SkillCall]) -> list[list[SkillCall]]:
        """The plan cut into acquire+deliver pairs (which move together) and single steps."""
        pairs, i = [], 0
        while i < len(plan):
            n = 2 if self._is(plan[i], "acquire") and i + 1 < len(plan) and self._is(plan[i + 1], "deliver") else 1
            pairs.append(plan[i:i + n])
            i += n
        return pairs

    def reset(self) -> None:
        self._task: str | None = None
        self._plan: list[SkillCall] = []
        self._retries = 0
        self._seen_history = 0
        self._target_override: str | None = None
        self._used: list[Any] = []
        self._knowledge: list[Any] = []
        self._misses: dict[str, list[str]] = {}  # object name -> what each failed pick of it in a row said

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
                return [] if opened >= 0.1 else [self._call("open_container", "drawer")]
            return [] if opened <= 0.02 else [self._call("close_container", "drawer")]
        if single is not None:
            words = self.lexicon.get(single.skill)
            for slot in words.object_slots if words else ():
                if isinstance(single.args.get(slot), str) and single.args[slot] != "drawer":
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
        tname = short_name(target, objects)
        if _is_group(x):
            items = [o for o in match_objects(x, objects) if o.attributes.get("graspable") and o.name != target.name]
            if not items:
                raise PolicyError(f"no object matches {x!r}; the scene has: {', '.join(o.description for o in objects)}")
        else:
            items = [self._resolve(x, objects, exclude=[target.name])]
        items = [o for o in items if not already_in(o, target)]
        plan: list[SkillCall] = []
        if target.category == "cabinet" and items and target.state.get("drawer_open", 0.0) < 0.1:
            plan.append(self._call("open_container", "drawer"))
        held = getattr(self, "_held", None)
        for o in sorted(items, key=lambda o: (held is None or o.name != held.name, float(np.hypot(*o.position[:2])))):
            if held is None or o.name != held.name:  # an object already in the hand needs no pick
                plan.append(self._call("acquire", short_name(o, objects)))
            plan.append(self._call("deliver", tname))
        return plan

    # ----- task-level knowledge -----
    def _use(self, item: Any) -> None:
        if all(getattr(u, "id", u) != getattr(item, "id", item) for u in self._used):
            self._used.append(item)

    def _apply_aliases(self, task: str, objects: list[SceneObject], knowledge: Sequence[Any]) -> str:
        cats = {o.category for o in objects}
        for item in knowledge:
            e = getattr(item, "effect", None)
            if isinstance(e, Alias) and e.means in cats:
                new = re.sub(rf"\b{re.escape(e.word)}\b", e.means, task, flags=re.IGNORECASE)
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
                e = getattr(item, "effect", None)
                if isinstance(e, PreferredContainer) and e.applies_to in (o.category, o.attributes.get("group")):
                    try:
                        target = resolve(e.target, objects)
                    except (UnknownObjectError, AmbiguousObjectError):
                        continue
                    self._use(item)
                    break
            if target is None:
                target = min(containers, key=lambda c: float(np.linalg.norm(c.position[:2] - o.position[:2])))
            if not already_in(o, target):
                plan += [self._call("acquire", short_name(o, objects)), self._call("deliver", short_name(target, objects))]
        return plan

    def _apply_order(self, plan: list[SkillCall], objects: list[SceneObject], knowledge: Sequence[Any]) -> list[SkillCall]:
        for item in knowledge:
            e = getattr(item, "effect", None)
            if not isinstance(e, Order):
                continue
            pairs = self._pairs(plan)

            def first(pair: list[SkillCall], e: Order = e) -> int:
                desc = self._primary(pair[0]) if self._is(pair[0], "acquire") else ""
                _, cats, _, _ = parse_description(desc)
                return 0 if e.first in cats else 1

            ordered = sorted(pairs, key=first)  # stable: the rest keep their order
            if ordered != pairs:
                self._use(item)
            plan = [c for pair in ordered for c in pair]
        return plan

    def _apply_inserts(self, plan: list[SkillCall], objects: list[SceneObject], knowledge: Sequence[Any]) -> list[SkillCall]:
        for item in knowledge:
            e = getattr(item, "effect", None)
            if not isinstance(e, InsertStep):
                continue
            anchor_skill, anchor_cat = e.anchor_skill, e.anchor_category
            if anchor_skill is None and e.anchor_text:  # anchored on an instruction ("pick up the mug")
                anchor_call = self.library.parse(e.anchor_text)
                if anchor_call is None:
                    continue
                anchor_skill = anchor_call.skill
                anchor_cat = next(iter(parse_description(self._primary(anchor_call))[1]), None)
            for i, c in enumerate(plan):
                _, cats, _, _ = parse_description(" ".join(str(v) for v in c.args.values()))
                if c.skill == anchor_skill and (not anchor_cat or anchor_cat in cats):
                    steps = [self.library.parse(t) for t in e.steps]
                    steps = [s for s in steps if s is not None and not self._already_done(s, objects)
                             and all(p.skill != s.skill or p.args != s.args for p in plan[:i])]
                    if steps:
                        plan[i:i] = steps
                        self._use(item)
                    break
        return plan

    def _already_done(self, call: SkillCall, objects: list[SceneObject]) -> bool:
        cab = next((o for o in objects if o.category == "cabinet"), None)
        if self._is(call, "open_container"):
            return cab is None or cab.state.get("drawer_open", 0.0) >= 0.1
        if self._is(call, "close_container"):
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
        new = [s for s in history[self._seen_history :] if s.outcome is not None and not s.interrupted]
        self._seen_history = len(history)
        retry: SkillCall | None = None
        for s in new:
            if not self._is(s.call, "acquire"):
                continue
            asked = self._missed(s, objects)
            if asked is not None:
                return asked
            if not s.outcome.ok and s.source != "policy":
                retry = s.call
        # The policy's own failures are retried by replanning; an operator's failed pick by running it again.
        failed = [s for s in new if s.source == "policy" and not s.outcome.ok]
        if failed:
            if self._retries >= self.max_retries:
                return Done(f"giving up after {self._retries} retries: {failed[-1].outcome.message}", ok=False)
            self._retries += 1
            self.replan(observation, task)
        elif retry is not None:
            self._plan.insert(0, SkillCall(retry.skill, dict(retry.args)))
        if not self._plan:
            return Done()
        return self._plan.pop(0)

    def _missed(self, step: Step, objects: list[SceneObject]) -> Done | None:
        """Count the failed picks of an object in a row; once it cannot be tried again, stop and ask."""
        desc = self._primary(step.call)
        try:
            what = resolve(desc, objects).name
        except (UnknownObjectError, AmbiguousObjectError):
            what = desc
        if step.outcome.ok:
            self._misses.pop(what, None)
            return None
        said = self._misses.setdefault(what, [])
        said.append(step.outcome.message)
        if step.outcome.phase is None:  # refused before moving: trying again would say the same
            return Done(f"{step.outcome.message}; tell me what to do", ok=False)
        if len(said) <= self.acquire_retries:
            return None
        times = "twice" if len(said) == 2 else f"{len(said)} times"
        tried = f"{said[-1]} {times}" if len(set(said)) == 1 else ", then ".join(said)
        return Done(f"I {tried}; tell me what to do", ok=False)

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
            if self._is(dropped, "acquire") and self._plan and self._is(self._plan[0], "deliver"):
                self._plan.pop(0)
            return f"skipped: {self.library.render(dropped)}"
        if edit.op == "reorder" and edit.before:
            idx = [i for i, c in enumerate(self._plan) if self._is(c, "acquire") and _desc_match(self._primary(c), edit.before)]
            if not idx:
                raise PolicyError(f"no remaining step picks {edit.before!r}")
            i = idx[0]
            pair = self._plan[i : i + 2] if i + 1 < len(self._plan) and self._is(self._plan[i + 1], "deliver") else self._plan[i : i + 1]
            del self._plan[i : i + len(pair)]
            # a leading place belongs to the object already in the hand: it stays first
            at = 1 if self._plan and self._is(self._plan[0], "deliver") else 0
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
            slot = self.lexicon.primary_slot(c.skill)
            if self._is(c, "deliver") and slot:
                c.args[slot] = target
                n += 1
        return n

    def retarget(self, old: str | None, new: str, slot: str | None = None) -> int:
        """Re-ground the remaining steps: replace `old` by `new` (an `object` correction)."""
        n = 0
        for c in self._plan:
            words = self.lexicon.get(c.skill)
            for s in words.object_slots if words else ():
                if slot not in (None, s) or not isinstance(c.args.get(s), str):
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
