"""Small quaternion helpers (xyzw, Hamilton convention) so `robot/` needs only numpy."""
from __future__ import annotations

import math

import numpy as np

# Gripper pointing straight down (tool z along world -z), fingers opening along world y.
DOWN_QUAT_XYZW = np.array([1.0, 0.0, 0.0, 0.0])


def quat_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ax, ay, az, aw = a
    bx, by, bz, bw = b
    return np.array(
        [
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
            aw * bw - ax * bx - ay * by - az * bz,
        ]
    )


def quat_conj(q: np.ndarray) -> np.ndarray:
    return np.array([-q[0], -q[1], -q[2], q[3]])


def quat_normalize(q: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(q))
    if not math.isfinite(n) or n < 1e-9:
        raise ValueError("quaternion has zero or non-finite norm")
    q = np.asarray(q, dtype=float) / n
    return q if q[3] >= 0 else -q


def quat_from_axis_angle(axis: np.ndarray, angle: float) -> np.ndarray:
    axis = np.asarray(axis, dtype=float)
    axis = axis / max(float(np.linalg.norm(axis)), 1e-12)
    s = math.sin(angle / 2.0)
    return np.array([axis[0] * s, axis[1] * s, axis[2] * s, math.cos(angle / 2.0)])


def quat_from_yaw(yaw: float) -> np.ndarray:
    return quat_from_axis_angle(np.array([0.0, 0.0, 1.0]), yaw)


def down_quat(yaw: float) -> np.ndarray:
    """Top-down gripper orientation rotated by `yaw` about world +z."""
    return quat_normalize(quat_mul(quat_from_yaw(yaw), DOWN_QUAT_XYZW))


def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    x, y, z, w = quat_normalize(q)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def rotate(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    return quat_to_matrix(q) @ np.asarray(v, dtype=float)


def yaw_of(q: np.ndarray) -> float:
    """Heading of the quaternion's x axis projected on the ground plane."""
    x_axis = quat_to_matrix(q)[:, 0]
    return math.atan2(x_axis[1], x_axis[0])


def quat_angle(a: np.ndarray, b: np.ndarray) -> float:
    """Smallest rotation angle between two orientations, radians."""
    d = abs(float(np.dot(quat_normalize(a), quat_normalize(b))))
    return 2.0 * math.acos(min(1.0, d))


def quat_slerp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    a, b = quat_normalize(a), quat_normalize(b)
    dot = float(np.dot(a, b))
    if dot < 0.0:
        b, dot = -b, -dot
    if dot > 0.9995:
        return quat_normalize(a + t * (b - a))
    theta = math.acos(dot)
    return quat_normalize(
        (math.sin((1 - t) * theta) * a + math.sin(t * theta) * b) / math.sin(theta)
    )


def wrap_angle(a: float) -> float:
    return (a + math.pi) % (2 * math.pi) - math.pi
