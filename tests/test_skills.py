"""Skill library: instruction <-> call round trips, parameters, and real primitives."""
from __future__ import annotations

import math

import numpy as np
import pytest

from robot.describe import AmbiguousObjectError, UnknownObjectError, resolve
from skills import SkillCall, SkillContext, SkillError, default_library
from skills.base import set_param
from skills.perception import privileged_objects


@pytest.mark.parametrize("text, skill, args", [
    ("pick up the red block", "pick", {"object": "red block"}),
    ("Grab the red block!", "pick", {"object": "red block"}),
    ("put it in the blue bowl", "place", {"target": "blue bowl"}),
    ("place it on the yellow block", "place", {"target": "yellow block"}),
    ("push the green block 10 cm forward", "push", {"object": "green block", "direction": "forward", "distance_m": 0.1}),
    ("move 5 cm to the left", "move", {"direction": "left", "distance_m": 0.05}),
    ("move up", "move", {"direction": "up", "distance_m": 0.03}),
    ("rotate the gripper 45 degrees clockwise", "rotate", {"angle_rad": -math.pi / 4}),
    ("open the gripper", "open_gripper", {}),
    ("close the gripper", "close_gripper", {}),
    ("open the drawer", "open_drawer", {"object": "drawer"}),
    ("close the drawer", "close_drawer", {"object": "drawer"}),
    ("go home", "go_home", {}),
])
def test_parse_and_render_round_trip(text: str, skill: str, args: dict) -> None:
    lib = default_library()
    call = lib.parse(text)
    assert call is not None and call.skill == skill
    for k, v in args.items():
        assert call.args[k] == pytest.approx(v) if isinstance(v, float) else call.args[k] == v
    again = lib.parse(lib.render(call))
    assert again is not None and again.skill == call.skill
    assert {k: (round(v, 6) if isinstance(v, float) else v) for k, v in again.args.items()} == \
           {k: (round(v, 6) if isinstance(v, float) else v) for k, v in call.args.items()}


def test_unknown_instruction_and_skill() -> None:
    lib = default_library()
    assert lib.parse("dance the tango") is None
    with pytest.raises(SkillError, match="unknown skill 'fly'"):
        lib.get("fly")


def test_parameters_are_typed() -> None:
    p = default_library().get("pick").default_params({"lift_height": 0.2, "grasp_offset": [0, 0.02, 0]})
    assert p.lift_height == 0.2 and p.grasp_offset == (0.0, 0.02, 0.0)
    with pytest.raises(SkillError, match="unknown parameter 'wingspan'"):
        set_param(p, "wingspan", 1.0)
    with pytest.raises(SkillError, match="needs 3 numbers"):
        set_param(p, "grasp_offset", [1.0])
    with pytest.raises(SkillError, match="finite"):
        set_param(p, "lift_height", float("nan"))


def _run(arm, call: SkillCall, ctx: SkillContext, offset=None, **params):
    """Drive one skill to its end on the arm, optionally with a live target offset and parameters."""
    lib = default_library()
    skill = lib.get(call.skill)
    ctx.reset_for_call(skill.default_params(params))
    if offset is not None:
        ctx.offset = offset
    gen = skill.run(arm, call, ctx)
    while True:
        ctx.observation = arm.get_observation()
        try:
            a = next(gen)
        except StopIteration as e:
            return e.value
        ctx.last_command = arm.send_action(a)


def test_pick_lifts_the_block_and_place_releases_it(pybullet_arm) -> None:
    ctx = SkillContext(objects=privileged_objects(pybullet_arm), dt=pybullet_arm.control_dt)
    objs = pybullet_arm.scene_objects()
    block = next(o for o in objs if o.category == "block")
    bowl = next(o for o in objs if o.category == "bowl")
    out = _run(pybullet_arm, SkillCall("pick", {"object": block.description}), ctx)
    assert out.ok, out.message
    lifted = next(o for o in pybullet_arm.scene_objects() if o.name == block.name)
    assert lifted.position[2] > block.position[2] + 0.08
    out = _run(pybullet_arm, SkillCall("place", {"target": bowl.description}), ctx)
    assert out.ok
    from sim.tasks import inside

    objs = pybullet_arm.scene_objects()
    assert inside(next(o for o in objs if o.name == block.name), next(o for o in objs if o.name == bowl.name))


def test_pick_of_unknown_object_fails_cleanly(pybullet_arm) -> None:
    ctx = SkillContext(objects=privileged_objects(pybullet_arm), dt=pybullet_arm.control_dt)
    before = pybullet_arm.get_observation()["observation.state"][:3].copy()
    out = _run(pybullet_arm, SkillCall("pick", {"object": "unicorn"}), ctx)
    assert not out.ok and "unicorn" in out.message
    assert np.allclose(pybullet_arm.get_observation()["observation.state"][:3], before, atol=0.003)


def test_live_offset_shifts_the_target(pybullet_arm) -> None:
    ctx = SkillContext(objects=privileged_objects(pybullet_arm), dt=pybullet_arm.control_dt)
    ctx.observation = pybullet_arm.get_observation()
    start = ctx.observation["observation.state"][:3].astype(float)
    out = _run(pybullet_arm, SkillCall("move", {"direction": "forward", "distance_m": 0.05}), ctx, np.array([0.0, 0.04, 0.0]))
    assert out.ok
    end = pybullet_arm.get_observation()["observation.state"][:3]
    assert np.allclose(end - start, [0.05, 0.04, 0.0], atol=0.005)


def test_describe_resolves_names_groups_and_errors(pybullet_arm) -> None:
    objs = pybullet_arm.scene_objects()
    block = next(o for o in objs if o.category == "block")
    assert resolve(block.description, objs).name == block.name
    with pytest.raises(AmbiguousObjectError, match="could mean"):
        resolve("block", objs)
    with pytest.raises(UnknownObjectError, match="unknown word: unicorn"):
        resolve("the unicorn", objs)
