"""Simulated bodies (PyBullet, MuJoCo), scenes, tasks and gymnasium envs."""
from __future__ import annotations

from typing import Any

from robot.registry import register_robot
from sim.arm import CameraConfig, SimArm, SimConfig
from sim.scene import SceneError, SceneSpec, load_scene, sample_layout

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


def _factory(spec: str, **kwargs: Any) -> SimArm:
    return make_sim_arm(spec.split(":", 1)[1], **kwargs)


for _b in BACKENDS:
    register_robot(f"sim:{_b}", _factory)

__all__ = ["BACKENDS", "CameraConfig", "SceneError", "SceneSpec", "SimArm", "SimConfig", "load_scene", "make_sim_arm", "sample_layout"]

from sim.envs import register_envs  # noqa: E402

ENV_IDS = register_envs()
