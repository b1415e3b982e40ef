"""Universal Robots (e-Series / CB3) through the public `ur_rtde` Python SDK.

UNTESTED ON HARDWARE. This adapter has only been run against a fake of the SDK
(tests/test_zmq_adapter.py), which checks that actions become the expected
`servoL` calls and that units and frames are converted. Before trusting it on a
real arm: run it with the teach pendant's speed slider low, in a cleared cell,
with the emergency stop in reach, and check `base_yaw_rad` first.

    corrigo serve --robot "ur_rtde:192.168.1.10?hz=125&base_yaw=3.14159" --bind tcp://0.0.0.0:5555

Mapping:
- corrigo action {ee.pos, ee.quat_xyzw, gripper} in the corrigo base frame (+x away
  from the robot toward the workspace, +z up) -> `servoL([x, y, z, rx, ry, rz], 0, 0,
  dt, lookahead, gain)` in the UR controller's base frame. The two base frames share
  the origin and z axis; `base_yaw_rad` is the rotation about z from the corrigo frame
  to the UR base frame (UR's `base` is often rotated by pi from what you call forward).
- UR orientation is a rotation vector (axis * angle, radians); corrigo uses quaternions.
- metres and radians on both sides: no unit scaling of poses.
- the gripper is not driven by RTDE: pass a `Gripper` (any object with `move(fraction)`
  and `position() -> fraction`, 0 = open, 1 = closed), or the commanded value is
  reported back unchanged.
"""
from __future__ import annotations

import math
from typing import Any, Protocol

import numpy as np

from hw_drivers.spec import spec_options
from robot.errors import NotConnectedError, RobotError
from robot.geometry import quat_from_yaw, quat_mul, quat_normalize, rotate
from robot.robot import Robot
from robot.safety import SafetyLimits, clip_action
from robot.types import ACTION_NAMES, ARM_ACTION_FEATURES, Feature

UR_JOINTS = ("base", "shoulder", "elbow", "wrist_1", "wrist_2", "wrist_3")


class Gripper(Protocol):
    def move(self, fraction: float) -> None: ...
    def position(self) -> float: ...


def quat_to_rotvec(q: np.ndarray) -> np.ndarray:
    q = quat_normalize(np.asarray(q, float))  # w >= 0, so the angle is in [0, pi]
    s = float(np.linalg.norm(q[:3]))
    if s < 1e-12:
        return np.zeros(3)
    angle = 2.0 * math.atan2(s, q[3])
    return q[:3] / s * angle


def rotvec_to_quat(r: np.ndarray) -> np.ndarray:
    r = np.asarray(r, float)
    angle = float(np.linalg.norm(r))
    if angle < 1e-12:
        return np.array([0.0, 0.0, 0.0, 1.0])
    axis = r / angle
    return quat_normalize(np.concatenate([axis * math.sin(angle / 2), [math.cos(angle / 2)]]))


class UrRtdeArm(Robot):
    """A UR arm commanded in Cartesian space with `servoL` at the server's control rate."""

    def __init__(self, host: str, *, control_hz: float = 125.0, base_yaw_rad: float = 0.0,
                 tool_quat_xyzw: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 1.0),
                 lookahead_s: float = 0.1, gain: float = 300.0, safety: SafetyLimits | None = None,
                 gripper: Gripper | None = None) -> None:
        if not 1.0 <= control_hz <= 500.0:
            raise RobotError(f"ur_rtde: control rate must be in [1, 500] Hz, got {control_hz}")
        if not 0.03 <= lookahead_s <= 0.2 or not 100 <= gain <= 2000:
            raise RobotError("ur_rtde: servoL lookahead must be in [0.03, 0.2] s and gain in [100, 2000]")
        self.host = host
        self.name = f"ur_rtde:{host}"
        self.control_dt = 1.0 / control_hz
        self.lookahead_s, self.gain = lookahead_s, gain
        self.safety = safety or SafetyLimits()
        self.gripper = gripper
        # corrigo frame -> UR base frame, and corrigo tool convention -> UR TCP
        self._q_base = quat_from_yaw(base_yaw_rad)
        self._q_tool = quat_normalize(np.asarray(tool_quat_xyzw, float))
        self._ctl: Any = None
        self._rcv: Any = None
        self._grip_cmd = 0.0
        self._held: dict[str, Any] | None = None
        self._t = 0.0

    # ----- frames -----
    def to_ur(self, pos: np.ndarray, quat: np.ndarray) -> list[float]:
        p = rotate(self._q_base, np.asarray(pos, float))
        q = quat_mul(quat_mul(self._q_base, np.asarray(quat, float)), self._q_tool)
        return [float(v) for v in (*p, *quat_to_rotvec(q))]

    def from_ur(self, pose: Any) -> tuple[np.ndarray, np.ndarray]:
        pose = np.asarray(pose, float).reshape(6)
        inv = self._q_base * np.array([-1.0, -1.0, -1.0, 1.0])
        tool_inv = self._q_tool * np.array([-1.0, -1.0, -1.0, 1.0])
        pos = rotate(inv, pose[:3])
        quat = quat_normalize(quat_mul(quat_mul(inv, rotvec_to_quat(pose[3:])), tool_inv))
        return pos, quat

    # ----- the contract -----
    @property
    def observation_features(self) -> dict[str, Feature]:
        names = ACTION_NAMES + tuple(f"joint_{j}" for j in UR_JOINTS)
        return {"observation.state": Feature("float32", (len(names),), names)}

    @property
    def action_features(self) -> dict[str, Feature]:
        return dict(ARM_ACTION_FEATURES)

    @property
    def is_connected(self) -> bool:
        return self._ctl is not None

    @property
    def time_s(self) -> float:
        return self._t

    def connect(self) -> None:
        if self._ctl is not None:
            return
        try:  # the SDK is imported here so corrigo installs and tests without it
            import rtde_control
            import rtde_receive
        except ImportError:
            raise RobotError(f"{self.name} needs the ur_rtde package (pip install ur_rtde); "
                             "it is not installed on this computer") from None
        try:
            self._rcv = rtde_receive.RTDEReceiveInterface(self.host)
            self._ctl = rtde_control.RTDEControlInterface(self.host)
        except Exception as e:  # the SDK raises RuntimeError for unreachable or busy controllers
            self._rcv = self._ctl = None
            raise RobotError(f"{self.name}: cannot connect to the UR controller: {e}") from None
        self._t = 0.0

    def disconnect(self) -> None:
        if self._ctl is None:
            return
        try:
            self._ctl.servoStop()
            self._ctl.stopScript()
        finally:
            self._ctl.disconnect()
            self._rcv.disconnect()
            self._ctl = self._rcv = None

    def _require(self) -> None:
        if self._ctl is None:
            raise NotConnectedError(f"{self.name} is not connected")

    def _gripper_now(self) -> float:
        return float(self.gripper.position()) if self.gripper is not None else self._grip_cmd

    def get_observation(self) -> dict[str, Any]:
        self._require()
        pos, quat = self.from_ur(self._rcv.getActualTCPPose())
        joints = np.asarray(self._rcv.getActualQ(), float).reshape(6)
        state = np.concatenate([pos, quat, [self._gripper_now()], joints]).astype(np.float32)
        return {"observation.state": state}

    def send_action(self, action: dict[str, Any]) -> dict[str, Any]:
        self._require()
        pos, quat = self.from_ur(self._rcv.getActualTCPPose())
        safe, _ = clip_action(action, pos, quat, self._grip_cmd, self.safety)
        self._held = None
        return self._servo(safe)

    def hold(self) -> dict[str, Any]:
        self._require()
        if self._held is None:
            pos, quat = self.from_ur(self._rcv.getActualTCPPose())
            self._held = {"ee.pos": pos, "ee.quat_xyzw": quat, "gripper": self._grip_cmd}
        return self._servo(dict(self._held))

    def _servo(self, safe: dict[str, Any]) -> dict[str, Any]:
        pose = self.to_ur(safe["ee.pos"], safe["ee.quat_xyzw"])
        # servoL ignores speed/acceleration; time = how long this target is held
        ok = self._ctl.servoL(pose, 0.0, 0.0, self.control_dt, self.lookahead_s, self.gain)
        if ok is False:
            raise RobotError(f"{self.name}: servoL was refused (protective stop? check the pendant)")
        g = float(safe["gripper"])
        if self.gripper is not None and abs(g - self._grip_cmd) > 1e-3:
            self.gripper.move(g)
        self._grip_cmd = g
        self._t += self.control_dt
        return safe


def make_ur_rtde(spec: str, **kwargs: Any) -> UrRtdeArm:
    """`ur_rtde:HOST[?hz=125&base_yaw=RAD]`."""
    rest = spec.split(":", 1)[1]
    host, _, query = rest.partition("?")
    if not host:
        raise RobotError(f"bad robot {spec!r}; expected ur_rtde:HOST")
    kwargs = {**spec_options(spec, query, {"hz": ("control_hz", float), "base_yaw": ("base_yaw_rad", float)}), **kwargs}
    return UrRtdeArm(host, **kwargs)
