"""Building a simulated arm from a backend name (kept apart from `sim/__init__` so that
`sim.envs`, which `sim` imports, can use it without importing `sim` back)."""
from __future__ import annotations

from typing import Any

from sim.arm import SimArm, SimConfig
from sim.scene import SceneError

BACKENDS = ("pybullet", "mujoco")


def make_sim_arm(backend: str = "pybullet", config: SimConfig | None = None, **overrides: Any) -> SimArm:
    """Build a simulated arm for a backend name; the only place that branches on it."""
    if backend == "pybullet":
        from sim.pybullet_arm import PyBulletArm

        return PyBulletArm(config, **overrides)
    if backend == "mujoco":
        from sim.mujoco_arm import MujocoArm

        return MujocoArm(config, **overrides)
    raise SceneError(f"unknown simulator backend {backend!r} (known: {', '.join(BACKENDS)})")


def make_sim_robot(spec: str, **kwargs: Any) -> SimArm:
    """The robot-registry factory: `sim:pybullet`, `sim:mujoco`."""
    return make_sim_arm(spec.split(":", 1)[1], **kwargs)
