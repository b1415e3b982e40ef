"""Resolve object descriptions ("the red block", "fruit", "the big bowl") to scene objects.

The words come from `robot.vocab`, the one vocabulary, so sim tasks, skills, policies,
the parser and the correction handler agree on what they mean.
"""
from __future__ import annotations

from typing import Iterable

import numpy as np

from robot.errors import CorrigoError
from robot.types import SceneObject
from robot.vocab import CATEGORY_WORDS, COLOUR_WORDS, GROUP_WORDS, SIZE_WORDS, words

__all__ = ["AmbiguousObjectError", "UnknownObjectError", "match_objects", "matches", "parse_description", "resolve",
           "short_name", "words"]

_STOP = {"the", "a", "an", "this", "that", "my", "your", "its", "of", "all", "every", "each", "other", "another"}


class UnknownObjectError(CorrigoError):
    pass


class AmbiguousObjectError(CorrigoError):
    pass


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
        elif w not in _STOP and w not in SIZE_WORDS:  # sizes pick among the matches (match_objects)
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
    if exact:
        return exact
    found = [o for o in objects if matches(o, description)]
    sizes = {SIZE_WORDS[w] for w in words(description) if w in SIZE_WORDS}
    if len(sizes) == 1 and len(found) > 1:  # "the big bowl": the largest of the bowls
        volume = {o.name: float(np.prod(o.size)) for o in found}
        best = (max if sizes == {"large"} else min)(volume.values())
        found = [o for o in found if volume[o.name] == best]
    return found


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


def short_name(obj: SceneObject, objects: list[SceneObject]) -> str:
    """The shortest description that names `obj` uniquely among `objects` ("bowl", "red bowl", "drawer")."""
    if obj.category == "cabinet":
        return "drawer"
    for d in (obj.category, obj.description):
        if len(match_objects(d, objects)) == 1:
            return d
    return obj.name.replace("_", " ")
