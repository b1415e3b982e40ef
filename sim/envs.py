"""Gymnasium envs `corrigo/<Task>-v0`: each composes a simulated arm and a task.

Actions are in [-1, 1]^5: end-effector displacement (x, y, z) scaled to
`max_ee_step_m`, a yaw change scaled to `max_rot_step_rad`, and the gripper
(-1 open, +1 closed). Observations are the arm's LeRobot-style dict (state,
privileged environment state, and camera images when cameras are on).
"""
from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from robot.geometry import quat_from_yaw, quat_mul, quat_normalize
from sim.arm import SimArm
from sim.tasks import TASKS, TaskInstance, env_id, get_task


class CorrigoTaskEnv(gym.Env):
    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(
        self,
        task: str = "PickPlace",
        backend: str = "pybullet",
        cameras: tuple[str, ...] = (),
        image_size: int = 128,
        max_episode_s: float = 60.0,
        render_mode: str | None = None,
        **arm_kwargs: Any,
    ) -> None:
        from sim.arm import CameraConfig
        from sim.backends import make_sim_arm

        self.task = get_task(task)
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.render_mode = render_mode
        self.robot: SimArm = make_sim_arm(
            backend, scene=self.task.scene, cameras=tuple(cameras),
            camera=CameraConfig(image_size, image_size), **arm_kwargs,
        )
        self.max_steps = int(max_episode_s * self.robot.config.control_hz)
        self.instance: TaskInstance | None = None
        self._steps = 0
        spaces_: dict[str, spaces.Space[Any]] = {}
        for key, f in self.robot.observation_features.items():
            if f.dtype == "uint8":
                spaces_[key] = spaces.Box(0, 255, f.shape, np.uint8)
            elif f.dtype == "int32":
                spaces_[key] = spaces.Box(-1, 10_000, f.shape, np.int32)
            elif key.startswith("observation.depth."):
                spaces_[key] = spaces.Box(0.0, self.robot.config.camera.far, f.shape, np.float32)
            else:  # poses and joint angles: metres and radians, bounded by the table and joint limits
                spaces_[key] = spaces.Box(-10.0, 10.0, f.shape, np.float32)
        self.observation_space = spaces.Dict(spaces_)
        self.action_space = spaces.Box(-1.0, 1.0, (5,), np.float32)

    @property
    def task_description(self) -> str:
        return self.instance.description if self.instance else self.task.templates[0]

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
        super().reset(seed=seed)
        s = int(seed) if seed is not None else int(self.np_random.integers(0, 2**31 - 1))
        if not self.robot.is_connected:
            self.robot.config.seed = s
            self.robot.connect()
        else:
            self.robot.reset(s)
        self.instance = self.task.instantiate(self.robot.scene_objects(), s)
        self._steps = 0
        return self._obs(), self._info()

    def step(self, action: np.ndarray) -> tuple[dict[str, Any], float, bool, bool, dict[str, Any]]:
        if self.instance is None:
            raise gym.error.ResetNeeded("call reset() before step()")
        a = np.clip(np.asarray(action, dtype=np.float64).reshape(5), -1.0, 1.0)
        a = np.where(np.isfinite(a), a, 0.0)
        state = self.robot.get_observation()["observation.state"].astype(np.float64)
        lim = self.robot.config.safety
        pos = state[:3] + a[:3] * lim.max_ee_step_m
        quat = quat_normalize(quat_mul(quat_from_yaw(float(a[3]) * lim.max_rot_step_rad), state[3:7]))
        self.robot.send_action({"ee.pos": pos, "ee.quat_xyzw": quat, "gripper": float((a[4] + 1.0) / 2.0)})
        self._steps += 1
        info = self._info()
        success = info["is_success"]
        return self._obs(), float(success), bool(success), self._steps >= self.max_steps, info

    def _obs(self) -> dict[str, Any]:
        return self.robot.get_observation()

    def _info(self) -> dict[str, Any]:
        assert self.instance is not None
        return {"is_success": self.instance.is_success(self.robot.scene_objects()), "task_description": self.instance.description}

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array":
            return None
        rgb, _, _ = self.robot._render("front")
        return rgb

    def close(self) -> None:
        self.robot.disconnect()


def register_envs() -> list[str]:
    ids = []
    for name in TASKS:
        eid = env_id(name)
        if eid not in gym.registry:
            gym.register(id=eid, entry_point="sim.envs:CorrigoTaskEnv", kwargs={"task": name})
        ids.append(eid)
    return ids
