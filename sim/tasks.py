"""Tasks: a scene, language descriptions with paraphrases, and a success check.

Success is computed from `SceneObject`s only, so it is the same for every backend
and works through a network body that forwards `scene_objects()`.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from robot.describe import AmbiguousObjectError, UnknownObjectError, resolve
from robot.errors import CorrigoError
from robot.geometry import quat_conj, rotate
from robot.types import SceneObject


class TaskError(CorrigoError):
    pass


# ----- success predicates -----
def inside(obj: SceneObject, container: SceneObject) -> bool:
    """Is `obj` resting inside (or on) `container`?"""
    local = rotate(quat_conj(container.quat_xyzw), obj.position - container.position)
    a = container.attributes
    if container.category == "cabinet":
        local = local + np.array([container.state.get("drawer_open", 0.0), 0.0, 0.0])  # into the drawer's frame
        hx, hy = a.get("drawer_interior_half", (0.1, 0.13))
        return abs(local[0]) <= hx + 0.005 and abs(local[1]) <= hy + 0.005 and local[2] < container.size[2] - 0.02
    if "inner_half" in a:
        hx, hy = a["inner_half"]
        ok_xy = abs(local[0]) <= hx + 0.005 and abs(local[1]) <= hy + 0.005
    else:
        ok_xy = math.hypot(local[0], local[1]) <= a.get("inner_radius", container.size[0] / 2) + 0.005
    floor = a.get("floor", 0.0)
    return bool(ok_xy and -0.01 <= local[2] - floor <= container.size[2] + 0.01)


def stacked_on(top: SceneObject, bottom: SceneObject) -> bool:
    dz = top.position[2] - (bottom.position[2] + bottom.size[2])
    dxy = float(np.linalg.norm(top.position[:2] - bottom.position[:2]))
    return abs(dz) < 0.012 and dxy < 0.6 * min(bottom.size[0], bottom.size[1])


DRAWER_OPEN_M = 0.10  # pulled out at least this far counts as open
DRAWER_CLOSED_M = 0.02  # and at most this far as closed


def drawer_open(cabinet: SceneObject) -> bool:
    return cabinet.state.get("drawer_open", 0.0) >= DRAWER_OPEN_M


def drawer_closed(cabinet: SceneObject) -> bool:
    return cabinet.state.get("drawer_open", 0.0) <= DRAWER_CLOSED_M


# ----- placements: the final states a task asks for (relation, moved object, target) -----
RELATIONS = ("in", "on", "open", "closed")


def relation_to(target: SceneObject) -> str:
    """How an object ends up on `target`: "in" a container with walls, "on" a plate or a block."""
    a = target.attributes
    if not a.get("container"):
        return "on"
    return "on" if a.get("rim_height", math.inf) <= a.get("floor", 0.0) else "in"


def placement_holds(relation: str, obj: SceneObject | None, target: SceneObject) -> bool:
    """Does the placement hold: `obj` in/on `target`, or the `target` drawer open/closed?"""
    if relation == "open":
        return drawer_open(target)
    if relation == "closed":
        return drawer_closed(target)
    if obj is None:
        raise TaskError(f"placement {relation!r} needs an object")
    return inside(obj, target) if target.attributes.get("container") else stacked_on(obj, target)


@dataclass
class TaskInstance:
    """One task on one laid-out scene: what to say and how to check it."""

    task: str
    description: str
    paraphrases: list[str]
    goal: dict[str, str]
    check: Callable[[list[SceneObject]], bool] = field(repr=False)

    def is_success(self, objects: list[SceneObject]) -> bool:
        try:
            return bool(self.check(objects))
        except (KeyError, StopIteration):
            return False

    def placements(self, objects: list[SceneObject]) -> list[tuple[str, str | None, str]]:
        """What this instance asks for, as (relation, moved object, target) scene-object names."""
        target = _by_name(objects, self.goal["target"])
        if self.task == "OpenDrawer":
            return [("open", None, target.name)]
        if self.goal.get("object") == "fruit":
            moved = [o.name for o in objects if o.attributes.get("group") == "fruit"]
        else:
            moved = [self.goal["object"]]
        return [(relation_to(target), name, target.name) for name in moved]


def _by_name(objects: list[SceneObject], name: str) -> SceneObject:
    return next(o for o in objects if o.name == name)


@dataclass(frozen=True)
class Task:
    name: str
    scene: str
    templates: tuple[str, ...]  # paraphrases with {object} / {target} slots; the first is canonical

    def instantiate(self, objects: list[SceneObject], seed: int) -> TaskInstance:
        rng = np.random.default_rng(seed + 7919)
        goal = self._choose(objects, rng)
        phr = [t.format(**{k: _say(objects, v) for k, v in goal.items()}) for t in self.templates]
        return TaskInstance(self.name, phr[int(rng.integers(len(phr)))], phr, goal, self._checker(goal))

    def from_goal(self, objects: list[SceneObject], goal: dict[str, str], text: str | None = None) -> TaskInstance:
        phr = [t.format(**{k: _say(objects, v) for k, v in goal.items()}) for t in self.templates]
        return TaskInstance(self.name, text or phr[0], phr, goal, self._checker(goal))

    # per task
    def _choose(self, objects: list[SceneObject], rng: np.random.Generator) -> dict[str, str]:
        def pick(cat: str | tuple[str, ...], exclude: tuple[str, ...] = ()) -> str:
            cats = (cat,) if isinstance(cat, str) else cat
            cands = [o.name for o in objects if o.category in cats and o.name not in exclude]
            if not cands:
                raise TaskError(f"task {self.name} needs a {'/'.join(cats)} in the scene")
            return cands[int(rng.integers(len(cands)))]

        if self.name == "PickPlace":
            return {"object": pick("block"), "target": pick("bowl")}
        if self.name == "Stack":
            a = pick("block")
            return {"object": a, "target": pick("block", (a,))}
        if self.name == "SortFruit":
            return {"object": "fruit", "target": pick("basket")}
        if self.name == "OpenDrawer":
            return {"target": pick("cabinet")}
        if self.name == "PutInDrawer":
            return {"object": pick("block"), "target": pick("cabinet")}
        raise TaskError(f"unknown task {self.name}")

    def _checker(self, goal: dict[str, str]) -> Callable[[list[SceneObject]], bool]:
        if self.name in ("PickPlace", "PutInDrawer"):
            return lambda objs: inside(_by_name(objs, goal["object"]), _by_name(objs, goal["target"]))
        if self.name == "Stack":
            return lambda objs: stacked_on(_by_name(objs, goal["object"]), _by_name(objs, goal["target"]))
        if self.name == "SortFruit":
            def all_fruit(objs: list[SceneObject]) -> bool:
                basket = _by_name(objs, goal["target"])
                fruit = [o for o in objs if o.attributes.get("group") == "fruit"]
                return bool(fruit) and all(inside(f, basket) for f in fruit)

            return all_fruit
        if self.name == "OpenDrawer":
            return lambda objs: drawer_open(_by_name(objs, goal["target"]))
        raise TaskError(f"unknown task {self.name}")


def _say(objects: list[SceneObject], name: str) -> str:
    """How a person names an object: 'red block', or just 'basket' when unique."""
    if name == "fruit":
        return "fruit"
    o = _by_name(objects, name)
    if o.category == "cabinet":
        return "drawer"
    same = [x for x in objects if x.category == o.category]
    return o.category if len(same) == 1 and o.category in ("basket", "plate") else o.description


TASKS: dict[str, Task] = {
    t.name: t
    for t in (
        Task("PickPlace", "pick_place", (
            "put the {object} in the {target}",
            "place the {object} into the {target}",
            "move the {object} to the {target}",
            "pick up the {object} and put it in the {target}",
            "drop the {object} in the {target}",
        )),
        Task("Stack", "stack", (
            "stack the {object} on the {target}",
            "put the {object} on top of the {target}",
            "place the {object} on the {target}",
            "stack the {object} onto the {target}",
        )),
        Task("SortFruit", "sort_fruit", (
            "put all the {object} in the {target}",
            "put the {object} in the {target}",
            "sort the {object} into the {target}",
            "move every {object} to the {target}",
            "collect all the {object} in the {target}",
        )),
        Task("OpenDrawer", "drawer", (
            "open the {target}",
            "pull the {target} open",
            "open up the {target}",
            "slide the {target} out",
        )),
        Task("PutInDrawer", "drawer", (
            "put the {object} in the {target}",
            "place the {object} inside the {target}",
            "store the {object} in the {target}",
            "open the {target} and put the {object} in it",
        )),
    )
}


def env_id(task: str) -> str:
    """Gymnasium id of a task; ids are generated here and nowhere else."""
    return f"corrigo/{task}-v0"


def get_task(name: str) -> Task:
    key = name.removeprefix("corrigo/").removesuffix("-v0")
    if key not in TASKS:
        raise TaskError(f"unknown task {name!r} (known: {', '.join(env_id(t) for t in TASKS)})")
    return TASKS[key]


def _norm(text: str) -> str:
    return " ".join(w for w in re.findall(r"[a-z{}]+", text.lower()) if w not in ("the", "a", "an"))


def _template_regex(template: str) -> re.Pattern[str]:
    rx = re.escape(_norm(template)).replace(r"\{object\}", "(?P<object>[a-z ]+?)").replace(r"\{target\}", "(?P<target>[a-z ]+?)")
    return re.compile(rf"^{rx}$")


def task_from_text(text: str, objects: list[SceneObject]) -> TaskInstance | None:
    """Recognise a task sentence written in one of the tasks' phrasings.

    Returns None when no phrasing matches (the success of a free-form task is then
    unknown); raises a one-line `UnknownObjectError` when a phrasing matches but
    names an object the scene does not have.
    """
    t = _norm(text)
    first_error: CorrigoError | None = None
    for task in TASKS.values():
        for tpl in task.templates:
            m = _template_regex(tpl).match(t)
            if not m:
                continue
            slots = m.groupdict()
            try:
                goal = {}
                for slot, desc in slots.items():
                    if slot == "object" and task.name == "SortFruit":
                        if desc.strip() not in ("fruit", "fruits"):
                            raise UnknownObjectError(f"{desc!r} is not a group this task sorts")
                        goal[slot] = "fruit"
                        continue
                    o = resolve(desc, objects)
                    goal[slot] = o.name
                if task.name in ("PickPlace",) and _by_name(objects, goal["target"]).category == "cabinet":
                    continue  # "put X in the drawer" is PutInDrawer
                if task.name == "PutInDrawer" and _by_name(objects, goal["target"]).category != "cabinet":
                    continue
                if task.name == "Stack" and _by_name(objects, goal["target"]).category != "block":
                    continue
                if task.name == "PickPlace" and not _by_name(objects, goal["target"]).attributes.get("container"):
                    continue
                if task.name == "OpenDrawer" and _by_name(objects, goal["target"]).category != "cabinet":
                    continue
                return task.from_goal(objects, goal, text)
            except (UnknownObjectError, AmbiguousObjectError) as e:
                first_error = first_error or e
    if first_error is not None:
        raise first_error
    return None
