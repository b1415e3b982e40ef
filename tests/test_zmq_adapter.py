"""The UR adapter against a FAKE of the ur_rtde SDK (the real SDK needs a UR controller).

This checks the mapping only: corrigo actions -> servoL arguments (frames, rotation
vectors, units, safety clipping), UR poses -> observations, and the lifecycle calls.
It says nothing about behaviour on a real arm, which has not been run.
"""
from __future__ import annotations

import math
import sys
import types

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hw_drivers.adapters.ur_rtde import UrRtdeArm, make_ur_rtde, quat_to_rotvec, rotvec_to_quat
from robot.errors import RobotError
from robot.geometry import quat_angle, quat_from_axis_angle

DOWN = np.array([1.0, 0.0, 0.0, 0.0])


class FakeUrController:
    """Stands in for one UR controller: a TCP that reaches each servoL target at once."""

    def __init__(self) -> None:
        self.tcp = [0.4, 0.0, 0.3, math.pi, 0.0, 0.0]
        self.q = [0.0, -1.57, 1.57, -1.57, -1.57, 0.0]
        self.calls: list[tuple[str, tuple]] = []


def fake_sdk(ctl: FakeUrController) -> tuple[types.ModuleType, types.ModuleType]:
    control = types.ModuleType("rtde_control")
    receive = types.ModuleType("rtde_receive")

    class RTDEControlInterface:  # noqa: N801  (the SDK's names)
        def __init__(self, host: str) -> None:
            ctl.calls.append(("connect", (host,)))

        def servoL(self, pose, speed, acceleration, time_s, lookahead, gain):  # noqa: N802
            ctl.calls.append(("servoL", (list(pose), speed, acceleration, time_s, lookahead, gain)))
            ctl.tcp = list(pose)
            return True

        def servoStop(self, a: float = 10.0):  # noqa: N802
            ctl.calls.append(("servoStop", ()))

        def stopScript(self):  # noqa: N802
            ctl.calls.append(("stopScript", ()))

        def disconnect(self):
            ctl.calls.append(("disconnect", ()))

    class RTDEReceiveInterface:  # noqa: N801
        def __init__(self, host: str) -> None:
            pass

        def getActualTCPPose(self):  # noqa: N802
            return list(ctl.tcp)

        def getActualQ(self):  # noqa: N802
            return list(ctl.q)

        def disconnect(self):
            pass

    control.RTDEControlInterface = RTDEControlInterface
    receive.RTDEReceiveInterface = RTDEReceiveInterface
    return control, receive


@pytest.fixture
def ur(monkeypatch):
    ctl = FakeUrController()
    control, receive = fake_sdk(ctl)
    monkeypatch.setitem(sys.modules, "rtde_control", control)
    monkeypatch.setitem(sys.modules, "rtde_receive", receive)
    return ctl


def servo_calls(ctl: FakeUrController) -> list[tuple]:
    return [args for name, args in ctl.calls if name == "servoL"]


def test_missing_sdk_gives_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "rtde_control", None)  # import fails
    arm = UrRtdeArm("192.0.2.1")
    with pytest.raises(RobotError, match=r"needs the ur_rtde package \(pip install ur_rtde\)"):
        arm.connect()
    assert not arm.is_connected


def test_actions_become_servol_in_the_ur_base_frame(ur):
    arm = UrRtdeArm("192.0.2.1", control_hz=125.0, base_yaw_rad=math.pi)
    ur.tcp = [-0.5, -0.1, 0.3, 0.0, math.pi, 0.0]  # corrigo (0.5, 0.1, 0.3), tool down
    with arm:
        s = arm.get_observation()["observation.state"]
        np.testing.assert_allclose(s[:3], [0.5, 0.1, 0.3], atol=1e-6)
        assert quat_angle(s[3:7], DOWN) < 1e-5 and s.shape == (14,)
        sent = arm.send_action({"ee.pos": np.array([0.51, 0.1, 0.3]), "ee.quat_xyzw": DOWN, "gripper": 0.0})
        pose, speed, acc, t, look, gain = servo_calls(ur)[-1]
        # yaw pi: corrigo +x (away from the robot) is UR -x; metres stay metres
        np.testing.assert_allclose(pose[:3], [-0.51, -0.1, 0.3], atol=1e-9)
        # tool down in both frames is a half turn; about UR's y axis once the base yaw is applied
        assert abs(abs(pose[4]) - math.pi) < 1e-6 and abs(pose[3]) < 1e-6 and abs(pose[5]) < 1e-6
        assert (speed, acc, t, look, gain) == (0.0, 0.0, pytest.approx(1 / 125), 0.1, 300.0)
        np.testing.assert_allclose(sent["ee.pos"], [0.51, 0.1, 0.3])
        s = arm.get_observation()["observation.state"]  # the fake reached the target: frames round-trip
        np.testing.assert_allclose(s[:3], [0.51, 0.1, 0.3], atol=1e-6)
    assert [n for n, _ in ur.calls[-3:]] == ["servoStop", "stopScript", "disconnect"]


def test_the_adapter_clips_unsafe_actions_before_the_sdk(ur):
    arm = UrRtdeArm("192.0.2.1", base_yaw_rad=0.0)
    with arm:
        arm.send_action({"ee.pos": np.array([3.0, 0.0, -1.0]), "ee.quat_xyzw": DOWN, "gripper": 2.0})
        pose = servo_calls(ur)[-1][0]
        assert np.linalg.norm(np.array(pose[:3]) - [0.4, 0.0, 0.3]) <= arm.safety.max_ee_step_m + 1e-9
        held = arm.hold()
        again = arm.hold()
        np.testing.assert_allclose(held["ee.pos"], again["ee.pos"])
        assert servo_calls(ur)[-1][0] == servo_calls(ur)[-2][0]  # hold keeps one latched target


def test_served_over_zmq_like_any_body(ur):
    import hw_drivers  # noqa: F401  (registers ur_rtde:)
    from hw_drivers.client import ZmqRobot
    from hw_drivers.server import RobotServer, ServerConfig
    from robot.registry import make_robot

    arm = make_robot("ur_rtde:192.0.2.1?hz=50&base_yaw=0")
    server = RobotServer(arm, ServerConfig(bind="tcp://127.0.0.1:*"))
    server.start()
    try:
        with ZmqRobot("127.0.0.1", int(server.endpoint.rsplit(":", 1)[1])) as r:
            out = r.send_action({"ee.pos": np.array([0.41, 0.0, 0.3]), "ee.quat_xyzw": DOWN, "gripper": 0.0})
            np.testing.assert_allclose(out["ee.pos"], [0.41, 0.0, 0.3])
            assert any(np.allclose(c[0][:3], [0.41, 0.0, 0.3]) for c in servo_calls(ur))
    finally:
        server.close()
    assert ("stopScript", ()) in ur.calls
    with pytest.raises(RobotError, match="unknown option"):
        make_ur_rtde("ur_rtde:h?speed=3")


@settings(max_examples=200, deadline=None)
@given(axis=st.lists(st.floats(-1, 1), min_size=3, max_size=3).filter(lambda a: np.linalg.norm(a) > 1e-3),
       angle=st.floats(0.0, math.pi - 1e-6))
def test_rotation_vector_conversion_round_trips(axis, angle):
    q = quat_from_axis_angle(np.array(axis), angle)
    r = quat_to_rotvec(q)
    assert np.linalg.norm(r) == pytest.approx(angle, abs=1e-6)
    assert quat_angle(rotvec_to_quat(r), q) < 1e-6
