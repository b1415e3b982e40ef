"""Instruction text helpers shared by the skill library and the skills: normalising, amounts, directions."""
from __future__ import annotations

import re
from typing import Iterable


def normalize(text: str) -> str:
    """Lower case, punctuation to spaces, articles and 'please' dropped."""
    ws = re.findall(r"[a-z0-9]+(?:\.[0-9]+)?|\{[a-z]+\}", text.lower())
    return " ".join(w for w in ws if w not in ("the", "a", "an", "please"))


def format_distance(m: float) -> str:
    cm = round(m * 100, 1)
    return f"{cm:g} cm"


def say_direction(d: str) -> str:
    """How an instruction says a direction: "to the left", "backward", "up"."""
    return {"left": "to the left", "right": "to the right", "back": "backward"}.get(d, d)


def say_vector(d: Iterable[float]) -> str:
    """The directions a (unit) vector points along, in words: "left and up"."""
    v = [float(x) for x in d]
    names = []
    for axis, (pos, neg) in enumerate((("forward", "back"), ("left", "right"), ("up", "down"))):
        if abs(v[axis]) > 0.3:
            names.append(pos if v[axis] > 0 else neg)
    return " and ".join(names) or "nowhere"

