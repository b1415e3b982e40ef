"""Arm primitives: pick, place, push, move, rotate, gripper, drawers, home.

Every primitive is a generator of absolute end-effector targets. Targets are
recomputed each tick from the object pose seen at the start, the parameters, and
the live `ctx.offset` / `ctx.yaw_offset` / `ctx.speed_scale`, so a correction
applied between two ticks shows in the very next action.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, ClassVar

import numpy as np

from robot.describe import AmbiguousObjectError, UnknownObjectError, resolve
from robot.geometry import down_quat, quat_angle, quat_from_yaw, quat_slerp, rotate, wrap_angle, yaw_of
from robot.lexicon import Adjustment
from robot.robot import Robot
from robot.types import SceneObject, ee_pose_from_observation, gripper_from_observation
from robot.vocab import CATEGORY_WORDS, DIRECTION_VECTORS
from skills.base import ActionGen, Skill, SkillCall, SkillContext, SkillOutcome, param
from skills.text import format_distance

HOME = np.array([0.35, 0.0, 0.35])
FINGER_SPAN = 0.08  # finger opening at gripper 0 (open), m
FINGERTIP_BELOW_EE = 0.012  # the fingertips reach this far below the end-effector point, m
OPEN, CLOSED = 0.0, 1.0
GRIP_OPEN, GRIP_ON_NOTHING = 0.05, 0.97  # gripper readings: below, open; above, closed on nothing
REACH_TOL = 0.02  # a move that ends this close to its goal got there (the rest is contact or orientation), m
LIFT_SHARE = 0.5  # an object held in the hand rises at least this share of the lift
HOLD_MARGIN = 0.02  # a held object's bounding sphere, grown by this, contains the fingertips, m


# ----- motion helpers -----
def fold_yaw(yaw: float, symmetry: float = 0.0) -> float:
    """Equivalent gripper yaw nearest zero (a parallel gripper is symmetric under pi)."""
    if symmetry > 0:
        yaw = yaw - symmetry * round(yaw / symmetry)
    yaw = wrap_angle(yaw)
    if yaw > math.pi / 2:
        yaw -= math.pi
    elif yaw < -math.pi / 2:
        yaw += math.pi
    return yaw


def _measured(ctx: SkillContext) -> tuple[np.ndarray, np.ndarray, float]:
    pose = ee_pose_from_observation(ctx.observation)
    return pose.position, pose.quat_xyzw, gripper_from_observation(ctx.observation)


def _commanded(ctx: SkillContext) -> tuple[np.ndarray, np.ndarray, float]:
    if ctx.last_command is not None:
        c = ctx.last_command
        return np.asarray(c["ee.pos"], float), np.asarray(c["ee.quat_xyzw"], float), float(c["gripper"])
    return _measured(ctx)


def _action(ctx: SkillContext, pos: np.ndarray, quat: np.ndarray, gripper: float) -> dict[str, Any]:
    a = {"ee.pos": np.asarray(pos, float).copy(), "ee.quat_xyzw": np.asarray(quat, float).copy(), "gripper": float(gripper)}
    ctx.last_command = a
    return a


def move_to(
    ctx: SkillContext,
    target: Callable[[], np.ndarray] | np.ndarray,
    yaw: Callable[[], float] | float | None,
    gripper: float,
    speed: float,
    tol: float = 0.005,
    max_s: float = 8.0,
) -> ActionGen:
    """Move the commanded pose toward `target` (+ live offset) at `speed` m/s."""
    ticks = 0
    limit = int(max_s / ctx.dt)
    while True:
        goal = (target() if callable(target) else np.asarray(target, float)) + ctx.offset
        cmd_pos, cmd_quat, _ = _commanded(ctx)
        y = yaw() if callable(yaw) else yaw
        goal_quat = down_quat(y + ctx.yaw_offset) if y is not None else cmd_quat
        step = max(speed * ctx.speed_scale, 0.005) * ctx.dt
        if not (np.all(np.isfinite(goal)) and np.all(np.isfinite(goal_quat)) and math.isfinite(step)):
            # a non-finite offset/speed is never commanded (it would make every tick a hold): the move ends
            return SkillOutcome(False, "the target is not a finite number; not moving there", {"nonfinite": True})
        d = goal - cmd_pos
        n = float(np.linalg.norm(d))
        new_pos = goal if n <= step else cmd_pos + d * (step / n)
        ang = quat_angle(cmd_quat, goal_quat)
        max_rot = 2.0 * ctx.speed_scale * ctx.dt
        new_quat = goal_quat if ang <= max_rot else quat_slerp(cmd_quat, goal_quat, max_rot / ang)
        yield _action(ctx, new_pos, new_quat, gripper)
        ticks += 1
        meas, mq, _ = _measured(ctx)
        arrived = n <= step and np.linalg.norm(meas - goal) < tol and quat_angle(mq, goal_quat) < 0.05
        if arrived or ticks >= limit:
            return SkillOutcome(bool(arrived), "" if arrived else "did not reach the target", {"error": meas - goal})


def got_there(out: SkillOutcome, horizontally: bool = False) -> bool:
    """A move that arrived, or ended within REACH_TOL of its goal (in x and y only, if `horizontally`)."""
    if out.data.get("nonfinite"):
        return False
    err = np.asarray(out.data.get("error", np.zeros(3)), float)
    return out.ok or float(np.linalg.norm(err[:2] if horizontally else err)) < REACH_TOL


def wait(ctx: SkillContext, seconds: float, gripper: float) -> ActionGen:
    for _ in range(max(1, int(round(seconds / ctx.dt)))):
        pos, quat, _ = _commanded(ctx)
        yield _action(ctx, pos, quat, gripper)
    return SkillOutcome(True)


def rise_if_low(ctx: SkillContext, z: float, gripper: float, speed: float) -> ActionGen:
    pos, _, _ = _commanded(ctx)
    if pos[2] < z - 0.02:
        start = pos.copy()
        yield from move_to(ctx, lambda: np.array([start[0], start[1], z]), None, gripper, speed, tol=0.02)
    return SkillOutcome(True)


def _find(ctx: SkillContext, description: str) -> SceneObject | SkillOutcome:
    try:
        return resolve(description, ctx.objects())
    except (UnknownObjectError, AmbiguousObjectError) as e:
        return SkillOutcome(False, str(e))


def _failed(ctx: SkillContext, phase: str, message: str) -> SkillOutcome:
    ctx.phase = phase  # the step is recorded with the phase that failed
    return SkillOutcome(False, message, phase=phase)


def _now(ctx: SkillContext, obj: SceneObject) -> SceneObject | None:
    """`obj` as perception sees it now (None when it is not seen)."""
    return next((o for o in ctx.objects() if o.name == obj.name), None)


def near_fingertips(obj: SceneObject, ee: np.ndarray) -> bool:
    """Are the fingertips (the end-effector point) within the object's bounding sphere, grown by HOLD_MARGIN?"""
    centre = obj.position + rotate(obj.quat_xyzw, np.array([0.0, 0.0, float(obj.size[2]) / 2]))
    return float(np.linalg.norm(ee - centre)) <= 0.5 * float(np.linalg.norm(obj.size)) + HOLD_MARGIN


def held_object(observation: dict[str, Any], objects: list[SceneObject]) -> SceneObject | None:
    """The object between the fingers, judged from the gripper state and object poses."""
    state = observation.get("observation.state")
    if state is None:
        return None
    ee, grip = np.asarray(state[:3], float), float(state[7])
    if not GRIP_OPEN < grip < GRIP_ON_NOTHING:
        return None
    for o in objects:
        if o.attributes.get("graspable") and o.position[2] > 0.02:
            centre = o.position + np.array([0.0, 0.0, float(o.attributes.get("grasp_height", 0.02))])
            if np.linalg.norm(centre - ee) < 0.04:
                return o
    return None


def in_hand(ctx: SkillContext) -> SceneObject | None:
    """What the fingers hold now: they are closed on something, and it is the picked object (if seen, still
    at the fingertips) or, with nothing picked, an object between them."""
    ee, _, g = _measured(ctx)
    if not GRIP_OPEN < g < GRIP_ON_NOTHING:
        return None
    if ctx.held is None:
        return held_object(ctx.observation, ctx.objects())
    now = _now(ctx, ctx.held)
    if now is None:  # perception lost it: the finger gap is all there is to go on
        return ctx.held
    return now if near_fingertips(now, ee) else None


def object_yaw(obj: SceneObject) -> float:
    return yaw_of(obj.quat_xyzw)


def object_frame_offset(obj: SceneObject, offset: Any) -> np.ndarray:
    """An offset given in the object's frame (yaw only), expressed in the base frame."""
    return rotate(quat_from_yaw(object_yaw(obj)), np.asarray(offset, float))


# ----- skills -----
class Pick(Skill):
    name: ClassVar[str] = "pick"
    templates = ("pick up the {object}", "pick the {object} up", "grasp the {object}", "grab the {object}",
                 "take the {object}", "pick the {object}", "get the {object}")
    slots = ("object",)
    primary_slot = "object"
    role = "acquire"
    phases = ("approach", "descend", "grasp", "lift")
    contact_phase = "grasp"
    offset_param = "grasp_offset"  # a nudge while picking is remembered where the object is grasped
    yaw_param = "grasp_yaw"
    adjustments = (
        Adjustment("grasp_yaw", (
            r"{GRASP} {OBJ}(?:up )?(?:from|by|on|at) (?:the|its|one) sides?(?: instead)?",
            r"{GRASP} {OBJ}(?:up )?(?:sideways|side on|from the side instead)",
            r"(?:approach|come at) {OBJ}from (?:the|its) sides?"), amount=math.pi / 2),
        Adjustment("lift_height", (
            r"(?:lift|raise|carry) {OBJ}(?:up )?{MAG}(?:higher|more|further up|higher up) {CUE}",
            r"carry {OBJ}{MAG}(?:higher|higher up)"), amount=0.05, scale="magnitude"),
        Adjustment("lift_height", (
            r"(?:lift|raise|carry) {OBJ}{MAG}(?:less|less high|lower) {CUE}",
            r"carry {OBJ}{MAG}lower"), amount=-0.05, scale="magnitude"),
        Adjustment("approach_height", (
            r"(?:approach|come in|come down|come|descend) {OBJ}from {MAG}(?:above|higher up|higher|the top|on top|"
            r"further up|over the top|up high)",
            r"approach {OBJ}{MAG}(?:higher|higher up|from higher up)",
            r"(?:start|begin) (?:the approach |your approach |the descent )?{MAG}(?:higher|higher up)"),
            amount=0.05, scale="magnitude"),
        Adjustment("approach_height", (
            r"approach {OBJ}{MAG}(?:lower|lower down|from lower|from lower down)",), amount=-0.05, scale="magnitude"),
        Adjustment("grasp_offset", (
            r"{GRASP} {OBJ}(?:up )?{MAG}(?:lower|lower down|further down|closer to the bottom|nearer the bottom|"
            r"by the bottom|at the bottom)",), amount=(0.0, 0.0, -0.01), scale="magnitude"),
        Adjustment("grasp_offset", (
            r"{GRASP} {OBJ}(?:up )?{MAG}(?:higher|higher up|further up|closer to the top|nearer the top|by the top|"
            r"at the top)",), amount=(0.0, 0.0, 0.01), scale="magnitude"),
    )

    @dataclass
    class Params:
        approach_height: float = param(0.10, 0.0, 0.3)  # above the grasp point, m
        grasp_offset: tuple[float, float, float] = param((0.0, 0.0, 0.0), -0.2, 0.2)  # object frame, m
        grasp_yaw: float = param(0.0, -2 * math.pi, 2 * math.pi)  # added to the object-aligned yaw, rad
        lift_height: float = param(0.15, 0.0, 0.4)  # above the grasp point, m
        travel_height: float = param(0.25, 0.05, 0.6)  # ee height for moves across the table, m
        speed: float = param(0.35, 0.01, 1.0)  # m/s
        descend_speed: float = param(0.15, 0.01, 0.5)  # m/s
        close_time: float = param(0.5, 0.0, 3.0)  # s

    def run(self, robot: Robot, call: SkillCall, ctx: SkillContext) -> ActionGen:
        p = ctx.params
        obj = _find(ctx, call.args.get("object", ""))
        if isinstance(obj, SkillOutcome):
            return obj
        if not obj.attributes.get("graspable", False):
            return SkillOutcome(False, f"the {obj.description} cannot be picked up")
        base_yaw = fold_yaw(object_yaw(obj), obj.attributes.get("yaw_symmetry", 0.0))

        def yaw() -> float:  # read live: a correction may change grasp_yaw mid-skill
            return base_yaw + p.grasp_yaw

        grasp_h = float(obj.attributes.get("grasp_height", obj.size[2] / 2))

        def grasp_point() -> np.ndarray:
            return obj.position + object_frame_offset(obj, p.grasp_offset) + np.array([0.0, 0.0, grasp_h])

        ctx.phase = "approach"
        yield from rise_if_low(ctx, p.travel_height, OPEN, p.speed)
        out = yield from move_to(ctx, lambda: grasp_point() + [0, 0, p.approach_height], yaw, OPEN, p.speed, tol=0.01)
        if not got_there(out):
            return _failed(ctx, "approach", f"could not reach the {obj.description}")
        ctx.phase = "descend"
        # A descent stopped short (a finger on a rim or on the object) may still grasp: the check after the lift decides.
        descended = yield from move_to(ctx, grasp_point, yaw, OPEN, p.descend_speed, tol=0.004)
        ctx.phase = "grasp"
        yield from wait(ctx, p.close_time, CLOSED)
        closed_on = _now(ctx, obj)
        ctx.phase = "lift"
        yield from move_to(ctx, lambda: grasp_point() + [0, 0, p.lift_height], yaw, CLOSED, p.speed, tol=0.02)
        if not self._lifted(ctx, closed_on, p.lift_height):
            ctx.held = None
            if not got_there(descended, horizontally=True):
                return _failed(ctx, "descend", f"could not reach the {obj.description}")
            return _failed(ctx, "grasp", f"missed the {obj.description}")
        ctx.held = obj
        return SkillOutcome(True, f"holding the {obj.description}", {"object": obj.name})

    @staticmethod
    def _lifted(ctx: SkillContext, closed_on: SceneObject | None, lift_height: float) -> bool:
        """The fingers hold something, and the object rose with the hand and sits at the fingertips."""
        ee, _, g = _measured(ctx)
        if g > GRIP_ON_NOTHING:
            return False
        now = _now(ctx, closed_on) if closed_on is not None else None
        if closed_on is None or now is None:  # perception does not see it: the finger gap is all there is
            return True
        rose = float(now.position[2] - closed_on.position[2]) >= LIFT_SHARE * lift_height
        return rose and near_fingertips(now, ee)


def _preposition(target: str) -> str:
    return "on" if any(CATEGORY_WORDS.get(w) in ("block", "plate") for w in target.split()) else "in"


def place_point(target: SceneObject) -> np.ndarray | str:
    """Where a held object's bottom should go on or in `target` (or why it cannot)."""
    a = target.attributes
    if target.category == "cabinet":
        if target.state.get("drawer_open", 0.0) < 0.08:
            return "the drawer is closed"
        return np.asarray(target.parts["drawer_opening"], float)
    if a.get("container"):
        return target.position + np.array([0.0, 0.0, float(a.get("floor", 0.0))])
    return target.position + np.array([0.0, 0.0, float(target.size[2])])


class Place(Skill):
    name: ClassVar[str] = "place"
    templates = ("put it in the {target}", "put it on the {target}", "place it in the {target}",
                 "place it on the {target}", "drop it in the {target}", "drop it on the {target}",
                 "place it into the {target}", "put it into the {target}", "place it on top of the {target}")
    slots = ("target",)
    primary_slot = "target"
    role = "deliver"
    phases = ("carry", "descend", "release", "retreat")
    contact_phase = "release"
    offset_param = "offset"  # a nudge while placing is remembered where things go on/in the target
    offset_verbs = ("place", "set", "drop", "release")  # "place it a bit to the left" -> offset
    adjustments = (
        Adjustment("release_height", (
            r"{RELEASE} {OBJ}(?:go )?(?:from )?{MAG}(?:higher|higher up|further up|above)",
            r"(?:place|put|set) {OBJ}(?:down )?from {MAG}(?:higher|higher up|further up|above)"),
            amount=0.03, scale="magnitude"),
        Adjustment("release_height", (
            r"(?:place|put|set|lay) {OBJ}(?:down )?(?:more )?(?:gently|softly|carefully|gentler|softer|delicately)",
            r"(?:go |move |get |come )?{MAG}(?:lower|further down|down|closer) before (?:letting go|letting it go|"
            r"releasing|you let go|you release|dropping|you drop|opening|you open)(?: it| of it)?",
            r"{RELEASE} {OBJ}(?:go )?{MAG}(?:lower|lower down|(?:closer to|nearer) the (?:table|surface))",
            r"(?:do not|never) drop {OBJ}from (?:so|that|#too) high"), amount=0.005, mode="value"),
    )

    @dataclass
    class Params:
        offset: tuple[float, float, float] = param((0.0, 0.0, 0.0), -0.25, 0.25)  # target frame, m
        release_height: float = param(0.02, 0.0, 0.2)  # gap between the held object's bottom and the surface, m
        travel_height: float = param(0.25, 0.05, 0.6)
        speed: float = param(0.35, 0.01, 1.0)
        descend_speed: float = param(0.15, 0.01, 0.5)
        open_time: float = param(0.4, 0.0, 3.0)
        release_opening: float = param(0.025, 0.0, 0.08)  # how much wider than the held object the fingers open, m
        rim_clearance: float = param(0.01, 0.0, 0.1)  # fingertips stay this far above a container's rim, m

    def render(self, call: SkillCall) -> str:
        t = call.args.get("target", "")
        return f"put it {_preposition(t)} the {t}"

    def run(self, robot: Robot, call: SkillCall, ctx: SkillContext) -> ActionGen:
        p = ctx.params
        target = _find(ctx, call.args.get("target", ""))
        if isinstance(target, SkillOutcome):
            return target
        point = place_point(target)
        if isinstance(point, str):
            return SkillOutcome(False, point)
        held = in_hand(ctx)
        if held is None:
            ctx.held = None
            return SkillOutcome(False, f"I am not holding anything to put {_preposition(target.description)} "
                                       f"the {target.description}")
        grasp_h = float(held.attributes.get("grasp_height", 0.02))
        release = point + object_frame_offset(target, p.offset) + np.array([0.0, 0.0, grasp_h + p.release_height])
        if "rim_height" in target.attributes:  # keep the fingertips above the rim and let it drop in
            rim = float(target.position[2]) + float(target.attributes["rim_height"])
            release[2] = max(release[2], rim + FINGERTIP_BELOW_EE + p.rim_clearance)
        _, q, _ = _commanded(ctx)
        yaw = yaw_of(q)
        if target.category == "block":  # line edges up when stacking
            yaw = yaw + fold_yaw(object_yaw(target) - yaw, math.pi / 2)
        above = np.array([release[0], release[1], max(p.travel_height, release[2] + 0.05)])
        dropped = f"dropped the {held.description} on the way to the {target.description}"
        ctx.phase = "carry"
        yield from rise_if_low(ctx, p.travel_height, CLOSED, p.speed)
        out = yield from move_to(ctx, above, yaw, CLOSED, p.speed, tol=0.015)
        if in_hand(ctx) is None:
            ctx.held = None
            return _failed(ctx, "carry", dropped)
        if not got_there(out):
            return _failed(ctx, "carry", f"could not reach the {target.description}")
        ctx.phase = "descend"
        yield from move_to(ctx, release, yaw, CLOSED, p.descend_speed, tol=0.006)
        if in_hand(ctx) is None:
            ctx.held = None
            return _failed(ctx, "descend", dropped)
        # Open just enough to let go: fully open fingers would hit a container's wall.
        _, _, g_held = _measured(ctx)
        let_go = max(OPEN, g_held - p.release_opening / FINGER_SPAN)
        ctx.phase = "release"
        yield from wait(ctx, p.open_time, let_go)
        ctx.held = None
        ctx.phase = "retreat"
        yield from move_to(ctx, above, yaw, let_go, p.speed, tol=0.03)
        return SkillOutcome(True, f"released over the {target.description}")


class Push(Skill):
    name: ClassVar[str] = "push"
    templates = ("push the {object} {distance} {direction}", "push the {object} {direction} by {distance}",
                 "push the {object} {direction}", "slide the {object} {direction}")
    slots = ("object", "direction", "distance")
    default_args: ClassVar[dict[str, Any]] = {"distance_m": 0.05}
    primary_slot = "object"
    phases = ("approach", "push", "retreat")
    contact_phase = "push"

    @dataclass
    class Params:
        height: float = param(0.015, 0.0, 0.2)  # contact height above the table, m
        standoff: float = param(0.03, 0.0, 0.2)  # start this far behind the object's edge, m
        travel_height: float = param(0.25, 0.05, 0.6)
        speed: float = param(0.3, 0.01, 1.0)
        push_speed: float = param(0.08, 0.01, 0.5)

    def run(self, robot: Robot, call: SkillCall, ctx: SkillContext) -> ActionGen:
        p = ctx.params
        obj = _find(ctx, call.args.get("object", ""))
        if isinstance(obj, SkillOutcome):
            return obj
        d = np.asarray(DIRECTION_VECTORS.get(call.args.get("direction", ""), (0, 0, 0)), float)
        d[2] = 0.0
        if np.linalg.norm(d) < 0.5:
            return SkillOutcome(False, "push needs a direction on the table (left, right, forward, back)")
        dist = float(call.args.get("distance_m", 0.05))
        radius = 0.5 * float(np.hypot(obj.size[0], obj.size[1]))
        start = obj.position + np.array([0, 0, p.height]) - d * (radius + p.standoff)
        end = start + d * (dist + p.standoff)
        yaw = math.atan2(d[1], d[0]) + math.pi / 2  # fingers across the push direction
        yaw = fold_yaw(yaw)
        ctx.phase = "approach"
        yield from rise_if_low(ctx, p.travel_height, CLOSED, p.speed)
        yield from move_to(ctx, start + [0, 0, p.travel_height - start[2]], yaw, CLOSED, p.speed, tol=0.015)
        yield from move_to(ctx, start, yaw, CLOSED, p.speed / 2, tol=0.006)
        ctx.phase = "push"
        yield from move_to(ctx, end, yaw, CLOSED, p.push_speed, tol=0.01)
        ctx.phase = "retreat"
        yield from move_to(ctx, end + [0, 0, 0.1], yaw, CLOSED, p.speed, tol=0.02)
        return SkillOutcome(True, f"pushed the {obj.description} {format_distance(dist)} {call.args['direction']}")


class Move(Skill):
    name: ClassVar[str] = "move"
    templates = ("move {distance} {direction}", "move {direction} by {distance}", "go {distance} {direction}",
                 "move {direction}", "go {direction}")
    slots = ("direction", "distance")
    default_args: ClassVar[dict[str, Any]] = {"distance_m": 0.03}
    role = "nudge"

    @dataclass
    class Params:
        speed: float = param(0.15, 0.01, 1.0)

    def run(self, robot: Robot, call: SkillCall, ctx: SkillContext) -> ActionGen:
        vec = call.args.get("vector")
        if vec is None:
            d = DIRECTION_VECTORS.get(call.args.get("direction", ""))
            if d is None:
                return SkillOutcome(False, f"unknown direction {call.args.get('direction')!r}")
            vec = np.asarray(d, float) * float(call.args.get("distance_m", 0.03))
        pos, q, g = _commanded(ctx)
        goal = pos + np.asarray(vec, float)
        out = yield from move_to(ctx, goal, yaw_of(q), g, ctx.params.speed, tol=0.004, max_s=4.0)
        return SkillOutcome(out.ok, "moved" if out.ok else "could not reach: " + out.message)


class Rotate(Skill):
    name: ClassVar[str] = "rotate"
    templates = ("rotate the gripper {angle} {turn}", "rotate {angle} {turn}", "turn the gripper {angle} {turn}",
                 "rotate the gripper by {angle} {turn}")
    slots = ("angle", "turn")
    role = "turn"

    @dataclass
    class Params:
        speed: float = param(0.15, 0.01, 1.0)

    def run(self, robot: Robot, call: SkillCall, ctx: SkillContext) -> ActionGen:
        pos, q, g = _commanded(ctx)
        yaw = yaw_of(q) + float(call.args.get("angle_rad", 0.0))
        out = yield from move_to(ctx, pos, yaw, g, ctx.params.speed, tol=0.005, max_s=4.0)
        return SkillOutcome(out.ok, "rotated")


class _Gripper(Skill):
    value: ClassVar[float]

    @dataclass
    class Params:
        time: float = param(0.5, 0.0, 3.0)

    def run(self, robot: Robot, call: SkillCall, ctx: SkillContext) -> ActionGen:
        yield from wait(ctx, ctx.params.time, self.value)
        if self.value == OPEN:
            ctx.held = None
        else:
            pos, _, g = _measured(ctx)
            near = [o for o in ctx.objects() if o.attributes.get("graspable")
                    and np.linalg.norm(o.position + [0, 0, o.attributes.get("grasp_height", 0.02)] - pos) < 0.05]
            ctx.held = near[0] if near and g < 0.97 else None
        return SkillOutcome(True, "gripper " + ("open" if self.value == OPEN else "closed"))


class OpenGripper(_Gripper):
    name: ClassVar[str] = "open_gripper"
    templates = ("open the gripper", "open gripper", "release it", "let go")
    role = "release"
    value = OPEN


class CloseGripper(_Gripper):
    name: ClassVar[str] = "close_gripper"
    templates = ("close the gripper", "close gripper")
    role = "grip"
    value = CLOSED


class _Drawer(Skill):
    slots = ("object",)
    default_args: ClassVar[dict[str, Any]] = {"object": "drawer"}
    primary_slot = "object"
    phases = ("approach", "grasp", "pull", "release", "retreat")
    contact_phase = "grasp"
    opening: ClassVar[bool]

    @dataclass
    class Params:
        pull_distance: float = param(0.15, 0.0, 0.4)  # m (opening only)
        pregrasp_gripper: float = param(0.3, 0.0, 1.0)  # partly open: room around the fin, less to hit
        approach_height: float = param(0.10, 0.0, 0.3)
        travel_height: float = param(0.25, 0.05, 0.6)
        speed: float = param(0.3, 0.01, 1.0)
        pull_speed: float = param(0.08, 0.01, 0.5)

    def render(self, call: SkillCall) -> str:
        return f"{'open' if self.opening else 'close'} the {call.args.get('object', 'drawer')}"

    def run(self, robot: Robot, call: SkillCall, ctx: SkillContext) -> ActionGen:
        p = ctx.params
        cab = _find(ctx, call.args.get("object", "drawer"))
        if isinstance(cab, SkillOutcome):
            return cab
        if cab.category != "cabinet" or "handle" not in cab.parts:
            return SkillOutcome(False, f"the {cab.description} has no drawer")
        handle = np.asarray(cab.parts["handle"], float)
        yaw = fold_yaw(object_yaw(cab))  # fingers close across the fin handle (along the cabinet's y)
        out_dir = rotate(quat_from_yaw(object_yaw(cab)), np.array([-1.0, 0.0, 0.0]))
        opened = cab.state.get("drawer_open", 0.0)
        travel = float(p.pull_distance) if self.opening else -opened - 0.005
        ctx.phase = "approach"
        yield from rise_if_low(ctx, p.travel_height, p.pregrasp_gripper, p.speed)
        yield from move_to(ctx, handle + [0, 0, p.approach_height], yaw, p.pregrasp_gripper, p.speed, tol=0.01)
        yield from move_to(ctx, handle, yaw, p.pregrasp_gripper, p.pull_speed * 1.5, tol=0.004)
        ctx.phase = "grasp"
        yield from wait(ctx, 0.5, CLOSED)
        ctx.phase = "pull"
        yield from move_to(ctx, handle + out_dir * travel, yaw, CLOSED, p.pull_speed, tol=0.01, max_s=6.0)
        ctx.phase = "release"
        yield from wait(ctx, 0.3, p.pregrasp_gripper)
        end = handle + out_dir * travel
        ctx.phase = "retreat"
        yield from move_to(ctx, end + [0, 0, p.approach_height], yaw, p.pregrasp_gripper, p.speed, tol=0.02)
        now = next((o for o in ctx.objects() if o.name == cab.name), cab).state.get("drawer_open", 0.0)
        ok = now >= 0.1 if self.opening else now <= 0.02
        verb = "opened" if self.opening else "closed"
        return SkillOutcome(ok, f"drawer {verb} to {now * 100:.0f} cm" if ok else f"drawer not {verb} (at {now * 100:.0f} cm)")


class OpenDrawer(_Drawer):
    name: ClassVar[str] = "open_drawer"
    templates = ("open the {object}", "pull the {object} open", "pull out the {object}")
    role = "open_container"
    opening = True
    adjustments = (
        Adjustment("pull_distance", (
            r"pull {OBJ}(?:out )?{MAG}(?:further|farther|more|harder|wider|out more|out further)(?: out| open)?",
            r"open (?:the drawer|the cabinet|that drawer|this drawer) {MAG}(?:further|farther|more|wider)(?: out)?"),
            amount=0.05, scale="magnitude"),
        Adjustment("pull_distance", (
            r"pull {OBJ}(?:out )?{MAG}less(?: far)?", r"do not pull {OBJ}(?:out )?so far",
            r"open (?:the drawer|the cabinet|that drawer|this drawer) {MAG}less"), amount=-0.05, scale="magnitude"),
        # 0 = open, 1 = closed: "wider" lowers it (pick always opens fully)
        Adjustment("pregrasp_gripper", (
            r"open (?:the gripper |your gripper |the hand |your hand |the fingers |it )?{MAG}(?:wider|more) {CUE}",),
            amount=-0.25),
    )


class CloseDrawer(_Drawer):
    name: ClassVar[str] = "close_drawer"
    templates = ("close the {object}", "shut the {object}", "push the {object} closed")
    role = "close_container"
    opening = False


class GoHome(Skill):
    name: ClassVar[str] = "go_home"
    templates = ("go home", "go to home position", "return home", "go back home")
    role = "home"

    @dataclass
    class Params:
        speed: float = param(0.35, 0.01, 1.0)

    def run(self, robot: Robot, call: SkillCall, ctx: SkillContext) -> ActionGen:
        _, _, g = _commanded(ctx)
        yield from rise_if_low(ctx, HOME[2], g, ctx.params.speed)
        out = yield from move_to(ctx, HOME, 0.0, g, ctx.params.speed, tol=0.01)
        return SkillOutcome(out.ok, "at home")


ARM_SKILLS: tuple[Skill, ...] = (
    Pick(), Place(), Push(), Move(), Rotate(), OpenGripper(), CloseGripper(), OpenDrawer(), CloseDrawer(), GoHome(),
)
