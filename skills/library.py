"""`SkillLibrary`: skills by name, and instructions <-> `SkillCall`s.

    lib.render(SkillCall("pick", {"object": "red block"}))  -> "pick up the red block"
    lib.parse("grab the red block")                         -> SkillCall("pick", {"object": "red block"})
"""
from __future__ import annotations

import math
import re
from functools import lru_cache
from typing import Any

from skills.base import Skill, SkillCall, SkillError

DIRECTIONS: dict[str, tuple[float, float, float]] = {
    "left": (0.0, 1.0, 0.0), "right": (0.0, -1.0, 0.0),
    "forward": (1.0, 0.0, 0.0), "back": (-1.0, 0.0, 0.0),
    "up": (0.0, 0.0, 1.0), "down": (0.0, 0.0, -1.0),
}
_DIR_WORDS = {"forwards": "forward", "ahead": "forward", "backward": "back", "backwards": "back", "higher": "up", "lower": "down"}
_UNITS = {"mm": 0.001, "millimeter": 0.001, "millimeters": 0.001, "millimetre": 0.001, "millimetres": 0.001,
          "cm": 0.01, "centimeter": 0.01, "centimeters": 0.01, "centimetre": 0.01, "centimetres": 0.01,
          "m": 1.0, "meter": 1.0, "meters": 1.0, "metre": 1.0, "metres": 1.0,
          "in": 0.0254, "inch": 0.0254, "inches": 0.0254}
_SLOT_RX = {
    "object": r"(?P<object>[a-z ]+?)",
    "target": r"(?P<target>[a-z ]+?)",
    "direction": r"(?:to )?(?:your |my |robot s )?(?P<direction>left|right|forwards?|ahead|backwards?|back|up|down|higher|lower)",
    "distance": r"(?P<distance>\d+(?:\.\d+)?) ?(?P<unit>" + "|".join(sorted(_UNITS, key=len, reverse=True)) + r")",
    "angle": r"(?P<angle>\d+(?:\.\d+)?) ?(?:degrees|degree|deg)",
    "turn": r"(?P<turn>clockwise|counterclockwise|anticlockwise|counter clockwise)",
}


def normalize(text: str) -> str:
    """Lower case, punctuation to spaces, articles and 'please' dropped."""
    ws = re.findall(r"[a-z0-9]+(?:\.[0-9]+)?|\{[a-z]+\}", text.lower())
    return " ".join(w for w in ws if w not in ("the", "a", "an", "please"))


def _compile(template: str) -> re.Pattern[str]:
    rx = ""
    for part in re.split(r"(\{[a-z]+\})", normalize(template)):
        rx += _SLOT_RX[part[1:-1]] if part.startswith("{") else re.escape(part)
    return re.compile(rf"^{rx}$")


def format_distance(m: float) -> str:
    cm = round(m * 100, 1)
    return f"{cm:g} cm"


class SkillLibrary:
    def __init__(self) -> None:
        self._skills: dict[str, Skill] = {}
        self._patterns: list[tuple[re.Pattern[str], Skill]] = []

    def register(self, skill: Skill) -> None:
        if skill.name in self._skills:
            raise SkillError(f"skill {skill.name!r} is already registered")
        self._skills[skill.name] = skill
        self._patterns += [(_compile(t), skill) for t in skill.templates]

    def get(self, name: str) -> Skill:
        try:
            return self._skills[name]
        except KeyError:
            raise SkillError(f"unknown skill {name!r} (known: {', '.join(sorted(self._skills))})") from None

    def names(self) -> list[str]:
        return sorted(self._skills)

    def __contains__(self, name: str) -> bool:
        return name in self._skills

    def render(self, call: SkillCall) -> str:
        skill = self.get(call.skill)
        custom = getattr(skill, "render", None)
        if custom is not None:
            return custom(call)
        a = call.args
        values: dict[str, Any] = {
            "object": a.get("object", ""), "target": a.get("target", ""),
            "direction": _say_direction(a.get("direction", "")),
            "distance": format_distance(float(a.get("distance_m", 0.0))),
        }
        if "angle_rad" in a:
            ang = float(a["angle_rad"])
            values["angle"] = f"{abs(math.degrees(ang)):g} degrees"
            values["turn"] = "counterclockwise" if ang > 0 else "clockwise"
        return skill.templates[0].format(**values)

    def parse(self, text: str) -> SkillCall | None:
        """The call an instruction names, or None when no template matches."""
        t = normalize(text)
        for rx, skill in self._patterns:
            m = rx.match(t)
            if not m:
                continue
            g = {k: v for k, v in m.groupdict().items() if v is not None}
            args: dict[str, Any] = {}
            for slot in ("object", "target"):
                if slot in g:
                    args[slot] = g[slot].strip()
            if "direction" in g:
                args["direction"] = _DIR_WORDS.get(g["direction"], g["direction"])
            if "distance" in g:
                args["distance_m"] = float(g["distance"]) * _UNITS[g["unit"]]
            elif "distance_m" in getattr(skill, "default_args", {}):
                args["distance_m"] = skill.default_args["distance_m"]  # type: ignore[attr-defined]
            if "angle" in g:
                sign = -1.0 if g.get("turn") == "clockwise" else 1.0
                args["angle_rad"] = sign * math.radians(float(g["angle"]))
            for k, v in getattr(skill, "default_args", {}).items():
                args.setdefault(k, v)
            return SkillCall(skill.name, args)
        return None


def _say_direction(d: str) -> str:
    return {"left": "to the left", "right": "to the right", "back": "backward"}.get(d, d)


@lru_cache(maxsize=1)
def default_library() -> SkillLibrary:
    from skills.arm import ARM_SKILLS

    lib = SkillLibrary()
    for s in ARM_SKILLS:
        lib.register(s)
    return lib
