"""Held-out task phrasings (policies/learned/heldout_phrasings.yaml): new templates and colour words.

    hs = load_heldout()
    text = hs.phrase("PickPlace", {"object": "red_block", "target": "blue_bowl"}, objects, seed=3)
    # -> "could you get the crimson cube into the navy bowl"
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import yaml

from policies.base import PolicyError
from robot.types import SceneObject

DEFAULT_PATH = Path(__file__).with_name("heldout_phrasings.yaml")


@dataclass(frozen=True)
class HeldoutSet:
    templates: dict[str, tuple[str, ...]]
    colour_synonyms: dict[str, tuple[str, ...]]
    noun_synonyms: dict[str, tuple[str, ...]]
    path: str = ""

    def say(self, objects: Sequence[SceneObject], name: str, rng: np.random.Generator) -> str:
        """How a person might name an object, in words the rule-based grounding does not know."""
        if name == "fruit":
            return "fruit"
        o = next((x for x in objects if x.name == name), None)
        if o is None:
            raise PolicyError(f"no object {name!r} in the scene")
        if o.category == "cabinet":
            return "drawer"
        same = [x for x in objects if x.category == o.category]
        nouns = self.noun_synonyms.get(o.category, (o.category,))
        noun = nouns[int(rng.integers(len(nouns)))]
        if len(same) == 1 and o.category in ("basket", "plate"):
            return noun
        cols = self.colour_synonyms.get(o.colour, (o.colour,)) if o.colour else ("",)
        col = cols[int(rng.integers(len(cols)))]
        return f"{col} {noun}".strip()

    def phrase(self, task: str, goal: Mapping[str, str], objects: Sequence[SceneObject], seed: int) -> str:
        if task not in self.templates:
            raise PolicyError(f"no held-out phrasings for task {task!r} in {self.path}")
        rng = np.random.default_rng(seed + 104729)
        tpls = self.templates[task]
        tpl = tpls[int(rng.integers(len(tpls)))]
        return tpl.format(**{k: self.say(objects, v, rng) for k, v in goal.items()})


def _strs(v: Any, where: str) -> tuple[str, ...]:
    if not isinstance(v, list) or not v or not all(isinstance(x, str) and x.strip() for x in v):
        raise PolicyError(f"{where}: expected a non-empty list of strings")
    return tuple(x.strip() for x in v)


def load_heldout(path: str | Path | None = None) -> HeldoutSet:
    p = Path(path) if path else DEFAULT_PATH
    try:
        data = yaml.safe_load(p.read_text())
    except OSError as e:
        raise PolicyError(f"cannot read held-out phrasings {p}: {e.strerror or e}") from None
    except yaml.YAMLError as e:
        raise PolicyError(f"{p}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(data, dict) or not isinstance(data.get("tasks"), dict):
        raise PolicyError(f"{p}: expected a mapping with 'tasks' (task -> list of templates)")
    tasks = {str(k): _strs(v, f"{p} tasks.{k}") for k, v in data["tasks"].items()}
    cols = {str(k): _strs(v, f"{p} colour_synonyms.{k}") for k, v in (data.get("colour_synonyms") or {}).items()}
    nouns = {str(k): _strs(v, f"{p} noun_synonyms.{k}") for k, v in (data.get("noun_synonyms") or {}).items()}
    return HeldoutSet(tasks, cols, nouns, str(p))
