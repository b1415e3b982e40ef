"""Learning-from-corrections scenarios: things the agent cannot know in advance.

Each scenario gives, for a seed and a phase, a scene, a task sentence, the simulated
operator's intents, and a success check that includes the operator's hidden wishes.
Phases: "train" instances (seen in the rounds), "heldout" instances (new colours, sizes,
positions, orientations and object instances of the same categories) and "negative"
controls (tasks where a learned item must not apply).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from robot.types import SceneObject
from sim.operator import Alias, GraspPoint, Intent, Order, PreferredContainer
from sim.scene import SceneSpec, scene_from_dict
from sim.tasks import inside

PHASES = ("train", "heldout", "negative")


@dataclass
class Instance:
    scenario: str
    phase: str
    seed: int
    scene: SceneSpec
    task: str
    intents: list[Intent]
    check: Callable[[list[SceneObject], list[Intent]], bool]
    expects_knowledge: bool  # False for negative controls: nothing learned may apply

    def is_success(self, objects: list[SceneObject]) -> bool:
        try:
            return bool(self.check(objects, self.intents))
        except (StopIteration, KeyError, IndexError):
            return False


def _by_cat(objects: list[SceneObject], cat: str) -> SceneObject:
    return next(o for o in objects if o.category == cat)


def _pick(rng: np.random.Generator, options: list[Any]) -> Any:
    return options[int(rng.integers(len(options)))]


# ----- A. an object quirk: the jug can only be grasped by its off-centre handle -----
def jug_handle(phase: str, seed: int) -> Instance:
    rng = np.random.default_rng(seed * 7 + 1)
    if phase == "negative":  # another category: the jug's grasp must not apply to the mug
        kind, colour, scale, region = "mug", _pick(rng, ["red", "blue", "white"]), [1.0, 1.0], {"x": [0.45, 0.6], "y": [-0.25, 0.05]}
    elif phase == "heldout":  # new colours and sizes, other places
        kind, colour, scale, region = "jug", _pick(rng, ["red", "yellow", "purple"]), [0.92, 1.08], {"x": [0.42, 0.58], "y": [-0.3, 0.12]}
    else:
        kind, colour, scale, region = "jug", _pick(rng, ["blue", "green"]), [1.0, 1.0], {"x": [0.45, 0.6], "y": [-0.25, 0.05]}
    spec = scene_from_dict({"name": f"jug_handle_{phase}", "objects": [
        {"type": kind, "colour": colour, "scale": scale, "region": {**region, "yaw": [-3.1, 3.1]}},
        {"type": "basket", "pose": {"x": 0.36, "y": 0.36, "yaw": 1.5708}},
        {"type": "block", "colour": "any", "region": {"x": [0.3, 0.42], "y": [-0.35, -0.15]}},
    ]})
    task = _pick(rng, [f"put the {kind} in the basket", f"place the {kind} into the basket", f"drop the {kind} in the basket"])
    intents: list[Intent] = [GraspPoint(category="jug")]
    return Instance("jug_handle", phase, seed, spec, task, intents,
                    lambda objs, _: inside(_by_cat(objs, kind), _by_cat(objs, "basket")), phase != "negative")


# ----- B. a hidden preference: fruit goes in the basket, not the nearest bowl -----
def fruit_basket(phase: str, seed: int) -> Instance:
    rng = np.random.default_rng(seed * 7 + 2)
    if phase == "negative":  # a block: the fruit preference must not apply
        item, colour = "block", _pick(rng, ["red", "green", "blue"])
    elif phase == "heldout":  # fruit the operator never corrected
        item, colour = _pick(rng, ["orange", "lemon"]), None
    else:
        item, colour = _pick(rng, ["apple", "banana"]), None
    obj: dict[str, Any] = {"type": item, "region": {"x": [0.42, 0.55], "y": [-0.3, -0.12]}}
    if colour:
        obj["colour"] = colour
    spec = scene_from_dict({"name": f"fruit_basket_{phase}", "objects": [
        obj,
        {"type": "bowl", "colour": _pick(rng, ["blue", "white", "red"]), "region": {"x": [0.5, 0.62], "y": [-0.08, 0.06]}},
        {"type": "basket", "pose": {"x": 0.36, "y": 0.38, "yaw": 1.5708}},
    ]})
    what = f"{colour} {item}" if colour else item
    task = _pick(rng, [f"put away the {what}", f"tidy up the {what}", f"put the {what} away"])
    intents: list[Intent] = [PreferredContainer(group="fruit", container="basket")]

    def check(objs: list[SceneObject], _: list[Intent]) -> bool:
        o = _by_cat(objs, item)
        if item == "block":  # no wish about blocks: any container will do
            return any(inside(o, c) for c in objs if c.attributes.get("container"))
        return inside(o, _by_cat(objs, "basket"))

    return Instance("fruit_basket", phase, seed, spec, task, intents, check, phase != "negative")


# ----- C. the operator's own words: "cup" means the mug -----
def cup_means_mug(phase: str, seed: int) -> Instance:
    rng = np.random.default_rng(seed * 7 + 3)
    objs: list[dict[str, Any]] = [{"type": "plate", "region": {"x": [0.52, 0.62], "y": [0.1, 0.28]}}]
    if phase != "negative":  # a negative control has no mug: "cup" means the cup
        objs.append({"type": "mug", "colour": _pick(rng, ["red", "blue"] if phase == "train" else ["yellow", "purple"]),
                     "region": {"x": [0.38, 0.55], "y": [-0.3, 0.0]}})
    objs.append({"type": "cup", "colour": _pick(rng, ["green", "white"] if phase != "heldout" else ["orange", "pink"]),
                 "region": {"x": [0.38, 0.55], "y": [-0.3, 0.0]}})
    spec = scene_from_dict({"name": f"cup_means_mug_{phase}", "objects": objs})
    task = _pick(rng, ["put the cup on the plate", "place the cup on the plate", "move the cup to the plate"])
    intents: list[Intent] = [Alias(word="cup", means="mug")]
    meant = "mug" if phase != "negative" else "cup"
    return Instance("cup_means_mug", phase, seed, spec, task, intents,
                    lambda o, _: inside(_by_cat(o, meant), _by_cat(o, "plate")), phase != "negative")


# ----- D. a hidden order: bananas first -----
def banana_first(phase: str, seed: int) -> Instance:
    rng = np.random.default_rng(seed * 7 + 4)
    if phase == "negative":  # no banana: the order must not change anything
        fruit = ["apple", "lemon"]
    elif phase == "heldout":
        fruit = ["banana", "orange", "lemon"]
    else:
        fruit = ["banana", "apple"]
    spec = scene_from_dict({"name": f"banana_first_{phase}", "objects": [
        {"type": "basket", "pose": {"x": 0.36, "y": 0.38, "yaw": 1.5708}},
        *({"type": f, "region": {"x": [0.36, 0.62], "y": [-0.32, 0.12]}} for f in fruit),
    ]})
    task = _pick(rng, ["put all the fruit in the basket", "sort the fruit into the basket", "collect all the fruit in the basket"])
    order = Order(first="banana")
    intents: list[Intent] = [order]

    def check(objs: list[SceneObject], ints: list[Intent]) -> bool:
        basket = _by_cat(objs, "basket")
        in_basket = all(inside(o, basket) for o in objs if o.attributes.get("group") == "fruit")
        first_ok = "banana" not in fruit or (bool(order.placed) and order.placed[0] == "banana")
        return in_basket and first_ok

    return Instance("banana_first", phase, seed, spec, task, intents, check, phase != "negative")


SCENARIOS: dict[str, Callable[[str, int], Instance]] = {
    "jug_handle": jug_handle,
    "fruit_basket": fruit_basket,
    "cup_means_mug": cup_means_mug,
    "banana_first": banana_first,
}


@dataclass(frozen=True)
class Suite:
    name: str
    scenarios: tuple[str, ...]
    episodes: int  # per scenario and round (and per phase for held-out and negative)
    rounds: int


SUITES: dict[str, Suite] = {
    "smoke": Suite("smoke", ("jug_handle", "fruit_basket"), episodes=2, rounds=2),
    "standard": Suite("standard", tuple(SCENARIOS), episodes=5, rounds=3),
}


def instance(scenario: str, phase: str, seed: int) -> Instance:
    if scenario not in SCENARIOS:
        from sim.scene import SceneError

        raise SceneError(f"unknown scenario {scenario!r} (known: {', '.join(SCENARIOS)})")
    return SCENARIOS[scenario](phase, seed)
