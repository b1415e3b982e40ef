"""Learning-from-corrections scenarios: things the agent cannot know in advance.

Each scenario gives, for a seed and a phase, a scene, a task sentence, the simulated
operator's intents, and a success check that includes the operator's hidden wishes.
Phases: "train" instances (seen in the rounds), "heldout" instances (new colours, sizes,
positions, orientations and object instances of the same categories) and "negative"
controls (tasks where a learned item must not apply).

Each instance also says which lessons a person would accept (`acceptable`, a test on a
learned item: its kind, effect and scope, read as a mapping so that sim/ needs nothing of
the knowledge base), so an evaluation can count what was learned wrongly (the false-learn
rate). The "adversarial" suite is made of situations that tempt a learner into wrong
lessons: a nudge after the grasp, "instead" in a failed episode, a one-off exception, a
preference revoked mid-suite, two operators with opposite wishes, and the same correction
on one instance versus on three.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from robot.types import SceneObject
from sim.operator import Alias, GraspPoint, InsteadThenSkip, Intent, LateNudge, OneOff, Order, PreferredContainer
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
    acceptable: Callable[[Any], bool] = lambda item: True  # would a person keep this lesson from this episode?
    operator: str | None = None  # who is correcting (the knowledge base scopes lessons to them)

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
def jug_handle(phase: str, seed: int, rnd: int = 0) -> Instance:
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
                    lambda objs, _: inside(_by_cat(objs, kind), _by_cat(objs, "basket")), phase != "negative",
                    acceptable=_about_grasping("jug"))


# ----- B. a hidden preference: fruit goes in the basket, not the nearest bowl -----
def fruit_basket(phase: str, seed: int, rnd: int = 0) -> Instance:
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

    return Instance("fruit_basket", phase, seed, spec, task, intents, check, phase != "negative",
                    acceptable=_prefers("basket", {"fruit", "apple", "banana", "orange", "lemon"}))


# ----- C. the operator's own words: "cup" means the mug -----
def cup_means_mug(phase: str, seed: int, rnd: int = 0) -> Instance:
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
                    lambda o, _: inside(_by_cat(o, meant), _by_cat(o, "plate")), phase != "negative",
                    acceptable=lambda k: _effect(k).get("type") == "alias" and _effect(k).get("means") == "mug")


# ----- D. a hidden order: bananas first -----
def banana_first(phase: str, seed: int, rnd: int = 0) -> Instance:
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

    return Instance("banana_first", phase, seed, spec, task, intents, check, phase != "negative",
                    acceptable=lambda k: _effect(k).get("type") == "order" and _effect(k).get("first") == "banana")


# ----- lessons a person would keep -----
def _effect(item: Any) -> Any:
    return item.effect  # a mapping: effect.get("type"), ...


def _about_grasping(category: str) -> Callable[[Any], bool]:
    return lambda k: k.kind == "skill" and k.scope.get("object_category") == category \
        and _effect(k).get("type") in ("grasp_offset", "param")


def _prefers(container: str, things: set[str]) -> Callable[[Any], bool]:
    return lambda k: _effect(k).get("type") == "preference" and _effect(k).get("target") == container \
        and _effect(k).get("applies_to") in things


def _nothing(item: Any) -> bool:
    return False


def _fruit_scene(name: str, fruit: str, rng: np.random.Generator, extra: list[dict[str, Any]] | None = None) -> SceneSpec:
    return scene_from_dict({"name": name, "objects": [
        {"type": fruit, "region": {"x": [0.42, 0.55], "y": [-0.3, -0.12]}},
        {"type": "bowl", "colour": _pick(rng, ["blue", "white"]), "region": {"x": [0.5, 0.62], "y": [-0.08, 0.06]}},
        {"type": "basket", "pose": {"x": 0.36, "y": 0.38, "yaw": 1.5708}},
        *(extra or []),
    ]})


def _in_category(objs: list[SceneObject], what: str, container: str) -> bool:
    return inside(_by_cat(objs, what), _by_cat(objs, container))


def _in_any_container(objs: list[SceneObject], what: str) -> bool:
    o = _by_cat(objs, what)
    return any(inside(o, c) for c in objs if c.attributes.get("container"))


# ----- E. a nudge after the grasp: a correction of the path, not of the grasp -----
def late_nudge(phase: str, seed: int, rnd: int = 0) -> Instance:
    rng = np.random.default_rng(seed * 7 + 5)
    colour = _pick(rng, ["red", "green"] if phase == "train" else ["blue", "yellow"])
    spec = scene_from_dict({"name": f"late_nudge_{phase}", "objects": [
        {"type": "block", "colour": colour, "region": {"x": [0.42, 0.56], "y": [-0.25, 0.0]}},
        {"type": "bowl", "colour": "white", "region": {"x": [0.4, 0.5], "y": [0.12, 0.25]}},
    ]})
    intents: list[Intent] = [LateNudge(category="block")] if phase == "train" else []
    return Instance("late_nudge", phase, seed, spec, f"put the {colour} block in the white bowl", intents,
                    lambda objs, _: _in_category(objs, "block", "bowl"), False, acceptable=_nothing, operator="hal")


# ----- F. "instead" in an episode that then fails: no lesson about where things go -----
def instead_failed(phase: str, seed: int, rnd: int = 0) -> Instance:
    rng = np.random.default_rng(seed * 7 + 6)
    spec = scene_from_dict({"name": f"instead_failed_{phase}", "objects": [
        {"type": "block", "colour": _pick(rng, ["red", "green"]), "region": {"x": [0.45, 0.58], "y": [-0.28, -0.12]}},
        {"type": "bowl", "colour": "blue", "region": {"x": [0.5, 0.62], "y": [-0.05, 0.08]}},
        {"type": "basket", "pose": {"x": 0.36, "y": 0.38, "yaw": 1.5708}},
    ]})
    intents: list[Intent] = [InsteadThenSkip(container="basket")] if phase == "train" else []
    check = (lambda objs, _: _in_category(objs, "block", "basket")) if phase == "train" else \
        (lambda objs, _: _in_category(objs, "block", "bowl"))
    return Instance("instead_failed", phase, seed, spec, "put the block in the bowl", intents, check, False,
                    acceptable=_nothing, operator="ida")


# ----- G. a one-off exception: "just this once, put it on the plate" -----
def one_off(phase: str, seed: int, rnd: int = 0) -> Instance:
    rng = np.random.default_rng(seed * 7 + 7)
    fruit = _pick(rng, ["apple", "banana"] if phase == "train" else ["orange", "lemon"])
    spec = _fruit_scene(f"one_off_{phase}", fruit, rng, [{"type": "plate", "region": {"x": [0.55, 0.62], "y": [0.15, 0.25]}}])
    intents: list[Intent] = [OneOff(container="plate")] if phase == "train" else []
    check = (lambda objs, _: _in_category(objs, fruit, "plate")) if phase == "train" else \
        (lambda objs, _: _in_any_container(objs, fruit) and not _in_category(objs, fruit, "plate"))
    return Instance("one_off", phase, seed, spec, f"put away the {fruit}", intents, check, False, acceptable=_nothing,
                    operator="eve")


# ----- H. a preference revoked mid-suite: the basket in round 1, the bowl from round 2 on -----
def revoked(phase: str, seed: int, rnd: int = 0) -> Instance:
    rng = np.random.default_rng(seed * 7 + 8)
    if phase == "negative":  # a block: neither preference is about it
        spec = scene_from_dict({"name": "revoked_negative", "objects": [
            {"type": "block", "colour": "red", "region": {"x": [0.42, 0.55], "y": [-0.3, -0.12]}},
            {"type": "bowl", "colour": "white", "region": {"x": [0.5, 0.62], "y": [-0.08, 0.06]}},
            {"type": "basket", "pose": {"x": 0.36, "y": 0.38, "yaw": 1.5708}}]})
        return Instance("revoked", phase, seed, spec, "put away the red block", [],
                        lambda objs, _: _in_any_container(objs, "block"), False, acceptable=_nothing, operator="dana")
    fruit = _pick(rng, ["apple", "banana"] if phase == "train" else ["orange", "lemon"])
    first_wish = phase == "train" and rnd <= 1
    container = "basket" if first_wish else "bowl"
    intents: list[Intent] = [PreferredContainer(group="fruit", container=container, revise=not first_wish)]
    return Instance("revoked", phase, seed, _fruit_scene(f"revoked_{phase}", fruit, rng), f"put away the {fruit}",
                    intents, lambda objs, _: _in_category(objs, fruit, container), True,
                    acceptable=_prefers(container, {"fruit", fruit}), operator="dana")


# ----- I. two operators with opposite wishes: each gets their own, a third gets neither -----
def two_operators(phase: str, seed: int, rnd: int = 0) -> Instance:
    rng = np.random.default_rng(seed * 7 + 9)
    fruit = _pick(rng, ["apple", "banana"] if phase == "train" else ["orange", "lemon"])
    spec = _fruit_scene(f"two_operators_{phase}", fruit, rng)
    if phase == "negative":  # somebody else: no wish, and neither ann's nor bob's lesson may apply to them
        return Instance("two_operators", phase, seed, spec, f"put away the {fruit}", [],
                        lambda objs, _: _in_any_container(objs, fruit), False, acceptable=_nothing, operator="cho")
    who, container = (("ann", "basket"), ("bob", "bowl"))[seed % 2]
    intents: list[Intent] = [PreferredContainer(group="fruit", container=container)]
    return Instance("two_operators", phase, seed, spec, f"put away the {fruit}", intents,
                    lambda objs, _: _in_category(objs, fruit, container), True,
                    acceptable=lambda k: _prefers(container, {"fruit", fruit})(k) and k.scope.get("user") == who,
                    operator=who)


# ----- J. one instance versus three: what one purple block taught is about that block only -----
def block_once(phase: str, seed: int, rnd: int = 0) -> Instance:
    """The operator wants the purple block grasped 1.5 cm off its centre. Trained on that one block:
    held out is the same block elsewhere (the lesson applies); the negative controls are blocks of
    other colours (one instance is no evidence about them: nothing may apply)."""
    rng = np.random.default_rng(seed * 7 + 10)
    colour = "purple" if phase != "negative" else _pick(rng, ["red", "green", "yellow"])
    spec = scene_from_dict({"name": f"block_once_{phase}", "objects": [
        {"type": "block", "colour": colour, "region": {"x": [0.45, 0.58], "y": [-0.25, 0.0], "yaw": [-0.6, 0.6]}},
        {"type": "bowl", "colour": "white", "region": {"x": [0.4, 0.5], "y": [0.12, 0.25]}},
    ]})
    intents: list[Intent] = [GraspPoint(category="block", offset=(0.015, 0.0, 0.0))] if phase != "negative" else []
    return Instance("block_once", phase, seed, spec, f"put the {colour} block in the white bowl", intents,
                    lambda objs, _: _in_category(objs, "block", "bowl"), phase != "negative",
                    acceptable=_about_grasping("block"), operator="fay")


def jug_thrice(phase: str, seed: int, rnd: int = 0) -> Instance:
    """Trained on three jugs (blue, green, red): held out are jugs of colours never seen (the lesson
    holds for jugs); the negative control is a mug, where nothing may apply."""
    rng = np.random.default_rng(seed * 7 + 11)
    kind = "mug" if phase == "negative" else "jug"
    colour = {"train": ["blue", "green", "red"], "heldout": ["yellow", "purple"], "negative": ["red", "blue"]}[phase]
    spec = scene_from_dict({"name": f"jug_thrice_{phase}", "objects": [
        {"type": kind, "colour": colour[seed % len(colour)], "region": {"x": [0.45, 0.6], "y": [-0.25, 0.05],
                                                                       "yaw": [-3.1, 3.1]}},
        {"type": "basket", "pose": {"x": 0.36, "y": 0.36, "yaw": 1.5708}},
    ]})
    task = _pick(rng, [f"put the {kind} in the basket", f"place the {kind} into the basket"])
    return Instance("jug_thrice", phase, seed, spec, task, [GraspPoint(category="jug")],
                    lambda objs, _: inside(_by_cat(objs, kind), _by_cat(objs, "basket")), phase != "negative",
                    acceptable=_about_grasping("jug"), operator="gus")


SCENARIOS: dict[str, Callable[[str, int, int], Instance]] = {
    "jug_handle": jug_handle,
    "fruit_basket": fruit_basket,
    "cup_means_mug": cup_means_mug,
    "banana_first": banana_first,
    "late_nudge": late_nudge,
    "instead_failed": instead_failed,
    "one_off": one_off,
    "revoked": revoked,
    "two_operators": two_operators,
    "block_once": block_once,
    "jug_thrice": jug_thrice,
}


@dataclass(frozen=True)
class Suite:
    name: str
    scenarios: tuple[str, ...]
    episodes: int  # per scenario and round (and per phase for held-out and negative)
    rounds: int


SUITES: dict[str, Suite] = {
    "smoke": Suite("smoke", ("jug_handle", "fruit_basket"), episodes=2, rounds=2),
    "standard": Suite("standard", ("jug_handle", "fruit_basket", "cup_means_mug", "banana_first"), episodes=5, rounds=3),
    "adversarial": Suite("adversarial", ("late_nudge", "instead_failed", "one_off", "revoked", "two_operators",
                                         "block_once", "jug_thrice"), episodes=6, rounds=3),
}


def instance(scenario: str, phase: str, seed: int, rnd: int = 0) -> Instance:
    """The instance of `scenario` for a phase and seed; `rnd` is the training round (1..), 0 outside."""
    if scenario not in SCENARIOS:
        from sim.scene import SceneError

        raise SceneError(f"unknown scenario {scenario!r} (known: {', '.join(SCENARIOS)})")
    return SCENARIOS[scenario](phase, seed, rnd)
