"""Safety limits every body applies inside `send_action`, whatever sent the action."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from robot.geometry import quat_angle, quat_normalize, quat_slerp
from robot.types import action_from_vector, action_to_vector


@dataclass
class SafetyLimits:
    """Workspace box (m, base frame), per-tick step limits, gripper range.

    Joint limits belong to each body (they come from its model) and are applied
    where joint targets are computed.
    """

    workspace_min: tuple[float, float, float] = (0.15, -0.5, 0.005)
    workspace_max: tuple[float, float, float] = (0.80, 0.5, 0.60)
    max_ee_step_m: float = 0.03  # per control tick
    max_rot_step_rad: float = 0.25  # per control tick
    gripper_min: float = 0.0
    gripper_max: float = 1.0
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        lo, hi = np.asarray(self.workspace_min, float), np.asarray(self.workspace_max, float)
        # NaN compares false with everything, so a NaN box would pass `lo >= hi` and clip every
        # target to NaN (a body holding forever); an infinite one is no box at all.
        if lo.shape != (3,) or hi.shape != (3,) or not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
            raise ValueError("safety: workspace_min and workspace_max must be three finite numbers each")
        if np.any(lo >= hi):
            raise ValueError("safety: workspace_min must be below workspace_max on every axis")
        steps = (self.max_ee_step_m, self.max_rot_step_rad)
        if not all(math.isfinite(v) and v > 0 for v in steps):
            raise ValueError("safety: step limits must be positive and finite")
        if not (0.0 <= self.gripper_min < self.gripper_max <= 1.0):
            raise ValueError("safety: gripper range must lie in [0, 1]")


def clip_action(
    action: Mapping[str, Any],
    ee_pos: np.ndarray,
    ee_quat: np.ndarray,
    gripper_now: float,
    limits: SafetyLimits,
) -> tuple[dict[str, Any], list[str]]:
    """Return (the action that is safe to send, reasons it was changed).

    Non-finite components are replaced by the current pose (hold), the target is
    clipped to the workspace, then the step from the current pose is limited.
    """
    v = action_to_vector(action)
    reasons: list[str] = []
    cur_pos = np.asarray(ee_pos, dtype=float)
    cur_quat = quat_normalize(np.asarray(ee_quat, dtype=float))

    pos = v[:3]
    if not np.all(np.isfinite(pos)):
        pos, reasons = cur_pos.copy(), reasons + ["non-finite position: holding"]
    lo, hi = np.asarray(limits.workspace_min), np.asarray(limits.workspace_max)
    boxed = np.clip(pos, lo, hi)
    if not np.allclose(boxed, pos):
        reasons.append("outside workspace: clipped to the box")
    # Steps are limited relative to the current pose clipped into the box, so a body
    # that starts outside the box is brought back in, never pushed further out.
    delta = boxed - cur_pos
    dist = float(np.linalg.norm(delta))
    if dist > limits.max_ee_step_m:
        # from a pose outside the box (an arm that overshot it) the limited step may end
        # outside too: the box wins over the step limit
        boxed = np.clip(cur_pos + delta * (limits.max_ee_step_m / dist), lo, hi)
        reasons.append("step too large: limited")

    quat = v[3:7]
    try:
        quat = quat_normalize(quat) if np.all(np.isfinite(quat)) else None
    except ValueError:
        quat = None
    if quat is None:
        quat, reasons = cur_quat.copy(), reasons + ["invalid orientation: holding"]
    ang = quat_angle(cur_quat, quat)
    if ang > limits.max_rot_step_rad:
        quat = quat_slerp(cur_quat, quat, limits.max_rot_step_rad / ang)
        reasons.append("rotation too large: limited")

    grip = float(v[7])
    if not math.isfinite(grip):
        grip, reasons = float(gripper_now), reasons + ["non-finite gripper: holding"]
    g = min(max(grip, limits.gripper_min), limits.gripper_max)
    if g != grip:
        reasons.append("gripper outside range: clipped")
    out = action_from_vector(np.concatenate([boxed, quat, [g]]))
    return out, reasons
