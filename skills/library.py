"""`SkillLibrary`: skills by name, instructions <-> `SkillCall`s, and the lexicon.

    lib.render(SkillCall("pick", {"object": "red block"}))  -> "pick up the red block"
    lib.parse("grab the red block")                         -> SkillCall("pick", {"object": "red block"})
    lib.lexicon()                                           -> every skill's words, as data (robot.lexicon)
"""
from __future__ import annotations

import math
import re
import warnings
from functools import lru_cache
from typing import Any, Callable

from robot.lexicon import VALUE_SLOTS, Lexicon
from robot.registry import Registry
from robot.vocab import COUNT_WORDS, DIRECTION_WORDS, LENGTH_UNITS, ONES
from skills.base import Skill, SkillCall, SkillError
from skills.text import format_distance, normalize, say_direction

_COUNTS = {**{w: n for w, n in ONES.items() if n > 0}, **COUNT_WORDS}
# value slots; every other slot ({object}, {target}, {surface}, ...) holds an object description
_SLOT_RX = {
    "direction": r"(?:to )?(?:your |my |robot s )?(?P<direction>" + "|".join(sorted(DIRECTION_WORDS, key=len, reverse=True)) + ")",
    "distance": r"(?P<distance>\d+(?:\.\d+)?) ?(?P<unit>" + "|".join(sorted(LENGTH_UNITS, key=len, reverse=True)) + r")",
    "angle": r"(?P<angle>\d+(?:\.\d+)?) ?(?:degrees|degree|deg)",
    "turn": r"(?P<turn>clockwise|counterclockwise|anticlockwise|counter clockwise)",
    "count": r"(?P<count>\d+|" + "|".join(sorted(_COUNTS, key=len, reverse=True)) + r")(?: times?)?",
}


assert set(_SLOT_RX) == set(VALUE_SLOTS)


def _compile(template: str) -> re.Pattern[str]:
    rx = ""
    for part in re.split(r"(\{[a-z]+\})", normalize(template)):
        if part.startswith("{"):
            slot = part[1:-1]
            rx += _SLOT_RX.get(slot, rf"(?P<{slot}>[a-z ]+?)")
        else:
            rx += re.escape(part)
    try:
        return re.compile(rf"^{rx}$")
    except re.error as e:  # e.g. a slot used twice in one template
        raise SkillError(f"template {template!r} does not compile: {e}") from None


class SkillLibrary:
    def __init__(self) -> None:
        self._skills: dict[str, Skill] = {}
        self._patterns: list[tuple[re.Pattern[str], Skill]] = []
        self._lexicon: Lexicon | None = None

    def register(self, skill: Skill) -> None:
        if skill.name in self._skills:
            raise SkillError(f"skill {skill.name!r} is already registered")
        skill.words()  # checks the skill's language refers to what it has
        patterns = [(_compile(t), skill) for t in skill.templates]
        self._skills[skill.name] = skill
        self._patterns += patterns
        self._lexicon = None

    def get(self, name: str) -> Skill:
        try:
            return self._skills[name]
        except KeyError:
            raise SkillError(f"unknown skill {name!r} (known: {', '.join(sorted(self._skills))})") from None

    def names(self) -> list[str]:
        return sorted(self._skills)

    def __contains__(self, name: str) -> bool:
        return name in self._skills

    def lexicon(self) -> Lexicon:
        """Every registered skill's words, as plain data, in registration order."""
        if self._lexicon is None:
            self._lexicon = Lexicon(tuple(s.words() for s in self._skills.values()))
        return self._lexicon

    def render(self, call: SkillCall) -> str:
        skill = self.get(call.skill)
        custom = getattr(skill, "render", None)
        if custom is not None:
            return str(custom(call))
        a = call.args
        values: dict[str, Any] = {slot: a.get(slot, "") for slot in skill.slots if slot not in VALUE_SLOTS}
        values |= {
            "direction": say_direction(a.get("direction", "")),
            "distance": format_distance(float(a.get("distance_m", 0.0))),
            "count": _say_count(a.get("count", 1)),
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
            for slot, value in g.items():
                if slot not in VALUE_SLOTS and slot != "unit":
                    args[slot] = value.strip()
            if "direction" in g:
                args["direction"] = DIRECTION_WORDS[g["direction"]]
            if "distance" in g:
                args["distance_m"] = float(g["distance"]) * LENGTH_UNITS[g["unit"]]
            if "angle" in g:
                sign = -1.0 if g.get("turn") == "clockwise" else 1.0
                args["angle_rad"] = sign * math.radians(float(g["angle"]))
            if "count" in g:
                args["count"] = int(g["count"]) if g["count"].isdigit() else _COUNTS[g["count"]]
            for k, v in skill.default_args.items():
                args.setdefault(k, v)
            return SkillCall(skill.name, args)
        return None


def _say_count(n: Any) -> str:
    n = int(n)
    return {1: "once", 2: "twice"}.get(n, f"{n} times")


# Skills beyond the built-in arm skills: any installed package's `corrigo.skills` entry point
# (`wipe = my_package.skills:Wipe`: a Skill class or a factory returning a Skill), or
# `register_skill` called before the default library is first built.
SKILLS: Registry[Skill] = Registry("skill", "corrigo.skills")


def register_skill(name: str, factory: Callable[[], Skill]) -> None:
    SKILLS.register(name, factory)


@lru_cache(maxsize=1)
def default_library() -> SkillLibrary:
    """The built-in arm skills, then every installed skill plugin (a broken one is skipped, with a warning)."""
    from skills.arm import ARM_SKILLS

    lib = SkillLibrary()
    for s in ARM_SKILLS:
        lib.register(s)
    for name in SKILLS.known():
        if name in lib:
            continue
        try:
            lib.register(SKILLS.factory(name)())
        except Exception as e:  # a plugin's bug must not take the built-in skills down
            warnings.warn(f"skill plugin {name!r} skipped: {type(e).__name__}: {e}", stacklevel=2)
    return lib
