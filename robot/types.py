"""Shared types: features, poses, scene objects, and the arm action/state layout.

Units: metres, radians, seconds. Frame: robot base, +x forward, +y left, +z up.
Gripper 0 = open, 1 = closed.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from robot.errors import ActionError


@dataclass(frozen=True)
class Feature:
    """One entry of `observation_features` / `action_features` (LeRobot's layout)."""

    dtype: str  # "float32", "uint8", "int32", "string"
    shape: tuple[int, ...]
    names: tuple[str, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"dtype": self.dtype, "shape": list(self.shape), "names": list(self.names) if self.names else None}

    @staticmethod
    def from_dict(d: Mapping[str, Any]) -> "Feature":
        names = d.get("names")
        return Feature(str(d["dtype"]), tuple(int(s) for s in d["shape"]), tuple(names) if names else None)


@dataclass
class Pose:
    position: np.ndarray  # (3,) metres
    quat_xyzw: np.ndarray  # (4,)

    def copy(self) -> "Pose":
        return Pose(self.position.copy(), self.quat_xyzw.copy())


@dataclass
class SceneObject:
    """What the body knows about one object (privileged sim state, or perception).

    `name` is unique in the scene ("red_block"); `category` is the object type
    ("block", "bowl", "apple", "cabinet"); `size` holds full extents (x, y, z) in the
    object frame. `parts` holds named world-frame points (a drawer's handle, a drawer's
    interior); `state` holds scalar state (a drawer's opening in metres).
    """

    name: str
    category: str
    colour: str
    position: np.ndarray
    quat_xyzw: np.ndarray
    size: np.ndarray
    seg_id: int = -1
    parts: dict[str, np.ndarray] = field(default_factory=dict)
    state: dict[str, float] = field(default_factory=dict)
    attributes: dict[str, Any] = field(default_factory=dict)

    @property
    def description(self) -> str:
        return f"{self.colour} {self.category}".strip()

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "category": self.category,
            "colour": self.colour,
            "position": [float(v) for v in self.position],
            "quat_xyzw": [float(v) for v in self.quat_xyzw],
            "size": [float(v) for v in self.size],
            "seg_id": int(self.seg_id),
            "parts": {k: [float(x) for x in v] for k, v in self.parts.items()},
            "state": {k: float(v) for k, v in self.state.items()},
            "attributes": dict(self.attributes),
        }

    @staticmethod
    def from_dict(d: Mapping[str, Any]) -> "SceneObject":
        return SceneObject(
            name=str(d["name"]),
            category=str(d["category"]),
            colour=str(d.get("colour", "")),
            position=np.asarray(d["position"], dtype=float),
            quat_xyzw=np.asarray(d["quat_xyzw"], dtype=float),
            size=np.asarray(d["size"], dtype=float),
            seg_id=int(d.get("seg_id", -1)),
            parts={k: np.asarray(v, dtype=float) for k, v in dict(d.get("parts", {})).items()},
            state={k: float(v) for k, v in dict(d.get("state", {})).items()},
            attributes=dict(d.get("attributes", {})),
        )


# The arm action: an absolute end-effector target in the base frame plus the gripper.
ACTION_NAMES: tuple[str, ...] = ("ee.x", "ee.y", "ee.z", "ee.qx", "ee.qy", "ee.qz", "ee.qw", "gripper")
ARM_ACTION_FEATURES: dict[str, Feature] = {
    "ee.pos": Feature("float32", (3,), ("x", "y", "z")),
    "ee.quat_xyzw": Feature("float32", (4,), ("qx", "qy", "qz", "qw")),
    "gripper": Feature("float32", (1,), ("gripper",)),
}
# The first entries of every arm's `observation.state`; joint positions follow.
ARM_STATE_NAMES: tuple[str, ...] = ACTION_NAMES


def action_to_vector(action: Mapping[str, Any]) -> np.ndarray:
    """Flatten an arm action dict to the 8-vector named by ACTION_NAMES."""
    try:
        pos = np.asarray(action["ee.pos"], dtype=float).reshape(3)
        quat = np.asarray(action["ee.quat_xyzw"], dtype=float).reshape(4)
        grip = np.asarray(action["gripper"], dtype=float).reshape(-1)[:1]
    except KeyError as e:
        raise ActionError(f"action is missing key {e.args[0]!r}; expected ee.pos, ee.quat_xyzw, gripper") from None
    except (TypeError, ValueError):
        raise ActionError("action has a value of the wrong type or shape (ee.pos: 3, ee.quat_xyzw: 4, gripper: 1)") from None
    if grip.size != 1:
        raise ActionError("action gripper must be one number")
    return np.concatenate([pos, quat, grip])


def action_from_vector(v: np.ndarray) -> dict[str, Any]:
    v = np.asarray(v, dtype=float).reshape(8)
    return {"ee.pos": v[:3].copy(), "ee.quat_xyzw": v[3:7].copy(), "gripper": float(v[7])}


def ee_pose_from_observation(obs: Mapping[str, Any]) -> Pose:
    s = np.asarray(obs["observation.state"], dtype=float)
    return Pose(s[0:3].copy(), s[3:7].copy())


def gripper_from_observation(obs: Mapping[str, Any]) -> float:
    return float(np.asarray(obs["observation.state"], dtype=float)[7])
