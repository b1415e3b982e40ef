"""Resolve object descriptions ("the red block", "fruit", "the drawer") to scene objects.

The vocabulary lives here, in one table, so sim tasks, skills, policies and the
correction handler agree on what words mean.
"""
from __future__ import annotations

import re
from typing import Iterable

from robot.errors import CorrigoError
from robot.types import SceneObject

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
# word -> group of categories
GROUP_WORDS: dict[str, str] = {
    "fruit": "fruit", "fruits": "fruit",
    "container": "container", "containers": "container",
    "tableware": "tableware", "dishes": "tableware",
    "thing": "*", "things": "*", "object": "*", "objects": "*", "item": "*", "items": "*", "one": "*", "it": "*",
}
COLOUR_WORDS: dict[str, str] = {
    "red": "red", "green": "green", "blue": "blue", "yellow": "yellow", "purple": "purple", "violet": "purple",
    "orange": "orange", "pink": "pink", "white": "white", "black": "black", "brown": "brown",
    "grey": "grey", "gray": "grey", "cyan": "cyan", "teal": "cyan",
}
_STOP = {"the", "a", "an", "this", "that", "my", "your", "its", "of", "all", "every", "each", "other", "another"}


class UnknownObjectError(CorrigoError):
    pass


class AmbiguousObjectError(CorrigoError):
    pass


def words(text: str) -> list[str]:
    return re.findall(r"[a-z]+", text.lower())


def parse_description(description: str) -> tuple[set[str], set[str], set[str], list[str]]:
    """(colours, categories, groups, unknown words) of a description."""
    colours: set[str] = set()
    cats: set[str] = set()
    groups: set[str] = set()
    unknown: list[str] = []
    ws = words(description)
    for i, w in enumerate(ws):
        # "orange" is a colour before a noun, a fruit otherwise.
        if w == "orange" and i + 1 < len(ws) and (ws[i + 1] in CATEGORY_WORDS or ws[i + 1] in GROUP_WORDS):
            colours.add("orange")
        elif w in CATEGORY_WORDS:
            cats.add(CATEGORY_WORDS[w])
        elif w in COLOUR_WORDS:
            colours.add(COLOUR_WORDS[w])
        elif w in GROUP_WORDS:
            groups.add(GROUP_WORDS[w])
        elif w not in _STOP:
            unknown.append(w)
    return colours, cats, groups, unknown


def matches(obj: SceneObject, description: str) -> bool:
    colours, cats, groups, unknown = parse_description(description)
    if unknown or not (colours or cats or groups):
        return False
    if cats and obj.category not in cats:
        return False
    if groups - {"*"} and obj.attributes.get("group") not in groups:
        return False
    if colours and obj.colour not in colours:
        return False
    return True


def match_objects(description: str, objects: Iterable[SceneObject]) -> list[SceneObject]:
    objects = list(objects)
    exact = [o for o in objects if o.name == description.strip().lower().replace(" ", "_")]
    return exact or [o for o in objects if matches(o, description)]


def resolve(description: str, objects: Iterable[SceneObject], exclude: Iterable[str] = ()) -> SceneObject:
    """The one object a description names; a one-line error otherwise."""
    objects = list(objects)
    excluded = set(exclude)
    found = [o for o in match_objects(description, objects) if o.name not in excluded]
    if len(found) == 1:
        return found[0]
    here = ", ".join(o.description for o in objects) or "nothing"
    if not found:
        _, _, _, unknown = parse_description(description)
        why = f" (unknown word{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)})" if unknown else ""
        raise UnknownObjectError(f"no object matches {description!r}{why}; the scene has: {here}")
    raise AmbiguousObjectError(f"{description!r} could mean {', '.join(o.description for o in found)}; say which")
