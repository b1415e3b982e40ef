"""Distillation: an episode's corrections -> `Knowledge` items, only what the evidence supports.

The input is a plain-dict episode log (the agent builds it, see agent.episode.EpisodeLog;
this package imports nothing above robot/) and the lexicon of the skills that ran:

    {"episode": str, "task": str, "operator": str | None, "success": bool | None, "time": float,
     "steps": [{"instruction", "call": {"skill", "args"}, "source", "ok", "interrupted",
                "t_start", "t_end", "params": {...}, "offset": [x, y, z], "yaw_offset",
                "object": SceneObject-dict | None, "target": SceneObject-dict | None,
                "acted_on": SceneObject-dict | None (the object in the skill's primary slot), "phase"}],
     "corrections": [{"t", "text", "parsed": Correction-dict, "reply", "applied",
                      "context": {"call", "phase", "held", "object", "shift": [x, y, z], "yaw", ...}}],
     "episode_params": {skill: {param: value}}}

Rules (the default, deterministic distiller; an LLM distiller can implement the same
`Distiller` protocol). Whether the episode's outcome allows learning at all is the
caller's decision (agent.knowledge: a failed episode teaches only what the operator
confirms).
- Nothing from a correction said "just this once" (`once`), or one that was not applied.
- skill-level, from motion and rotate: the nudges given during one step *before its
  contact phase* (a grasp offset only from nudges before the fingers closed; the skill
  declares its phases), when that step then succeeded, become one parameter value of the
  skill, expressed in the frame of the object it acted on (`offset_param`, `yaw_param`:
  pick's grasp_offset / grasp_yaw, place's offset). A nudge after contact teaches nothing.
- skill-level, from skill corrections: the parameter value the episode ended with;
  from speed corrections: a speed scale for that skill.
- task-level, from plan corrections: steps to insert before an anchor, an order between
  object categories, a preferred target for the object being carried ("instead": the
  thing in the hand, never the container it was going to);
- task-level, from object corrections naming another category: an alias ("cup" -> "mug");
- task-level, from preferences: "always put X in Y" as a preferred target, "X before Y"
  as an order; "always do it like that" widens what this episode taught about X;
  anything else is a note that is shown but changes nothing.

Scope: an item learned from one object instance is narrow (`scope["object"]` names the
instance, the statement says "the blue jug"); it carries the statements it would have
when widened (`provenance["widened_statements"]`), which corrections_kb.evidence uses
when a second instance agrees. What the operator says with "always" is wide at once.
"""
from __future__ import annotations

import math
import re
import time
from typing import Any, Iterable, Protocol

import numpy as np

from corrections_kb.effects import Alias, GraspOffset, InsertStep, Note, Order, ParamChange, PreferredContainer, SpeedScale
from corrections_kb.evidence import widened_changes
from corrections_kb.knowledge import Knowledge
from corrections_kb.types import NUDGE_KINDS
from robot.geometry import yaw_of
from robot.lexicon import Lexicon, SkillWords
from robot.vocab import CATEGORY_WORDS, category_from_name, category_of, group_of, plural

MIN_OFFSET_M = 0.003  # smaller accumulated nudges are noise, not knowledge
MIN_YAW_RAD = 0.03

__all__ = ["Distiller", "RuleDistiller", "category_of", "describe_offset", "to_object_frame"]


class Distiller(Protocol):
    def distill(self, episode: dict[str, Any], lexicon: Lexicon) -> list[Knowledge]: ...


def to_object_frame(vec_world: Iterable[float], obj: dict[str, Any]) -> np.ndarray:
    """A base-frame vector expressed in an object's frame (rotation about z only)."""
    v = np.asarray(list(vec_world), float)
    a = -yaw_of(np.asarray(obj["quat_xyzw"], float))
    c, s = math.cos(a), math.sin(a)
    return np.array([c * v[0] - s * v[1], s * v[0] + c * v[1], v[2]])


def describe_offset(v: Iterable[float]) -> str:
    """'5 cm along +x and 1 cm down' for an object-frame offset."""
    v = list(v)
    parts = []
    for axis, name in enumerate("xyz"):
        if abs(v[axis]) >= 0.005:
            cm = abs(v[axis]) * 100
            if name == "z":
                parts.append(f"{cm:.0f} cm {'higher' if v[axis] > 0 else 'lower'}")
            else:
                parts.append(f"{cm:.0f} cm along {'+' if v[axis] > 0 else '-'}{name}")
    return " and ".join(parts) or "at the centre"


def _instance(obj: dict[str, Any] | None) -> str | None:
    """How a statement names one object instance: "the blue jug"."""
    if not obj:
        return None
    return f"the {obj.get('colour', '')} {obj['category']}".replace("  ", " ")


def _learnable(c: dict[str, Any]) -> bool:
    return bool(c.get("applied")) and not c.get("parsed", {}).get("once")


class RuleDistiller:
    """The default deterministic distiller (see the module docstring)."""

    def distill(self, episode: dict[str, Any], lexicon: Lexicon) -> list[Knowledge]:
        items: list[Knowledge] = []
        items += self._from_nudges(episode, lexicon)
        items += self._from_skill_corrections(episode)
        items += self._from_speed(episode)
        for c in episode.get("corrections", []):
            if not _learnable(c):
                continue
            kind = c.get("parsed", {}).get("kind")
            if kind == "plan":
                items += self._from_plan(episode, c, lexicon)
            elif kind == "object":
                items += self._from_object(episode, c)
        for c in episode.get("corrections", []):  # last: "always do it like that" widens what came before
            if _learnable(c) and c.get("parsed", {}).get("kind") == "preference":
                items = self._from_preference(episode, c, items)
        return items

    # ----- helpers -----
    def _provenance(self, episode: dict[str, Any], utterances: list[str], **widened: str) -> dict[str, Any]:
        prov = {"episode": str(episode.get("episode", "")), "time": float(episode.get("time", time.time())),
                "operator": episode.get("operator"), "utterances": utterances, "task": episode.get("task", "")}
        if widened:
            prov["widened_statements"] = widened
        return prov

    # ----- skill level -----
    def _from_nudges(self, episode: dict[str, Any], lexicon: Lexicon) -> list[Knowledge]:
        items = []
        for step in episode.get("steps", []):
            skill = lexicon.get(step["call"]["skill"])
            ref = step.get("acted_on")
            if not step.get("ok") or skill is None or ref is None or not (skill.offset_param or skill.yaw_param):
                continue
            nudges = [c for c in episode.get("corrections", []) if _learnable(c)
                      and c.get("parsed", {}).get("kind") in NUDGE_KINDS and _during(c, step)
                      and not skill.after_contact((c.get("context") or {}).get("phase"))]
            offset = np.sum([(c.get("context") or {}).get("shift", [0, 0, 0]) for c in nudges] or [[0, 0, 0]], axis=0)
            yaw = float(sum(float((c.get("context") or {}).get("yaw", 0.0)) for c in nudges))
            utter = [c["text"] for c in nudges]
            cat = ref["category"]
            one, many = _instance(ref), plural(cat)
            params = step.get("params", {})
            scope = {"skill": skill.name, "object_category": cat, "object": ref.get("name")}
            if skill.offset_param and np.linalg.norm(offset) >= MIN_OFFSET_M:
                base = np.asarray(params.get(skill.offset_param, [0, 0, 0]), float)
                value = base + to_object_frame(offset, ref)
                where = f"{describe_offset(value)} in the {cat}'s frame"
                items.append(Knowledge(
                    kind="skill", statement=f"{_doing(skill)} {one} {where}",
                    effect=GraspOffset(skill.name, skill.offset_param, value=tuple(round(float(x), 4) for x in value)),
                    scope=scope, provenance=self._provenance(episode, utter, category=f"{_doing(skill)} {many} {where}")))
            if skill.yaw_param and abs(yaw) >= MIN_YAW_RAD:
                value = float(params.get(skill.yaw_param, 0.0)) + yaw
                turned = f"turned {math.degrees(value):.0f} degrees"
                items.append(Knowledge(
                    kind="skill", statement=f"{_doing(skill)} {one} {turned}",
                    effect=ParamChange(skill.name, skill.yaw_param, value=round(value, 4)),
                    scope=scope, provenance=self._provenance(episode, utter, category=f"{_doing(skill)} {many} {turned}")))
        return items

    def _from_skill_corrections(self, episode: dict[str, Any]) -> list[Knowledge]:
        items = []
        final = episode.get("episode_params", {})
        seen: set[tuple[str, str]] = set()
        for c in episode.get("corrections", []):
            p = c.get("parsed", {})
            if not _learnable(c) or p.get("kind") != "skill":
                continue
            skill, param = p.get("skill"), p.get("param")
            if (skill, param) in seen or param not in final.get(skill, {}):
                continue
            seen.add((skill, param))
            ctx = c.get("context") or {}
            obj = ctx.get("object") if (ctx.get("call") or {}).get("skill") == skill else None
            value = final[skill][param]
            shown = ", ".join(f"{v:.3g}" for v in value) if isinstance(value, list) else f"{value:.3g}"
            what = f"{skill.replace('_', ' ')}: {param.replace('_', ' ')} = {shown}"
            widened = {"category": f"{what} for {plural(obj['category'])}"} if obj else {}
            items.append(Knowledge(
                kind="skill", statement=what + (f" for {_instance(obj)}" if obj else ""),
                effect=ParamChange(skill, param, value=tuple(value) if isinstance(value, list) else value),
                scope={"skill": skill, "object_category": obj["category"] if obj else None,
                       "object": obj.get("name") if obj else None},
                provenance=self._provenance(episode, [c["text"]], **widened)))
        return items

    def _from_speed(self, episode: dict[str, Any]) -> list[Knowledge]:
        items = []
        for c in episode.get("corrections", []):
            p = c.get("parsed", {})
            ctx = c.get("context") or {}
            if not _learnable(c) or p.get("kind") != "speed" or not ctx.get("call"):
                continue
            skill = ctx["call"]["skill"]
            obj = ctx.get("object")
            scale = float(p.get("speed_scale") or 1.0)
            what = f"{'slower' if scale < 1 else 'faster'} ({scale:.2g}x) when I {skill.replace('_', ' ')}"
            widened = {"category": f"{what} {plural(obj['category'])}"} if obj else {}
            items.append(Knowledge(
                kind="skill", statement=what + (f" {_instance(obj)}" if obj else ""),
                effect=SpeedScale(skill, scale),
                scope={"skill": skill, "object_category": obj["category"] if obj else None,
                       "object": obj.get("name") if obj else None},
                provenance=self._provenance(episode, [c["text"]], **widened)))
        return items

    # ----- task level -----
    def _from_plan(self, episode: dict[str, Any], c: dict[str, Any], lexicon: Lexicon) -> list[Knowledge]:
        p = c["parsed"]
        ctx = c.get("context") or {}
        prov = self._provenance(episode, [c["text"]])
        task = episode.get("task", "")
        op = p.get("plan_op")
        if op == "insert" and p.get("instructions"):
            call = ctx.get("call") or {}
            obj = ctx.get("object")
            anchor = {"skill": call.get("skill"), "object_category": obj["category"] if obj else None}
            steps = list(p["instructions"])
            what = f"{call.get('skill', 'starting').replace('_', ' ')}" + (f" {plural(anchor['object_category'])}" if anchor["object_category"] else "")
            return [Knowledge(kind="task", statement=f"{' and '.join(steps)} before {what}",
                              effect=InsertStep(tuple(steps), anchor["skill"], anchor["object_category"]),
                              scope={"task": task}, provenance=prov)]
        if op == "reorder" and p.get("before"):
            first, then = category_of(p["before"]) or p["before"], category_of(p.get("after")) or p.get("after")
            return [Knowledge(kind="task", statement=f"do the {first} before the {then or 'rest'}",
                              effect=Order(first, then), scope={"task": task}, provenance=prov)]
        if op == "replace" and p.get("target"):
            carried = _carried(episode, c, lexicon)
            if carried is None:  # nothing in the hand: no lesson about where things go
                return []
            cat, target = carried["category"], p["target"]
            group = group_of(cat)
            widened = {"category": f"put {plural(cat)} in the {target}", "group": f"put {plural(group)} in the {target}"}
            return [Knowledge(kind="task", statement=f"put {_instance(carried)} in the {target}",
                              effect=PreferredContainer(target, applies_to=cat),
                              scope={"object_category": cat, "object": carried.get("name")},
                              provenance=self._provenance(episode, [c["text"]], **widened))]
        return []

    def _from_object(self, episode: dict[str, Any], c: dict[str, Any]) -> list[Knowledge]:
        p = c["parsed"]
        ctx = c.get("context") or {}
        old = (ctx.get("object") or {}).get("category")
        new = category_of(p.get("target"))
        task = episode.get("task", "").lower()
        if not old or not new or old == new or new == "fruit":
            return []
        word = next((w for w, cat in CATEGORY_WORDS.items() if cat == old and re.search(rf"\b{w}\b", task)), None)
        if word is None:  # the wrong object did not come from the operator's own words
            return []
        return [Knowledge(kind="task", statement=f"when the user says '{word}' they mean the {new}",
                          effect=Alias(word, new), scope={}, provenance=self._provenance(episode, [c["text"]]))]

    def _from_preference(self, episode: dict[str, Any], c: dict[str, Any], learned: list[Knowledge]) -> list[Knowledge]:
        """The standing rule an operator states (wide, as said), or the widening of this episode's items."""
        p = c["parsed"]
        statement = (p.get("statement") or c["text"]).strip().lower()
        prov = self._provenance(episode, [c["text"]])
        rule = _TIME_TAIL.sub("", statement)  # "put fruit in the bowl from now on": the target is the bowl
        m = re.search(r"\b(?:put|place|keep|store|have)\s+(?:the\s+|all\s+(?:the\s+)?|my\s+)?([a-z ]+?)\s+(?:in|into|on)\s+(?:the\s+)?([a-z ]+?)\s*$", rule)
        if m and category_of(m[1]) and category_of(m[2]):
            group = category_of(m[1])
            return [*learned, Knowledge(kind="task", statement=statement,
                                        effect=PreferredContainer(m[2].strip(), applies_to=group),
                                        scope={"object_category": group}, provenance=prov)]
        m = re.search(r"\b([a-z]+)s?\s+(?:before|first)\b(?:\s+(?:the\s+)?([a-z]+))?", statement)
        if m and category_of(m[1]):
            return [*learned, Knowledge(kind="task", statement=statement,
                                        effect=Order(str(category_of(m[1])), category_of(m[2]) if m[2] else None),
                                        scope={}, provenance=prov)]
        named = category_of(statement)
        about = [k for k in learned if named and k.scope.get("object") and
                 named in (k.scope.get("object_category"), group_of(str(k.scope.get("object_category"))))]
        if about:  # "always grasp jugs like that": what this episode taught about jugs holds for every jug
            return [_widen_now(k, c["text"]) if k in about else k for k in learned]
        return [*learned, Knowledge(kind="task", statement=statement, effect=Note(), scope={}, provenance=prov)]


# when-phrases that end a stated rule ("... from now on"): not part of what it names
_TIME_TAIL = re.compile(r"(?:,?\s+(?:from now on|from here on|from now|in (?:the )?future|next time|by default|going forward|"
                        r"every time|each time|always|please|thanks|thank you))+\s*$")


def _during(c: dict[str, Any], step: dict[str, Any]) -> bool:
    return bool(step["t_start"] - 1e-6 <= c["t"] <= step["t_end"] + 1e-6)


def _carried(episode: dict[str, Any], c: dict[str, Any], lexicon: Lexicon) -> dict[str, Any] | None:
    """The object in the hand when `c` was said: the one the last successful acquiring step took
    (never the container a delivering step was heading for)."""
    held = (c.get("context") or {}).get("held")
    acquired = [s for s in episode.get("steps", []) if s.get("ok") and s["t_end"] <= c["t"] + 1e-6
                and lexicon.role_of(s["call"]["skill"]) == "acquire" and s.get("acted_on")]
    for s in reversed(acquired):
        if held is None or s["acted_on"].get("name") == held:
            return dict(s["acted_on"])
    cat = category_from_name(held)
    return {"name": held, "category": cat, "colour": ""} if held and cat else None


def _widen_now(k: Knowledge, utterance: str) -> Knowledge:
    """The operator said it holds for the whole category: widen as a second agreeing instance would."""
    changes = widened_changes(k, "category", k.scope.get("object_category"), k.effect)
    prov = {**changes["provenance"], "utterances": [*k.provenance.get("utterances", []), utterance], "widened": "said"}
    return k.replace(**{**changes, "provenance": prov})


def _doing(skill: SkillWords) -> str:
    """How a statement says what the skill does to the object: "grasp", "place things on/in"."""
    return {"acquire": "grasp", "deliver": "place things on/in"}.get(skill.role or "", skill.name.replace("_", " "))
