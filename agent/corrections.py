"""Online handling of corrections: what the agent does at once with each kind.

Every utterance gets a one-line reply saying what was done with it. Nothing here
raises on bad input: an unusable correction changes nothing and says why.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from corrections_kb import parse
from corrections_kb.parser import ParserConfig
from corrections_kb.types import Correction
from policies.base import PlanEdit, PolicyError
from robot.describe import AmbiguousObjectError, UnknownObjectError, match_objects, parse_description, resolve
from robot.errors import CorrigoError
from skills.base import SkillCall, SkillContext, set_param
from skills.library import format_distance

if TYPE_CHECKING:
    from agent.loop import Agent, CorrectionRecord

# The slot a skill's object argument lives in.
PRIMARY_SLOT = {"pick": "object", "push": "object", "open_drawer": "object", "close_drawer": "object", "place": "target"}


class CorrectionHandler:
    def __init__(self, agent: "Agent") -> None:
        self.agent = agent
        self.parser_config = ParserConfig(viewpoint=agent.config.viewpoint)

    def handle(self, text: str, source: str = "operator") -> "CorrectionRecord":
        a = self.agent
        c = parse(text, self.parser_config)
        context = self._context()
        try:
            reply, applied = getattr(self, f"_on_{c.kind}")(c)
        except (CorrigoError, ValueError) as e:  # a correction that cannot apply changes nothing
            reply, applied = f"could not apply that: {e}", False
        return a.record_correction(text, c, reply, applied, source, context)

    def _context(self) -> dict[str, Any]:
        """What the agent was doing when the correction came (kept for distillation)."""
        a = self.agent
        ctx = a.ctx
        d: dict[str, Any] = {"step": a.library.render(a.current) if a.current else None,
                             "call": a.current.to_dict() if a.current else None, "stopped": a.stopped}
        if ctx is not None and ctx.observation:
            d["ee"] = [float(v) for v in ctx.observation["observation.state"][:7]]
        if ctx is not None and ctx.held is not None:
            d["held"] = ctx.held.name
        if a.current is not None:
            slot = PRIMARY_SLOT.get(a.current.skill)
            desc = a.current.args.get(slot) if slot else None
            if desc:
                try:
                    obj = resolve(desc, a.objects())
                    d["object"] = obj.to_dict()
                except CorrigoError:
                    pass
        return d

    # ----- helpers -----
    def _interrupt(self, reason: str, requeue: SkillCall | None = None, then: list[tuple[SkillCall, str]] | None = None) -> None:
        """Abandon the running skill; run `then` (and `requeue`) before asking the policy again."""
        a = self.agent
        if a.current is not None:
            a.interrupt = reason
        front = list(then or [])
        if requeue is not None:
            front.append((requeue, "operator"))
        a.pending[0:0] = front
        a.stopped = False

    def _run_aux(self, call: SkillCall) -> None:
        """Run a small skill (a nudge, the gripper) while stopped, staying stopped."""
        a = self.agent
        assert a.ctx is not None
        skill = a.library.get(call.skill)
        aux_ctx = SkillContext(objects=a.objects, dt=a.robot.control_dt, params=skill.default_params(),
                               observation=a.ctx.observation, held=a.ctx.held, last_command=a.ctx.last_command)
        a.aux_ctx = aux_ctx
        a.aux = skill.run(a.robot, call, aux_ctx)

    # ----- kinds -----
    def _on_stop(self, c: Correction) -> tuple[str, bool]:
        a = self.agent
        if a.stopped:
            return "already stopped; say 'continue' to go on", True
        a.stopped = True
        a.aux = None
        return "stopped; holding still (say 'continue' to go on)", True

    def _on_resume(self, c: Correction) -> tuple[str, bool]:
        a = self.agent
        if not a.stopped:
            return "already moving", False
        a.stopped = False
        a.aux = None
        what = a.library.render(a.current) if a.current else "the plan"
        return f"continuing: {what}", True

    def _on_motion(self, c: Correction) -> tuple[str, bool]:
        a = self.agent
        direction = c.direction
        if direction is None and c.relative and a.last_motion is not None:
            direction = tuple(a.last_motion)
        if direction is None:
            return "which way? (say e.g. 'a bit to the left')", False
        d = np.asarray(direction, float)
        d = d / max(float(np.linalg.norm(d)), 1e-9)
        dist = float(c.distance_m if c.distance_m is not None else 0.03)
        dist = min(dist, 0.25)  # a single nudge never exceeds 25 cm
        a.last_motion = d
        v = d * dist
        what = f"{format_distance(dist)} {_say_vec(d)}"
        if a.stopped:
            assert a.ctx is not None
            a.ctx.offset = a.ctx.offset + v
            self._run_aux(SkillCall("move", {"vector": v.tolist(), "direction": _say_vec(d), "distance_m": dist}))
            return f"moving {what} (still stopped)", True
        if a.current is not None and a.ctx is not None:
            a.ctx.offset = a.ctx.offset + v
            a.intervening = True
            return f"shifting {a.library.render(a.current)!r} {what}", True
        a.pending.insert(0, (SkillCall("move", {"vector": v.tolist(), "direction": _say_vec(d), "distance_m": dist}), "operator"))
        return f"moving {what}", True

    def _on_rotate(self, c: Correction) -> tuple[str, bool]:
        a = self.agent
        axis = np.asarray(c.axis if c.axis is not None else (0.0, 0.0, 1.0), float)
        if c.angle_rad is None:
            return "rotate by how much?", False
        if abs(abs(axis[2]) - 1.0) > 1e-6:
            return "I can only rotate the gripper about the vertical axis", False
        ang = float(c.angle_rad) * float(np.sign(axis[2]))
        ang = max(-math.pi, min(math.pi, ang))
        say = f"{abs(math.degrees(ang)):.0f} degrees {'counterclockwise' if ang > 0 else 'clockwise'}"
        if a.stopped:
            assert a.ctx is not None
            a.ctx.yaw_offset += ang
            self._run_aux(SkillCall("rotate", {"angle_rad": ang}))
            return f"rotating {say} (still stopped)", True
        if a.current is not None and a.ctx is not None:
            a.ctx.yaw_offset += ang
            a.intervening = True
            return f"rotating {say} while I {a.library.render(a.current)}", True
        a.pending.insert(0, (SkillCall("rotate", {"angle_rad": ang}), "operator"))
        return f"rotating {say}", True

    def _on_gripper(self, c: Correction) -> tuple[str, bool]:
        a = self.agent
        call = SkillCall("open_gripper" if c.gripper == "open" else "close_gripper")
        verb = "opening" if c.gripper == "open" else "closing"
        if a.stopped:
            self._run_aux(call)
            return f"{verb} the gripper (still stopped)", True
        self._interrupt(f"operator asked to {c.gripper} the gripper", then=[(call, "operator")])
        return f"{verb} the gripper, then carrying on with the plan", True

    def _on_speed(self, c: Correction) -> tuple[str, bool]:
        a = self.agent
        assert a.ctx is not None
        s = float(c.speed_scale or 1.0)
        lo, hi = a.config.speed_scale_range
        a.ctx.speed_scale = min(max(a.ctx.speed_scale * s, lo), hi)
        return f"speed now {a.ctx.speed_scale:.2g}x", True

    def _on_object(self, c: Correction) -> tuple[str, bool]:
        a = self.agent
        objects = a.objects()
        cur = a.current or (a.pending[0][0] if a.pending else None)
        remaining = a.policy.remaining()
        if cur is None and remaining:
            cur = remaining[0]
        # Which slot is corrected: the one whose category the correction names, else the running skill's own.
        named = c.target or c.negated or ""
        _, cats, _, _ = parse_description(named)
        slot, old = None, None
        for call in [x for x in (cur, *remaining) if x is not None]:
            for s in ("object", "target"):
                desc = call.args.get(s)
                if desc and (not cats or (parse_description(desc)[1] & cats) or _is_cabinet_word(desc, cats)):
                    slot, old = s, desc
                    break
            if slot:
                break
        if slot is None and cur is not None:
            slot = PRIMARY_SLOT.get(cur.skill)
            old = cur.args.get(slot) if slot else None
        if slot is None or old is None:
            return "there is no object in what I am doing to change", False
        try:
            old_obj = resolve(old, objects)
        except CorrigoError:
            old_obj = None
        new_desc = self._meant(c, old, old_obj, objects)
        if new_desc is None:
            return f"which {_category_of(old) or 'one'} did you mean?", False
        try:
            new_obj = resolve(new_desc, objects)
        except (UnknownObjectError, AmbiguousObjectError) as e:
            return str(e), False
        from policies.rule_based import _name_for

        new_name = _name_for(new_obj, objects)
        n = getattr(a.policy, "retarget", lambda *_: 0)(old, new_name, slot)
        if a.current is not None and slot in a.current.args:
            fixed = SkillCall(a.current.skill, {**a.current.args, slot: new_name})
            self._interrupt(f"operator meant the {new_name}", requeue=fixed)
            return f"ok, the {new_name}: {a.library.render(fixed)}", True
        return f"ok, the {new_name} ({n} remaining step{'s' if n != 1 else ''} changed)", True

    def _meant(self, c: Correction, old: str, old_obj: Any, objects: list[Any]) -> str | None:
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
            return cands[0].description
        return None

    def _on_plan(self, c: Correction) -> tuple[str, bool]:
        a = self.agent
        obs = a.observation_for_policy()
        if c.plan_op == "insert":
            calls = []
            for ins in c.instructions:
                call = a.library.parse(ins)
                if call is None:
                    return f"I don't know how to {ins!r}", False
                calls.append(call)
            if not calls:
                return "insert what?", False
            self._interrupt("operator inserted steps", requeue=a.current, then=[(x, "operator") for x in calls])
            return "first: " + ", then ".join(a.library.render(x) for x in calls), True
        if c.plan_op == "skip":
            cur = a.current
            if cur is None:
                try:
                    return a.policy.edit_plan(PlanEdit("skip"), obs), True
                except PolicyError as e:
                    return str(e), False
            self._interrupt("operator skipped it")
            rest = a.policy.remaining()
            if cur.skill == "pick" and rest and rest[0].skill == "place":
                a.policy.edit_plan(PlanEdit("skip"), obs)
            return f"skipping: {a.library.render(cur)}", True
        if c.plan_op == "reorder" and c.before:
            cur = a.current
            holding = a.ctx is not None and a.ctx.held is not None
            other_pick = cur is not None and cur.skill == "pick" and not holding and not _desc_in(cur, c.before)
            try:
                # A pick of something else under way (nothing in the hand yet) goes back in the plan.
                if other_pick:
                    a.policy.edit_plan(PlanEdit("insert", [cur]), obs)
                    self._interrupt(f"operator wants the {c.before} first")
                return a.policy.edit_plan(PlanEdit("reorder", before=c.before, after=c.after), obs), True
            except PolicyError:
                # A policy without an editable plan: act on it now, as an instruction (YAY style).
                first = SkillCall("pick", {"object": c.before})
                try:
                    resolve(c.before, a.objects())
                except (UnknownObjectError, AmbiguousObjectError) as e:
                    return str(e), False
                self._interrupt(f"operator wants the {c.before} first", then=[(first, "operator")])
                return f"ok: {a.library.render(first)} first", True
        if c.plan_op == "replace" and c.target:
            try:
                new = resolve(c.target, a.objects())
            except (UnknownObjectError, AmbiguousObjectError) as e:
                return str(e), False
            from policies.rule_based import _name_for

            name = _name_for(new, a.objects())
            try:
                reply = a.policy.edit_plan(PlanEdit("replace", target=name), obs)
            except PolicyError as e:  # no editable plan: the running place still changes
                reply = str(e)
            if a.current is not None and a.current.skill == "place":
                self._interrupt(f"operator wants it in the {name}", requeue=SkillCall("place", {"target": name}))
                return f"putting it in the {name} instead", True
            return reply, True
        return "I did not get how to change the plan", False

    def _on_skill(self, c: Correction) -> tuple[str, bool]:
        a = self.agent
        if not c.skill or not c.param or c.skill not in a.library:
            return "I don't know which skill to change", False
        skill = a.library.get(c.skill)
        live = a.current is not None and a.current.skill == c.skill and a.ctx is not None
        params = a.ctx.params if live else skill.default_params(a.episode_params.get(c.skill, {}))
        old = getattr(params, c.param, None)
        if old is None:
            return f"{c.skill} has no parameter {c.param!r}", False
        new = _apply_value(old, c.value, c.delta)
        set_param(params, c.param, new)  # validates; raises a one-line error
        a.episode_params.setdefault(c.skill, {})[c.param] = new
        if live:
            a.intervening = True
        when = "now" if live else f"the next time I {c.skill.replace('_', ' ')}"
        return f"{c.skill}: {c.param} {_fmt(old)} -> {_fmt(new)} ({when})", True

    def _on_preference(self, c: Correction) -> tuple[str, bool]:
        return f"noted: {c.statement or c.text} (I'll remember this)", True

    def _on_confirm(self, c: Correction) -> tuple[str, bool]:
        return "thanks!", True

    def _on_unknown(self, c: Correction) -> tuple[str, bool]:
        a = self.agent
        call = a.library.parse(c.text)
        if call is None:
            shown = c.text.strip()[:60] or "(nothing)"
            return f"sorry, I didn't understand {shown!r}; nothing changed", False
        for slot in ("object", "target"):
            if slot in call.args and call.args[slot] != "drawer":
                try:
                    resolve(call.args[slot], a.objects())
                except (UnknownObjectError, AmbiguousObjectError) as e:
                    return str(e), False
        self._interrupt("operator gave a new instruction", then=[(call, "operator")])
        return f"ok: {a.library.render(call)}", True


def _category_of(desc: str) -> str | None:
    _, cats, _, _ = parse_description(desc)
    return sorted(cats)[0] if len(cats) == 1 else None


def _is_cabinet_word(desc: str, cats: set[str]) -> bool:
    return "cabinet" in cats and desc == "drawer"


def _desc_in(call: SkillCall, desc: str) -> bool:
    _, cats, _, _ = parse_description(desc)
    return any(parse_description(v)[1] & cats for v in call.args.values() if isinstance(v, str))


def _apply_value(old: Any, value: Any, delta: Any) -> Any:
    if isinstance(old, tuple):
        base = np.asarray(old, float)
        if value is not None:
            return tuple(float(v) for v in np.broadcast_to(np.asarray(value, float), base.shape))
        return tuple(float(v) for v in base + np.broadcast_to(np.asarray(delta or 0.0, float), base.shape))
    if value is not None:
        return float(np.asarray(value, float).reshape(-1)[0])
    return float(old) + float(np.asarray(delta or 0.0, float).reshape(-1)[0])


def _fmt(v: Any) -> str:
    if isinstance(v, tuple):
        return "(" + ", ".join(f"{x:.3g}" for x in v) + ")"
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def _say_vec(d: np.ndarray) -> str:
    names = []
    for axis, (pos, neg) in enumerate((("forward", "back"), ("left", "right"), ("up", "down"))):
        if abs(d[axis]) > 0.3:
            names.append(pos if d[axis] > 0 else neg)
    return " and ".join(names) or "nowhere"
