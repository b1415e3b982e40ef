"""`MockArm`: a body with no physics, for benchmarks and fast protocol tests.

The end effector moves a fixed fraction of the way to its (safety-clipped) target
each tick; cameras show a cheap synthetic image that changes every tick. It is not
a simulator: use `sim:pybullet` / `sim:mujoco` for anything physical.

    mock:arm                       20 Hz, no cameras
    mock:arm?hz=500&cameras=front,wrist&size=128
"""
from __future__ import annotations

from typing import Any

import numpy as np

from hw_drivers.spec import spec_options
from robot.errors import NotConnectedError, RobotError
from robot.geometry import DOWN_QUAT_XYZW
from robot.robot import Robot
from robot.safety import SafetyLimits, clip_action
from robot.types import ACTION_NAMES, ARM_ACTION_FEATURES, Feature

HOME = np.array([0.45, 0.0, 0.30])


class MockArm(Robot):
    def __init__(self, control_hz: float = 20.0, cameras: tuple[str, ...] = (), image_size: int = 128,
                 safety: SafetyLimits | None = None, follow: float = 0.5) -> None:
        if not 1.0 <= control_hz <= 5000.0:
            raise RobotError(f"mock:arm: control rate must be in [1, 5000] Hz, got {control_hz}")
        if not 8 <= image_size <= 1024:
            raise RobotError("mock:arm: image size must be in [8, 1024]")
        self.name = "mock:arm"
        self.control_dt = 1.0 / control_hz
        self.cameras = tuple(cameras)
        self.image_size = int(image_size)
        self.safety = safety or SafetyLimits()
        self.follow = follow
        self._connected = False
        self._tick = 0
        self._pos, self._quat, self._grip = HOME.copy(), DOWN_QUAT_XYZW.copy(), 0.0
        self._target = (self._pos.copy(), self._quat.copy())
        self._held: tuple[np.ndarray, np.ndarray] | None = None
        self._base: np.ndarray | None = None
        self.actions: list[dict[str, Any]] = []  # every action sent to the "hardware" (tests inspect it)

    @property
    def observation_features(self) -> dict[str, Feature]:
        feats = {"observation.state": Feature("float32", (len(ACTION_NAMES),), ACTION_NAMES)}
        for cam in self.cameras:
            feats[f"observation.images.{cam}"] = Feature("uint8", (self.image_size, self.image_size, 3),
                                                          ("height", "width", "channel"))
        return feats

    @property
    def action_features(self) -> dict[str, Feature]:
        return dict(ARM_ACTION_FEATURES)

    @property
    def is_connected(self) -> bool:
        return self._connected

    @property
    def time_s(self) -> float:
        return self._tick * self.control_dt

    def connect(self) -> None:
        n = self.image_size
        y, x = np.mgrid[0:n, 0:n]
        self._base = np.stack([x * 255 // n, y * 255 // n, (x + y) * 127 // n], axis=-1).astype(np.uint8)
        self._connected = True

    def disconnect(self) -> None:
        self._connected = False

    def _require(self) -> None:
        if not self._connected:
            raise NotConnectedError("mock:arm is not connected")

    def get_observation(self) -> dict[str, Any]:
        self._require()
        obs: dict[str, Any] = {"observation.state": np.concatenate([self._pos, self._quat, [self._grip]]).astype(np.float32)}
        assert self._base is not None
        for k, cam in enumerate(self.cameras):
            obs[f"observation.images.{cam}"] = np.roll(self._base, self._tick + 7 * k, axis=1)
        return obs

    def send_action(self, action: dict[str, Any]) -> dict[str, Any]:
        self._require()
        safe, _ = clip_action(action, self._pos, self._quat, self._grip, self.safety)
        self._held = None
        self._apply(safe)
        return safe

    def hold(self) -> dict[str, Any]:
        self._require()
        if self._held is None:
            self._held = (self._pos.copy(), self._quat.copy())
        safe = {"ee.pos": self._held[0].copy(), "ee.quat_xyzw": self._held[1].copy(), "gripper": self._grip}
        self._apply(safe)
        return safe

    def _apply(self, safe: dict[str, Any]) -> None:
        self.actions.append(safe)
        if len(self.actions) > 10000:
            del self.actions[:5000]
        self._pos = self._pos + self.follow * (np.asarray(safe["ee.pos"], float) - self._pos)
        self._quat = np.asarray(safe["ee.quat_xyzw"], float)
        self._grip = float(safe["gripper"])
        self._tick += 1


def make_mock(spec: str, **kwargs: Any) -> MockArm:
    _, _, query = spec.partition("?")
    options = spec_options(spec, query, {"hz": ("control_hz", float), "size": ("image_size", int),
                                         "cameras": ("cameras", lambda t: tuple(c for c in t.split(",") if c))})
    kwargs = {**options, **kwargs}  # explicit keyword arguments win over the address
    return MockArm(**kwargs)
