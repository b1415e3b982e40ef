"""The one vocabulary: object categories, groups, colours, sizes, directions, units, number words.

Every layer reads these tables (the correction parser, the distiller, object descriptions,
grounding, the skill library), so "jug", "left" or "two inches" mean the same thing
everywhere. Skill words (verbs, parameters, how a correction adjusts a skill) are not
here: each skill brings its own (see `robot.lexicon`).
"""
from __future__ import annotations

import math
import re

# ----- objects ---------------------------------------------------------------------
# word -> category
CATEGORY_WORDS: dict[str, str] = {
    "block": "block", "blocks": "block", "cube": "block", "cubes": "block", "brick": "block",
    "bowl": "bowl", "bowls": "bowl",
    "plate": "plate", "plates": "plate", "dish": "plate",
    "basket": "basket", "bin": "basket", "tray": "basket",
    "mug": "mug", "mugs": "mug",
    "cup": "cup", "cups": "cup", "glass": "cup",
    "apple": "apple", "apples": "apple",
    "orange": "orange", "oranges": "orange",
    "lemon": "lemon", "lemons": "lemon",
    "banana": "banana", "bananas": "banana",
    "cabinet": "cabinet", "drawer": "cabinet", "cupboard": "cabinet", "dresser": "cabinet",
    "jug": "jug", "jugs": "jug", "pitcher": "jug", "pitchers": "jug",
}
# category -> the group it belongs to ("fruit", "container", ...)
CATEGORY_GROUP: dict[str, str] = {
    "block": "block", "bowl": "container", "plate": "container", "basket": "container",
    "mug": "tableware", "cup": "tableware", "jug": "tableware",
    "apple": "fruit", "orange": "fruit", "lemon": "fruit", "banana": "fruit", "cabinet": "furniture",
}
# word -> group of categories; "*" is a noun that names any object ("the thing", "the red one")
KIND_GROUP_WORDS: dict[str, str] = {
    "fruit": "fruit", "fruits": "fruit",
    "container": "container", "containers": "container",
    "tableware": "tableware", "dishes": "tableware",
}
ANY_OBJECT_WORDS: frozenset[str] = frozenset({"thing", "things", "object", "objects", "item", "items", "one", "it"})
GROUP_WORDS: dict[str, str] = {**KIND_GROUP_WORDS, **{w: "*" for w in sorted(ANY_OBJECT_WORDS)}}
COLOUR_WORDS: dict[str, str] = {
    "red": "red", "green": "green", "blue": "blue", "yellow": "yellow", "purple": "purple", "violet": "purple",
    "orange": "orange", "pink": "pink", "white": "white", "black": "black", "brown": "brown",
    "grey": "grey", "gray": "grey", "cyan": "cyan", "teal": "cyan",
}
# word -> "large" | "small" ("the big block": the largest matching one)
SIZE_WORDS: dict[str, str] = {
    "big": "large", "bigger": "large", "biggest": "large", "large": "large", "larger": "large", "largest": "large",
    "small": "small", "smaller": "small", "smallest": "small", "tiny": "small",
}
OTHER_WORDS: frozenset[str] = frozenset({"other", "another"})
# words that make a bare phrase name an object ("red one", "banana", "the other one")
OBJECT_WORDS: frozenset[str] = frozenset(CATEGORY_WORDS) | frozenset(KIND_GROUP_WORDS) | frozenset(COLOUR_WORDS) \
    | {"one"} | OTHER_WORDS

# ----- directions (robot base frame: +x forward, +y the robot's left, +z up) -----------------
DIRECTION_VECTORS: dict[str, tuple[float, float, float]] = {
    "left": (0.0, 1.0, 0.0), "right": (0.0, -1.0, 0.0),
    "forward": (1.0, 0.0, 0.0), "back": (-1.0, 0.0, 0.0),
    "up": (0.0, 0.0, 1.0), "down": (0.0, 0.0, -1.0),
}
# phrase -> (direction, anchored); anchored phrases name the robot's own side and never flip
# when the operator faces the robot ("your left", "toward you")
DIRECTION_PHRASES: dict[tuple[str, ...], tuple[str, bool]] = {
    ("your", "left"): ("left", True), ("your", "right"): ("right", True),
    ("my", "left"): ("left", False), ("my", "right"): ("right", False),
    ("left",): ("left", False), ("leftward",): ("left", False), ("leftwards",): ("left", False),
    ("right",): ("right", False), ("rightward",): ("right", False), ("rightwards",): ("right", False),
    ("up",): ("up", False), ("upward",): ("up", False), ("upwards",): ("up", False), ("higher",): ("up", False),
    ("raise",): ("up", False), ("lift",): ("up", False), ("high",): ("up", False),
    ("down",): ("down", False), ("downward",): ("down", False), ("downwards",): ("down", False),
    ("lower",): ("down", False), ("descend",): ("down", False), ("low",): ("down", False),
    ("further", "away"): ("forward", False), ("farther", "away"): ("forward", False),
    ("further", "out"): ("forward", False),
    ("away", "from", "you"): ("forward", True), ("away", "from", "the", "robot"): ("forward", True),
    ("away", "from", "me"): ("forward", False), ("away",): ("forward", False), ("forward",): ("forward", False),
    ("forwards",): ("forward", False), ("ahead",): ("forward", False), ("outward",): ("forward", False),
    ("toward", "you"): ("back", True), ("closer", "to", "you"): ("back", True), ("toward", "the", "robot"): ("back", True),
    ("toward", "the", "base"): ("back", True), ("toward", "me"): ("back", False), ("closer", "to", "me"): ("back", False),
    ("back", "up"): ("back", False), ("back", "off"): ("back", False), ("back",): ("back", False),
    ("backward",): ("back", False), ("backwards",): ("back", False), ("closer",): ("back", False),
    ("nearer",): ("back", False), ("inward",): ("back", False),
}
# one-word directions, as an instruction may use them ("move 3 cm to the left", "push it forward")
DIRECTION_WORDS: dict[str, str] = {p[0]: d for p, (d, _) in DIRECTION_PHRASES.items() if len(p) == 1}

# ----- units: word -> (quantity, factor to SI: m, rad, or percent) ---------------------------
UNITS: dict[str, tuple[str, float]] = {
    "mm": ("len", 0.001), "millimeter": ("len", 0.001), "millimeters": ("len", 0.001),
    "millimetre": ("len", 0.001), "millimetres": ("len", 0.001),
    "cm": ("len", 0.01), "cms": ("len", 0.01), "centimeter": ("len", 0.01), "centimeters": ("len", 0.01),
    "centimetre": ("len", 0.01), "centimetres": ("len", 0.01),
    "m": ("len", 1.0), "meter": ("len", 1.0), "meters": ("len", 1.0), "metre": ("len", 1.0), "metres": ("len", 1.0),
    "in": ("len", 0.0254), "inch": ("len", 0.0254), "inches": ("len", 0.0254), '"': ("len", 0.0254),
    "ft": ("len", 0.3048), "foot": ("len", 0.3048), "feet": ("len", 0.3048),
    "degree": ("ang", math.pi / 180), "degrees": ("ang", math.pi / 180), "deg": ("ang", math.pi / 180),
    "degs": ("ang", math.pi / 180), "\u00b0": ("ang", math.pi / 180),
    "rad": ("ang", 1.0), "rads": ("ang", 1.0), "radian": ("ang", 1.0), "radians": ("ang", 1.0),
    "turn": ("ang", 2 * math.pi), "turns": ("ang", 2 * math.pi), "revolution": ("ang", 2 * math.pi),
    "percent": ("pct", 1.0), "%": ("pct", 1.0),
}
DIGIT_ONLY_UNITS: frozenset[str] = frozenset({"in", '"'})  # "5 in" is inches; "the one in the box" is not
LENGTH_UNITS: dict[str, float] = {w: f for w, (q, f) in UNITS.items() if q == "len" and w.isalpha()}

# ----- number words ------------------------------------------------------------------------
ONES: dict[str, int] = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
    "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19,
}
TENS: dict[str, int] = {"twenty": 20, "thirty": 30, "forty": 40, "fourty": 40, "fifty": 50, "sixty": 60,
                        "seventy": 70, "eighty": 80, "ninety": 90}
COUNT_WORDS: dict[str, int] = {"once": 1, "twice": 2, "thrice": 3}  # "wipe it twice more"


# ----- helpers -----------------------------------------------------------------------------
def words(text: str) -> list[str]:
    return re.findall(r"[a-z]+", text.lower())


def category_of(description: str | None) -> str | None:
    """The category (or kind group, e.g. "fruit") a description names, if exactly one."""
    if not description:
        return None
    found = {CATEGORY_WORDS.get(w) or KIND_GROUP_WORDS.get(w) for w in words(description)} - {None}
    return found.pop() if len(found) == 1 else None  # type: ignore[return-value]


def category_from_name(name: str | None) -> str | None:
    """'red_apple' -> 'apple'."""
    return category_of(name.replace("_", " ")) if name else None


def group_of(category: str) -> str:
    """The group a category belongs to ("apple" -> "fruit"); a group or unknown word is its own."""
    return CATEGORY_GROUP.get(category, category)


def plural(category: str) -> str:
    return category if category in ("fruit", "tableware", "furniture") else category + "s"
