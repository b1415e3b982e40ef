"""The Robot contract and its safety limits, on the real PyBullet arm."""
from __future__ import annotations

import math

import numpy as np
import pytest

from robot import ActionError, NotConnectedError, SafetyLimits, clip_action
from robot.geometry import down_quat, quat_angle
from sim import make_sim_arm


def test_features_are_valid_before_connect() -> None:
    arm = make_sim_arm("pybullet", scene="pick_place", cameras=("front", "wrist"))
    assert not arm.is_connected
    feats = arm.observation_features
    assert feats["observation.state"].shape == (15,)
    assert feats["observation.state"].names[:3] == ("ee.x", "ee.y", "ee.z")
    assert feats["observation.images.front"].shape == (128, 128, 3)
    assert feats["observation.depth.wrist"].dtype == "float32"
    assert set(arm.action_features) == {"ee.pos", "ee.quat_xyzw", "gripper"}
    with pytest.raises(NotConnectedError):
        arm.get_observation()


def test_context_manager_connects_and_disconnects() -> None:
    with make_sim_arm("pybullet", scene="stack") as arm:
        assert arm.is_connected
        obs = arm.get_observation()
        assert obs["observation.state"].dtype == np.float32
        assert obs["observation.environment_state"].shape == arm.observation_features["observation.environment_state"].shape
    assert not arm.is_connected


def _act(pos, yaw=0.0, g=0.0):
    return {"ee.pos": np.asarray(pos, float), "ee.quat_xyzw": down_quat(yaw), "gripper": g}


def test_out_of_workspace_action_is_clipped_and_returned(pybullet_arm) -> None:
    lim = pybullet_arm.config.safety
    for _ in range(80):
        sent = pybullet_arm.send_action(_act([2.0, -3.0, -1.0]))
        p = sent["ee.pos"]
        assert np.all(p >= np.asarray(lim.workspace_min) - 1e-9) and np.all(p <= np.asarray(lim.workspace_max) + 1e-9)
    ee = pybullet_arm.get_observation()["observation.state"][:3]
    assert ee[2] > lim.workspace_min[2] - 0.01, "the arm went below the workspace floor"
    assert ee[0] <= lim.workspace_max[0] + 0.01 and ee[1] >= lim.workspace_min[1] - 0.01


def test_large_steps_are_limited_per_tick(pybullet_arm) -> None:
    before = pybullet_arm.get_observation()["observation.state"][:3].astype(float)
    sent = pybullet_arm.send_action(_act(before + [0.3, 0.0, 0.0], yaw=1.5))
    step = np.linalg.norm(sent["ee.pos"] - before)
    assert step <= pybullet_arm.config.safety.max_ee_step_m + 1e-6
    assert quat_angle(sent["ee.quat_xyzw"], down_quat(0.0)) <= pybullet_arm.config.safety.max_rot_step_rad + 0.02


def test_nan_action_holds_position(pybullet_arm) -> None:
    before = pybullet_arm.get_observation()["observation.state"][:3].astype(float)
    sent = pybullet_arm.send_action({"ee.pos": [math.nan, 0.4, math.inf], "ee.quat_xyzw": [math.nan] * 4, "gripper": math.nan})
    assert np.all(np.isfinite(sent["ee.pos"])) and np.allclose(sent["ee.pos"], before, atol=1e-6)
    assert 0.0 <= sent["gripper"] <= 1.0
    after = pybullet_arm.get_observation()["observation.state"][:3]
    assert np.linalg.norm(after - before) < 0.005


def test_malformed_action_is_an_action_error(pybullet_arm) -> None:
    with pytest.raises(ActionError, match="missing key"):
        pybullet_arm.send_action({"ee.pos": [0.4, 0, 0.3]})
    with pytest.raises(ActionError, match="wrong type or shape"):
        pybullet_arm.send_action({"ee.pos": [0.4, 0], "ee.quat_xyzw": [1, 0, 0, 0], "gripper": 0})


def test_gripper_command_is_clipped(pybullet_arm) -> None:
    ee = pybullet_arm.get_observation()["observation.state"][:3]
    assert pybullet_arm.send_action(_act(ee, g=7.0))["gripper"] == 1.0
    assert pybullet_arm.send_action(_act(ee, g=-2.0))["gripper"] == 0.0


def test_reaches_commanded_poses(pybullet_arm) -> None:
    for target, yaw in (([0.45, 0.15, 0.2], 0.5), ([0.55, -0.2, 0.1], -0.8), ([0.35, 0.0, 0.3], 0.0)):
        for _ in range(60):
            pybullet_arm.send_action(_act(target, yaw))
        s = pybullet_arm.get_observation()["observation.state"]
        assert np.linalg.norm(s[:3] - target) < 0.004
        assert quat_angle(s[3:7], down_quat(yaw)) < 0.02


def test_hold_stays_put_while_holding_repeatedly(pybullet_arm) -> None:
    for _ in range(20):
        pybullet_arm.send_action(_act([0.45, 0.1, 0.25]))
    first = pybullet_arm.hold()["ee.pos"].copy()
    for _ in range(40):
        again = pybullet_arm.hold()["ee.pos"]
        assert np.allclose(again, first)
    assert np.linalg.norm(pybullet_arm.get_observation()["observation.state"][:3] - first) < 0.003


def test_joint_targets_respect_joint_limits(pybullet_arm) -> None:
    for _ in range(100):  # an orientation the wrist cannot reach without its limits
        pybullet_arm.send_action(_act([0.3, 0.3, 0.1], yaw=3.1))
    q = pybullet_arm.get_observation()["observation.state"][8:15]
    assert np.all(q >= pybullet_arm._lower - 0.02) and np.all(q <= pybullet_arm._upper + 0.02)


def test_safety_limits_validate_config() -> None:
    with pytest.raises(ValueError, match="workspace_min must be below"):
        SafetyLimits(workspace_min=(1, 0, 0), workspace_max=(0, 1, 1))
    out, reasons = clip_action(_act([0.5, 0, 0.3]), np.array([0.5, 0, 0.3]), down_quat(0), 0.0, SafetyLimits())
    assert reasons == [] and np.allclose(out["ee.pos"], [0.5, 0, 0.3])
