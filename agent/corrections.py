"""Online handling of corrections: what the agent does at once with each kind.

`handle(correction, view, library) -> list[Effect]` is pure: it reads a snapshot of the
episode (`EpisodeView`) and the skills' lexicon, and returns what to do (agent.effects);
the loop carries that out. Every correction gets exactly one reply (`Say`) saying what was
done with it. Nothing here raises on bad input: an unusable correction changes nothing and
says why. No skill is named here: skills are found by the role they play (robot.lexicon).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from agent.effects import (
    ChangeGoal,
    EditPlan,
    Effect,
    Enqueue,
    Hold,
    Interrupt,
    MarkIntervention,
    RememberDirection,
    Rescale,
    Resume,
    Retarget,
    RunNudge,
    Say,
    SetParam,
    Shift,
)
from agent.episode import EpisodeView
from agent.goal import Goal, primary_object, to_come
from corrections_kb.types import Correction
from policies.base import PlanEdit
from robot.describe import AmbiguousObjectError, UnknownObjectError, match_objects, parse_description, resolve, short_name
from robot.errors import CorrigoError
from robot.lexicon import Lexicon
from skills.base import SkillCall, set_param
from skills.library import SkillLibrary
from skills.text import format_distance, say_vector


@dataclass(frozen=True)
class HandlerConfig:
    speed_scale_range: tuple[float, float] = (0.2, 3.0)
    default_nudge_m: float = 0.03  # "move left" with no amount
    max_nudge_m: float = 0.25  # a single nudge never exceeds this


def handle(c: Correction, view: EpisodeView, library: SkillLibrary, config: HandlerConfig = HandlerConfig()) -> list[Effect]:
    """The effects of one parsed correction on the episode `view` shows."""
    h = _Handler(view, library, config)
    fn: Callable[[Correction], list[Effect]] = getattr(h, f"on_{c.kind}", h.on_unknown)
    try:
        effects = fn(c)
    except (CorrigoError, ValueError) as e:  # a correction that cannot apply changes nothing
        return [Say(f"could not apply that: {e}", applied=False)]
    if not all(finite_effect(e) for e in effects):  # defence in depth: inf/NaN never reaches the loop
        return [Say(NOT_FINITE_REPLY, applied=False)]
    if not any(isinstance(e, (Say, EditPlan, Retarget)) for e in effects):
        effects.append(Say("ok"))
    return effects


def describe_context(view: EpisodeView, library: SkillLibrary) -> dict[str, Any]:
    """What the agent was doing when a correction came (kept with it for distillation)."""
    cur = view.current
    d: dict[str, Any] = {"step": library.render(cur) if cur else None, "call": cur.to_dict() if cur else None,
                         "stopped": view.stopped, "phase": view.phase}
    if view.held is not None:
        d["held"] = view.held.name
    slot = library.lexicon().primary_slot(cur.skill) if cur else None
    desc = cur.args.get(slot) if cur and slot else None
    if desc:
        try:
            d["object"] = resolve(desc, view.objects).to_dict()
        except CorrigoError:
            pass
    return d


class _Handler:
    def __init__(self, view: EpisodeView, library: SkillLibrary, config: HandlerConfig) -> None:
        self.v = view
        self.library = library
        self.lex: Lexicon = library.lexicon()
        self.config = config

    # ----- helpers -----
    def _role_call(self, role: str, args: dict[str, Any] | None = None) -> SkillCall | None:
        name = self.lex.name_for(role)
        return SkillCall(name, dict(args or {})) if name else None

    def _interrupt(self, reason: str, then: list[SkillCall] | None = None, requeue: SkillCall | None = None) -> list[Effect]:
        """Abandon the running skill; run `then` (and `requeue`) before asking the policy again."""
        front = list(then or []) + ([requeue] if requeue is not None else [])
        effects: list[Effect] = [Interrupt(reason)]
        if front:
            effects.append(Enqueue(tuple((call, "operator") for call in front)))
        return effects

    def _object_slots(self, call: SkillCall) -> list[str]:
        words = self.lex.get(call.skill)
        slots = words.object_slots if words else ()
        return [s for s in slots if isinstance(call.args.get(s), str)]

    def _is(self, call: SkillCall | None, role: str) -> bool:
        return call is not None and self.lex.role_of(call.skill) == role

    def _render(self, call: SkillCall) -> str:
        return self.library.render(call)

    def _changed_goal(self, change: Callable[[Goal, frozenset[str]], Goal]) -> Goal | None:
        """The goal after `change` to the placements still to come; None when there is none or it stays."""
        goal = self.v.goal
        if goal is None:
            return None
        calls = [c for c in (self.v.current, *self.v.pending, *self.v.remaining) if c is not None]
        new = change(goal, to_come(calls, self.v.held, self.v.objects, self.lex))
        return new if new != goal else None

    def _instruction_goal(self, call: SkillCall) -> Goal | None:
        """The goal after a typed instruction that replaces the running step of the task (same role, other object)."""
        cur = self.v.current
        if cur is None:
            return None
        role, new_role = self.lex.role_of(cur.skill), self.lex.role_of(call.skill)
        old = primary_object(cur, self.v.objects, self.lex)
        new = primary_object(call, self.v.objects, self.lex)
        if old is None or new is None:
            return None
        if role == new_role and role in ("acquire", "deliver") and old.name != new.name:
            return self._changed_goal(lambda g, come: g.replace_object(old.name, new, come))
        if {role, new_role} == {"open_container", "close_container"} and old.name == new.name:
            return self._changed_goal(lambda g, _: g.set_state(new.name, "open" if new_role == "open_container" else "closed"))
        return None

    # ----- kinds -----
    def on_stop(self, c: Correction) -> list[Effect]:
        if self.v.stopped:
            return [Say("already stopped; say 'continue' to go on")]
        return [Hold(), Say("stopped; holding still (say 'continue' to go on)")]

    def on_resume(self, c: Correction) -> list[Effect]:
        if not self.v.stopped:
            return [Say("already moving", applied=False)]
        what = self._render(self.v.current) if self.v.current else "the plan"
        return [Resume(), Say(f"continuing: {what}")]

    def on_motion(self, c: Correction) -> list[Effect]:
        direction = c.direction
        if direction is None and c.relative and self.v.last_motion is not None:
            direction = self.v.last_motion
        if direction is None:
            return [Say("which way? (say e.g. 'a bit to the left')", applied=False)]
        d = np.asarray(direction, float)
        dist = float(c.distance_m if c.distance_m is not None else self.config.default_nudge_m)
        n = float(np.linalg.norm(d))
        # checked before any min(): min(nan, cap) is nan, the bug of issue 14
        if not (d.shape == (3,) and math.isfinite(n) and math.isfinite(dist)):
            return [Say("that amount makes no sense; nothing changed", applied=False)]
        if n < 1e-9:
            return [Say("which way? (say e.g. 'a bit to the left')", applied=False)]
        d = d / n
        if dist < 0:  # a negative amount goes the other way
            d, dist = -d, -dist
        cap = self.config.max_nudge_m
        note = _over_cap(cap) if dist > cap else ""
        dist = min(dist, cap)
        v = d * dist
        what = f"{format_distance(dist)} {say_vector(d)}"
        nudge = self._role_call("nudge", {"vector": v.tolist(), "direction": say_vector(d), "distance_m": dist})
        shift = Shift(offset=(float(v[0]), float(v[1]), float(v[2])))
        remember = RememberDirection((float(d[0]), float(d[1]), float(d[2])))
        if self.v.current is not None and not self.v.stopped:
            return [remember, shift, MarkIntervention(), Say(f"{note}shifting {self._render(self.v.current)!r} {what}")]
        if nudge is None:
            return [Say("I have no skill to move the gripper by itself", applied=False)]
        if self.v.stopped:
            return [remember, shift, RunNudge(nudge), Say(f"{note}moving {what} (still stopped)")]
        return [remember, Enqueue(((nudge, "operator"),)), Say(f"{note}moving {what}")]

    def on_rotate(self, c: Correction) -> list[Effect]:
        axis = np.asarray(c.axis if c.axis is not None else (0.0, 0.0, 1.0), float)
        if c.angle_rad is None:
            return [Say("rotate by how much?", applied=False)]
        if not (math.isfinite(c.angle_rad) and np.all(np.isfinite(axis))):
            return [Say("that angle makes no sense; nothing changed", applied=False)]
        if abs(abs(axis[2]) - 1.0) > 1e-6:
            return [Say("I can only rotate the gripper about the vertical axis", applied=False)]
        ang = float(c.angle_rad) * float(np.sign(axis[2]))
        note = "that is more than the 180 degrees I turn on a correction; " if abs(ang) > math.pi else ""
        ang = max(-math.pi, min(math.pi, ang))  # finite: checked above
        say = f"{abs(math.degrees(ang)):.0f} degrees {'counterclockwise' if ang > 0 else 'clockwise'}"
        turn = self._role_call("turn", {"angle_rad": ang})
        if self.v.stopped:
            if turn is None:
                return [Say("I have no skill to turn the gripper by itself", applied=False)]
            return [Shift(yaw=ang), RunNudge(turn), Say(f"{note}rotating {say} (still stopped)")]
        if self.v.current is not None:
            return [Shift(yaw=ang), MarkIntervention(), Say(f"{note}rotating {say} while I {self._render(self.v.current)}")]
        if turn is None:
            return [Say("I have no skill to turn the gripper by itself", applied=False)]
        return [Enqueue(((turn, "operator"),)), Say(f"{note}rotating {say}")]

    def on_gripper(self, c: Correction) -> list[Effect]:
        opening = c.gripper == "open"
        call = self._role_call("release" if opening else "grip")
        if call is None:
            return [Say(f"I have no skill to {c.gripper} the gripper", applied=False)]
        verb = "opening" if opening else "closing"
        if self.v.stopped:
            return [RunNudge(call), Say(f"{verb} the gripper (still stopped)")]
        return [*self._interrupt(f"operator asked to {c.gripper} the gripper", then=[call]),
                Say(f"{verb} the gripper, then carrying on with the plan")]

    def on_speed(self, c: Correction) -> list[Effect]:
        s = 1.0 if c.speed_scale is None else float(c.speed_scale)
        if not math.isfinite(s) or s <= 0:
            return [Say("that speed makes no sense; nothing changed", applied=False)]
        lo, hi = self.config.speed_scale_range
        want = self.v.speed_scale * s
        new = min(max(want, lo), hi)
        note = (f"that is faster than the {hi:.2g}x I go; " if want > hi else
                f"that is slower than the {lo:.2g}x I go at least; " if want < lo else "")
        return [Rescale(new), Say(f"{note}speed now {new:.2g}x")]

    def on_object(self, c: Correction) -> list[Effect]:
        objects = list(self.v.objects)
        cur = self.v.current or (self.v.pending[0] if self.v.pending else None)
        remaining = list(self.v.remaining)
        if cur is None and remaining:
            cur = remaining[0]
        # Which slot is corrected: the one whose category the correction names, else the running skill's own.
        named = c.target or c.negated or ""
        _, cats, _, _ = parse_description(named)
        slot, old = None, None
        for call in [x for x in (cur, *remaining) if x is not None]:
            for s in self._object_slots(call):
                desc = call.args[s]
                if not cats or (parse_description(desc)[1] & cats) or _is_cabinet_word(desc, cats):
                    slot, old = s, desc
                    break
            if slot:
                break
        if slot is None and cur is not None:
            slot = self.lex.primary_slot(cur.skill)
            old = cur.args.get(slot) if slot else None
        if slot is None or old is None:
            return [Say("there is no object in what I am doing to change", applied=False)]
        try:
            old_obj = resolve(old, objects)
        except CorrigoError:
            old_obj = None
        new_desc = _meant(c, old, old_obj, objects)
        if new_desc is None:
            return [Say(f"which {_category_of(old) or 'one'} did you mean?", applied=False)]
        try:
            new_obj = resolve(new_desc, objects)
        except (UnknownObjectError, AmbiguousObjectError) as e:
            return [Say(str(e), applied=False)]
        new_name = short_name(new_obj, objects)
        goal = self._changed_goal(lambda g, come: g.replace_object(old_obj.name, new_obj, come)) if old_obj else None
        goal_effects = _goal_effects(goal)
        running = self.v.current
        if running is not None and slot in running.args:
            fixed = SkillCall(running.skill, {**running.args, slot: new_name})
            return [Retarget(old, new_name, slot), *self._interrupt(f"operator meant the {new_name}", requeue=fixed),
                    *goal_effects, Say(f"ok, the {new_name}: {self._render(fixed)}")]
        return [Retarget(old, new_name, slot, reply=f"ok, the {new_name} ({{n}} remaining step{{s}} changed)"), *goal_effects]

    def on_plan(self, c: Correction) -> list[Effect]:
        cur = self.v.current
        if c.plan_op == "insert":
            calls = []
            for ins in c.instructions:
                call = self.library.parse(ins)
                if call is None:
                    return [Say(f"I don't know how to {ins!r}", applied=False)]
                calls.append(call)
            if not calls:
                return [Say("insert what?", applied=False)]
            return [*self._interrupt("operator inserted steps", then=calls, requeue=cur),
                    Say("first: " + ", then ".join(self._render(x) for x in calls))]
        if c.plan_op == "skip":
            if cur is None:
                return [EditPlan(PlanEdit("skip"), say=True)]
            effects: list[Effect] = [Interrupt("operator skipped it")]
            rest = self.v.remaining
            if self._is(cur, "acquire") and rest and self._is(rest[0], "deliver"):
                effects.append(EditPlan(PlanEdit("skip")))  # what was being fetched need not be put anywhere
            return [*effects, Say(f"skipping: {self._render(cur)}")]
        if c.plan_op == "reorder" and c.before:
            return self._reorder(c.before, c.after)
        if c.plan_op == "replace" and c.target:
            try:
                new = resolve(c.target, self.v.objects)
            except (UnknownObjectError, AmbiguousObjectError) as e:
                return [Say(str(e), applied=False)]
            name = short_name(new, list(self.v.objects))
            goal = self._changed_goal(lambda g, come: g.retarget(new, come))
            effects = [EditPlan(PlanEdit("replace", target=name), say=True, goal=goal)]
            if self._is(cur, "deliver") and cur is not None:
                slot = self.lex.primary_slot(cur.skill) or "target"
                moved = SkillCall(cur.skill, {**cur.args, slot: name})
                # the running step carries the held object there, whatever the policy does with its plan
                effects += [*self._interrupt(f"operator wants it in the {name}", requeue=moved),
                            *_goal_effects(goal), Say(f"putting it in the {name} instead")]
            return effects
        return [Say("I did not get how to change the plan", applied=False)]

    def _reorder(self, before: str, after: str | None) -> list[Effect]:
        cur = self.v.current
        holding = self.v.held is not None
        first = self._role_call("acquire", {"object": before})
        # A policy without an editable plan: act on it now, as an instruction (YAY style).
        if first is not None:
            slot = self.lex.primary_slot(first.skill) or "object"
            first = SkillCall(first.skill, {slot: before})
            try:
                resolve(before, self.v.objects)
                fallback: tuple[Effect, ...] = (*self._interrupt(f"operator wants the {before} first", then=[first]),
                                                Say(f"ok: {self._render(first)} first"))
            except (UnknownObjectError, AmbiguousObjectError) as e:
                fallback = (Say(str(e), applied=False),)
        else:
            fallback = (Say("I have no skill to fetch things in another order", applied=False),)
        effects: list[Effect] = []
        # A pick of something else under way (nothing in the hand yet) goes back in the plan.
        if self._is(cur, "acquire") and cur is not None and not holding and not _desc_in(cur, before):
            effects += [EditPlan(PlanEdit("insert", [cur]), otherwise=fallback),
                        Interrupt(f"operator wants the {before} first")]
        return [*effects, EditPlan(PlanEdit("reorder", before=before, after=after), say=True, otherwise=fallback)]

    def on_skill(self, c: Correction) -> list[Effect]:
        words = self.lex.get(c.skill)
        if words is None or not c.param:
            return [Say("I don't know which skill to change", applied=False)]
        spec = words.param(c.param)
        if spec is None:
            return [Say(f"{c.skill} has no parameter {c.param!r}", applied=False)]
        live = self.v.current is not None and self.v.current.skill == c.skill and self.v.params is not None
        if live:
            old = self.v.params[c.param]  # type: ignore[index]
        else:
            old = self.v.episode_params.get(c.skill, {}).get(c.param, spec.default)
        note = ""
        delta = c.delta
        if isinstance(delta, (tuple, list)) and len(delta) == 3:  # a vector delta is an offset in metres
            size = float(np.linalg.norm(np.asarray(delta, float)))
            cap = self.config.max_nudge_m
            if math.isfinite(size) and size > cap:
                delta = tuple(float(x) * cap / size for x in delta)
                note = _over_cap(cap)
        new = _apply_value(old, c.value, delta)
        set_param(self.library.get(words.name).default_params(), c.param, new)  # validates: a one-line error
        when = "now" if live else f"the next time I {words.name.replace('_', ' ')}"
        effects: list[Effect] = [SetParam(words.name, c.param, new, live=live)]
        if live:
            effects.append(MarkIntervention())
        return [*effects, Say(f"{note}{words.name}: {c.param} {_fmt(old)} -> {_fmt(new)} ({when})")]

    def on_preference(self, c: Correction) -> list[Effect]:
        return [Say(f"noted: {c.statement or c.text} (I'll remember this)")]

    def on_confirm(self, c: Correction) -> list[Effect]:
        return [Say("thanks!")]

    def on_unknown(self, c: Correction) -> list[Effect]:
        call = self.library.parse(c.text)
        if call is None:
            shown = c.text.strip()[:60] or "(nothing)"
            return [Say(f"sorry, I didn't understand {shown!r}; nothing changed", applied=False)]
        for slot in self._object_slots(call):
            if call.args[slot] != "drawer":
                try:
                    resolve(call.args[slot], self.v.objects)
                except (UnknownObjectError, AmbiguousObjectError) as e:
                    return [Say(str(e), applied=False)]
        return [*self._interrupt("operator gave a new instruction", then=[call]), *_goal_effects(self._instruction_goal(call)),
                Say(f"ok: {self._render(call)}")]


def _numbers(x: Any) -> list[float]:
    """Every number inside an effect's payload (tuples, lists, dicts, skill calls)."""
    if isinstance(x, bool):
        return []
    if isinstance(x, (int, float, np.floating, np.integer)):
        return [float(x)]
    if isinstance(x, np.ndarray):
        return [float(v) for v in x.reshape(-1)]
    if isinstance(x, dict):
        return [v for y in x.values() for v in _numbers(y)]
    if isinstance(x, (tuple, list)):
        return [v for y in x for v in _numbers(y)]
    if isinstance(x, SkillCall):
        return _numbers(x.args)
    return []


NOT_FINITE_REPLY = "could not apply that: a number in it is not finite; nothing changed"


def _over_cap(cap_m: float) -> str:
    """The start of a reply to a shift larger than the per-correction cap."""
    return f"that is more than the {format_distance(cap_m)} I move on a correction; "


def finite_effect(e: Effect) -> bool:
    """No inf/NaN in what an effect would move, scale or set."""
    payload: Any = ()
    if isinstance(e, Shift):
        payload = (e.offset, e.yaw)
    elif isinstance(e, RememberDirection):
        payload = e.direction
    elif isinstance(e, Rescale):
        payload = e.speed_scale
    elif isinstance(e, SetParam):
        payload = e.value
    elif isinstance(e, RunNudge):
        payload = e.call
    elif isinstance(e, Enqueue):
        payload = e.calls
    return all(math.isfinite(v) for v in _numbers(payload))


def _goal_effects(goal: Goal | None) -> list[Effect]:
    return [ChangeGoal(goal)] if goal is not None else []


def _meant(c: Correction, old: str, old_obj: Any, objects: list[Any]) -> str | None:
    """The description the operator meant, filled in from what was being used."""
    cat = _category_of(c.target or "") or _category_of(c.negated or "") or _category_of(old)
    if c.target and not c.other:
        colours, cats, groups, _ = parse_description(c.target)
        if cats or groups - {"*"}:
            return c.target
        desc = " ".join(sorted(colours)) + (f" {cat}" if cat else "")
        return desc.strip() or None
    # "the other bowl" / "that's not the mug": the one remaining candidate of that category
    exclude = {old_obj.name} if old_obj is not None else set()
    if c.negated:
        exclude |= {o.name for o in match_objects(c.negated, objects)}
    cands = [o for o in match_objects(cat or "", objects) if o.name not in exclude] if cat else []
    if len(cands) == 1:
        return str(cands[0].description)
    return None


def _category_of(desc: str) -> str | None:
    _, cats, _, _ = parse_description(desc)
    return sorted(cats)[0] if len(cats) == 1 else None


def _is_cabinet_word(desc: str, cats: set[str]) -> bool:
    return "cabinet" in cats and desc == "drawer"


def _desc_in(call: SkillCall, desc: str) -> bool:
    _, cats, _, _ = parse_description(desc)
    return any(parse_description(v)[1] & cats for v in call.args.values() if isinstance(v, str))


def _apply_value(old: Any, value: Any, delta: Any) -> Any:
    if isinstance(old, (tuple, list)):
        base = np.asarray(old, float)
        if value is not None:
            return tuple(float(v) for v in np.broadcast_to(np.asarray(value, float), base.shape))
        return tuple(float(v) for v in base + np.broadcast_to(np.asarray(delta or 0.0, float), base.shape))
    if isinstance(old, int) and not isinstance(old, bool):
        if value is not None:
            return int(round(float(np.asarray(value, float).reshape(-1)[0])))
        return old + int(round(float(np.asarray(delta or 0, float).reshape(-1)[0])))
    if value is not None:
        return float(np.asarray(value, float).reshape(-1)[0])
    return float(old) + float(np.asarray(delta or 0.0, float).reshape(-1)[0])


def _fmt(v: Any) -> str:
    if isinstance(v, (tuple, list)):
        return "(" + ", ".join(f"{x:.3g}" for x in v) + ")"
    return f"{v:.3g}" if isinstance(v, float) else str(v)
