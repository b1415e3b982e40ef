"""A simulated operator: watches privileged sim state and speaks like a person.

It sees what a person standing by the robot would see (where things are, where the
gripper is going, what the agent says it is doing) and has intents the agent cannot
know in advance: how an object must be grasped, where things should go, in what
order, what its own words mean. It only ever communicates through text, delivered
after a human-like delay, through the same channel as a person at a terminal.

Deterministic for a seed. `noise` in [0, 1] adds vague amounts and the odd wrong word.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from robot.describe import match_objects, parse_description
from robot.geometry import rotate
from robot.types import SceneObject

# ----- phrasings -----
STOP = ("stop", "wait!", "hold on", "stop stop", "wait a second", "freeze")
RESUME = ("continue", "ok, go on", "go ahead", "carry on", "ok continue", "now go on")
CONFIRM = ("good", "perfect", "yes, that's it", "nice", "great job", "that's right")
NUDGE_EXACT = ("move {d} {dir}", "{d} {dir}", "go {d} {dir}", "a bit more {dir}, about {d}", "{dir} by {d}")
NUDGE_VAGUE = ("a bit {dir}", "a little more {dir}", "slightly {dir}", "more {dir}")
WRONG_TARGET = ("no, put it in the {t} instead", "not there, the {t}", "put it in the {t} instead",
                "no no, in the {t} instead")
PREFER = ("I'd rather have the {g} in the {t}", "always put {g} in the {t}", "{g} goes in the {t}, please remember",
          "from now on put {g} in the {t}")
REVISE = ("actually, put {g} in the {t} from now on", "actually, {g} goes in the {t} from now on",
          "I changed my mind: always put {g} in the {t}")
ONE_OFF = ("just this once, put it in the {t} instead", "only this time, put it in the {t} instead",
           "this time only, put it in the {t} instead")
SKIP = ("skip that", "never mind, skip it", "forget it, skip that")
LATE_NUDGE = ("a bit to the left", "a little to the right", "a bit more forward")
MEANT = ("no, I meant the {m}", "not that one, the {m}", "I meant the {m}", "wrong one, the {m}")
MISSING = ("pick up the {c}", "grab the {c}", "get the {c}")  # a plain instruction, as YAY operators give
ORDER = ("do the {a} first", "the {a} before the {b}", "first the {a}", "do the {a} before the {b}")
FILLER = ("uh, {}", "hmm, {}", "{} please", "no no, {}", "um {}", "ok so {}")
DIRS_ROBOT = {(0, 1): "to the left", (0, -1): "to the right", (1, 0): "forward", (-1, 0): "back"}
DIRS_FACING = {(0, 1): "to the right", (0, -1): "to the left", (1, 0): "toward me", (-1, 0): "away from me"}


class EndEffector(Protocol):
    def __call__(self) -> np.ndarray: ...


@dataclass
class Intent:
    """What the operator wants and the agent cannot know. Subclasses decide what to say."""

    name: str = ""

    def watch(self, op: "SimulatedOperator", t: float, instruction: str, stopped: bool) -> list[str] | None:
        return None

    def satisfied(self, op: "SimulatedOperator") -> bool:
        return True

    def reset(self) -> None:
        """Forget per-episode state."""


@dataclass
class GraspPoint(Intent):
    """Objects of `category` must be grasped at `offset` (object frame); it stops the arm and nudges."""

    category: str = "jug"
    offset: tuple[float, float, float] | None = None  # None: the object's `handle_offset` attribute
    tolerance_m: float = 0.012

    def __post_init__(self) -> None:
        self.name = self.name or f"grasp {self.category}s by the handle"
        self._state = "watch"
        self._nudges = 0

    def reset(self) -> None:
        self._state, self._nudges = "watch", 0

    def target(self, obj: SceneObject) -> np.ndarray:
        off = np.asarray(self.offset if self.offset is not None else obj.attributes.get("handle_offset", (0, 0, 0)), float)
        return obj.position + rotate(obj.quat_xyzw, off)

    def watch(self, op: "SimulatedOperator", t: float, instruction: str, stopped: bool) -> list[str] | None:
        m = re.match(r"pick up the (.+)$", instruction)
        if not m:
            if self._state != "watch" and not instruction.startswith("move"):
                self._state = "watch"
            return None
        objs = [o for o in match_objects(m[1], op.objects()) if o.category == self.category]
        if len(objs) != 1:
            return None
        obj = objs[0]
        ee = op.ee()
        goal = self.target(obj)
        err = goal[:2] - ee[:2]
        grasp_z = obj.position[2] + float(obj.attributes.get("grasp_height", 0.05))
        # Where the gripper aims is clear once it stops moving sideways above the object;
        # it must be stopped while still high, before the fingers come down on it.
        lined_up = op.xy_speed() < 0.03 and ee[2] > grasp_z + 0.04 and np.linalg.norm(ee[:2] - obj.position[:2]) < 0.12
        if self._state == "watch" and lined_up and np.linalg.norm(err) > self.tolerance_m and not stopped:
            self._state = "stopping"
            return [op.pick(STOP)]
        if self._state == "stopping" and stopped:
            self._state = "nudged"
            self._nudges += 1
            return [op.nudge(err)]
        if self._state == "nudged" and stopped and op.settled():
            if np.linalg.norm(err) > self.tolerance_m and self._nudges < 4:
                self._nudges += 1
                return [op.nudge(err)]
            self._state = "resumed"
            return [op.pick(RESUME)]
        return None


@dataclass
class PreferredContainer(Intent):
    """Objects of `group` (a category or group like "fruit") belong in `container`."""

    group: str = "fruit"
    container: str = "basket"
    teach: bool = True  # also state the preference once, as a person teaching would
    revise: bool = False  # it used to want something else: say so ("actually, ... from now on")

    def __post_init__(self) -> None:
        self.name = self.name or f"{self.group} goes in the {self.container}"
        self._said = False

    def reset(self) -> None:
        self._said = False

    def _is_group(self, o: SceneObject) -> bool:
        return o.category == self.group or o.attributes.get("group") == self.group

    def watch(self, op: "SimulatedOperator", t: float, instruction: str, stopped: bool) -> list[str] | None:
        m = re.match(r"put it (?:in|on) the (.+)$", instruction)
        if not m or self._said:
            return None
        held = op.held()
        if held is None or not self._is_group(held):
            return None
        target = match_objects(m[1], op.objects())
        if target and target[0].category != self.container:
            self._said = True
            out = [op.pick(WRONG_TARGET).format(t=self.container)]
            if self.teach:
                out.append(op.pick(REVISE if self.revise else PREFER).format(g=self.group, t=self.container))
            return out
        return None

    def satisfied(self, op: "SimulatedOperator") -> bool:
        objs = op.objects()
        box = [o for o in objs if o.category == self.container]
        from sim.tasks import inside

        return all(any(inside(o, b) for b in box) for o in objs if self._is_group(o) and op.moved(o))


@dataclass
class Alias(Intent):
    """When the operator says `word` they mean an object of category `means`."""

    word: str = "cup"
    means: str = "mug"

    def __post_init__(self) -> None:
        self.name = self.name or f"'{self.word}' means the {self.means}"
        self._said = False

    def reset(self) -> None:
        self._said = False

    def watch(self, op: "SimulatedOperator", t: float, instruction: str, stopped: bool) -> list[str] | None:
        m = re.match(r"pick up the (.+)$", instruction)
        if not m or self._said:
            return None
        _, cats, _, _ = parse_description(m[1])
        if self.word in cats and any(o.category == self.means for o in op.objects()):
            self._said = True
            meant = [o for o in op.objects() if o.category == self.means]
            desc = self.means if len(meant) == 1 else meant[0].description
            return [op.pick(MEANT).format(m=desc)]
        return None


@dataclass
class Order(Intent):
    """Objects of category `first` go before the others (watched at each pick)."""

    first: str = "banana"

    def __post_init__(self) -> None:
        self.name = self.name or f"the {self.first} first"
        self._said = False
        self._reminded = 0
        self.placed: list[str] = []

    def reset(self) -> None:
        self._said = False
        self._reminded = 0
        self.placed = []

    def watch(self, op: "SimulatedOperator", t: float, instruction: str, stopped: bool) -> list[str] | None:
        self._track_placements(op)
        if op.finishing:  # the agent thinks it is done: name what is still out
            from sim.tasks import inside

            objs = op.objects()
            boxes = [c for c in objs if c.attributes.get("container") and c.category != "cabinet"]
            left = [o for o in objs if o.attributes.get("group") == "fruit" and not any(inside(o, b) for b in boxes)]
            if left and self._reminded < 3:
                self._reminded += 1
                return [op.pick(MISSING).format(c=left[0].category)]
            return None
        m = re.match(r"pick up the (.+)$", instruction)
        if not m or self._said:
            return None
        objs = match_objects(m[1], op.objects())
        pending_first = [o for o in op.objects() if o.category == self.first and op.moved(o) is False]
        if objs and objs[0].category != self.first and pending_first:
            self._said = True
            return [op.pick(ORDER).format(a=self.first, b=objs[0].category)]
        return None

    def _track_placements(self, op: "SimulatedOperator") -> None:
        """Which categories have landed in a container, in order (what the operator sees)."""
        from sim.tasks import inside

        objs = op.objects()
        containers = [c for c in objs if c.attributes.get("container") and c.category != "cabinet"]
        for o in objs:
            if o.attributes.get("graspable") and o.category not in self.placed and op.moved(o) \
                    and any(inside(o, c) for c in containers):
                self.placed.append(o.category)


@dataclass
class OneOff(Intent):
    """This time only, what is placed goes in `container`: it says so, and that it is an exception."""

    container: str = "plate"

    def __post_init__(self) -> None:
        self.name = self.name or f"just this once, the {self.container}"
        self._said = False

    def reset(self) -> None:
        self._said = False

    def watch(self, op: "SimulatedOperator", t: float, instruction: str, stopped: bool) -> list[str] | None:
        m = re.match(r"put it (?:in|on) the (.+)$", instruction)
        target = match_objects(m[1], op.objects()) if m else []
        if self._said or op.held() is None or not target or target[0].category == self.container:
            return None
        self._said = True
        return [op.pick(ONE_OFF).format(t=self.container)]


@dataclass
class InsteadThenSkip(Intent):
    """Sends what is carried to `container` instead, then changes its mind and skips it: the episode fails."""

    container: str = "basket"

    def __post_init__(self) -> None:
        self.name = self.name or f"the {self.container} instead, then skip"
        self._state = "watch"

    def reset(self) -> None:
        self._state = "watch"

    def watch(self, op: "SimulatedOperator", t: float, instruction: str, stopped: bool) -> list[str] | None:
        m = re.match(r"put it (?:in|on) the (.+)$", instruction)
        target = match_objects(m[1], op.objects()) if m else []
        if not target or op.held() is None:
            return None
        if self._state == "watch" and target[0].category != self.container:
            self._state = "instead"
            return [op.pick(WRONG_TARGET).format(t=self.container)]
        if self._state == "instead" and target[0].category == self.container:
            self._state = "skipped"
            return [op.pick(SKIP)]
        return None


@dataclass
class LateNudge(Intent):
    """Nudges the gripper once after it has closed on an object of `category` and is lifting it
    (a correction of the path, nothing about how to grasp)."""

    category: str = "block"

    def __post_init__(self) -> None:
        self.name = self.name or f"a nudge while lifting the {self.category}"
        self._state = "watch"

    def reset(self) -> None:
        self._state = "watch"

    def watch(self, op: "SimulatedOperator", t: float, instruction: str, stopped: bool) -> list[str] | None:
        held = op.held()
        lifting = instruction.startswith("pick up") and held is not None and held.category == self.category
        if self._state == "watch" and lifting and not stopped:
            self._state = "stopping"
            return [op.pick(STOP)]
        if self._state == "stopping" and stopped:
            self._state = "nudged"
            return [op.pick(LATE_NUDGE)]
        if self._state == "nudged" and stopped and op.settled():
            self._state = "done"
            return [op.pick(RESUME)]
        return None


@dataclass
class OperatorConfig:
    seed: int = 0
    noise: float = 0.0  # probability of a vague amount, a typo or filler words in an utterance
    reaction_s: tuple[float, float] = (0.25, 0.5)
    stop_reaction_s: tuple[float, float] = (0.1, 0.2)
    viewpoint: str = "robot"  # the words it uses for left/right: "robot" or "facing" (stands opposite)
    confirm: bool = True  # says "good" when the task is done and it is happy
    silent: bool = False  # watches (e.g. the order things are put away) but says nothing: autonomous evaluation


@dataclass
class SimulatedOperator:
    """Watch -> decide -> speak (with a delay). Call `observe` once per control tick."""

    robot: Any  # a SimArm (privileged state)
    intents: list[Intent] = field(default_factory=list)
    config: OperatorConfig = field(default_factory=OperatorConfig)

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(self.config.seed + 104729)
        self.finishing = False  # set by the loop when the agent says it is done
        self._start = {o.name: o.position.copy() for o in self.robot.scene_objects()}
        self._last_ee: list[np.ndarray] = []
        self.said: list[tuple[float, str]] = []
        self._busy_until = -1.0
        for i in self.intents:
            i.reset()

    # ----- what it can see -----
    def objects(self) -> list[SceneObject]:
        return self.robot.scene_objects()

    def ee(self) -> np.ndarray:
        return np.asarray(self.robot.get_observation()["observation.state"][:3], float)

    def held(self) -> SceneObject | None:
        ee = self.ee()
        near = [o for o in self.objects() if o.attributes.get("graspable") and o.position[2] > 0.03
                and np.linalg.norm(o.position[:2] - ee[:2]) < 0.1]
        return near[0] if near else None

    def moved(self, o: SceneObject) -> bool:
        start = self._start.get(o.name)
        return start is not None and float(np.linalg.norm(o.position - start)) > 0.03

    def xy_speed(self) -> float:
        """Sideways speed of the gripper over the last two ticks, m/s."""
        if len(self._last_ee) < 3:
            return float("inf")
        return float(np.linalg.norm(self._last_ee[-1][:2] - self._last_ee[-3][:2])) / (2 * self.robot.control_dt)

    def settled(self) -> bool:
        if len(self._last_ee) < 4:
            return False
        pts = np.asarray(self._last_ee[-4:])
        return float(np.max(np.linalg.norm(pts - pts[-1], axis=1))) < 0.002

    # ----- how it speaks -----
    def pick(self, options: tuple[str, ...]) -> str:
        return options[int(self.rng.integers(len(options)))]

    def nudge(self, err_xy: np.ndarray) -> str:
        """Say how to move the gripper by `err_xy` (robot base frame), the way a person would."""
        words = DIRS_ROBOT if self.config.viewpoint == "robot" else DIRS_FACING
        parts = []
        for axis in (1, 0):  # left/right first: people say that first
            v = float(err_xy[axis])
            if abs(v) < 0.006:
                continue
            key = (0, int(np.sign(v))) if axis == 1 else (int(np.sign(v)), 0)
            parts.append((abs(v), words[key]))
        if not parts:
            return self.pick(("that's fine", "ok good"))
        vague = self.rng.random() < self.config.noise
        out = []
        for dist, direction in parts:
            if vague:
                out.append(self.pick(NUDGE_VAGUE).format(dir=direction))
            else:
                cm = max(1, int(round(dist * 100)))
                out.append(self.pick(NUDGE_EXACT).format(d=f"{cm} cm", dir=direction))
        return " and ".join(out) if len(out) == 1 or not vague else out[0]

    def roughen(self, text: str) -> str:
        """With probability `noise`: a slip of the keyboard or some filler, as people type."""
        if self.rng.random() >= self.config.noise:
            return text
        words = text.split()
        long = [i for i, w in enumerate(words) if len(w) >= 5 and w.isalpha()]
        if long and self.rng.random() < 0.5:
            i = long[int(self.rng.integers(len(long)))]
            w = words[i]
            j = int(self.rng.integers(1, len(w) - 1))
            words[i] = w[:j - 1] + w[j] + w[j - 1] + w[j + 1:]  # two letters swapped
            return " ".join(words)
        return self.pick(FILLER).format(text)

    # ----- the tick -----
    def observe(self, t: float, instruction: str, stopped: bool) -> list[tuple[float, str]]:
        """Utterances to deliver, each with the episode time it should arrive at."""
        self._last_ee.append(self.ee())
        self._last_ee = self._last_ee[-8:]
        if t < self._busy_until:
            return []
        out: list[tuple[float, str]] = []
        for intent in self.intents:
            said = intent.watch(self, t, instruction, stopped)
            if said and self.config.silent:
                continue
            if said:
                at = t
                for text in said:
                    urgent = text in STOP  # people blurt "stop" faster than they phrase a fix
                    at += float(self.rng.uniform(*(self.config.stop_reaction_s if urgent else self.config.reaction_s)))
                    text = self.roughen(text)
                    out.append((at, text))
                    self.said.append((at, text))
                self._busy_until = at + 0.05
                break
        return out

    def satisfied(self) -> bool:
        return all(i.satisfied(self) for i in self.intents)

    def closing_words(self, success: bool) -> str | None:
        if self.config.confirm and success and self.satisfied():
            return self.pick(CONFIRM)
        return None


__all__ = ["Alias", "GraspPoint", "InsteadThenSkip", "Intent", "LateNudge", "OneOff", "OperatorConfig", "Order",
           "PreferredContainer", "SimulatedOperator"]
