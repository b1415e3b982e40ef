"""Simulated bodies (PyBullet, MuJoCo), scenes, tasks and gymnasium envs."""
from __future__ import annotations

from robot.registry import register_robot
from sim.arm import CameraConfig, SimArm, SimConfig
from sim.backends import BACKENDS, make_sim_arm, make_sim_robot
from sim.envs import register_envs
from sim.scene import SceneError, SceneSpec, load_scene, sample_layout

register_robot("sim:pybullet", make_sim_robot, requires=("pybullet",))
register_robot("sim:mujoco", make_sim_robot, requires=("mujoco",))

__all__ = ["BACKENDS", "CameraConfig", "SceneError", "SceneSpec", "SimArm", "SimConfig", "load_scene", "make_sim_arm", "sample_layout"]

ENV_IDS = register_envs()
