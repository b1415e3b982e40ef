"""`SimArm`: the Robot contract for a simulated Panda, shared by every backend.

A backend implements the few `_hooks` (build a world, read the arm, command it,
step physics, read object poses, render). Everything users see — safety clipping,
observation layout, scene objects, holding — is here, so it is the same in
PyBullet and MuJoCo.
"""
from __future__ import annotations

import abc
import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from robot.errors import NotConnectedError, RobotError
from robot.geometry import quat_mul, quat_normalize, rotate
from robot.robot import Robot
from robot.safety import SafetyLimits, clip_action
from robot.types import ACTION_NAMES, ARM_ACTION_FEATURES, Feature, SceneObject
from sim.objects import ObjectModel, build_model
from sim.scene import PlacedObject, SceneError, SceneSpec, load_scene, sample_layout

JOINT_NAMES = tuple(f"joint_{i}" for i in range(1, 8))
HOME_JOINTS = (0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785)
FINGER_MAX_WIDTH = 0.08  # metres between the fingers when fully open
CAMERA_NAMES = ("front", "wrist")


@dataclass
class CameraConfig:
    width: int = 128
    height: int = 128
    fov_deg: float = 60.0
    near: float = 0.01
    far: float = 3.0


@dataclass
class SimConfig:
    """Everything a simulated arm needs; validated on construction."""

    scene: SceneSpec | str = "tabletop"
    seed: int = 0
    control_hz: float = 20.0
    physics_hz: float = 240.0
    cameras: tuple[str, ...] = ()
    camera: CameraConfig = field(default_factory=CameraConfig)
    camera_hz: float = 10.0
    safety: SafetyLimits = field(default_factory=SafetyLimits)

    def __post_init__(self) -> None:
        if not (1.0 <= self.control_hz <= 1000.0):
            raise SceneError(f"control_hz must be in [1, 1000], got {self.control_hz}")
        if self.physics_hz < self.control_hz:
            raise SceneError("physics_hz must be at least control_hz")
        ratio = self.physics_hz / self.control_hz
        if abs(ratio - round(ratio)) > 1e-6:
            raise SceneError(f"physics_hz ({self.physics_hz}) must be a multiple of control_hz ({self.control_hz})")
        bad = [c for c in self.cameras if c not in CAMERA_NAMES]
        if bad:
            raise SceneError(f"unknown camera(s) {bad} (known: {', '.join(CAMERA_NAMES)})")
        if not (0 < self.camera_hz <= self.control_hz):
            raise SceneError("camera_hz must be positive and at most control_hz")
        if not (8 <= self.camera.width <= 1024 and 8 <= self.camera.height <= 1024):
            raise SceneError("camera resolution must be between 8 and 1024 pixels")
        if isinstance(self.scene, str):
            self.scene = load_scene(self.scene)


class SimArm(Robot):
    """A Franka Panda on a table with the objects of a scene spec."""

    backend = "sim"

    def __init__(self, config: SimConfig | None = None, **overrides: Any) -> None:
        cfg = config or SimConfig()
        self.config = replace(cfg, **overrides) if overrides else cfg
        self.control_dt = 1.0 / self.config.control_hz
        self.name = f"sim:{self.backend}"
        self._connected = False
        self._t = 0.0
        self._tick = 0
        self._layout: list[PlacedObject] = []
        self._models: list[ObjectModel] = []
        self._hold_target: tuple[np.ndarray, np.ndarray] | None = None
        self._gripper_cmd = 0.0
        self._last_action: dict[str, Any] | None = None
        self._images: dict[str, np.ndarray] = {}
        self._last_render_tick = -(10**9)
        self.last_clip_reasons: list[str] = []

    # ----- features (valid before connect) -----
    @property
    def observation_features(self) -> dict[str, Feature]:
        n = len(self.config.scene.objects)
        env_names = tuple(f"object_{k}.{c}" for k in range(n) for c in ("x", "y", "z", "qx", "qy", "qz", "qw"))
        env_names += ("drawer.opening",)
        feats = {
            "observation.state": Feature("float32", (len(ACTION_NAMES) + 7,), ACTION_NAMES + JOINT_NAMES),
            "observation.environment_state": Feature("float32", (len(env_names),), env_names),
        }
        h, w = self.config.camera.height, self.config.camera.width
        for cam in self.config.cameras:
            feats[f"observation.images.{cam}"] = Feature("uint8", (h, w, 3), ("height", "width", "channel"))
            feats[f"observation.depth.{cam}"] = Feature("float32", (h, w), ("height", "width"))
            feats[f"observation.segmentation.{cam}"] = Feature("int32", (h, w), ("height", "width"))
        return feats

    @property
    def action_features(self) -> dict[str, Feature]:
        return dict(ARM_ACTION_FEATURES)

    @property
    def is_connected(self) -> bool:
        return self._connected

    @property
    def time_s(self) -> float:
        return self._t

    @property
    def layout(self) -> list[PlacedObject]:
        return list(self._layout)

    # ----- lifecycle -----
    def connect(self) -> None:
        if self._connected:
            return
        self._open()
        self._connected = True
        self.reset(self.config.seed)

    def disconnect(self) -> None:
        if self._connected:
            self._close()
            self._connected = False

    def reset(self, seed: int | None = None, scene: SceneSpec | None = None) -> None:
        """Rebuild the world from the scene spec laid out for `seed` (sim only)."""
        self._require()
        if scene is not None:
            self.config = replace(self.config, scene=scene)
        if seed is not None:
            self.config = replace(self.config, seed=int(seed))
        self._layout = sample_layout(self.config.scene, self.config.seed)
        self._models = [build_model(p.name, p.category, p.colour, p.size, p.quirks) for p in self._layout]
        self._build(self._models, self._layout)
        self._t, self._tick = 0.0, 0
        self._hold_target, self._gripper_cmd, self._last_action = None, 0.0, None
        self._images, self._last_render_tick = {}, -(10**9)
        # Let objects settle onto the table before the first observation.
        pos, quat, _, _ = self._arm_state()
        for _ in range(10):
            self._command(pos, quat, FINGER_MAX_WIDTH)
            self._step(self._substeps)

    @property
    def _substeps(self) -> int:
        return int(round(self.config.physics_hz / self.config.control_hz))

    def _require(self) -> None:
        if not self._connected:
            raise NotConnectedError(f"{self.name} is not connected; call connect() first")

    # ----- the contract -----
    def get_observation(self) -> dict[str, Any]:
        self._require()
        pos, quat, width, joints = self._arm_state()
        g = 1.0 - min(max(width / FINGER_MAX_WIDTH, 0.0), 1.0)
        state = np.concatenate([pos, quat, [g], joints]).astype(np.float32)
        env = []
        for k in range(len(self._models)):
            p, q = self._object_pose(k)
            env.extend([*p, *q])
        env.append(self._drawer_opening())
        obs: dict[str, Any] = {
            "observation.state": state,
            "observation.environment_state": np.asarray(env, dtype=np.float32),
        }
        if self.config.cameras:
            every = max(1, int(round(self.config.control_hz / self.config.camera_hz)))
            if self._tick - self._last_render_tick >= every or not self._images:
                for cam in self.config.cameras:
                    rgb, depth, seg = self._render(cam)
                    self._images[f"observation.images.{cam}"] = rgb
                    self._images[f"observation.depth.{cam}"] = depth
                    self._images[f"observation.segmentation.{cam}"] = seg
                self._last_render_tick = self._tick
            obs.update({k: v.copy() for k, v in self._images.items()})  # callers may keep or modify them
        return obs

    def send_action(self, action: dict[str, Any]) -> dict[str, Any]:
        self._require()
        pos, quat, width, _ = self._arm_state()
        g_now = 1.0 - min(max(width / FINGER_MAX_WIDTH, 0.0), 1.0)
        safe, reasons = clip_action(action, pos, quat, self._gripper_cmd if self._last_action else g_now, self.config.safety)
        self.last_clip_reasons = reasons
        self._hold_target = None
        self._actuate(safe)
        return safe

    def hold(self) -> dict[str, Any]:
        """Stay where the arm is now; repeated calls keep the first latched pose."""
        self._require()
        if self._hold_target is None:
            pos, quat, _, _ = self._arm_state()
            self._hold_target = (pos.copy(), quat.copy())
        pos, quat = self._hold_target
        safe = {"ee.pos": pos.copy(), "ee.quat_xyzw": quat.copy(), "gripper": float(self._gripper_cmd)}
        self._actuate(safe)
        return safe

    def _actuate(self, safe: dict[str, Any]) -> None:
        self._gripper_cmd = float(safe["gripper"])
        self._last_action = safe
        self._command(np.asarray(safe["ee.pos"]), np.asarray(safe["ee.quat_xyzw"]), FINGER_MAX_WIDTH * (1.0 - self._gripper_cmd))
        self._step(self._substeps)
        self._t += self.control_dt
        self._tick += 1

    # ----- privileged scene access (sim only) -----
    def scene_objects(self) -> list[SceneObject]:
        self._require()
        out = []
        opening = self._drawer_opening()
        for k, m in enumerate(self._models):
            p, q = self._object_pose(k)
            parts: dict[str, np.ndarray] = {}
            state: dict[str, float] = {}
            attrs = dict(m.attributes)
            if m.drawer is not None:
                d = m.drawer
                slide = np.array([-opening, 0.0, 0.0])
                parts["handle"] = p + rotate(q, np.asarray(d.origin) + slide + np.asarray(d.handle))
                parts["drawer_interior"] = p + rotate(q, np.asarray(d.origin) + slide + np.asarray(d.interior))
                # The part of the interior outside the carcass, where things can be dropped in.
                front = -m.extents[0] / 2
                visible_centre_x = (front - opening + front) / 2 + 0.0
                parts["drawer_opening"] = p + rotate(q, np.array([visible_centre_x, 0.0, d.origin[2] + d.interior[2]]))
                state["drawer_open"] = float(opening)
                attrs.update(drawer_travel=d.travel, drawer_interior_half=d.interior_half)
            out.append(
                SceneObject(
                    name=m.name, category=m.category, colour=m.colour, position=p, quat_xyzw=q,
                    size=np.asarray(m.extents, dtype=float), seg_id=k + 2, parts=parts, state=state, attributes=attrs,
                )
            )
        return out

    def camera_pose(self, cam: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(eye, target, up) in the base frame for a camera."""
        if cam == "front":
            return np.array([1.1, 0.0, 0.8]), np.array([0.45, 0.0, 0.0]), np.array([0.0, 0.0, 1.0])
        if cam == "wrist":
            pos, quat, _, _ = self._arm_state()
            eye = pos + rotate(quat, np.array([0.05, 0.0, -0.09]))  # behind the fingers, on the hand
            target = eye + rotate(quat, np.array([0.0, 0.0, 1.0]))  # along the tool axis
            up = rotate(quat, np.array([1.0, 0.0, 0.0]))
            return eye, target, up
        raise RobotError(f"unknown camera {cam!r}")

    def depth_from_buffer(self, buf: np.ndarray) -> np.ndarray:
        near, far = self.config.camera.near, self.config.camera.far
        return (far * near / (far - (far - near) * buf)).astype(np.float32)

    # ----- backend hooks -----
    @abc.abstractmethod
    def _open(self) -> None: ...

    @abc.abstractmethod
    def _close(self) -> None: ...

    @abc.abstractmethod
    def _build(self, models: list[ObjectModel], layout: list[PlacedObject]) -> None: ...

    @abc.abstractmethod
    def _arm_state(self) -> tuple[np.ndarray, np.ndarray, float, np.ndarray]:
        """(ee position, ee quat_xyzw, finger width in metres, 7 joint positions)."""

    @abc.abstractmethod
    def _command(self, pos: np.ndarray, quat: np.ndarray, finger_width: float) -> None:
        """Set joint targets for the end-effector pose (IK, joint limits applied)."""

    @abc.abstractmethod
    def _step(self, n: int) -> None: ...

    @abc.abstractmethod
    def _object_pose(self, k: int) -> tuple[np.ndarray, np.ndarray]: ...

    @abc.abstractmethod
    def _drawer_opening(self) -> float:
        """Opening of the scene's drawer in metres (0 when there is none)."""

    @abc.abstractmethod
    def _render(self, cam: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(rgb HxWx3 uint8, depth HxW metres, segmentation HxW int32: 0 none, 1 robot, k+2 object k)."""


def placed_quat(yaw: float) -> np.ndarray:
    return np.array([0.0, 0.0, math.sin(yaw / 2), math.cos(yaw / 2)])


def compose(pos: np.ndarray, quat: np.ndarray, local_pos: Any, local_quat: Any = (0, 0, 0, 1)) -> tuple[np.ndarray, np.ndarray]:
    return pos + rotate(quat, np.asarray(local_pos, float)), quat_normalize(quat_mul(quat, np.asarray(local_quat, float)))
